"""The gait engine: raw samples in, steps out, one pure fold for live and offline use.

::

    state = init_state(params)
    for block in blocks:                 # a live stream or a recording cut in blocks
        state, events = step(params, state, block)
    state, events = finish(params, state)  # end of stream

``events`` are :class:`~sensord.model.Step` and :class:`~sensord.model.Gap` records in
time order. The same ``step`` runs inside ``sensord run`` (live) and ``sensord analyze``
(:func:`analyze`, a fold over blocks). Results do not depend on how the stream is cut
into blocks, and the state is bounded: a few seconds of signal and a few numbers per
metric, whatever the length of the run.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from sensord.gait import pelvis, resample
from sensord.gait.grid import UniformBlock
from sensord.model import Gap, Placement, SampleBlock, Side, Step

Event = Step | Gap


def _foot_module() -> Any:
    from sensord.gait import foot

    return foot


@dataclass(frozen=True, slots=True)
class EngineParams:
    """Parameters of the whole engine.

    Attributes
    ----------
    placement
        ``"pelvis"`` (sacrum / lower back) or ``"foot"`` (shoe).
    sensor_side
        For a foot sensor, which shoe it is on (``None`` if unknown).
    grid
        Resampling to the uniform grid and gap detection.
    pelvis
        Pelvis detector parameters.
    foot
        Foot detector parameters (``FootParams``); ``None`` = defaults.
    hold_blocks
        Hold back blocks that cannot complete a step and fold them in with the next
        (see :func:`step`): the same steps from the same calls, fewer folds per step on
        a live stream of small notifications.
    """

    placement: Placement = "pelvis"
    sensor_side: Side | None = None
    grid: resample.ResampleParams = field(default_factory=resample.ResampleParams)
    pelvis: pelvis.PelvisParams = field(default_factory=pelvis.PelvisParams)
    foot: Any = None
    hold_blocks: bool = True

    def __post_init__(self) -> None:
        if self.placement not in ("pelvis", "foot"):
            raise ValueError(f"placement must be 'pelvis' or 'foot', got {self.placement!r}")

    def foot_params(self) -> Any:
        if self.foot is not None:
            return self.foot
        return _foot_module().FootParams(sensor_side=self.sensor_side)


@dataclass(frozen=True, slots=True, eq=False)
class EngineState:
    """Engine state.

    Attributes
    ----------
    grid, detector
        Resampler state; detector state (``PelvisState`` | ``FootState``, ``None``
        before the first grid sample).
    samples
        Raw samples received.
    held, hold_until
        Raw blocks not folded in yet, and the grid end (absolute index one past the
        last grid sample) before which the detector cannot emit a step (0: fold every
        block at once). See :func:`step`.
    """

    grid: resample.ResampleState
    detector: Any
    samples: int = 0
    held: tuple[SampleBlock, ...] = ()
    hold_until: int = 0


def init_state(params: EngineParams) -> EngineState:
    """A fresh engine state."""
    return EngineState(resample.ResampleState(), None)


def _run_detector(params: EngineParams, state: Any, block: UniformBlock) -> tuple[Any, list[Step]]:
    if params.placement == "pelvis":
        if state is None:
            state = pelvis.init_pelvis(params.pelvis, block.rate_hz, block.start_index,
                                       block.gyr_dps is not None)
        return pelvis.step_pelvis(params.pelvis, state, block)
    foot = _foot_module()
    fp = params.foot_params()
    if state is None:
        state = foot.init_foot(fp, block.rate_hz, block.start_index)
    return foot.step_foot(fp, state, block)  # type: ignore[no-any-return]


def _finish_detector(params: EngineParams, state: Any) -> tuple[Any, list[Step]]:
    if state is None:
        return None, []
    if params.placement == "pelvis":
        return pelvis.finish_pelvis(params.pelvis, state)
    return _foot_module().finish_foot(params.foot_params(), state)  # type: ignore[no-any-return]


def step(params: EngineParams, state: EngineState,
         block: SampleBlock) -> tuple[EngineState, list[Event]]:
    """Fold one block of raw samples into the engine.

    Blocks that end before the detector's emission horizon (the earliest grid sample
    that could complete another step, e.g. ``pelvis.emission_horizon``) are held and
    folded in together with the block that reaches it. The results do not depend on how
    the stream is cut, so holding changes nothing but the per-call overhead: a live
    stream of 20 ms notifications is folded a few times per step instead of every
    notification, and every step still comes out of the very call that completes it.
    (A gap inside held blocks is reported when they are folded in, at most
    ``_MAX_HOLD_S`` later.)
    """
    samples = state.samples + len(block)
    if _holds(params, state, block):
        return EngineState(state.grid, state.detector, samples, (*state.held, block),
                           state.hold_until), []
    grid, det = state.grid, state.detector
    events: list[Event] = []
    if state.held:
        if _same_kind(state.held[0], block):
            block = SampleBlock.concat([*state.held, block])
        else:  # the sensor dropped or added its gyroscope: fold the held blocks first
            grid, det, events = _fold(params, grid, det, SampleBlock.concat(list(state.held)))
    grid, det, more = _fold(params, grid, det, block)
    hold_until = _horizon(params, det) if params.hold_blocks else 0
    return EngineState(grid, det, samples, (), hold_until), events + more


def _fold(params: EngineParams, grid: resample.ResampleState, det: Any,
          block: SampleBlock) -> tuple[resample.ResampleState, Any, list[Event]]:
    """Resample ``block``, run the detector over it, reset it across gaps."""
    grid, blocks, gaps = resample.step(params.grid, grid, block)
    events: list[Event] = []
    gap_iter = iter(gaps)
    for ub in blocks:
        if ub.reset and det is not None:
            det, flushed = _finish_detector(params, det)
            events.extend(flushed)
            gap = next(gap_iter, None)
            if gap is not None:
                events.append(Gap(*gap))
            det = None
        det, steps = _run_detector(params, det, ub)
        events.extend(steps)
    for gap in gap_iter:
        events.append(Gap(*gap))
    return grid, det, events


#: Most raw samples held back (a bound whatever the timestamps do).
_MAX_HELD_SAMPLES = 1000


def _holds(params: EngineParams, state: EngineState, block: SampleBlock) -> bool:
    """Whether ``block`` (with the held ones) still ends before the emission horizon."""
    if not state.hold_until or len(block) == 0:
        return False
    if state.held and not _same_kind(state.held[0], block):
        return False
    if _count(state.held) + len(block) > _MAX_HELD_SAMPLES:
        return False
    t_max = float(block.t_s.max())
    if not math.isfinite(t_max):  # NaN timestamps: let the resampler deal with them
        return False
    # the resampler's last grid index for this block is floor(t * rate) at most
    return math.floor(t_max * params.grid.rate_hz + 1e-9) + 1 < state.hold_until


def _same_kind(a: SampleBlock, b: SampleBlock) -> bool:
    """Both with or both without gyroscope (what ``SampleBlock.concat`` joins)."""
    return a.has_gyro == b.has_gyro


def _count(blocks: tuple[SampleBlock, ...]) -> int:
    return sum(len(b) for b in blocks)


#: Longest a block is held back, s of signal past what the detector has seen.
_MAX_HOLD_S = 0.5


def _horizon(params: EngineParams, det: Any) -> int:
    """Grid end before which ``det`` cannot emit (0: fold every block at once)."""
    if det is None:
        return 0
    if params.placement == "pelvis":
        horizon = pelvis.emission_horizon(params.pelvis, det)
    else:
        horizon = _foot_module().emission_horizon(params.foot_params(), det)
    cap: int = det.raw.end + round(_MAX_HOLD_S * det.rate_hz)
    return min(int(horizon), cap)


def finish(params: EngineParams, state: EngineState) -> tuple[EngineState, list[Event]]:
    """End of stream: emit what is still pending."""
    grid, det = state.grid, state.detector
    events: list[Event] = []
    if state.held:
        grid, det, events = _fold(params, grid, det, SampleBlock.concat(list(state.held)))
    det, steps = _finish_detector(params, det)
    return EngineState(grid, det, state.samples), [*events, *steps]


def analyze(params: EngineParams, samples: SampleBlock | Iterable[SampleBlock],
            block_s: float = 60.0) -> list[Event]:
    """Offline analysis: the fold of :func:`step` over blocks, then :func:`finish`.

    ``samples`` is a whole recording (cut into ``block_s`` blocks) or an iterable of
    blocks.
    """
    if isinstance(samples, SampleBlock):
        blocks: Iterable[SampleBlock] = _cut(samples, block_s)
    else:
        blocks = samples
    state = init_state(params)
    events: list[Event] = []
    for b in blocks:
        state, ev = step(params, state, b)
        events.extend(ev)
    state, ev = finish(params, state)
    events.extend(ev)
    return events


def steps_only(events: Iterable[Event]) -> list[Step]:
    return [e for e in events if isinstance(e, Step)]


def _cut(samples: SampleBlock, block_s: float) -> Iterable[SampleBlock]:
    """Consecutive blocks of ``block_s`` seconds (views)."""
    if len(samples) == 0:
        return
    t = samples.t_s
    n_blocks = int((t[-1] - t[0]) / block_s) + 1
    bounds = np.searchsorted(t, t[0] + block_s * np.arange(1, n_blocks + 1))
    start = 0
    for b in [*bounds.tolist(), len(samples)]:
        if b > start:
            yield samples.slice(start, b)
            start = b
