"""Pure collector logic without BLE: reorder/dedupe/gaps, clock mapping, health, log limits."""

from __future__ import annotations

import itertools

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from sensord.sources.ble import clock, health, reorder
from sensord.sources.ble.reorder import GapReport, Packet

PERIOD = 0.005  # 200 Hz
N = 10  # samples per packet


def _packets(k_list: list[int], arrival0: float = 0.0) -> list[Packet[int]]:
    return [Packet(k * N * PERIOD, (k * N + N - 1) * PERIOD, N, arrival0 + i * 0.001, k)
            for i, k in enumerate(k_list)]


def _run(params: reorder.ReorderParams,
         pkts: list[Packet[int]]) -> tuple[reorder.ReorderState[int], list[object]]:
    state: reorder.ReorderState[int] = reorder.init_state()
    out: list[object] = []
    for p in pkts:
        state, o = reorder.step(params, state, p)
        out.extend(o)
    state, o = reorder.flush_all(params, state)
    out.extend(o)
    return state, out


@st.composite
def _scrambled(draw: st.DrawFn) -> tuple[list[int], list[int], int]:
    """Packet numbers 0..n-1 with some dropped, some duplicated, locally shuffled."""
    n = draw(st.integers(5, 50))
    keep = [k for k in range(n) if k in (0, n - 1) or not draw(st.booleans().map(
        lambda b: b and draw(st.integers(0, 9)) == 0))]
    seq = list(keep)
    dups = draw(st.lists(st.sampled_from(keep), max_size=10))
    for d in dups:
        pos = seq.index(d) + draw(st.integers(0, 3))
        seq.insert(min(pos + 1, len(seq)), d)
    max_disp = draw(st.integers(0, 3))
    # local shuffle: sort by index + bounded random displacement
    keyed = [(i + draw(st.integers(0, max_disp)), i, k) for i, k in enumerate(seq)]
    shuffled = [k for _, _, k in sorted(keyed)]
    return shuffled, keep, max_disp


@settings(max_examples=200, deadline=None)
@given(_scrambled())
def test_reorder_output_is_strictly_ordered_unique_and_reports_every_gap(
        case: tuple[list[int], list[int], int]) -> None:
    shuffled, keep, _ = case
    params = reorder.ReorderParams(period_s=PERIOD, window_packets=8, max_hold_s=10.0)
    state, out = _run(params, _packets(shuffled))
    released = [o.payload for o in out if isinstance(o, Packet)]
    # strictly increasing, no duplicates
    assert released == sorted(set(released))
    # with a window larger than the displacement, nothing kept is lost
    assert released == keep
    # every missing run of packets is one gap with the right sample count
    expected_gaps = [(a, b) for a, b in itertools.pairwise(keep) if b != a + 1]
    gaps = [o for o in out if isinstance(o, GapReport)]
    assert len(gaps) == len(expected_gaps) == state.gaps
    for g, (a, b) in zip(gaps, expected_gaps, strict=True):
        assert g.missing == (b - a - 1) * N
    assert state.duplicates == len(shuffled) - len(keep)
    assert state.late == 0


@settings(max_examples=100, deadline=None)
@given(st.lists(st.integers(0, 40), min_size=1, max_size=120))
def test_reorder_never_emits_out_of_order_whatever_arrives(ks: list[int]) -> None:
    params = reorder.ReorderParams(period_s=PERIOD, window_packets=2, max_hold_s=10.0)
    state, out = _run(params, _packets(ks))
    released = [o.payload for o in out if isinstance(o, Packet)]
    assert all(b > a for a, b in itertools.pairwise(released))
    # every arrival is accounted for exactly once
    assert len(released) + state.duplicates + state.late == len(ks)
    assert set(released) <= set(ks)


def test_reorder_holds_at_most_max_hold_then_declares_a_gap() -> None:
    params = reorder.ReorderParams(period_s=PERIOD, window_packets=8, max_hold_s=0.1)
    state: reorder.ReorderState[int] = reorder.init_state()
    p0, p2 = _packets([0, 2])
    state, out = reorder.step(params, state, p0)
    assert out == []  # the first packet waits too (an earlier one may be on its way)
    state, out = reorder.flush_due(params, state, p0.arrival_s + 0.1)
    assert [o.payload for o in out if isinstance(o, Packet)] == [0]
    state, out = reorder.step(params, state, p2)
    assert out == []  # held, waiting for packet 1
    state, out = reorder.flush_due(params, state, p2.arrival_s + 0.05)
    assert out == []
    state, out = reorder.flush_due(params, state, p2.arrival_s + 0.1)
    assert isinstance(out[0], GapReport)
    assert out[0].missing == N
    assert isinstance(out[1], Packet)
    assert out[1].payload == 2
    # packet 1 arriving now is late: dropped, counted, never emitted out of order
    state, out = reorder.step(params, state, _packets([1])[0])
    assert out == []
    assert state.late == 1


