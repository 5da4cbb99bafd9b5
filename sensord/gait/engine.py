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

from collections.abc import Iterable
from dataclasses import dataclass, field, replace
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
    """

    placement: Placement = "pelvis"
    sensor_side: Side | None = None
    grid: resample.ResampleParams = field(default_factory=resample.ResampleParams)
    pelvis: pelvis.PelvisParams = field(default_factory=pelvis.PelvisParams)
    foot: Any = None

    def __post_init__(self) -> None:
        if self.placement not in ("pelvis", "foot"):
            raise ValueError(f"placement must be 'pelvis' or 'foot', got {self.placement!r}")

    def foot_params(self) -> Any:
        if self.foot is not None:
            return self.foot
        return _foot_module().FootParams(sensor_side=self.sensor_side)


@dataclass(frozen=True, slots=True, eq=False)
class EngineState:
    grid: resample.ResampleState
    detector: Any  # PelvisState | FootState, or None before the first sample
    samples: int = 0


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
    """Fold one block of raw samples into the engine."""
    grid, blocks, gaps = resample.step(params.grid, state.grid, block)
    events: list[Event] = []
    det = state.detector
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
    return EngineState(grid, det, state.samples + len(block)), events


def finish(params: EngineParams, state: EngineState) -> tuple[EngineState, list[Event]]:
    """End of stream: emit what is still pending."""
    det, steps = _finish_detector(params, state.detector)
    return replace(state, detector=det), list(steps)


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
