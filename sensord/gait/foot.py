"""Foot placement: ground contacts of one shoe-mounted IMU, streaming.

The sensor may be taped to the shoe at any rotation. Everything the detector needs is
found from the motion itself:

- **Pitch axis** (mediolateral): the dominant axis of the angular velocity, i.e. the
  principal eigenvector of an exponentially weighted gyroscope covariance, updated at
  absolute grid positions every ``axis_update_s``. A foot rotates mostly in the
  sagittal plane in walking and running alike.
- **Its sign** (positive pitch rate ``p`` = toes up, the swing direction): the foot
  travels *forward*. Between two consecutive stationary instants (minima of the
  angular-rate magnitude: zero velocity, Skog et al. 2010) the specific force is
  rotated into the first stance frame with the pitch angle integrated about the axis,
  and its horizontal component along ``up x axis`` is integrated twice with a linear
  zero-velocity drift correction; the sign of that displacement (a stride length)
  votes for the polarity. Votes accumulate; contacts are reported once the vote is
  clear, and the ring is then rescanned so the first strides count too.
- **Vertical**: the specific force at mid-stance (gravity), for ``braking_g``.

With a gyroscope (Rampp et al. 2015; Falbriard et al. 2018; Salarian et al. 2004):

- **Initial contact (IC)** at the end of the swing lobe: where the foot stops rotating
  toes up (``p`` crosses zero downwards, the heel-strike rule of Rampp et al. 2015), or
  the onset of the touch-down impact transient (first jerk sample above half the peak
  jerk) where that comes first (forefoot strike: the heel drop keeps ``p > 0`` after
  touch-down) or where the zero crossing happened in the air well before it. When the
  recent duty factor (contact / stride time) is below 0.5, the gait is running
  (Alexander 1984) and the impact onset is used: runners land with a sharp transient.
  Before two contacts have given a duty factor, the toe-off decides: its own stride's
  duty factor (toe-off to toe-off, contact from the impact onset), so that a short
  trial is right from its first contact.
  A mid-swing knock (jerk while the foot still swings fast) is not a touch-down, and an
  "impact" that does not stand out of the swing's own jerk is ignored.
- **Toe-off (FC)**: the push-off is a toes-down rotation beyond a fraction of the
  recent swing peak, and the last one before the swing lobe: the heel-strike rotation
  (foot slap) is toes-down too, and in a short contact no flat-foot pause may separate
  the two. Toe-off is the deepest rate of that last lobe (Falbriard et al. 2018:
  minimum of the pitch angular velocity), confirmed once the swing lobe begins, a few
  tens of milliseconds after toe-off. The contact is reported then.

Without a gyroscope a stance is anchored on a *still* interval (foot flat on the
ground: ``|a|`` within ``still_tol_g`` of 1 g for ``still_window_s``, the
acceleration-magnitude test of Skog et al. 2010). IC is the onset of the impact
transient before it; FC the unloading at toe-off: the first fall of ``|a|`` steeper than
a fraction of the recent toe-off falls (or the steepest fall of the push-off window).

Per contact: ``gct_ms``, ``stride_time_s`` and ``cadence_spm`` (two steps per stride,
median of the recent strides, :mod:`sensord.gait.timing`), ``impact_g`` (peak ``|a|``,
gravity included, over the first ``impact_window_s`` or half of the stance) and, with a
gyroscope, ``braking_g`` (peak deceleration along ``up x axis`` over the same window;
the foot still rotates at heel strike, so this is approximate).

Chunk invariance: every per-sample quantity is a function of a fixed window of samples
at fixed absolute grid positions (finite differences; axis updates at absolute grid
indices), and the sequential event logic (a few events per stride, vectorised searches
in between) only decides once its whole look-ahead is present. The state is a bounded
ring of the last ``history_s`` seconds plus a few scalars.

References
----------
Rampp A. et al. (2015) Inertial sensor-based stride parameter calculation from gait
sequences in geriatric patients. IEEE Trans Biomed Eng 62(4):1089-1097.
Skog I. et al. (2010) Zero-velocity detection: an algorithm evaluation. IEEE Trans
Biomed Eng 57(11):2657-2666.
Falbriard M. et al. (2018) Accurate estimation of running temporal parameters using
foot-worn inertial sensors. Front Physiol 9:610.
Salarian A. et al. (2004) Gait assessment in Parkinson's disease: toward an ambulatory
system for long-term monitoring. IEEE Trans Biomed Eng 51(8):1434-1443.
Alexander R. McN. (1984) Walking and running. Am Sci 72:348-354.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy.ndimage import minimum_filter1d, uniform_filter1d

from sensord.gait import timing
from sensord.gait.filters import Ring
from sensord.gait.grid import UniformBlock
from sensord.model import GRAVITY_MPS2, FloatArray, Side, Step
from sensord.state import evolve

# raw ring channels: acc xyz (m/s^2), gyr xyz (deg/s; zeros without gyroscope)
_RAW_CH = 6
# signal ring channels: pitch rate (deg/s), jerk magnitude (m/s^3), d|a|/dt (m/s^3),
# |a| (m/s^2)
_P, _J, _DN, _AN = 0, 1, 2, 3
_SIG_CH = 4

_UNKNOWN, _STANCE, _SWING = 0, 1, 2

_FOOT_TIMING = timing.TimingParams(steps_per_contact=2)


@dataclass(frozen=True, slots=True)
class FootParams:
    """Parameters of the foot detector: seconds, deg/s, g; valid at any grid rate.

    Attributes
    ----------
    sensor_side
        The shoe the sensor is on; copied to every :class:`~sensord.model.Step`.
    history_s
        Seconds of signal kept in the ring buffers (longest stance + look-ahead, and
        the window of the axis-polarity vote).
    axis_update_s
        Period of the pitch-axis update (at absolute grid positions).
    axis_memory_s
        Time constant of the exponentially weighted gyroscope covariance.
    min_axis_rate_dps
        RMS angular rate below which the covariance is not trusted (standing still).
    min_axis_share
        Share of the rotation energy the dominant axis must carry to be adopted.
    min_polarity_m
        Accumulated forward displacement vote (m) needed before contacts are reported.
    confident_polarity_m
        Above this accumulated vote the (costly) polarity vote is skipped.
    polarity_memory_s
        Time constant of the decay of the accumulated vote; once it decays below
        ``confident_polarity_m`` the vote runs again.
    quiet_smooth_s, quiet_separation_s, quiet_frac
        Stationary-instant search for the polarity vote: moving average of the rate
        magnitude, minimum separation of instants, and the largest rate magnitude (as a
        fraction of its 95th percentile) an instant may have.
    min_stride_s, max_stride_s
        Plausible time between two stationary instants of the same foot.
    swing_frac, min_swing_dps
        Swing onset: the pitch rate must pass ``max(min_swing_dps, swing_frac *``
        recent swing peak``)``.
    impact_ratio
        An impact transient must reach this multiple of the mean jerk of the swing
        before it; otherwise the end of the swing lobe alone gives the contact.
    push_frac
        Push-off: a toes-down lobe whose rate exceeds this fraction of the recent
        swing peak (and the swing threshold). The toe-off is the deepest rate of the
        last such lobe before the swing, confirmed once the swing lobe begins.
    peak_memory
        Weight of a new swing (or impact) peak in its running average (0..1].
    min_gct_s, max_gct_s
        Plausible contact durations; longer contacts (standing) are not reported.
    min_swing_s, max_swing_s
        Plausible swing durations; a longer swing loses track (phase unknown).
    impact_window_s
        How far after the end of the swing lobe the impact transient is searched.
    impact_frac
        Impact onset: first sample of the jerk peak above this fraction of it.
    max_ic_lead_s
        Walking: the end of the swing lobe may precede the impact onset by at most this
        much to be taken as the initial contact.
    run_duty_factor
        Below this duty factor (contact / stride time; walking > 0.5 > running,
        Alexander 1984) the gait is running and the initial contact is the impact onset:
        a runner lands with a sharp transient, and the foot may stop rotating toes up
        well before touch-down.
    still_window_s, still_tol_g
        Accelerometer only: the foot is still (mid-stance) where ``|a|`` stays within
        ``still_tol_g`` of 1 g for ``still_window_s``.
    acc_impact_search_s
        Accelerometer only: how far before the still interval the impact is searched.
    acc_tc_frac
        Accelerometer only: the toe-off is the first fall of ``|a|`` faster than this
        fraction of the recent toe-off falls (refined to the steepest within
        ``acc_tc_window_s``); the first toe-off after a reset, or a stance without such
        a fall, takes the steepest fall of the whole push-off window.
    acc_push_s
        Accelerometer only: longest push-off (end of stillness to toe-off).
    acc_tc_window_s
        Accelerometer only: the toe-off is the steepest fall of ``|a|`` within this
        window after the fall first passes its threshold.
    heel_drop_s
        Running: the impact is searched from this long before the end of the swing
        lobe (a forefoot strike's heel drop keeps the foot rotating toes up after
        touch-down).
    timing
        Cadence / stride bookkeeping (two steps per contact of one foot).
    """

    sensor_side: Side | None = None
    history_s: float = 5.0
    axis_update_s: float = 2.0
    axis_memory_s: float = 20.0
    min_axis_rate_dps: float = 30.0
    min_axis_share: float = 0.5
    min_polarity_m: float = 0.3
    confident_polarity_m: float = 5.0
    polarity_memory_s: float = 300.0
    quiet_smooth_s: float = 0.05
    quiet_separation_s: float = 0.25
    quiet_frac: float = 0.2
    min_stride_s: float = 0.3
    max_stride_s: float = 2.5
    swing_frac: float = 0.3
    min_swing_dps: float = 100.0
    push_frac: float = 0.5
    impact_ratio: float = 3.0
    peak_memory: float = 0.2
    min_gct_s: float = 0.08
    max_gct_s: float = 1.5
    min_swing_s: float = 0.1
    max_swing_s: float = 1.5
    impact_window_s: float = 0.08
    impact_frac: float = 0.5
    max_ic_lead_s: float = 0.06
    run_duty_factor: float = 0.5
    heel_drop_s: float = 0.1
    still_window_s: float = 0.03
    still_tol_g: float = 0.1
    acc_impact_search_s: float = 0.3
    acc_tc_frac: float = 0.7
    acc_push_s: float = 0.4
    acc_tc_window_s: float = 0.03
    timing: timing.TimingParams = _FOOT_TIMING


@dataclass(frozen=True, eq=False)  # no slots: updated with evolve()
class FootState:
    """Everything the detector carries between blocks (bounded).

    Attributes
    ----------
    rate_hz
        Grid rate.
    has_gyro
        Whether the stream has a gyroscope (``None`` before the first block).
    raw, sig
        Rings of the last ``history_s`` of raw samples and derived signals.
    next_update
        Absolute grid index of the next pitch-axis update.
    cov_part
        Sum of ``w w^T`` of the angular rate since the last update.
    cov, cov_n
        Exponentially weighted covariance sum and its effective sample count.
    axis
        Unit pitch axis (toes-up positive) in the sensor frame, or ``None``.
    polarity
        Accumulated forward-displacement vote for ``axis`` (m, >= 0 once adopted).
    phase
        Unknown / stance / swing / push-off (gyroscope: waiting for the toe-off).
    scan
        Absolute index where the next event search starts.
    swing_start
        Absolute index where the current swing lobe began (-1: not yet seen).
    pending_ic
        Fractional absolute index of the current stance's initial contact, or ``None``.
    pending_onset
        Its touch-down transient where the toe-off decides between the two: the gait
        (running or walking) is not known yet, and the end of the swing lobe was taken.
    swing_peak
        Running average of swing peak pitch rates (deg/s) or impact jerks (acc only).
    tc_peak
        Accelerometer only: running average of toe-off unloading rates (m/s^3).
    up
        Unit vertical (gravity at mid-stance) in the sensor frame, or ``None``.
    last_tc
        Fractional absolute index of the last reported toe-off, or ``None``.
    duty
        Running average of the duty factor (contact time / stride time), or ``None``.
    timing
        Cadence / stride bookkeeping.
    """

    rate_hz: float
    has_gyro: bool | None
    raw: Ring
    sig: Ring
    next_update: int
    cov_part: FloatArray
    cov: FloatArray
    cov_n: float
    axis: FloatArray | None
    polarity: float
    phase: int
    scan: int
    swing_start: int
    pending_ic: float | None
    pending_onset: float | None
    swing_peak: float | None
    tc_peak: float | None
    up: FloatArray | None
    last_tc: float | None
    duty: float | None
    timing: timing.TimingState


def init_foot(params: FootParams, rate_hz: float, start_index: int = 0) -> FootState:
    """A fresh detector state (also used after every gap).

    Parameters
    ----------
    params
        Detector parameters.
    rate_hz
        Grid rate of the stream.
    start_index
        Absolute grid index of the first sample to come.
    """
    if not (math.isfinite(rate_hz) and rate_hz > 0.0):
        raise ValueError(f"rate_hz must be a positive number, got {rate_hz!r}")
    if not 0.0 < params.axis_update_s <= 0.5 * params.history_s:
        raise ValueError(
            f"axis_update_s ({params.axis_update_s} s) must be positive and at most half "
            f"of history_s ({params.history_s} s): samples are examined in pieces of "
            "axis_update_s, which must fit in the ring")
    k = _update_period(params, rate_hz)
    return FootState(
        rate_hz=float(rate_hz), has_gyro=None,
        raw=Ring.empty(start_index, _RAW_CH), sig=Ring.empty(start_index, _SIG_CH),
        next_update=(start_index // k + 1) * k,
        cov_part=np.zeros((3, 3)), cov=np.zeros((3, 3)), cov_n=0.0, axis=None,
        polarity=0.0, phase=_UNKNOWN, scan=start_index, swing_start=start_index,
        pending_ic=None, pending_onset=None, swing_peak=None, tc_peak=None, up=None,
        last_tc=None,
        duty=None, timing=timing.TimingState(),
    )


def step_foot(params: FootParams, state: FootState,
              block: UniformBlock) -> tuple[FootState, list[Step]]:
    """Consume one block of grid samples; return the new state and finished contacts.

    Parameters
    ----------
    params
        Detector parameters.
    state
        State returned by :func:`init_foot` or the previous call.
    block
        The next samples. ``block.reset`` drops all history first.

    Returns
    -------
    state, steps
        The new state and one :class:`~sensord.model.Step` per contact whose toe-off
        was confirmed in this block, in time order.
    """
    if block.rate_hz != state.rate_hz:
        raise ValueError(f"grid rate changed from {state.rate_hz} to {block.rate_hz} Hz")
    has_gyro = block.gyr_dps is not None
    if (block.reset or state.raw.end != block.start_index
            or (state.has_gyro is not None and state.has_gyro != has_gyro)):
        state = init_foot(params, state.rate_hz, block.start_index)
    if state.has_gyro is None:
        state = evolve(state, has_gyro=has_gyro)
    n = len(block)
    if n == 0:
        return state, []
    raw = np.empty((n, _RAW_CH))
    raw[:, :3] = block.acc_mps2
    raw[:, 3:] = 0.0 if block.gyr_dps is None else block.gyr_dps
    steps: list[Step] = []
    i = 0
    while i < n:
        stop = min(n, state.next_update - block.start_index)
        if stop > i:
            state = _append(params, state, raw[i:stop])
            state, new = _detect(params, state)
            steps.extend(new)
            i = stop
        if block.start_index + i == state.next_update:
            state = _update_axis(params, state)
    return state, steps


def finish_foot(params: FootParams, state: FootState) -> tuple[FootState, list[Step]]:
    """End of stream: nothing is guessed.

    A contact is reported only once its toe-off is confirmed by the start of the swing,
    so a stance still open at the end of the stream is dropped. The state is returned
    unchanged.
    """
    return state, []


def emission_horizon(params: FootParams, state: FootState) -> int:
    """The smallest grid end (absolute index one past the last sample) at which
    :func:`step_foot` could report another contact.

    With a gyroscope a contact is reported at its toe-off, after its initial contact;
    with none pending, the next initial contact is the end of a swing lobe at or after
    the search position ``scan``, decided once ``impact_window_s`` of signal follows
    it. A pitch-axis update (at ``next_update``) may rescan the ring and report strides
    at once, so the bound never passes it. Accelerometer-only streams (whose contacts
    are found around still intervals, looking back) get no bound.
    """
    if state.pending_ic is not None or not state.has_gyro:
        return state.raw.end
    return min(state.scan + _n(params.impact_window_s, state.rate_hz), state.next_update + 1)


# --------------------------------------------------------------------------------------
# per-sample signals and orientation


def _update_period(params: FootParams, rate_hz: float) -> int:
    return max(1, round(params.axis_update_s * rate_hz))


def _n(seconds: float, rate_hz: float) -> int:
    return max(1, round(seconds * rate_hz))


def _append(params: FootParams, state: FootState, raw: FloatArray) -> FootState:
    """Append raw samples; derive pitch rate and jerk; fold the gyro covariance."""
    max_len = _n(params.history_s, state.rate_hz)
    prev = state.raw.data[-1:, :3] if state.raw.data.shape[0] else raw[:1, :3]
    both = np.concatenate([prev, raw[:, :3]])
    da = both[1:] - both[:-1]
    norm = np.sqrt(np.einsum("ij,ij->i", both, both))
    sig = np.empty((raw.shape[0], _SIG_CH))
    gyr = raw[:, 3:]
    sig[:, _P] = 0.0 if state.axis is None else gyr @ state.axis
    sig[:, _J] = np.sqrt(np.einsum("ij,ij->i", da, da)) * state.rate_hz
    sig[:, _DN] = (norm[1:] - norm[:-1]) * state.rate_hz
    sig[:, _AN] = norm[1:]
    cov_part = state.cov_part + gyr.T @ gyr if state.has_gyro else state.cov_part
    return evolve(state, raw=state.raw.append(raw, max_len),
                   sig=state.sig.append(sig, max_len), cov_part=cov_part)


def _update_axis(params: FootParams, state: FootState) -> FootState:
    """Fold the covariance, adopt the dominant rotation axis, vote on its sign.

    Samples keep the pitch rate of the axis in force when they arrived (a function of
    their absolute position only); the ring is re-projected only when the axis is
    adopted, lost or flipped, and the event logic then restarts over the ring.
    """
    k = _update_period(params, state.rate_hz)
    nxt = state.next_update + k
    if not state.has_gyro:
        return evolve(state, next_update=nxt)
    decay = math.exp(-k / (params.axis_memory_s * state.rate_hz))
    cov = decay * state.cov + state.cov_part
    cov_n = decay * state.cov_n + k
    vals, vecs = np.linalg.eigh(cov / cov_n)
    total = float(vals.sum())
    if total < params.min_axis_rate_dps**2 or vals[-1] < params.min_axis_share * total:
        return evolve(state, next_update=nxt, cov=cov, cov_n=cov_n,
                       cov_part=np.zeros((3, 3)))
    e = np.asarray(vecs[:, -1], dtype=np.float64)
    if state.axis is not None and float(e @ state.axis) < 0.0:
        e = -e
    polarity = math.exp(-k / (params.polarity_memory_s * state.rate_hz)) * state.polarity
    if polarity < params.confident_polarity_m:
        polarity += _polarity_vote(params, state, e)
    flipped = polarity < 0.0
    if flipped:
        e, polarity = -e, -polarity
    axis = e if polarity >= params.min_polarity_m else None
    if not flipped and (state.axis is None) == (axis is None):
        return evolve(state, next_update=nxt, cov=cov, cov_n=cov_n,
                       cov_part=np.zeros((3, 3)), polarity=polarity, axis=axis)
    # the pitch-rate history changed meaning: re-project the ring and restart the
    # event logic over it (after the last reported toe-off), so the first strides count
    sig = state.sig.data.copy()
    sig[:, _P] = 0.0 if axis is None else state.raw.data[:, 3:] @ axis
    restart = state.sig.start if state.last_tc is None else max(
        state.sig.start, math.floor(state.last_tc) + 1)
    return evolve(state, next_update=nxt, cov=cov, cov_n=cov_n, cov_part=np.zeros((3, 3)),
                   polarity=polarity, axis=axis, sig=Ring(state.sig.start, sig),
                   phase=_UNKNOWN, pending_ic=None, pending_onset=None, scan=restart)


def _polarity_vote(params: FootParams, state: FootState, axis: FloatArray) -> float:
    """Forward displacement (m) along ``up x axis`` summed over the strides in the ring.

    Between consecutive stationary instants the specific force is rotated into the
    first instant's frame by the pitch angle integrated about ``axis``, projected on
    the horizontal direction ``h = up x axis`` and integrated twice, with the velocity
    drift removed linearly (zero-velocity update). Positive: ``h`` points forward, so
    ``axis`` is the toes-up rotation axis.
    """
    rate = state.rate_hz
    raw = state.raw.data
    if raw.shape[0] < _n(2 * params.min_stride_s, rate):
        return 0.0
    acc, gyr = raw[:, :3], raw[:, 3:]
    gn = uniform_filter1d(np.linalg.norm(gyr, axis=1), _n(params.quiet_smooth_s, rate))
    w = _n(params.quiet_separation_s, rate)
    level = params.quiet_frac * float(np.percentile(gn, 95))
    cand = np.flatnonzero((minimum_filter1d(gn, 2 * w + 1) == gn) & (gn < level))
    pts: list[int] = []
    for c in cand.tolist():
        if not pts or c - pts[-1] > w:
            pts.append(c)
    lo, hi = _n(params.min_stride_s, rate), _n(params.max_stride_s, rate)
    total = 0.0
    for a, b in itertools.pairwise(pts):
        if not lo <= b - a <= hi:
            continue
        g = acc[a]
        up = g / max(float(np.linalg.norm(g)), 1e-9)
        h = _cross(up, axis)
        hn = math.sqrt(float(h @ h))
        if hn < 0.5:
            continue
        h /= hn
        theta = np.cumsum(np.deg2rad(gyr[a + 1:b + 1] @ axis)) / rate
        seg = acc[a + 1:b + 1]
        a_h = (seg @ h) * np.cos(theta) - (seg @ up) * np.sin(theta)
        vel = np.cumsum(a_h) / rate
        vel -= np.linspace(1.0 / vel.shape[0], 1.0, vel.shape[0]) * vel[-1]
        total += float(vel.sum()) / rate
    return total


# --------------------------------------------------------------------------------------
# event logic


class _Work:
    """Mutable scratch copy of the event-logic fields during one :func:`_detect` call.

    Avoids rebuilding the frozen state for every event; turned back into a
    :class:`FootState` once at the end of the call.
    """

    __slots__ = (
        "axis",
        "base",
        "duty",
        "end",
        "has_gyro",
        "last_tc",
        "params",
        "pending_ic",
        "pending_onset",
        "phase",
        "rate",
        "raw",
        "scan",
        "sig",
        "steps",
        "swing_peak",
        "swing_start",
        "tc_peak",
        "timing",
        "up",
    )

    def __init__(self, params: FootParams, state: FootState) -> None:
        self.params = params
        self.rate = state.rate_hz
        self.sig = state.sig.data
        self.raw = state.raw.data
        self.base = state.sig.start
        self.end = state.sig.end
        self.has_gyro = bool(state.has_gyro)
        self.axis = state.axis
        self.phase = state.phase
        self.scan = state.scan
        self.swing_start = state.swing_start
        self.pending_ic = state.pending_ic
        self.pending_onset = state.pending_onset
        self.swing_peak = state.swing_peak
        self.tc_peak = state.tc_peak
        self.up = state.up
        self.last_tc = state.last_tc
        self.timing = state.timing
        self.duty = state.duty
        self.steps: list[Step] = []

    def n(self, seconds: float) -> int:
        """Whole samples in ``seconds`` (at least one)."""
        return max(1, round(seconds * self.rate))

    def state(self, state: FootState) -> FootState:
        return evolve(state, phase=self.phase, scan=self.scan, swing_start=self.swing_start,
                       pending_ic=self.pending_ic, pending_onset=self.pending_onset,
                       swing_peak=self.swing_peak,
                       tc_peak=self.tc_peak, up=self.up, last_tc=self.last_tc,
                       timing=self.timing, duty=self.duty)

    def reset_phase(self, scan: int) -> None:
        self.phase, self.pending_ic, self.pending_onset, self.scan = _UNKNOWN, None, None, scan


def _detect(params: FootParams, state: FootState) -> tuple[FootState, list[Step]]:
    if state.has_gyro and state.axis is None:
        return evolve(state, scan=state.sig.end), []
    w = _Work(params, state)
    if w.has_gyro:
        _detect_gyro(w)
    else:
        _detect_acc(w)
    return w.state(state), w.steps


def _cross(a: FloatArray, b: FloatArray) -> FloatArray:
    """Cross product of two 3-vectors (``np.cross`` is slow for single vectors)."""
    return np.array([a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2],
                     a[0] * b[1] - a[1] * b[0]])


def _first(mask: npt.NDArray[np.bool_]) -> int | None:
    """Index of the first ``True`` or ``None``."""
    k = int(mask.argmax()) if mask.shape[0] else 0
    return k if mask.shape[0] and mask[k] else None


def _detect_gyro(w: _Work) -> None:
    """Sequential gyroscope event logic over the samples not yet decided."""
    prm = w.params
    p_all = w.sig[:, _P]
    base, end = w.base, w.end
    n_impact, n_max_swing = w.n(prm.impact_window_s), w.n(prm.max_swing_s)
    n_max_gct = prm.max_gct_s * w.rate
    while True:
        scan = max(w.scan, base + 1)
        if scan >= end:
            return
        thr = prm.min_swing_dps
        if w.swing_peak is not None:
            thr = max(thr, prm.swing_frac * w.swing_peak)
        if w.phase == _SWING:
            limit = w.swing_start + n_max_swing if w.swing_start >= 0 else (
                math.ceil((w.last_tc or scan) + n_max_swing))
            if w.swing_start < 0:
                # the swing lobe: the first fast toes-up rotation after the toe-off
                p = p_all[scan - base:min(end, limit) - base]
                k = _first(p >= thr)
                if k is None:
                    if end >= limit:
                        w.reset_phase(limit)
                        continue
                    w.scan = end
                    return
                neg = np.flatnonzero(p[:k] < 0.0)
                w.swing_start = w.scan = scan + (int(neg[-1]) + 1 if neg.shape[0] else 0)
                continue
            # initial contact: the end of the swing lobe (p falls to <= 0)
            k = _first(p_all[scan - base:min(end, limit) - base] <= 0.0)
            if k is None:
                w.scan = end
                if end >= limit:  # no contact after a whole swing: lost track
                    w.reset_phase(limit)
                    continue
                return
            z = scan + k
            if z + n_impact > end:
                w.scan = z
                return
            _initial_contact_gyro(w, z)
            continue
        start, limit = scan, end
        if w.pending_ic is not None:
            limit = min(end, math.ceil(w.pending_ic + n_max_gct))
        if start >= limit:
            if limit < end:  # stance too long (standing): not a gait contact
                w.reset_phase(limit)
                continue
            return
        p = p_all[start - base:limit - base]
        # stance or unknown: the toe-off ends the last push-off lobe (toes down faster
        # than `push`) before the swing lobe begins (toes up faster than `thr`). The
        # heel-strike rotation is a toes-down lobe too, but it comes first; a flat-foot
        # pause may separate the two or, in short contacts, not.
        push = thr if w.swing_peak is None else max(thr, prm.push_frac * w.swing_peak)
        kp = _first(p <= -push)
        ks = None if kp is None else _first(p[kp:] >= thr)
        if kp is None or ks is None:
            if limit < end:
                w.reset_phase(limit)
                continue
            w.scan = end if kp is None else start + kp  # (nothing before it matters)
            return
        ks += kp
        last = kp + int(np.flatnonzero(p[kp:ks] <= -push)[-1])
        quiet = np.flatnonzero(p[kp:last] > -0.5 * thr)  # between two toes-down lobes
        lobe = kp + (int(quiet[-1]) + 1 if quiet.shape[0] else 0)
        _toe_off_gyro(w, start + lobe, start + ks)


def _zero_cross(y0: float, y1: float) -> float:
    """Fractional position (0..1) of the zero crossing between two samples."""
    den = y0 - y1
    return 0.5 if den == 0.0 else min(1.0, max(0.0, y0 / den))


def _initial_contact_gyro(w: _Work, z: int) -> None:
    """Decide the initial contact at the end of the swing lobe ``z`` (p[z] <= 0)."""
    prm = w.params
    if z - w.swing_start < w.n(prm.min_swing_s):
        # too short to be a swing
        w.reset_phase(z)
        return
    p = w.sig[:, _P]
    b = w.base
    lobe = p[max(w.swing_start, b) - b:z - b]
    peak = float(lobe.max())
    zc = z - 1 + _zero_cross(float(p[z - 1 - b]), float(p[z - b]))
    running = w.duty is not None and w.duty < prm.run_duty_factor
    # the touch-down transient: searched over the last heel_drop_s of the swing lobe
    # (a forefoot landing keeps p > 0 through the heel drop) and a little after it,
    # among samples where the foot no longer swings fast (a knock in mid-swing, or the
    # heel drop itself, is not the touch-down)
    lo = max(b, w.swing_start, z - w.n(prm.heel_drop_s))
    onset, top = _impact_onset(w, lo, z + w.n(prm.impact_window_s), 0.5 * peak)
    if onset is not None:
        # an impact must stand out of the swing's own jerk
        sj = w.sig[max(w.swing_start, b) - b:z - b, _J]
        if top * sj.shape[0] < prm.impact_ratio * float(sj.sum()):
            onset = None
    ic = zc
    if onset is not None and (running or onset < zc
                              or zc < onset - prm.max_ic_lead_s * w.rate):
        ic = onset
    # the first contacts (no duty factor yet): the toe-off decides whether this is running
    w.pending_onset = onset if onset is not None and ic != onset and w.duty is None else None
    w.swing_peak = peak if w.swing_peak is None else (
        (1 - prm.peak_memory) * w.swing_peak + prm.peak_memory * peak)
    # the toe-off search starts at the touch-down transient where there is one
    w.phase, w.pending_ic = _STANCE, ic
    w.scan = math.ceil(ic if onset is None else onset)


def _impact_onset(w: _Work, a: int, b: int,
                  max_rate_dps: float = math.inf) -> tuple[float | None, float]:
    """Impact onset in ``[a, b)``: first sample above ``impact_frac`` of the largest jerk.

    Only samples whose pitch rate is below ``max_rate_dps`` are candidates. Returns the
    onset (fractional absolute index, or ``None``) and the largest jerk of the window.
    """
    a = max(a, w.base)
    seg = w.sig[a - w.base:b - w.base]
    if seg.shape[0] < 2:
        return None, 0.0
    j = seg[:, _J].copy()
    top_all = float(j.max())
    j[seg[:, _P] >= max_rate_dps] = 0.0
    top = float(j.max())
    if top <= 0.0:
        return None, top_all
    k = int((j >= w.params.impact_frac * top).argmax())
    # jerk sample k is the change from sample k - 1 to k: its midpoint
    return float(a + k) - 0.5, top_all


def _toe_off_gyro(w: _Work, a: int, k: int) -> None:
    """Toe-off at the pitch-rate minimum in ``[a, k)`` (confirmed at ``k``)."""
    b = w.base
    p = w.sig[a - b:k + 1 - b, _P]
    m = int(p[:-1].argmin())
    off = 0.0
    if 0 < m < p.shape[0] - 1:
        y0, y1, y2 = p[m - 1:m + 2].tolist()
        den = y0 - 2.0 * y1 + y2
        if den > 0.0:  # a true minimum: vertex of the parabola through 3 points
            off = min(0.5, max(-0.5, 0.5 * (y0 - y2) / den))
    tc = a + m + off
    if w.pending_ic is not None:
        ic = w.pending_ic
        onset, prev = w.pending_onset, w.last_tc
        # this stride's duty factor, toe-off to toe-off, with the contact from the onset
        # (a plausible stride: not one with a pause in it)
        stride = None if prev is None else tc - prev
        if onset is not None and stride is not None and \
                0.0 < stride <= w.params.max_stride_s * w.rate and \
                (tc - onset) / stride < w.params.run_duty_factor:
            ic = onset
        _emit(w, ic, tc)
    w.phase, w.pending_ic, w.pending_onset, w.last_tc = _SWING, None, None, tc
    w.swing_start, w.scan = -1, a + m


def _still_runs(an: FloatArray, lo: int, hi: int, half: int, tol: float) -> FloatArray:
    """Stillness of samples ``lo..hi-1`` (``an`` indices): every sample within ``half``
    of it has a specific-force magnitude within ``tol`` of gravity.

    The caller guarantees ``lo >= half`` and ``hi + half <= len(an)``.
    """
    bad = (np.abs(an[lo - half:hi + half] - GRAVITY_MPS2) >= tol).astype(np.int64)
    c = np.concatenate([[0], np.cumsum(bad)])
    width = 2 * half + 1
    counts = c[width:] - c[:-width]
    return np.asarray(counts == 0, dtype=np.float64)


def _detect_acc(w: _Work) -> None:
    """Sequential accelerometer-only event logic.

    A stance is anchored on a *still* interval (the foot at rest on the ground, so the
    specific-force magnitude equals gravity: Skog et al. 2010's acceleration-magnitude
    test). Its initial contact is the onset of the impact transient before it; its
    toe-off the first steep fall of ``|a|`` (unloading) after it.
    """
    prm = w.params
    b, end = w.base, w.end
    an, dn = w.sig[:, _AN], w.sig[:, _DN]
    half = max(1, round(0.5 * prm.still_window_s * w.rate))
    tol = prm.still_tol_g * GRAVITY_MPS2
    n_back, n_tc = w.n(prm.acc_impact_search_s), w.n(prm.acc_tc_window_s)
    n_min_swing = prm.min_swing_s * w.rate
    while True:
        lo, hi = max(w.scan, b + half), end - half
        if lo >= hi:
            return
        if w.phase != _STANCE:
            k = _first(_still_runs(an, lo - b, hi - b, half, tol) > 0.5)
            if k is None:
                w.scan = hi
                return
            m = lo + k
            earliest = max(b, m - n_back)
            if w.last_tc is not None:
                earliest = max(earliest, math.ceil(w.last_tc + n_min_swing))
            onset = _impact_onset(w, earliest, m)[0] if m - earliest >= 2 else None
            ic = None
            if onset is not None:
                peak = float(w.sig[earliest - b:m - b, _J].max())
                w.swing_peak = peak if w.swing_peak is None else (
                    (1 - prm.peak_memory) * w.swing_peak + prm.peak_memory * peak)
                # a contact needs the swing before it (not the first stillness)
                ic = onset if w.last_tc is not None else None
            w.phase, w.pending_ic, w.scan = _STANCE, ic, m
            continue
        # stance: wait for the end of the still interval, then the unloading fall
        k = _first(_still_runs(an, lo - b, hi - b, half, tol) < 0.5)
        limit_gct = None if w.pending_ic is None else math.ceil(
            w.pending_ic + prm.max_gct_s * w.rate)
        if k is None:
            w.scan = hi
            if limit_gct is not None and hi >= limit_gct:
                w.reset_phase(limit_gct)
                continue
            return
        e = lo + k
        w.scan = e
        limit = e + w.n(prm.acc_push_s)
        if limit_gct is not None:
            limit = min(limit, limit_gct)
        if limit <= e:  # the stance outlasted max_gct_s: not a gait contact
            w.reset_phase(e)
            continue
        if w.tc_peak is not None:
            # low latency: the first fall steeper than a fraction of the recent toe-off
            # falls, refined to the steepest within acc_tc_window_s
            c = _first(dn[e - b:min(end, limit) - b] <= -prm.acc_tc_frac * w.tc_peak)
            if c is not None and e + c + n_tc + half <= end:
                c += e
                again = _first(_still_runs(an, e - b, c - b, half, tol) > 0.5) if (
                    c - e > 0) else None
                if again is not None:  # the foot came to rest again: stance goes on
                    w.scan = e + again
                    continue
                seg = dn[c - b:c + n_tc - b]
                m = int(seg.argmin())
                tc = c + m - 0.5  # a fall is between samples m - 1 and m
                _toe_off_acc(w, tc, float(-seg[m]))
                continue
            if c is not None or end < limit + half:
                return
            # no steep fall: fall back to the whole push-off window below
        if end < limit + half:
            return
        again = _first(_still_runs(an, e - b, limit - b, half, tol) > 0.5)
        if again is not None:  # the foot came to rest again: the stance goes on
            w.scan = e + again
            continue
        seg = dn[e - b:limit - b]
        m = int(seg.argmin())
        # a fall is the difference between samples m - 1 and m: toe-off halfway
        _toe_off_acc(w, e + m - 0.5, float(-seg[m]))


def _toe_off_acc(w: _Work, tc: float, fall: float) -> None:
    """Report the stance ending at ``tc`` (unloading rate ``fall``) and start the swing."""
    prm = w.params
    w.tc_peak = fall if w.tc_peak is None else (
        (1 - prm.peak_memory) * w.tc_peak + prm.peak_memory * fall)
    if w.pending_ic is not None:
        _emit(w, w.pending_ic, tc)
    w.phase, w.pending_ic, w.last_tc = _SWING, None, tc
    w.scan = math.ceil(tc + prm.min_swing_s * w.rate)


# --------------------------------------------------------------------------------------
# output


def _emit(w: _Work, ic: float, tc: float) -> None:
    """Report one contact from fractional absolute indices ``ic`` and ``tc``."""
    prm = w.params
    rate = w.rate
    gct_s = (tc - ic) / rate
    if not prm.min_gct_s <= gct_s <= prm.max_gct_s or ic < w.base:
        return
    a, b = math.floor(ic) - w.base, math.ceil(tc) + 1 - w.base
    acc = w.raw[a:b, :3]
    # vertical: gravity at mid-stance (least rotation, or least jerk without gyroscope)
    if w.has_gyro:
        gyr = w.raw[a:b, 3:]
        mid = int(np.einsum("ij,ij->i", gyr, gyr).argmin())
    else:
        mid = int(w.sig[a:b, _J].argmin())
    # 3-vectors in plain floats: numpy is slow on tiny arrays
    gx, gy, gz = acc[mid].tolist()
    if w.up is not None:
        gn = max(math.sqrt(gx * gx + gy * gy + gz * gz), 1e-9)
        ux, uy, uz = w.up.tolist()
        k = prm.peak_memory
        gx, gy, gz = ux + k * (gx / gn - ux), uy + k * (gy / gn - uy), uz + k * (gz / gn - uz)
    gn = max(math.sqrt(gx * gx + gy * gy + gz * gz), 1e-9)
    ux, uy, uz = gx / gn, gy / gn, gz / gn
    n_early = max(2, min(w.n(prm.impact_window_s), math.ceil(0.5 * (tc - ic))))
    early = acc[:n_early + 1]
    impact_g = math.sqrt(float(np.einsum("ij,ij->i", early, early).max())) / GRAVITY_MPS2
    braking_g: float | None = None
    if w.has_gyro and w.axis is not None:
        ax, ay, az = w.axis.tolist()
        fx, fy, fz = uy * az - uz * ay, uz * ax - ux * az, ux * ay - uy * ax  # up x axis
        fn = math.sqrt(fx * fx + fy * fy + fz * fz)
        if fn > 0.5:
            fwd = np.array([fx / fn, fy / fn, fz / fn])
            braking_g = max(0.0, -float((early @ fwd).min()) / GRAVITY_MPS2)
    t_ic, t_fc = ic / rate, tc / rate
    w.timing, tm = timing.update(prm.timing, w.timing, t_ic, t_fc, prm.sensor_side)
    if tm.stride_time_s is not None and tm.stride_time_s > 0.0:
        duty = gct_s / tm.stride_time_s
        w.duty = duty if w.duty is None else w.duty + prm.peak_memory * (duty - w.duty)
    w.steps.append(Step(
        t_ic=t_ic, t_fc=t_fc, gct_ms=gct_s * 1000.0, cadence_spm=tm.cadence_spm,
        side=prm.sensor_side, pelvic_drop_deg=None, placement="foot",
        step_index=tm.step_index, step_time_s=None, stride_time_s=tm.stride_time_s,
        impact_g=impact_g, braking_g=braking_g, flight_ms=None,
    ))
    w.up, w.last_tc = np.array([ux, uy, uz]), tc
