"""Step timing shared by all placements: cadence, step/stride time, flight, GCT balance.

A detector finds contacts (initial contact, final contact, side); this fold turns the
sequence of contacts into the timing fields of :class:`sensord.model.Step`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from statistics import median

from sensord.model import Side


@dataclass(frozen=True, slots=True)
class TimingParams:
    """Attributes
    ----------
    cadence_steps
        Number of recent step times whose median gives ``cadence_spm``.
    balance_steps
        Recent stances per side averaged for ``gct_balance_pct``.
    max_step_s
        A longer interval between contacts is a pause, not a step: no step time.
    steps_per_contact
        1 for a pelvis sensor (it sees every step), 2 for a single foot sensor (each of
        its contacts is one stride, i.e. two steps).
    """

    cadence_steps: int = 6
    balance_steps: int = 8
    max_step_s: float = 2.0
    steps_per_contact: int = 1


@dataclass(frozen=True, slots=True)
class TimingState:
    step_times_s: tuple[float, ...] = ()
    last_ic_s: float = math.nan
    last_fc_s: float = math.nan
    last_ic_by_side: tuple[tuple[str, float], ...] = ()
    gct_left_ms: tuple[float, ...] = ()
    gct_right_ms: tuple[float, ...] = ()
    count: int = 0


@dataclass(frozen=True, slots=True)
class Timing:
    """The timing fields of one step."""

    step_index: int
    cadence_spm: float | None
    step_time_s: float | None
    stride_time_s: float | None
    flight_ms: float | None
    gct_balance_pct: float | None


def update(params: TimingParams, state: TimingState, t_ic: float, t_fc: float | None,
           side: Side | None) -> tuple[TimingState, Timing]:
    """Fold one contact into the timing state."""
    interval = t_ic - state.last_ic_s
    longest = params.max_step_s * params.steps_per_contact
    contact_time = interval if math.isfinite(interval) and interval <= longest else None
    step_time = None if contact_time is None else contact_time / params.steps_per_contact
    times = () if step_time is None else (*state.step_times_s, step_time)[-params.cadence_steps:]
    cadence = 60.0 / median(times) if times else None

    by_side = dict(state.last_ic_by_side)
    stride = None
    if params.steps_per_contact == 2:
        stride = contact_time
    elif side is not None and side in by_side:
        s = t_ic - by_side[side]
        stride = s if s <= 2 * params.max_step_s else None
    if side is not None:
        by_side[side] = t_ic

    flight = None
    if math.isfinite(state.last_fc_s) and contact_time is not None:
        flight = (t_ic - state.last_fc_s) * 1000.0

    gl, gr = state.gct_left_ms, state.gct_right_ms
    if t_fc is not None and side is not None:
        gct = (t_fc - t_ic) * 1000.0
        if side == "left":
            gl = (*gl, gct)[-params.balance_steps:]
        else:
            gr = (*gr, gct)[-params.balance_steps:]
    balance = None
    if gl and gr:
        ml, mr = sum(gl) / len(gl), sum(gr) / len(gr)
        balance = 100.0 * ml / (ml + mr)

    new = replace(state, step_times_s=times, last_ic_s=t_ic,
                  last_fc_s=t_fc if t_fc is not None else math.nan,
                  last_ic_by_side=tuple(sorted(by_side.items())),
                  gct_left_ms=gl, gct_right_ms=gr, count=state.count + 1)
    return new, Timing(state.count, cadence, step_time, stride, flight, balance)
