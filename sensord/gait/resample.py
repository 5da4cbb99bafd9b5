"""Put raw samples on the engine's uniform grid and split the stream at gaps.

Raw samples (any rate from 50 to 1000 Hz, jittered timestamps, missing samples, NaN
rows) become :class:`~sensord.gait.grid.UniformBlock` s on one absolute grid: grid
sample ``k`` is at time ``k / rate_hz`` of the source's time axis. Values are linearly
interpolated between the two raw samples that bracket a grid time, and never across a
gap: two consecutive valid samples further apart than ``max_gap_s`` end the current
segment, and the next block is flagged ``reset``.

Linear interpolation at a grid time only depends on its two bracketing samples, and the
last valid sample is carried in the state, so the output does not depend on how the raw
stream was cut into blocks.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from sensord.gait.grid import UniformBlock
from sensord.model import FloatArray, SampleBlock


@dataclass(frozen=True, slots=True)
class ResampleParams:
    """Parameters of the grid.

    Attributes
    ----------
    rate_hz
        Grid rate. 200 Hz resolves contact events to 5 ms before sub-sample refinement.
    max_gap_s
        Longest spacing between two valid raw samples that is still interpolated
        (a few samples at 50 Hz); anything longer is a gap.
    """

    rate_hz: float = 200.0
    max_gap_s: float = 0.065

    def __post_init__(self) -> None:
        if not 20.0 <= self.rate_hz <= 2000.0:
            raise ValueError(f"rate_hz must be within 20-2000 Hz, got {self.rate_hz}")
        if not 0.0 < self.max_gap_s <= 1.0:
            raise ValueError(f"max_gap_s must be within (0, 1] s, got {self.max_gap_s}")


@dataclass(frozen=True, slots=True, eq=False)
class ResampleState:
    """The last valid raw sample and the next grid index to produce.

    ``last_t_s`` is NaN before the first sample and right after a gap.
    """

    last_t_s: float = math.nan
    last_row: FloatArray | None = None  # acc (+ gyr) of the last valid sample
    next_index: int = 0
    gaps: int = 0


def step(params: ResampleParams, state: ResampleState,
         block: SampleBlock) -> tuple[ResampleState, list[UniformBlock], list[tuple[float, float]]]:
    """Resample one raw block.

    Returns
    -------
    state
        The new state.
    blocks
        Grid blocks in time order (the first of each segment after a gap has
        ``reset=True``).
    gaps
        ``(t_start_s, t_end_s)`` of each gap detected in this block.
    """
    if len(block) == 0:
        return state, [], []
    gyro = block.gyr_dps is not None
    parts = [block.acc_mps2, block.gyr_dps] if block.gyr_dps is not None else [block.acc_mps2]
    width = 3 * len(parts)
    carried = (state.last_row is not None and state.last_row.shape[0] == width
               and not math.isnan(state.last_t_s))
    # channels as rows (np.interp reads each contiguously), the carried sample first
    head = 1 if carried else 0
    t = np.empty(len(block) + head)
    x = np.empty((width, len(block) + head))
    t[head:] = block.t_s
    for c, part in enumerate(parts):
        x[3 * c: 3 * c + 3, head:] = part.T
    if carried:
        assert state.last_row is not None
        t[0], x[:, 0] = state.last_t_s, state.last_row
    if not math.isfinite(float(x.sum()) + float(t.sum())):  # rare: drop NaN rows
        ok = np.isfinite(t) & np.all(np.isfinite(x), axis=0)
        t, x = t[ok], x[:, ok]
    if t.size <= head:
        return state, [], []
    fresh = not carried

    rate = params.rate_hz
    cut = np.flatnonzero(t[1:] - t[:-1] > params.max_gap_s).tolist()
    bounds = [0, *(c + 1 for c in cut), t.size]
    blocks: list[UniformBlock] = []
    gaps: list[tuple[float, float]] = [(float(t[i]), float(t[i + 1])) for i in cut]
    next_index = state.next_index
    for seg_no in range(len(bounds) - 1):
        a, b = bounds[seg_no], bounds[seg_no + 1]
        ts, xs = t[a:b], x[:, a:b]
        reset = seg_no > 0 or fresh
        first = math.ceil(ts[0] * rate - 1e-9) if reset else next_index
        last = math.floor(ts[-1] * rate + 1e-9)
        if last >= first:
            grid_t = np.arange(first, last + 1, dtype=np.float64) / rate
            out = np.empty((grid_t.size, width))
            for c in range(width):
                out[:, c] = np.interp(grid_t, ts, xs[c])
            blocks.append(UniformBlock(first, rate, out[:, :3], out[:, 3:6] if gyro else None,
                                       reset))
            next_index = last + 1
        elif reset:
            # a segment too short to hold a grid point still starts a new segment
            blocks.append(UniformBlock(first, rate, np.empty((0, 3)),
                                       np.empty((0, 3)) if gyro else None, True))
            next_index = first
    new_state = ResampleState(float(t[-1]), x[:, -1].copy(), next_index, state.gaps + len(gaps))
    return new_state, blocks, gaps
