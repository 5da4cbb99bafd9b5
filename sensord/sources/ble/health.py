"""Per-sensor link health counters and rate-limited logging, as pure state.

The collector folds every event of the link (packet, duplicate, malformed payload, gap,
reconnect, battery reading, latency measurement) into a :class:`HealthState` with the
functions below and turns it into a :class:`~sensord.model.SensorHealth` with
:func:`snapshot` every ``HealthParams.interval_s``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sensord.model import SensorHealth
from sensord.state import evolve


@dataclass(frozen=True, slots=True)
class HealthParams:
    """Health reporting knobs.

    Attributes
    ----------
    interval_s
        How often a :class:`SensorHealth` is emitted, seconds.
    latency_window
        How many recent latency measurements the reported median spans.
    """

    interval_s: float = 2.0
    latency_window: int = 64


@dataclass(frozen=True)  # no slots: updated with evolve()
class HealthState:
    """Cumulative counters of one sensor link over the run."""

    connected: bool = False
    packets: int = 0
    samples: int = 0
    missing_samples: int = 0
    duplicates: int = 0
    late: int = 0
    malformed: int = 0
    gaps: int = 0
    reconnects: int = 0
    stalls: int = 0
    queue_overflows: int = 0
    battery_pct: int | None = None
    latencies_s: tuple[float, ...] = ()


def on_packet(params: HealthParams, state: HealthState, n_samples: int,
              latency_s: float | None) -> HealthState:
    """A data notification with ``n_samples`` samples arrived."""
    lat = state.latencies_s
    if latency_s is not None and np.isfinite(latency_s):
        lat = (*lat, float(latency_s))[-params.latency_window:]
    return evolve(state, packets=state.packets + 1, samples=state.samples + n_samples,
                   latencies_s=lat)


def on_counts(state: HealthState, *, duplicates: int = 0, late: int = 0, gaps: int = 0,
              missing_samples: int = 0, malformed: int = 0,
              queue_overflows: int = 0) -> HealthState:
    """Add to the loss / error counters."""
    if not (duplicates or late or gaps or missing_samples or malformed or queue_overflows):
        return state  # the usual packet: nothing to count
    return evolve(state, duplicates=state.duplicates + duplicates,
                   late=state.late + late, gaps=state.gaps + gaps,
                   missing_samples=state.missing_samples + missing_samples,
                   malformed=state.malformed + malformed,
                   queue_overflows=state.queue_overflows + queue_overflows)


def on_connection(state: HealthState, connected: bool, *, reconnect: bool = False,
                  stall: bool = False) -> HealthState:
    """The link went up or down (``reconnect``: an up that is not the first)."""
    return evolve(state, connected=connected,
                   reconnects=state.reconnects + (1 if reconnect else 0),
                   stalls=state.stalls + (1 if stall else 0))


def on_battery(state: HealthState, percent: int | None) -> HealthState:
    """A battery reading (``None`` when the device has none)."""
    return evolve(state, battery_pct=percent)


def packet_loss_pct(state: HealthState) -> float:
    """Share of samples lost, percent, over the run (0 before any sample)."""
    total = state.samples + state.missing_samples
    return 100.0 * state.missing_samples / total if total else 0.0


def snapshot(state: HealthState, t_s: float) -> SensorHealth:
    """The :class:`SensorHealth` event for the current counters at run time ``t_s``."""
    latency_ms = (float(np.median(state.latencies_s)) * 1000.0
                  if state.latencies_s else None)
    return SensorHealth(
        t_s=t_s,
        connected=state.connected,
        packet_loss_pct=round(packet_loss_pct(state), 3),
        reconnects=state.reconnects,
        latency_ms=None if latency_ms is None else round(latency_ms, 3),
        battery_pct=state.battery_pct,
        duplicates=state.duplicates,
        malformed=state.malformed,
        gaps=state.gaps,
    )


# --------------------------------------------------------------------------- log limiting


@dataclass(frozen=True, slots=True)
class LogLimitParams:
    """At most ``burst`` messages per ``interval_s``; the rest are counted, not logged."""

    burst: int = 5
    interval_s: float = 10.0


@dataclass(frozen=True)  # no slots: updated with evolve()
class LogLimitState:
    """Token window of a rate-limited log."""

    window_start_s: float | None = None
    used: int = 0
    suppressed: int = 0


def log_allowed(params: LogLimitParams, state: LogLimitState,
                now_s: float) -> tuple[LogLimitState, bool, int]:
    """Whether to log a message now.

    Returns the new state, the decision, and (when a new window opens) how many
    messages the previous window suppressed, so the caller can say so once.
    """
    reported = 0
    if state.window_start_s is None or now_s - state.window_start_s >= params.interval_s:
        reported = state.suppressed
        state = LogLimitState(window_start_s=now_s, used=0, suppressed=0)
    if state.used < params.burst:
        return evolve(state, used=state.used + 1), True, reported
    return evolve(state, suppressed=state.suppressed + 1), False, reported