def test_reorder_restart_accepts_a_clock_that_went_backwards() -> None:
    params = reorder.ReorderParams(period_s=PERIOD)
    state, _ = _run(params, _packets([5, 6, 7]))
    state = reorder.restart(state)
    state, out = reorder.step(params, state, _packets([0])[0])
    state, out = reorder.flush_all(params, state)
    assert [o.payload for o in out if isinstance(o, Packet)] == [0]


@settings(max_examples=60, deadline=None)
@given(drift_ppm=st.floats(-300, 300), offset=st.floats(-1e4, 1e4),
       seed=st.integers(0, 2**31 - 1), s0=st.floats(0, 1e9))
def test_clock_maps_sensor_time_to_host_within_jitter_floor(
        drift_ppm: float, offset: float, seed: int, s0: float) -> None:
    """Host = offset + (1+k) s + latency, latency = 3 ms + exp(8 ms) with 10 % outliers."""
    rng = np.random.default_rng(seed)
    params = clock.ClockParams()
    state = clock.init_clock()
    k = drift_ppm * 1e-6
    s = s0 + np.arange(0, 60, 0.05)  # a packet every 50 ms for a minute
    lat = 0.003 + rng.exponential(0.008, s.size)
    outliers = rng.random(s.size) < 0.1
    lat[outliers] += rng.uniform(0.0, 0.5, int(outliers.sum()))
    h = offset + (s - s0) * (1 + k) + s0 + lat
    for si, hi in zip(s, h, strict=True):
        state = clock.observe(params, state, float(si), float(hi))
    true_min = offset + (s - s0) * (1 + k) + s0 + 0.003
    err = clock.to_host(state, s[-200:]) - true_min[-200:]
    # within the latency floor's spread, independent of offset, drift and outliers
    assert np.all(np.abs(err) < 0.004), float(np.max(np.abs(err)))
    assert abs(state.drift - k) < 60e-6


def test_clock_is_identity_before_any_observation() -> None:
    st0 = clock.init_clock()
    assert clock.to_host_scalar(st0, 12.5) == 12.5


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), lost_s=st.floats(0.5, 5.0),
       rate_err=st.floats(-0.01, 0.01))
def test_arrival_timer_spaces_samples_at_the_nominal_period_and_finds_outages(
        seed: int, lost_s: float, rate_err: float) -> None:
    """A timestamp-less 200 Hz sensor, 1 sample/packet, jittery arrivals, one outage."""
    rng = np.random.default_rng(seed)
    params = clock.ArrivalParams(period_s=PERIOD)
    state = clock.init_arrival()
    true_period = PERIOD * (1 + rate_err)
    n = 4000
    k = np.arange(n)
    outage = (k >= 2000) & (k < 2000 + int(lost_s / true_period))
    arrivals = 100.0 + k * true_period + 0.004 + rng.exponential(0.006, n)
    times: list[float] = []
    skipped_total = 0
    for i in np.flatnonzero(~outage):
        state, t, skipped = clock.arrival_times(params, state, 1, float(arrivals[i]))
        times.append(float(t[0]))
        skipped_total += skipped
    d = np.diff(times)
    assert np.all(d > 0)
    big = np.flatnonzero(d > 10 * PERIOD)
    assert big.size == 1  # exactly the outage
    assert abs(d[big[0]] - lost_s) < 0.1 * lost_s + 0.1
    assert skipped_total > 0
    normal = np.delete(d, big)
    assert np.allclose(normal, PERIOD)


def test_health_snapshot_counts_and_loss() -> None:
    p = health.HealthParams()
    s = health.HealthState()
    s = health.on_connection(s, True)
    for _ in range(9):
        s = health.on_packet(p, s, 10, 0.01)
    s = health.on_counts(s, gaps=1, missing_samples=10, duplicates=2, malformed=3)
    s = health.on_battery(s, 77)
    s = health.on_connection(s, True, reconnect=True)
    snap = health.snapshot(s, 12.0)
    assert snap.packet_loss_pct == 10.0
    assert snap.gaps == 1
    assert snap.duplicates == 2
    assert snap.malformed == 3
    assert snap.battery_pct == 77
    assert snap.reconnects == 1
    assert snap.connected
    assert snap.latency_ms == 10.0


def test_log_limiter_allows_a_burst_then_counts_suppressed() -> None:
    p = health.LogLimitParams(burst=3, interval_s=10.0)
    s = health.LogLimitState()
    decisions = []
    for i in range(10):
        s, ok, _ = health.log_allowed(p, s, float(i) * 0.1)
        decisions.append(ok)
    assert decisions == [True] * 3 + [False] * 7
    s, ok, reported = health.log_allowed(p, s, 11.0)
    assert ok
    assert reported == 7
