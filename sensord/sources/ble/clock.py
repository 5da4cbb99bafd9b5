"""Sensor clock -> host clock, and timing for sensors without timestamps.

Pure logic (``Params`` + frozen ``State`` + functions), tested without BLE.

Clock mapping (sensors with timestamps)
---------------------------------------
A notification carrying a sample taken at sensor time ``s`` arrives at host time
``h = c + (1 + k) * s + latency`` with ``latency >= 0`` (radio, connection interval,
OS) and a sensor clock that runs fast or slow by ``k`` (tens of ppm for a crystal).
The *minimum-latency envelope* is the lower edge of the cloud of ``h - s``: the packets
that got through with the least delay. :func:`observe` keeps the smallest ``h - s`` of
each ``bin_s``-long bin of sensor time; :func:`to_host` maps through a line fitted to
those minima (least squares for the drift ``k``, then lowered so that no minimum lies
below it). Drift is clamped to ``max_drift_ppm``. Mapped times therefore carry the
radio's minimum latency as a constant offset (a few ms), not its jitter.

Arrival timing (sensors without timestamps, e.g. WitMotion)
-----------------------------------------------------------
:func:`arrival_times` numbers samples at the nominal rate on a virtual sensor clock
(``index * period``) and maps those through the same envelope fit. When a packet
arrives far later than its number predicts (more than ``gap_s`` beyond the envelope)
samples were lost (a disconnect, a stall): the counter jumps ahead by the lost time,
which then shows up downstream as a gap. Duplicates and reordering cannot be detected
without sequence information; they are documented limits of such sensors.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from sensord.model import FloatArray
from sensord.state import evolve


@dataclass(frozen=True, slots=True)
class ClockParams:
    """Clock-fit knobs.

    Attributes
    ----------
    bin_s
        Sensor-time length of one envelope bin, seconds.
    n_bins
        How many bins the fit spans (``n_bins * bin_s`` seconds of history).
    max_drift_ppm
        Largest believable clock rate error; the fitted drift is clamped to it.
    """

    bin_s: float = 2.0
    n_bins: int = 30
    max_drift_ppm: float = 2000.0


@dataclass(frozen=True)  # no slots: updated with evolve()
class ClockState:
    """Envelope state; create with :func:`init_clock`."""

    s0: float | None = None
    bins: tuple[tuple[float, float], ...] = ()
    cur_bin: int | None = None
    cur_min: tuple[float, float] | None = None
    offset_s: float = 0.0
    drift: float = 0.0
    n_obs: int = 0


def init_clock() -> ClockState:
    """A clock with no observations (maps with offset 0 until the first one)."""
    return ClockState()


def _fit(params: ClockParams, points: tuple[tuple[float, float], ...]) -> tuple[float, float]:
    """(offset, drift) of the lower envelope through ``points`` of (s - s0, h - s)."""
    s = np.array([p[0] for p in points])
    d = np.array([p[1] for p in points])
    k = 0.0
    if s.size >= 3 and float(s.max() - s.min()) >= 2.0 * params.bin_s:
        k = float(np.polyfit(s, d, 1)[0])
        lim = params.max_drift_ppm * 1e-6
        k = min(max(k, -lim), lim)
    c = float(np.min(d - k * s))
    return c, k


def observe(params: ClockParams, state: ClockState, sensor_s: float,
            host_s: float) -> ClockState:
    """Add one (sensor time, host arrival time) pair."""
    s0 = sensor_s if state.s0 is None else state.s0
    rel = sensor_s - s0
    d = host_s - sensor_s
    b = math.floor(rel / params.bin_s)
    bins, cur_bin, cur_min = state.bins, state.cur_bin, state.cur_min
    if cur_bin is None or b == cur_bin:
        if cur_min is None or d < cur_min[1]:
            cur_min = (rel, d)
        cur_bin = b if cur_bin is None else cur_bin
    elif b > cur_bin:
        assert cur_min is not None
        bins = (*bins, cur_min)[-(params.n_bins - 1):] if params.n_bins > 1 else ()
        cur_bin, cur_min = b, (rel, d)
    else:  # an older bin (a reordered packet): fold into the history when lower
        bins = tuple((r, min(dd, d)) if math.floor(r / params.bin_s) == b else (r, dd)
                     for r, dd in bins)
    assert cur_min is not None
    if bins is state.bins and cur_min is state.cur_min:  # envelope unchanged: no refit
        return evolve(state, n_obs=state.n_obs + 1)
    c, k = _fit(params, (*bins, cur_min))
    return evolve(state, s0=s0, bins=bins, cur_bin=cur_bin, cur_min=cur_min,
                   offset_s=c, drift=k, n_obs=state.n_obs + 1)


def to_host(state: ClockState, sensor_s: FloatArray) -> FloatArray:
    """Host times of sensor times (the envelope line); identity before any observation."""
    if state.s0 is None:
        return np.asarray(sensor_s, dtype=np.float64).copy()
    rel = np.asarray(sensor_s, dtype=np.float64) - state.s0
    return np.asarray(sensor_s + state.offset_s + state.drift * rel, dtype=np.float64)


def to_host_scalar(state: ClockState, sensor_s: float) -> float:
    """:func:`to_host` for one time."""
    if state.s0 is None:
        return sensor_s
    return sensor_s + state.offset_s + state.drift * (sensor_s - state.s0)


# --------------------------------------------------------------------------- arrival timing


@dataclass(frozen=True, slots=True)
class ArrivalParams:
    """Timing of timestamp-less sensors.

    Attributes
    ----------
    period_s
        Nominal sample period, seconds.
    gap_s
        Arrival later than the envelope prediction by more than this means lost samples.
    clock
        Envelope fit parameters (cheap sensors' rates are off by up to ~2 %).
    """

    period_s: float
    gap_s: float = 0.25
    clock: ClockParams = ClockParams(max_drift_ppm=20000.0)


@dataclass(frozen=True)  # no slots: updated with evolve()
class ArrivalState:
    """Arrival timer state; create with :func:`init_arrival`."""

    next_index: int = 0
    clock: ClockState = ClockState()
    skipped_samples: int = 0


def init_arrival() -> ArrivalState:
    """A timer that has numbered no sample yet."""
    return ArrivalState()


def arrival_times(params: ArrivalParams, state: ArrivalState, n: int, arrival_s: float,
                  resync: bool = False) -> tuple[ArrivalState, FloatArray, int]:
    """Virtual sensor times of the ``n`` samples of a packet that arrived at ``arrival_s``.

    ``resync`` says samples were certainly lost before this packet (the link went down
    and came back): the counter then jumps by however late the packet is, however
    little (minus nothing: up to one period of the radio's latency jitter may be
    counted as lost). Returns the new state, the times (``index * period_s``) and how
    many samples were judged lost before this packet (0 normally).
    """
    idx = state.next_index
    skipped = 0
    if state.clock.s0 is not None:
        t_last = (idx + n - 1) * params.period_s
        late_s = arrival_s - to_host_scalar(state.clock, t_last)
        if late_s > params.gap_s or (resync and late_s > 0):
            skipped = int(late_s / params.period_s)
            idx += skipped
    t = (idx + np.arange(n, dtype=np.float64)) * params.period_s
    clock = observe(params.clock, state.clock, float(t[-1]), arrival_s) if n else state.clock
    return (evolve(state, next_index=idx + n, clock=clock,
                    skipped_samples=state.skipped_samples + skipped), t, skipped)
