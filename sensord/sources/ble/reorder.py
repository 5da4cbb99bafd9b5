"""Put decoded packets back in order: drop duplicates, reorder in a small window, find gaps.

Pure logic (``Params`` + frozen ``State`` + step functions), no BLE, no clocks: the
caller passes host arrival times in. Works on *sensor time*: every packet carries the
sensor times of its first and last sample (from the sensor's timestamps, or from the
arrival timer in :mod:`sensord.sources.ble.clock` for sensors without any).

Rules
-----
- The expected next sample is one nominal period after the last emitted one. A pending
  packet that starts there (within ``tolerance`` periods) is *contiguous* and released.
- A packet that ends at or before the last emitted sample is a *duplicate* when its
  first-sample time was already seen, else *late* (it arrived after its place had been
  declared a gap); either way it is dropped, never emitted twice or out of order.
- A packet that starts later than expected waits in a window of ``window_packets``
  packets for the missing ones. When the window overflows, or the oldest pending packet
  has waited ``max_hold_s`` of host time, the earliest pending packet is released
  anyway and a :class:`GapReport` covering the missing samples precedes it.
- The first packet (and the first after :func:`restart`) is held like any other until
  the window fills or ``max_hold_s`` passes, so an earlier packet overtaken by it is
  not lost.
- Nothing is ever interpolated: a gap is reported and left to the consumer.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generic, TypeVar

from sensord.state import evolve

P = TypeVar("P")


@dataclass(frozen=True, slots=True)
class ReorderParams:
    """Reordering knobs.

    Attributes
    ----------
    period_s
        Nominal sample period of the stream, seconds.
    window_packets
        Most packets held back waiting for an earlier missing one.
    max_hold_s
        Longest host time a packet is held back (bounds the added latency).
    tolerance
        Timing tolerance as a fraction of a period (sensor timestamp jitter).
    history
        How many released first-sample times are remembered to tell a duplicate from a
        late packet.
    """

    period_s: float
    window_packets: int = 8
    max_hold_s: float = 0.1
    tolerance: float = 0.5
    history: int = 64

    def __post_init__(self) -> None:
        if not self.period_s > 0:
            raise ValueError(f"period_s must be > 0, got {self.period_s}")
        if self.window_packets < 0:
            raise ValueError(f"window_packets must be >= 0, got {self.window_packets}")
        if not 0 < self.tolerance < 1:
            raise ValueError(f"tolerance must be in (0, 1), got {self.tolerance}")


@dataclass(frozen=True, slots=True, eq=False)
class Packet(Generic[P]):
    """One decoded notification on the sensor time axis.

    Attributes
    ----------
    t_first_s, t_last_s
        Sensor times of its first and last sample (equal for one sample).
    n
        Number of samples.
    arrival_s
        Host time it arrived.
    payload
        What to hand on when released (the decoded samples).
    """

    t_first_s: float
    t_last_s: float
    n: int
    arrival_s: float
    payload: P


@dataclass(frozen=True, slots=True)
class GapReport:
    """Samples missing between two released packets.

    ``t_before_s`` is the last sample released before the gap, ``t_after_s`` the first
    one after it (sensor time); ``missing`` the estimated number of lost samples.
    """

    t_before_s: float
    t_after_s: float
    missing: int


@dataclass(frozen=True, eq=False)  # no slots: updated with evolve()
class ReorderState(Generic[P]):
    """Reorder buffer state; create with :func:`init_state`."""

    last_end_s: float | None = None
    pending: tuple[Packet[P], ...] = ()
    seen_first_s: tuple[float, ...] = ()
    released_packets: int = 0
    released_samples: int = 0
    duplicates: int = 0
    late: int = 0
    reordered: int = 0
    gaps: int = 0
    missing_samples: int = 0


Output = Packet[P] | GapReport


def init_state() -> ReorderState[P]:
    """An empty buffer (nothing released yet)."""
    return ReorderState()


def _release(params: ReorderParams, state: ReorderState[P], packet: Packet[P],
             out: list[Output[P]]) -> ReorderState[P]:
    gaps, missing = state.gaps, state.missing_samples
    if state.last_end_s is not None:
        dt = packet.t_first_s - state.last_end_s
        if dt > (1.0 + params.tolerance) * params.period_s:
            lost = max(1, round(dt / params.period_s) - 1)
            out.append(GapReport(state.last_end_s, packet.t_first_s, lost))
            gaps += 1
            missing += lost
    out.append(packet)
    seen = (*state.seen_first_s, packet.t_first_s)[-params.history:]
    return evolve(state, last_end_s=packet.t_last_s, seen_first_s=seen,
                   released_packets=state.released_packets + 1,
                   released_samples=state.released_samples + packet.n,
                   gaps=gaps, missing_samples=missing)


def _drain(params: ReorderParams, state: ReorderState[P], now_s: float | None,
           force: bool, out: list[Output[P]]) -> ReorderState[P]:
    tol_s = params.tolerance * params.period_s
    while state.pending:
        head = state.pending[0]
        # The very first packet waits too: an earlier one may still be on its way.
        contiguous = (state.last_end_s is not None
                      and head.t_first_s - state.last_end_s <= params.period_s + tol_s)
        overflow = len(state.pending) > params.window_packets
        expired = now_s is not None and now_s - head.arrival_s >= params.max_hold_s
        if not (contiguous or overflow or expired or force):
            break
        state = evolve(state, pending=state.pending[1:])
        state = _release(params, state, head, out)
    return state


def step(params: ReorderParams, state: ReorderState[P],
         packet: Packet[P]) -> tuple[ReorderState[P], list[Output[P]]]:
    """Take one packet; return the new state and what is now released, in order."""
    out: list[Output[P]] = []
    tol_s = params.tolerance * params.period_s
    if state.last_end_s is not None and packet.t_first_s <= state.last_end_s + tol_s:
        if any(abs(packet.t_first_s - t) <= tol_s for t in state.seen_first_s):
            return evolve(state, duplicates=state.duplicates + 1), out
        return evolve(state, late=state.late + 1), out
    if any(abs(packet.t_first_s - p.t_first_s) <= tol_s for p in state.pending):
        return evolve(state, duplicates=state.duplicates + 1), out
    reordered = state.reordered
    if state.pending and packet.t_first_s < state.pending[-1].t_first_s:
        reordered += 1
    pending = tuple(sorted((*state.pending, packet), key=lambda p: p.t_first_s))
    state = evolve(state, pending=pending, reordered=reordered)
    state = _drain(params, state, packet.arrival_s, False, out)
    return state, out


def flush_due(params: ReorderParams, state: ReorderState[P],
              now_s: float) -> tuple[ReorderState[P], list[Output[P]]]:
    """Release packets held for ``max_hold_s`` or longer (call on a timer)."""
    out: list[Output[P]] = []
    state = _drain(params, state, now_s, False, out)
    return state, out


def flush_all(params: ReorderParams,
              state: ReorderState[P]) -> tuple[ReorderState[P], list[Output[P]]]:
    """Release everything pending (on disconnect: nothing earlier can still arrive)."""
    out: list[Output[P]] = []
    state = _drain(params, state, None, True, out)
    return state, out


def restart(state: ReorderState[P]) -> ReorderState[P]:
    """Forget the time axis (the sensor's clock restarted); keep the counters."""
    return evolve(state, last_end_s=None, pending=(), seen_first_s=())
