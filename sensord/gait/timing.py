"""Step timing shared by all placements: cadence, step/stride time, flight, GCT balance.

A detector finds contacts (initial contact, final contact, side); this fold turns the
sequence of contacts into the timing fields of :class:`sensord.model.Step`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import numpy.typing as npt

from sensord.model import FloatArray, Side

#: Side codes of :func:`fold`.
NO_SIDE, LEFT, RIGHT = 0, 1, 2


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


class Timing(NamedTuple):
    """The timing fields of one step."""

    step_index: int
    cadence_spm: float | None
    step_time_s: float | None
    stride_time_s: float | None
    flight_ms: float | None
    gct_balance_pct: float | None


class TimingColumns(NamedTuple):
    """The timing fields of a batch of steps, one array each (NaN = not defined)."""

    step_index: npt.NDArray[np.int64]
    cadence_spm: FloatArray
    step_time_s: FloatArray
    stride_time_s: FloatArray
    flight_ms: FloatArray
    gct_balance_pct: FloatArray


def fold(params: TimingParams, state: TimingState, t_ic: FloatArray, t_fc: FloatArray,
         side: npt.NDArray[np.int8]) -> tuple[TimingState, TimingColumns]:
    """Fold a batch of contacts, in order, into the timing state (vectorised).

    Parameters
    ----------
    t_ic, t_fc
        ``(n,)`` initial and final contact times, s (``t_fc`` NaN where unknown).
    side
        ``(n,)`` ``LEFT``, ``RIGHT`` or ``NO_SIDE``.
    """
    n = t_ic.shape[0]
    if n == 0:
        empty = np.empty(0)
        return state, TimingColumns(np.empty(0, np.int64), empty, empty, empty, empty, empty)
    per = params.steps_per_contact
    k_cad = params.cadence_steps
    prev_ic = np.concatenate([[state.last_ic_s], t_ic[:-1]])
    interval = t_ic - prev_ic
    valid = interval <= params.max_step_s * per  # False after a pause and for NaN
    step_time = np.where(valid, interval / per, np.nan)

    # cadence: median of the last few step times since the last pause
    hist = np.asarray(state.step_times_s[-k_cad:], dtype=np.float64)
    series = np.concatenate([np.full(k_cad - hist.size, np.nan), hist, step_time])
    win = series[np.arange(1, n + 1)[:, None] + np.arange(k_cad)[None, :]]  # up to each step
    pos = np.arange(k_cad)
    last_pause = np.where(np.isnan(win), pos, -1).max(axis=1)
    srt = np.where(pos[None, :] > last_pause[:, None], win, np.nan)
    srt.sort(axis=1)  # NaN last
    count = k_cad - 1 - last_pause
    rows = np.arange(n)
    lo_i, hi_i = np.maximum(count - 1, 0) // 2, count // 2
    with np.errstate(invalid="ignore", divide="ignore"):
        cadence = np.where(count > 0, 120.0 / (srt[rows, lo_i] + srt[rows, hi_i]), np.nan)

    # stride: from the previous contact of the same foot
    by_side = dict(state.last_ic_by_side)
    stride = np.where(valid, interval, np.nan) if per == 2 else np.full(n, np.nan)
    gct_ms = (t_fc - t_ic) * 1000.0
    gct_mean: dict[str, FloatArray] = {}
    new_by_side: list[tuple[str, float]] = []
    new_gct: dict[str, tuple[float, ...]] = {}
    old_gct = {"left": state.gct_left_ms, "right": state.gct_right_ms}
    for code, name in ((LEFT, "left"), (RIGHT, "right")):
        mine = np.flatnonzero(side == code)
        before = np.concatenate([[by_side.get(name, np.nan)], t_ic[mine]])
        if per == 1:
            s = t_ic[mine] - before[:-1]
            stride[mine] = np.where(s <= 2 * params.max_step_s, s, np.nan)
        if not np.isnan(before[-1]):
            new_by_side.append((name, float(before[-1])))
        # GCT balance: mean of this side's last few contact times, at every step
        hist_g = np.asarray(old_gct[name], dtype=np.float64)
        has = (side == code) & ~np.isnan(gct_ms)
        g = np.concatenate([hist_g, gct_ms[has]])
        cs = np.concatenate([[0.0], g.cumsum()])
        upto = hist_g.size + has.cumsum()  # this side's contacts so far, per step
        first = np.maximum(upto - params.balance_steps, 0)
        with np.errstate(invalid="ignore", divide="ignore"):
            gct_mean[name] = np.where(upto > 0, (cs[upto] - cs[first]) / (upto - first), np.nan)
        new_gct[name] = tuple(g[-params.balance_steps:].tolist())
    ml, mr = gct_mean["left"], gct_mean["right"]
    balance = 100.0 * ml / (ml + mr)

    prev_fc = np.concatenate([[state.last_fc_s], t_fc[:-1]])
    flight = np.where(valid, (t_ic - prev_fc) * 1000.0, np.nan)

    pauses = np.flatnonzero(~valid)
    kept = step_time[pauses[-1] + 1:] if pauses.size else np.concatenate([hist, step_time])
    new = TimingState(tuple(kept[-k_cad:].tolist()), float(t_ic[-1]), float(t_fc[-1]),
                      tuple(new_by_side),
                      new_gct["left"], new_gct["right"], state.count + n)
    cols = TimingColumns(state.count + np.arange(n), cadence, step_time, stride, flight, balance)
    return new, cols


def update(params: TimingParams, state: TimingState, t_ic: float, t_fc: float | None,
           side: Side | None) -> tuple[TimingState, Timing]:
    """Fold one contact into the timing state."""
    code = NO_SIDE if side is None else (LEFT if side == "left" else RIGHT)
    state, c = fold(params, state, np.array([t_ic]),
                    np.array([math.nan if t_fc is None else t_fc]), np.array([code], np.int8))
    return state, Timing(int(c.step_index[0]), *(_opt(float(x[0])) for x in c[1:]))


def _opt(x: float) -> float | None:
    return None if math.isnan(x) else x
