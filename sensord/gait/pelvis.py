"""Step detection and per-step metrics from one IMU at the pelvis (sacrum / L5).

Method
------
1. **Vertical specific force.** Gravity is tracked by a slow exponential average
   (:mod:`sensord.gait.orientation`); ``a_v`` is the specific force along 'up', in g.
   The sensor may be mounted at any rotation.
2. **Stances.** Every stance is one hump of ``a_v`` (Cavagna 1964: the vertical ground
   reaction force divided by body mass). Humps are the local maxima of ``a_v``
   smoothed with a Gaussian (``peak_sigma_s``), accepted when their rise above the
   previous trough is at least ``rel_amplitude`` of the recent steps' (and at least
   ``min_amplitude_g``), no closer than ``min_step_s`` to the previous one.
3. **Gait mode.** Running has a flight phase, during which the body is in free fall and
   ``a_v`` approaches 0 g; walking never leaves the ground, so ``a_v`` stays well above
   it. A trough before the rise below ``flight_level_g`` marks a running step.
4. **Initial contact.** The steepest rise of ``a_v`` (derivative-of-Gaussian,
   ``edge_sigma_s``) before the hump. Walking: IC is that instant (Zijlstra & Hof
   2003 observe the trunk's sharp vertical rise at heel strike). Running: the force
   rises from the flight level at IC, so the tangent at the steepest rise is
   extrapolated back to the flight level (as force-plate onsets are back-extrapolated);
   this removes the delay smoothing puts on the steepest point.
5. **Final contact.** Running: the steepest fall after the hump, extrapolated forward to
   the flight level, symmetric to IC. Walking: toe-off of the stance leg comes after the
   other foot's contact, at the trough of ``a_v`` following the next hump
   (McCamley et al. 2012 place FC after the contralateral IC the same way).
6. **Side.** The pelvis yaws with the swing leg: around a left initial contact the
   angular rate about 'up' is negative (right-handed, z up), around a right one positive
   (McCamley et al. 2012). Needs a gyroscope; alternation resolves weak cases.
7. **Pelvic drop.** The angular rate about the forward axis integrated from IC; its peak
   over the stance, signed so that a dropping swing side is positive.
8. **Vertical oscillation, impact, braking.** Vertical displacement by double
   integration of ``a_v - g`` over the last step (drift removed by the periodicity of
   a step), peak ``a_v`` over the stance, and peak forward deceleration after IC.

All events are searched by absolute grid index in bounded ring buffers; a step is
emitted as soon as its final contact is settled, and the result does not depend on how
the stream is cut into blocks.

References
----------
Cavagna G.A., Saibene F.P., Margaria R. (1964) Mechanical work in running. J Appl
Physiol 19:249-256.
Zijlstra W., Hof A.L. (2003) Gait Posture 18:1-10.
McCamley J. et al. (2012) An enhanced estimate of initial contact and final contact
instants of time using lower trunk inertial sensor data. Gait Posture 36:316-318.
Patoz A. et al. (2022) A single sacral-mounted IMU to estimate peak vertical ground
reaction force, contact time, and flight time in running. Sensors 22:784.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np
import numpy.typing as npt

from sensord.gait import orientation, timing
from sensord.gait.filters import (
    Ring,
    Windows,
    clip,
    correlate_valid,
    gaussian_kernels,
    parabolic_offset,
    small_median,
)
from sensord.gait.grid import UniformBlock
from sensord.model import GRAVITY_MPS2, FloatArray, Side, Step
from sensord.state import evolve

# raw ring channels
_AV, _HX, _GX, _WUP, _UP = 0, 1, 4, 7, 8
_RAW_CH = 11
# derived ring channels: der (contact edges) and smooth (stance humps)
_SE, _D1 = 0, 1


@dataclass(frozen=True, slots=True)
class PelvisParams:
    """Parameters of the pelvis detector (all in seconds or g; any grid rate).

    Attributes
    ----------
    gravity_window_s, gravity_bin_s
        Gravity is the mean specific force over the last ``gravity_window_s``,
        averaged in bins of ``gravity_bin_s``.
    peak_sigma_s
        Gaussian smoothing for finding stance humps.
    edge_sigma_s
        Gaussian smoothing for the contact edges (derivative of Gaussian).
    peak_window_s, peak_confirm_s
        A hump is the maximum from ``peak_window_s`` before it to ``peak_confirm_s``
        after it (short, so a stance is confirmed soon after mid-stance).
    min_step_s, max_step_s
        Plausible step durations (min 0.25 s = 240 steps/min).
    min_amplitude_g, rel_amplitude
        Hump acceptance: rise above the trough before it, absolute and relative to the
        median of the last ``amplitude_memory`` accepted humps.
    flight_level_g
        A trough below this before the rise means a flight phase (running).
    rise_window_s
        How far before a hump the steepest rise is searched.
    first_rise_fraction
        A jolt before the steepest rise starts the contact instead when its slope
        reaches this fraction of the steepest and the signal falls at least as steeply
        between the two (two separate jolts, not one rise).
    walk_fc_window_s
        Walking FC: trough search window after the next hump.
    side_window_s
        Window around IC (start, end) whose mean yaw rate decides the side.
    history_s
        Seconds of signal kept in the ring buffers.
    """

    gravity_window_s: float = 3.0
    gravity_bin_s: float = 0.1
    peak_sigma_s: float = 0.03
    edge_sigma_s: float = 0.008
    peak_window_s: float = 0.12
    peak_confirm_s: float = 0.04
    min_step_s: float = 0.25
    max_step_s: float = 2.0
    min_amplitude_g: float = 0.08
    rel_amplitude: float = 0.6
    amplitude_memory: int = 8
    flight_level_g: float = 0.5
    rise_window_s: float = 0.22
    walk_fc_window_s: float = 0.3
    side_window_s: tuple[float, float] = (-0.1, 0.05)
    walk_onset_window_s: float = 0.03
    first_rise_fraction: float = 0.5
    history_s: float = 5.0
    timing: timing.TimingParams = field(default_factory=timing.TimingParams)


class _Stance(NamedTuple):
    """An accepted hump waiting for its final contact to settle."""

    peak: int
    ic: float  # fractional absolute index
    baseline_g: float
    running: bool


@dataclass(frozen=True, eq=False)  # no slots: updated with evolve()
class PelvisState:
    rate_hz: float
    has_gyro: bool
    gravity: orientation.GravityState
    raw: Ring
    der: Ring
    smooth: Ring
    cand_next: int
    last_peak: int | None
    last_candidate: int | None
    trough_g: float
    amplitudes: tuple[float, ...]
    pending: tuple[_Stance, ...]
    forward: orientation.ForwardState
    timing: timing.TimingState
    prev_ic: float | None
    prev_side: Side | None
    edge_kernels: list[FloatArray]  # smoothing and derivative for the contact edges
    peak_kernel: list[FloatArray]  # smoothing for the stance humps


def init_pelvis(params: PelvisParams, rate_hz: float, start_index: int = 0,
                has_gyro: bool = True) -> PelvisState:
    """A fresh state (also used after every gap)."""
    return PelvisState(
        rate_hz=rate_hz, has_gyro=has_gyro, gravity=orientation.GravityState(),
        raw=Ring.empty(start_index, _RAW_CH), der=Ring.empty(start_index, 2),
        smooth=Ring.empty(start_index, 1),
        cand_next=start_index, last_peak=None, last_candidate=None, trough_g=math.inf,
        amplitudes=(), pending=(),
        forward=orientation.ForwardState(), timing=timing.TimingState(), prev_ic=None,
        prev_side=None, edge_kernels=list(gaussian_kernels(params.edge_sigma_s, rate_hz)),
        peak_kernel=[gaussian_kernels(params.peak_sigma_s, rate_hz)[0]])


def _extend(ring: Ring, raw: Ring, kernels: list[FloatArray], max_len: int) -> Ring:
    """Append the filtered vertical signal where each kernel's support is available.

    Output sample ``i`` only depends on raw samples ``i - r .. i + r``: each is computed
    once, the same way, whatever the block boundaries.
    """
    r = len(kernels[0]) // 2
    start = max(ring.end, raw.start + r) if ring.data.shape[0] else raw.start + r
    x = raw.get(start - r, raw.end)[:, _AV]
    if x.shape[0] < 2 * r + 1:
        return ring
    new = np.empty((x.shape[0] - 2 * r, len(kernels)))
    for c, k in enumerate(kernels):
        new[:, c] = correlate_valid(x, k)
    return ring.append(new, max_len) if ring.data.shape[0] else Ring(start, new)


def step_pelvis(params: PelvisParams, state: PelvisState,
                block: UniformBlock) -> tuple[PelvisState, list[Step]]:
    """Fold one grid block into the state; return the steps whose FC settled."""
    if block.reset:
        state = init_pelvis(params, block.rate_hz, block.start_index, block.gyr_dps is not None)
    if len(block) == 0:
        return state, []
    rate = state.rate_hz
    acc = block.acc_mps2
    gravity, up = orientation.track_gravity(params.gravity_window_s, params.gravity_bin_s,
                                            rate, state.gravity, acc, block.start_index)
    cols = np.empty((len(block), _RAW_CH))
    a_up = cols[:, _AV]
    a_up[:] = acc[:, 0] * up[:, 0] + acc[:, 1] * up[:, 1] + acc[:, 2] * up[:, 2]
    cols[:, _HX:_HX + 3] = acc - a_up[:, None] * up
    a_up /= GRAVITY_MPS2
    if block.gyr_dps is not None:
        gyr = block.gyr_dps
        cols[:, _GX:_GX + 3] = gyr
        cols[:, _WUP] = gyr[:, 0] * up[:, 0] + gyr[:, 1] * up[:, 1] + gyr[:, 2] * up[:, 2]
    else:
        cols[:, _GX:_WUP + 1] = 0.0
    cols[:, _UP:_UP + 3] = up
    # the rings hold the history plus this whole block (detection runs over all of it);
    # the next block's append trims them back
    hold = int(params.history_s * rate) + len(block)
    raw = state.raw.append(cols, hold)
    der = _extend(state.der, raw, state.edge_kernels, hold)
    smooth = _extend(state.smooth, raw, state.peak_kernel, hold)
    return _detect(params, evolve(state, gravity=gravity, raw=raw, der=der, smooth=smooth))


def finish_pelvis(params: PelvisParams, state: PelvisState) -> tuple[PelvisState, list[Step]]:
    """End of stream: settle what can be settled; stances without FC get none."""
    if not state.pending:
        return state, []
    fcs = _final_contacts(params, state)
    stances = state.pending
    state = evolve(state, pending=())
    return _emit(params, state, stances, [f if isinstance(f, float) else None for f in fcs])


def emission_horizon(params: PelvisParams, state: PelvisState) -> int:
    """The smallest grid end (absolute index one past the last sample) at which
    :func:`step_pelvis` could emit another step.

    A step comes out when the final contact of a pending stance settles. With none
    pending, the next one needs a new hump ``c``: at or after the search position, at
    least ``min_step_s`` after the last accepted hump, not ruled out by the smoothed
    signal already known (:func:`_first_possible_hump`), confirmed ``peak_confirm_s``
    and the smoothing radius later, and its FC decided at least three samples plus the
    edge filter's radius after it. Samples before that bound cannot produce a step, so
    the engine may fold them in later together (:func:`sensord.gait.engine.step`).
    """
    if state.pending:
        return state.raw.end
    rate = state.rate_hz
    first = state.cand_next
    if state.last_peak is not None:
        first = _first_possible_hump(params, state, max(
            first, state.last_peak + round(params.min_step_s * rate)))
    confirm = max(1, round(params.peak_confirm_s * rate)) + 1 + len(state.peak_kernel[0]) // 2
    settle = 3 + len(state.edge_kernels[0]) // 2
    return first + max(confirm, settle)


def _first_possible_hump(params: PelvisParams, state: PelvisState, first: int) -> int:
    """The earliest index from ``first`` on where :func:`_accept` could still accept a
    hump, given the smoothed signal so far: in the smoothed part a hump must rise above
    its left neighbour, top every smoothed sample of its window and clear the minimum
    rise above the trough before it; none of that changes with more data. Past the
    smoothed part, anything is possible."""
    sm = state.smooth
    sp, s0 = sm.data[:, 0], sm.start
    wl = max(1, round(params.peak_window_s * state.rate_hz))
    lo = max(first, s0 + wl)  # (_humps never looks before s0 + wl)
    if lo >= sm.end or state.last_candidate is None or state.last_peak is None:
        return lo
    need = params.min_amplitude_g
    if sm.end - state.last_peak <= round(params.max_step_s * state.rate_hz):
        need = _min_rise_g(params, list(state.amplitudes))
    a = min(max(state.last_candidate, s0), lo)
    trough = min(state.trough_g, float(sp[a - s0: lo - s0].min())) if lo > a else state.trough_g
    # (a few samples: plain floats are cheaper than numpy calls here)
    vals = sp[lo - wl - s0:].tolist()  # from the first candidate's window start on
    for j in range(len(vals) - wl):
        v = vals[wl + j]  # candidate lo + j; its known window is vals[j:]
        trough = min(trough, v)
        if v > vals[wl + j - 1] and v - trough >= need and v >= max(vals[j:]):
            return lo + j
    return sm.end


def _detect(params: PelvisParams, state: PelvisState) -> tuple[PelvisState, list[Step]]:
    """Find new humps, accept stances, settle final contacts, emit steps (in order)."""
    candidates, search_next = _humps(params, state.rate_hz, state.smooth, state.cand_next)
    if candidates.size:
        prev_peak = state.last_peak
        state, accepted = _accept(params, state, candidates, search_next)
        if accepted:
            stances = _initial_contacts(params, state, np.array(accepted), prev_peak)
            state = evolve(state, pending=(*state.pending, *stances))
    elif search_next != state.cand_next:
        state = evolve(state, cand_next=search_next)
    return _settle(params, state)


def _humps(params: PelvisParams, rate: float, sm: Ring,
           cand_next: int) -> tuple[npt.NDArray[np.intp], int]:
    """Hump candidates from ``cand_next`` on, and where the next search starts.

    A hump is the maximum of ``[c - wl, c + wr]`` (and higher than its left neighbour):
    the short right side confirms it soon after mid-stance.
    """
    wl = max(1, round(params.peak_window_s * rate))
    wr = max(1, round(params.peak_confirm_s * rate))
    lo = max(cand_next, sm.start + wl)
    hi = sm.end - wr
    if hi <= lo:
        return np.empty(0, dtype=np.intp), cand_next
    seg = sm.data[lo - wl - sm.start: hi + wr - sm.start, 0]
    mid = seg[wl: wl + (hi - lo)]
    local = np.flatnonzero((mid > seg[wl - 1: wl - 1 + (hi - lo)])
                           & (mid >= seg[wl + 1: wl + 1 + (hi - lo)]))
    if local.size:
        window = seg[local[:, None] + np.arange(wl + wr + 1)[None, :]]
        local = local[mid[local] >= window.max(axis=1)]
    return local + lo, hi


def _accept(params: PelvisParams, state: PelvisState, candidates: npt.NDArray[np.intp],
            cand_next: int) -> tuple[PelvisState, list[int]]:
    """Sequential hump acceptance (plain floats: a few microseconds per candidate).

    ``cand_next`` is where the next search starts unless a candidate has to wait for
    more data, in which case the search resumes at that candidate.
    """
    rate = state.rate_hz
    sp = state.smooth.data[:, 0]
    d0 = state.smooth.start
    min_step = round(params.min_step_s * rate)
    max_step = round(params.max_step_s * rate)
    # minimum of the smoothed signal between consecutive candidates
    # (running_min covers [last peak, last candidate]; continue from the last candidate)
    first = state.last_candidate if state.last_candidate is not None else int(candidates[0])
    bounds = np.concatenate([[max(first, d0)], candidates]) - d0
    seg_min = np.minimum.reduceat(sp, bounds)[:-1] if bounds.size > 1 else np.empty(0)
    seg_min = np.minimum(seg_min, sp[candidates - d0])
    peaks_g = sp[candidates - d0].tolist()
    s_end = d0 + sp.shape[0]
    wl = max(1, round(params.peak_window_s * rate))
    last_peak = state.last_peak
    last_candidate = state.last_candidate
    running_min = state.trough_g
    amps = list(state.amplitudes)
    accepted: list[int] = []
    resume = cand_next
    for c, m, peak_g in zip(candidates.tolist(), seg_min.tolist(), peaks_g, strict=True):
        if last_peak is None:
            trough = float(np.min(sp[max(c - max_step, d0) - d0: c - d0 + 1]))
        else:
            trough = min(running_min, m)
        # walking (no flight before the hump) has bumps near the main one: there a hump
        # must also top the whole window after it, so wait for that data
        walking = trough >= params.flight_level_g
        if walking and c + wl >= s_end:
            resume = c
            break
        last_candidate = c
        if last_peak is not None:
            running_min = trough
            if c - last_peak > max_step:
                amps = []
            if c - last_peak < min_step:
                continue
        if walking and float(np.max(sp[c + 1 - d0: c + wl + 1 - d0])) > peak_g:
            continue
        amp = peak_g - trough
        if amp < _min_rise_g(params, amps):
            continue
        accepted.append(c)
        amps = [*amps, amp][-params.amplitude_memory:]
        last_peak = c
        running_min = math.inf
    return evolve(state, last_peak=last_peak, last_candidate=last_candidate,
                   trough_g=running_min, amplitudes=tuple(amps), cand_next=resume), accepted


def _min_rise_g(params: PelvisParams, amplitudes: list[float]) -> float:
    """The rise above the trough a hump needs, given the recent accepted ones."""
    if not amplitudes:
        return params.min_amplitude_g
    return max(params.min_amplitude_g, params.rel_amplitude * small_median(amplitudes))


def _windows(start: npt.NDArray[np.intp], length: int, lo: int,
             hi: int) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.bool_]]:
    """Index windows ``start + [0, length)`` clipped to ``[lo, hi)``, and their validity."""
    idx = start[:, None] + np.arange(length)[None, :]
    valid = (idx >= lo) & (idx < hi)
    return clip(idx, lo, hi - 1), valid


def _initial_contacts(params: PelvisParams, state: PelvisState, peaks: npt.NDArray[np.intp],
                      prev_peak: int | None) -> list[_Stance]:
    """Initial contact, flight baseline and gait mode of newly accepted humps (vectorised)."""
    rate = state.rate_hz
    der = state.der
    d0, d1_end = der.start, der.end
    se, d1 = der.data[:, _SE], der.data[:, _D1]
    n = peaks.size
    w_rise = round(params.rise_window_s * rate)
    prev = np.empty(n, dtype=np.int64)
    prev[1:] = peaks[:-1]
    prev[0] = prev_peak if prev_peak is not None else np.iinfo(np.int64).min // 2
    lo = np.maximum(np.maximum(peaks - w_rise, prev + round(0.5 * params.min_step_s * rate)),
                    d0 + 1)
    idx, valid = _windows(peaks - w_rise, w_rise + 1, d0, d1_end)
    valid &= idx >= lo[:, None]
    slope = np.where(valid, d1[idx - d0], -np.inf)
    i = slope.argmax(axis=1)
    rows = np.arange(n)
    top = slope[rows, i]
    # a separate jolt (sharp rise, then a fall as steep) before the steepest rise starts
    # the contact instead: a double jolt, as on a stopping step
    frac = params.first_rise_fraction
    before = valid & (np.arange(w_rise + 1)[None, :] < i[:, None])
    dip = np.where(before, slope, np.inf).min(axis=1) < -frac * top
    for r in np.flatnonzero(dip).tolist():
        row = slope[r]
        lm = np.zeros(row.size, dtype=bool)
        lm[1:-1] = (row[1:-1] >= row[:-2]) & (row[1:-1] >= row[2:])
        for j in np.flatnonzero(lm[: i[r]] & (row[: i[r]] >= frac * top[r])).tolist():
            if float(np.min(row[j: i[r]])) < -frac * top[r]:
                i[r] = j
                break
    k_rise = idx[rows, i]
    b_idx, _ = _windows(k_rise - round(0.15 * rate), round(0.15 * rate) + 1, d0, d1_end)
    baseline = se[b_idx - d0].min(axis=1)
    w_on = round(params.walk_onset_window_s * rate)
    l_idx, _ = _windows(k_rise - w_on, w_on + 1, d0, d1_end)
    local = se[l_idx - d0].min(axis=1)
    s_rise = se[k_rise - d0]
    g = d1[k_rise - d0] / rate  # g per sample
    running = baseline < params.flight_level_g
    inner = (k_rise > lo) & (k_rise < peaks) & (k_rise - 1 >= d0) & (k_rise + 1 < d1_end)
    km = np.maximum(k_rise - 1 - d0, 0)
    kp = np.minimum(k_rise + 1 - d0, se.size - 1)
    ym, y0, yp = d1[km], d1[k_rise - d0], d1[kp]
    den = ym - 2.0 * y0 + yp
    with np.errstate(divide="ignore", invalid="ignore"):
        off = np.where(inner & (den != 0.0),
                       clip(0.5 * (ym - yp) / den, -0.5, 0.5), 0.0)
        back_run = np.minimum((s_rise - baseline) / g, 0.1 * rate)
        back_walk = np.where(g > 0, (s_rise - local) / g, 0.0)
    ic = np.where(running & (g > 0), k_rise - back_run, k_rise + off - back_walk)
    return list(map(_Stance, peaks.tolist(), ic.tolist(), baseline.tolist(),
                    (running & (g > 0)).tolist()))


def _settle(params: PelvisParams, state: PelvisState) -> tuple[PelvisState, list[Step]]:
    """Emit, in order, the pending stances whose final contact can now be decided."""
    if not state.pending:
        return state, []
    fcs = _final_contacts(params, state)
    n = 0
    while n < len(fcs) and fcs[n] is not False:
        n += 1
    if n == 0:
        return state, []
    decided = state.pending[:n]
    state = evolve(state, pending=state.pending[n:])
    return _emit(params, state, decided, [f if isinstance(f, float) else None
                                          for f in fcs[:n]])


def _final_contacts(params: PelvisParams, state: PelvisState) -> list[float | bool | None]:
    """Per pending stance: its FC (fractional index), None (none found) or False (wait)."""
    rate = state.rate_hz
    der, sm = state.der, state.smooth
    d0, end = der.start, der.end
    se, d1 = der.data[:, _SE], der.data[:, _D1]
    sp, s0, s_end = sm.data[:, 0], sm.start, sm.end
    pending = state.pending
    t_len = round(params.max_step_s * rate)
    out: list[float | bool | None] = [False] * len(pending)
    run = [k for k, st in enumerate(pending) if st.running]
    if run:
        peaks = np.array([pending[k].peak for k in run])
        base = np.array([pending[k].baseline_g for k in run])
        # most stances end well within the first fraction of a second: search that first
        first_len = min(t_len, round(_FC_FIRST_S * rate))
        fc = _running_fc(se, d1, d0, end, peaks, base, first_len, rate)
        again = np.flatnonzero(np.isnan(fc))
        if again.size and t_len > first_len:
            fc[again] = _running_fc(se, d1, d0, end, peaks[again], base[again], t_len, rate)
        timed_out = np.isnan(fc) & (end >= peaks + t_len)
        for k, f, late in zip(run, fc.tolist(), timed_out.tolist(), strict=True):
            if f == f:  # found (inf: no falling edge, no FC)
                out[k] = f if f != math.inf else None
            elif late:
                out[k] = None
    w = round(params.walk_fc_window_s * rate)
    for k, st in enumerate(pending):
        if st.running:
            continue
        c = st.peak
        nxt = pending[k + 1].peak if k + 1 < len(pending) else None
        if nxt is None or nxt > c + t_len:
            if s_end >= c + t_len:
                out[k] = None
            continue
        if s_end < nxt + w + 1:
            continue
        seg1 = sp[nxt - s0: nxt + w + 1 - s0]
        # the first trough after the next hump (the trailing foot unloading), not a
        # deeper one later in the next stance
        troughs = np.flatnonzero((seg1[1:-1] < seg1[:-2]) & (seg1[1:-1] <= seg1[2:])) + 1
        jj = int(troughs[0]) if troughs.size else int(np.argmin(seg1))
        off = (parabolic_offset(seg1[jj - 1], seg1[jj], seg1[jj + 1])
               if 0 < jj < seg1.shape[0] - 1 else 0.0)
        out[k] = float(nxt + jj + off)
    return out


#: First search window for a running FC after the hump, s (then up to ``max_step_s``).
_FC_FIRST_S = 0.5


def _running_fc(se: FloatArray, d1: FloatArray, d0: int, end: int, peaks: npt.NDArray[np.intp],
                base: FloatArray, length: int, rate: float) -> FloatArray:
    """Running FC (fractional index) within ``length`` samples after each hump: the
    steepest fall before the signal drops below a quarter of the hump above the flight
    baseline, its tangent extrapolated forward to that baseline. NaN: not within the
    window or not yet in the data; inf: no falling edge (no FC)."""
    idx, valid = _windows(peaks, length, d0, end)
    seg = se[idx - d0]
    level = base + 0.25 * (se[peaks - d0] - base)
    below = valid & (seg < level[:, None])
    e = below.argmax(axis=1) + 2
    found = below.any(axis=1) & (peaks + e < end) & (e < length)
    slope = np.where(np.arange(length)[None, :] <= e[:, None], d1[idx - d0], np.inf)
    j = slope.argmin(axis=1)
    rows = np.arange(peaks.size)
    fall = -slope[rows, j] / rate
    with np.errstate(divide="ignore", invalid="ignore"):
        fwd = np.minimum((seg[rows, j] - base) / fall, 0.1 * rate)
    fc = np.where(fall > 0, peaks + j + fwd, np.inf)
    return np.where(found, fc, np.nan)


def _emit(params: PelvisParams, state: PelvisState, stances: tuple[_Stance, ...],
          fcs: list[float | None]) -> tuple[PelvisState, list[Step]]:
    """Per-step metrics of settled stances, vectorised over the batch."""
    rate = state.rate_hz
    raw = state.raw
    r0, r_end = raw.start, raw.end
    data = raw.data
    n = len(stances)
    ic = np.array([s.ic for s in stances])
    fc = np.array([np.nan if f is None else f for f in fcs])
    gct_s = (fc - ic) / rate
    fc = np.where((gct_s >= 0.05) & (gct_s <= 1.5), fc, np.nan)
    ic_i = np.floor(ic).astype(np.int64)
    has_fc = np.isfinite(fc)
    stance_end = np.where(has_fc, np.ceil(np.where(has_fc, fc, 0.0)).astype(np.int64),
                          ic_i + round(0.2 * rate))

    # side from the yaw rate around IC: a clear yaw decides, a weak one alternates from
    # the last decided step (or the previous batch's last side)
    side = np.full(n, timing.NO_SIDE, dtype=np.int8)
    if state.has_gyro:
        w0, w1 = round(params.side_window_s[0] * rate), round(params.side_window_s[1] * rate)
        idx, valid = _windows(ic_i + w0, w1 - w0 + 1, r0, r_end)
        yaw = np.where(valid, data[idx - r0, _WUP], 0.0)
        score = yaw.sum(axis=1) / np.maximum(valid.sum(axis=1), 1)
        clear = np.abs(score) > 1.0
        prev = _SIDE_CODE[state.prev_side]
        clear[0] |= prev == timing.NO_SIDE
        anchor = np.maximum.accumulate(np.where(clear, np.arange(n), -1))
        own = np.where(score < 0, timing.LEFT, timing.RIGHT)
        base = np.where(anchor >= 0, own[np.maximum(anchor, 0)], prev)
        flip = (np.arange(n) - anchor) % 2 == 1
        side = np.where(flip, timing.LEFT + timing.RIGHT - base, base).astype(np.int8)

    # the step that just completed, [previous IC, this IC]: VO and the forward axis
    prev_ic = np.empty(n)
    prev_ic[0] = np.nan if state.prev_ic is None else state.prev_ic
    prev_ic[1:] = ic[:-1]
    ok_prev = np.isfinite(prev_ic) & (ic - prev_ic > 0) & (ic - prev_ic <= params.max_step_s * rate)
    p0 = np.where(ok_prev, np.floor(np.where(ok_prev, prev_ic, 0.0)), ic_i).astype(np.int64)
    p0 = np.maximum(p0, r0)
    m = ic_i - p0 + 1
    ok_prev &= m >= 8
    vo = np.full(n, np.nan)
    patterns = np.zeros((0, orientation.PATTERN_POINTS, 3))
    if ok_prev.any():
        p0_ok, m_ok = p0[ok_prev], m[ok_prev]
        vo[ok_prev] = _vertical_oscillation_cm(data[:, _AV], r0, p0_ok, m_ok, rate)
        # the horizontal acceleration of each step resampled to a fixed number of points
        x = _PATTERN_AT[None, :] * (m_ok[:, None] - 1.0)
        lo_i = np.floor(x).astype(np.int64)
        hi_i = np.minimum(lo_i + 1, m_ok[:, None] - 1)
        frac = (x - lo_i)[:, :, None]
        base = p0_ok[:, None] - r0
        h = data[:, _HX:_HX + 3]
        patterns = h[base + lo_i] * (1.0 - frac) + h[base + hi_i] * frac
    forward, net, brk, count = orientation.update_forward(state.forward, patterns)
    # each stance sees the moments after the last step folded at or before it (index 0:
    # the moments the batch started with)
    net0, brk0, count0 = orientation.moments(state.forward)
    sel = ok_prev.cumsum()
    c_net = np.concatenate([net0[None], net])[sel]
    brake = np.concatenate([brk0[None], brk])[sel]
    known = np.concatenate([[count0], count])[sel] >= orientation.MIN_FORWARD_STEPS
    up = data[clip(ic_i, r0, r_end - 1) - r0, _UP:_UP + 3]
    f_axis, f_ok = orientation.forward_axes(c_net, brake, up)
    f_ok &= known

    # stance windows [IC, FC]: impact, braking, pelvic drop
    length = stance_end - ic_i + 1
    win = Windows.of(clip(ic_i, r0, r_end) - r0, clip(stance_end + 1, r0, r_end) - r0)
    seg = data[win.index]
    impact = win.reduce(np.maximum, seg[:, _AV], np.nan)
    f_each = win.spread(f_axis)
    a_fwd = np.einsum("lc,lc->l", seg[:, _HX:_HX + 3], f_each) / GRAVITY_MPS2
    first_half = win.position() < win.spread(np.maximum(2, length // 2))
    braking = -win.reduce(np.minimum, np.where(first_half, a_fwd, np.inf), -np.inf)
    # pelvic obliquity from IC: the forward-axis rate integrated over the stance
    angle = win.cumsum(np.einsum("lc,lc->l", seg[:, _GX:_GX + 3], f_each))
    angle -= win.spread(win.first(angle))
    sign = np.where(side == timing.LEFT, 1.0, -1.0)
    drop = win.reduce(np.maximum, win.spread(sign) * angle, -np.inf) / rate
    drop_ok = f_ok & has_fc & state.has_gyro & (side != timing.NO_SIDE)

    t_ic, t_fc = ic / rate, fc / rate
    tstate, tm = timing.fold(params.timing, state.timing, t_ic, t_fc, side)
    columns = (t_fc, (t_fc - t_ic) * 1000.0, tm.cadence_spm, np.where(drop_ok, drop, np.nan),
               tm.step_time_s, tm.stride_time_s, tm.gct_balance_pct, vo,
               impact,
               np.where(f_ok & (length >= 2), braking, np.nan), tm.flight_ms)
    names = [_SIDE_NAME[c] for c in side.tolist()]
    steps = [Step(t_ic=ti, t_fc=v[0], gct_ms=v[1], cadence_spm=v[2], side=sd,
                  pelvic_drop_deg=v[3], placement="pelvis", step_index=k, step_time_s=v[4],
                  stride_time_s=v[5], gct_balance_pct=v[6], vertical_oscillation_cm=v[7],
                  impact_g=v[8], braking_g=v[9], flight_ms=v[10])
             for ti, v, sd, k in zip(t_ic.tolist(), _rows_nan_as_none(columns), names,
                                     tm.step_index.tolist(), strict=True)]
    state = evolve(state, timing=tstate, prev_ic=float(ic[-1]), prev_side=names[-1],
                    forward=forward)
    return state, steps


#: Where a step's horizontal acceleration is sampled for the forward axis (0..1 of the step).
_PATTERN_AT = np.linspace(0.0, 1.0, orientation.PATTERN_POINTS)
_SIDE_NAME: tuple[Side | None, ...] = (None, "left", "right")  # by timing side code
_SIDE_CODE: dict[Side | None, int] = {None: timing.NO_SIDE, "left": timing.LEFT,
                                      "right": timing.RIGHT}


def _rows_nan_as_none(columns: tuple[FloatArray, ...]) -> list[list[float | None]]:
    """Rows of equal-length columns as Python floats, NaN (not estimated) as ``None``."""
    table = np.column_stack(columns)
    nan = np.isnan(table)
    if not nan.any():
        return table.tolist()  # type: ignore[no-any-return]
    obj = table.astype(object)
    obj[nan] = None
    return obj.tolist()  # type: ignore[no-any-return]


def _vertical_oscillation_cm(a_v_g: FloatArray, a0: int, start: npt.NDArray[np.int64],
                             count: npt.NDArray[np.int64], rate_hz: float) -> FloatArray:
    """Peak-to-peak vertical displacement over each step (periodic double integration).

    ``a_v_g`` is the vertical specific force in g from absolute index ``a0``; step ``k``
    covers ``count[k]`` samples from absolute index ``start[k]``. Over one step the
    velocity and displacement return to where they started: the mean acceleration and
    the mean velocity are removed, and the displacement detrended end to end.
    """
    win = Windows.of(start - a0, start - a0 + count)
    cnt = np.maximum(count, 1)
    a = a_v_g[win.index]
    a = (a - win.spread(win.reduce(np.add, a, 0.0) / cnt)) * GRAVITY_MPS2
    v = win.cumsum(a) / rate_hz
    v -= win.spread(win.reduce(np.add, v, 0.0) / cnt)
    z = win.cumsum(v) / rate_hz
    first = win.first(z)
    last = z[win.offset + cnt - 1]
    ramp = win.position() / win.spread(np.maximum(cnt - 1, 1))
    z -= win.spread(first) + win.spread(last - first) * ramp
    hi = win.reduce(np.maximum, z, -np.inf)
    lo = win.reduce(np.minimum, z, np.inf)
    return np.asarray((hi - lo) * 100.0, dtype=np.float64)
