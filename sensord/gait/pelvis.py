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
from dataclasses import dataclass, field, replace
from statistics import median

import numpy as np
from scipy.ndimage import maximum_filter1d

from sensord.gait import orientation, timing
from sensord.gait.filters import Ring, correlate_valid, gaussian_kernels, parabolic_offset
from sensord.gait.grid import UniformBlock
from sensord.model import GRAVITY_MPS2, FloatArray, Side, Step

# raw ring channels
_AV, _HX, _GX, _WUP, _UP = 0, 1, 4, 7, 8
_RAW_CH = 11
# derived ring channels
_SP, _SE, _D1 = 0, 1, 2


@dataclass(frozen=True, slots=True)
class PelvisParams:
    """Parameters of the pelvis detector (all in seconds or g; any grid rate).

    Attributes
    ----------
    gravity_tau_s
        Time constant of the gravity average.
    peak_sigma_s
        Gaussian smoothing for finding stance humps.
    edge_sigma_s
        Gaussian smoothing for the contact edges (derivative of Gaussian).
    peak_window_s
        A hump is a maximum within +/- this window.
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

    gravity_tau_s: float = 3.0
    peak_sigma_s: float = 0.04
    edge_sigma_s: float = 0.008
    peak_window_s: float = 0.12
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


@dataclass(frozen=True, slots=True)
class _Stance:
    """An accepted hump waiting for its final contact to settle."""

    peak: int
    ic: float  # fractional absolute index
    baseline_g: float
    running: bool


@dataclass(frozen=True, slots=True, eq=False)
class PelvisState:
    rate_hz: float
    has_gyro: bool
    gravity: orientation.GravityState
    raw: Ring
    der: Ring
    cand_next: int
    last_peak: int | None
    trough_g: float
    amplitudes: tuple[float, ...]
    pending: tuple[_Stance, ...]
    forward: orientation.ForwardState
    timing: timing.TimingState
    prev_ic: float | None
    prev_side: Side | None


def init_pelvis(params: PelvisParams, rate_hz: float, start_index: int = 0,
                has_gyro: bool = True) -> PelvisState:
    """A fresh state (also used after every gap)."""
    return PelvisState(
        rate_hz=rate_hz, has_gyro=has_gyro, gravity=orientation.GravityState(),
        raw=Ring.empty(start_index, _RAW_CH), der=Ring.empty(start_index, 3),
        cand_next=start_index, last_peak=None, trough_g=math.inf, amplitudes=(), pending=(),
        forward=orientation.ForwardState(), timing=timing.TimingState(), prev_ic=None,
        prev_side=None)


@dataclass(frozen=True, slots=True, eq=False)
class _Kernels:
    radius: int
    peak: FloatArray
    edge: FloatArray
    edge_d1: FloatArray


def _kernels(params: PelvisParams, rate_hz: float) -> _Kernels:
    gp, _ = gaussian_kernels(params.peak_sigma_s, rate_hz)
    ge, de = gaussian_kernels(params.edge_sigma_s, rate_hz)
    r = max(len(gp), len(ge)) // 2

    def pad(k: FloatArray) -> FloatArray:
        extra = r - len(k) // 2
        return np.pad(k, extra)

    return _Kernels(r, pad(gp), pad(ge), pad(de))


def step_pelvis(params: PelvisParams, state: PelvisState,
                block: UniformBlock) -> tuple[PelvisState, list[Step]]:
    """Fold one grid block into the state; return the steps whose FC settled."""
    if block.reset:
        state = init_pelvis(params, block.rate_hz, block.start_index, block.gyr_dps is not None)
    if len(block) == 0:
        return state, []
    rate = state.rate_hz
    acc = block.acc_mps2
    gravity, up = orientation.track_gravity(params.gravity_tau_s, rate, state.gravity, acc)
    a_up = np.einsum("ij,ij->i", acc, up)
    h = acc - a_up[:, None] * up
    if block.gyr_dps is not None:
        gyr = block.gyr_dps
        w_up = np.einsum("ij,ij->i", gyr, up)
    else:
        gyr = np.zeros_like(acc)
        w_up = np.zeros(len(block))
    cols = np.column_stack([a_up / GRAVITY_MPS2, h, gyr, w_up, up])
    max_len = int(params.history_s * rate)
    # hold the whole block while detecting; trim to the history afterwards
    raw = state.raw.append(cols, max_len + len(block))

    k = _kernels(params, rate)
    r = k.radius
    der_from = max(state.der.end, raw.start + r)
    x = raw.get(der_from - r, raw.end)[:, _AV]
    der = state.der
    if x.shape[0] >= 2 * r + 1:
        new = np.column_stack([correlate_valid(x, k.peak), correlate_valid(x, k.edge),
                               correlate_valid(x, k.edge_d1)])
        if der.data.shape[0] == 0:
            der = Ring(der_from, new)
        else:
            der = der.append(new, max_len + len(block))
    state, steps = _detect(params, replace(state, gravity=gravity, raw=raw, der=der))
    return replace(state, raw=state.raw.append(np.empty((0, _RAW_CH)), max_len),
                   der=state.der.append(np.empty((0, 3)), max_len)), steps


def finish_pelvis(params: PelvisParams, state: PelvisState) -> tuple[PelvisState, list[Step]]:
    """End of stream: settle what can be settled; stances without FC get none."""
    steps: list[Step] = []
    for stance in state.pending:
        state, st = _emit(params, state, stance, None)
        steps.append(st)
    return replace(state, pending=()), steps


def _detect(params: PelvisParams, state: PelvisState) -> tuple[PelvisState, list[Step]]:
    rate = state.rate_hz
    der = state.der
    wp = max(1, round(params.peak_window_s * rate))
    lo = max(state.cand_next, der.start + wp)
    hi = der.end - wp
    steps: list[Step] = []
    if hi > lo:
        seg = der.get(lo - wp, hi + wp)[:, _SP]
        mf = maximum_filter1d(seg, size=2 * wp + 1, mode="nearest")
        inner = slice(wp, wp + (hi - lo))
        is_peak = (seg[inner] >= mf[inner]) & (seg[inner] > seg[wp - 1: wp - 1 + (hi - lo)])
        candidates = np.flatnonzero(is_peak) + lo
        # troughs between consecutive candidates, for the amplitude test
        for c in candidates.tolist():
            state, new_steps = _consider(params, state, c)
            steps.extend(new_steps)
        state = replace(state, cand_next=hi)
    state, settled = _settle(params, state)
    steps.extend(settled)
    return state, steps


def _consider(params: PelvisParams, state: PelvisState, c: int) -> tuple[PelvisState, list[Step]]:
    """Accept or reject the hump at absolute index ``c``."""
    rate = state.rate_hz
    der = state.der
    min_step = round(params.min_step_s * rate)
    start = c - round(params.max_step_s * rate) if state.last_peak is None else state.last_peak
    trough = float(np.min(der.get(start, c + 1)[:, _SP]))
    peak_g = float(der.get(c, c + 1)[0, _SP])
    amp = peak_g - trough
    if state.last_peak is not None and c - state.last_peak > params.max_step_s * rate:
        state = replace(state, amplitudes=())
    if state.last_peak is not None and c - state.last_peak < min_step:
        return state, []
    need = params.min_amplitude_g
    if state.amplitudes:
        need = max(need, params.rel_amplitude * median(state.amplitudes))
    if amp < need:
        return state, []
    # settle pending walking stances that waited for this next hump
    state, steps = _settle(params, state, next_peak=c)
    ic, baseline, running = _initial_contact(params, state, c)
    amps = (*state.amplitudes, amp)[-params.amplitude_memory:]
    stance = _Stance(c, ic, baseline, running)
    state = replace(state, last_peak=c, amplitudes=amps, pending=(*state.pending, stance))
    state, more = _settle(params, state)
    return state, steps + more


def _initial_contact(params: PelvisParams, state: PelvisState, c: int) -> tuple[float, float, bool]:
    rate = state.rate_hz
    der = state.der
    a = c - round(params.rise_window_s * rate)
    if state.last_peak is not None:
        a = max(a, state.last_peak + round(0.5 * params.min_step_s * rate))
    a = max(a, der.start + 1)
    seg = der.get(a, c + 1)
    # the steepest rise before the hump; but a double jolt (a separate sharp rise and
    # fall before the steepest one, as on a stopping step) starts at the first jolt
    d1s = seg[:, _D1]
    i = int(np.argmax(d1s))
    top = float(d1s[i])
    local_max = np.r_[False, (d1s[1:-1] >= d1s[:-2]) & (d1s[1:-1] >= d1s[2:]), False]
    for j in np.flatnonzero(local_max[:i] & (d1s[:i] >= params.first_rise_fraction * top)):
        if float(np.min(d1s[j:i])) < -params.first_rise_fraction * top:
            i = int(j)
            break
    k_rise = a + i
    pre = der.get(k_rise - round(0.15 * rate), k_rise + 1)[:, _SE]
    baseline = float(np.min(pre))
    d1 = seg[i, _D1] / rate  # g per sample
    running = baseline < params.flight_level_g
    if running and d1 > 0:
        back = (seg[i, _SE] - baseline) / d1
        ic = k_rise - min(back, 0.1 * rate)
    else:
        # no flight: extrapolate the tangent back to the trough just before the rise
        if 0 < i < seg.shape[0] - 1:
            k_rise_f = k_rise + parabolic_offset(seg[i - 1, _D1], seg[i, _D1], seg[i + 1, _D1])
        else:
            k_rise_f = float(k_rise)
        w = round(params.walk_onset_window_s * rate)
        local = float(np.min(der.get(k_rise - w, k_rise + 1)[:, _SE])) if w > 0 else seg[i, _SE]
        ic = k_rise_f - ((seg[i, _SE] - local) / d1 if d1 > 0 else 0.0)
    return float(ic), baseline, running


def _settle(params: PelvisParams, state: PelvisState,
            next_peak: int | None = None) -> tuple[PelvisState, list[Step]]:
    """Emit, in order, the pending stances whose final contact can now be decided."""
    steps: list[Step] = []
    pending = list(state.pending)
    while pending:
        stance = pending[0]
        decided, fc = _final_contact(params, state, stance, next_peak)
        if not decided:
            break
        pending.pop(0)
        state, st = _emit(params, replace(state, pending=tuple(pending)), stance, fc)
        steps.append(st)
    return replace(state, pending=tuple(pending)), steps


def _final_contact(params: PelvisParams, state: PelvisState, stance: _Stance,
                   next_peak: int | None) -> tuple[bool, float | None]:
    rate = state.rate_hz
    der = state.der
    c = stance.peak
    timeout = c + round(params.max_step_s * rate)
    if stance.running:
        peak_g = float(der.get(c, c + 1)[0, _SE]) if der.end > c else math.nan
        level = stance.baseline_g + 0.25 * (peak_g - stance.baseline_g)
        seg = der.get(c, min(der.end, timeout))
        below = np.flatnonzero(seg[:, _SE] < level)
        if below.size == 0:
            return (der.end >= timeout), None
        e = int(below[0]) + 2
        if c + e >= der.end:
            return False, None
        j = int(np.argmin(seg[: e + 1, _D1]))
        d1 = -seg[j, _D1] / rate
        if d1 <= 0:
            return True, None
        fwd = min((seg[j, _SE] - stance.baseline_g) / d1, 0.1 * rate)
        return True, float(c + j + fwd)
    # walking: FC at the trough after the next hump
    nxt = _next_pending_peak(state, stance)
    if nxt is not None:
        next_peak = nxt
    if next_peak is None or next_peak > timeout:
        # a later hump may still come: decide only at the timeout
        return (der.end >= timeout), None
    w = round(params.walk_fc_window_s * rate)
    if der.end < next_peak + w + 1:
        return False, None
    seg = der.get(next_peak, next_peak + w + 1)[:, _SP]
    j = int(np.argmin(seg))
    off = parabolic_offset(seg[j - 1], seg[j], seg[j + 1]) if 0 < j < seg.shape[0] - 1 else 0.0
    return True, float(next_peak + j + off)


def _next_pending_peak(state: PelvisState, stance: _Stance) -> int | None:
    later = [s.peak for s in state.pending if s.peak > stance.peak]
    return min(later) if later else None


def _emit(params: PelvisParams, state: PelvisState, stance: _Stance,
          fc: float | None) -> tuple[PelvisState, Step]:
    rate = state.rate_hz
    raw = state.raw
    ic = stance.ic
    ic_i = math.floor(ic)
    t_ic = ic / rate
    t_fc = None if fc is None else fc / rate
    if t_fc is not None and not 0.05 <= t_fc - t_ic <= 1.5:
        t_fc, fc = None, None
    fc_i = None if fc is None else math.ceil(fc)

    # side from the yaw rate around IC
    side: Side | None = None
    if state.has_gyro:
        w0, w1 = params.side_window_s
        yaw = raw.get(ic_i + round(w0 * rate), ic_i + round(w1 * rate) + 1)[:, _WUP]
        score = float(np.mean(yaw)) if yaw.size else 0.0
        if abs(score) > 1.0 or state.prev_side is None:
            side = "left" if score < 0 else "right"
        else:
            side = "right" if state.prev_side == "left" else "left"

    # the step that just completed: [previous IC, this IC)
    forward = state.forward
    vo_cm = None
    if state.prev_ic is not None and 0 < ic - state.prev_ic <= params.max_step_s * rate:
        p0 = math.floor(state.prev_ic)
        seg = raw.get(p0, ic_i + 1)
        if seg.shape[0] >= 8:
            forward = orientation.update_forward(forward, orientation.step_pattern(
                seg[:, _HX:_HX + 3]))
            vo_cm = _vertical_oscillation_cm(seg[:, _AV], rate)
    up_at_ic = raw.get(ic_i, ic_i + 1)
    f_axis = (orientation.forward_axis(forward, up_at_ic[0, _UP:_UP + 3])
              if up_at_ic.shape[0] else None)

    stance_end = fc_i if fc_i is not None else ic_i + round(0.2 * rate)
    stance_seg = raw.get(ic_i, stance_end + 1)
    impact = float(np.max(stance_seg[:, _AV])) if stance_seg.shape[0] else None

    drop = None
    braking = None
    if f_axis is not None and stance_seg.shape[0] >= 2:
        a_fwd = stance_seg[:, _HX:_HX + 3] @ f_axis / GRAVITY_MPS2
        half = max(2, stance_seg.shape[0] // 2)
        braking = float(-np.min(a_fwd[:half]))
        if state.has_gyro and side is not None and fc_i is not None:
            w_fwd = stance_seg[:, _GX:_GX + 3] @ f_axis
            angle = np.cumsum(w_fwd) / rate
            angle -= angle[0]
            sign = 1.0 if side == "left" else -1.0
            drop = float(np.max(sign * angle))

    tstate, tm = timing.update(params.timing, state.timing, t_ic, t_fc, side)
    st = Step(
        t_ic=t_ic, t_fc=t_fc, gct_ms=None if t_fc is None else (t_fc - t_ic) * 1000.0,
        cadence_spm=tm.cadence_spm, side=side, pelvic_drop_deg=drop, placement="pelvis",
        step_index=tm.step_index, step_time_s=tm.step_time_s, stride_time_s=tm.stride_time_s,
        gct_balance_pct=tm.gct_balance_pct, vertical_oscillation_cm=vo_cm, impact_g=impact,
        braking_g=braking, flight_ms=tm.flight_ms)
    state = replace(state, timing=tstate, prev_ic=ic, prev_side=side, forward=forward)
    return state, st


def _vertical_oscillation_cm(a_v_g: FloatArray, rate_hz: float) -> float | None:
    """Peak-to-peak vertical displacement over one step (periodic double integration)."""
    a = (a_v_g - np.mean(a_v_g)) * GRAVITY_MPS2
    v = np.cumsum(a) / rate_hz
    v -= np.mean(v)
    z = np.cumsum(v) / rate_hz
    n = z.shape[0]
    z -= np.linspace(z[0], z[-1], n)
    return float((np.max(z) - np.min(z)) * 100.0)
