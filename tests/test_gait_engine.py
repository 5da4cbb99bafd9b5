"""Gait engine on simulated running: accuracy, gaps, chunk invariance, bounded state."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from realdata import DATA, MISSING, lowerback_trials

from sensord.gait import resample, timing
from sensord.gait.engine import EngineParams, analyze, finish, init_state, step, steps_only
from sensord.gait.filters import Ring, Windows, ema_fold
from sensord.model import Gap, SampleBlock, Step
from sensord.sources.simulator import SimParams, parse_segments, simulate


def _match(steps: list[Step], truth: list, tol_s: float = 0.08) -> tuple[list, int, int]:
    """Pairs (detected, truth) by nearest IC; (pairs, missed, extra)."""
    t_truth = np.array([t.t_ic for t in truth])
    pairs, used = [], set()
    for s in steps:
        j = int(np.argmin(np.abs(t_truth - s.t_ic)))
        if abs(t_truth[j] - s.t_ic) <= tol_s and j not in used:
            used.add(j)
            pairs.append((s, truth[j]))
    return pairs, len(truth) - len(used), len(steps) - len(pairs)


def _interior(truth: list, samples: SampleBlock, margin_s: float = 1.0) -> list:
    t0, t1 = samples.t_s[0], samples.t_s[-1]
    return [t for t in truth if t0 + margin_s < t.t_ic < t1 - margin_s]


@pytest.mark.parametrize(("seed", "kw"), [
    (1, {}),
    (2, {"mount": "random", "jitter_ms": 1.0, "acc_noise_mps2": 0.3}),
    (3, {"mount": "random", "rate_hz": 100.0, "jitter_ms": 2.0}),
    (4, {"mount": "random", "rate_hz": 52.0, "cadence_spm": 180.0, "gct_ms": 210.0}),
    (5, {"mount": "random", "rate_hz": 500.0, "speed_mps": 4.5, "cadence_spm": 184.0,
         "gct_ms": 190.0, "pelvic_drop_deg": 7.0, "asymmetry_pct": 6.0}),
])
def test_simulated_running_accuracy(seed: int, kw: dict) -> None:
    params = SimParams(duration_s=90.0, **{k: v for k, v in kw.items()
                                          if k in SimParams.__dataclass_fields__})
    res = simulate(params, seed=seed)
    steps = [s for s in steps_only(analyze(EngineParams(), res.samples))
             if res.samples.t_s[0] + 1.0 < s.t_ic < res.samples.t_s[-1] - 1.0]
    truth = _interior(res.truth, res.samples)
    pairs, missed, extra = _match(steps, truth)
    assert missed == 0 and extra == 0
    gct_err = np.array([s.gct_ms - t.gct_ms for s, t in pairs if s.gct_ms is not None])
    assert gct_err.size >= 0.95 * len(pairs)
    assert np.mean(np.abs(gct_err)) <= 10.0
    drop_err = np.array([s.pelvic_drop_deg - t.pelvic_drop_deg for s, t in pairs[8:]
                         if s.pelvic_drop_deg is not None])
    assert drop_err.size >= 0.9 * (len(pairs) - 8)
    assert np.sqrt(np.mean(drop_err**2)) <= 1.0
    assert sum(s.side == t.side for s, t in pairs) >= 0.98 * len(pairs)
    # cadence over the run, from the detected contacts and from the truth
    t_ic = np.array([s.t_ic for s in steps])
    t_truth = np.array([t.t_ic for t in truth])
    truth_rate = 60.0 * (t_truth.size - 1) / (t_truth[-1] - t_truth[0])
    assert abs(60.0 * (t_ic.size - 1) / (t_ic[-1] - t_ic[0]) - truth_rate) <= 1.0
    per_step = np.mean([s.cadence_spm for s in steps if s.cadence_spm is not None])
    assert abs(per_step - truth_rate) <= 1.0


def test_accelerometer_only_still_gives_contacts_and_cadence() -> None:
    res = simulate(SimParams(duration_s=60.0, gyro=False, mount="random"), seed=7)
    assert res.samples.gyr_dps is None
    steps = steps_only(analyze(EngineParams(), res.samples))
    pairs, missed, extra = _match(
        [s for s in steps if 1.0 < s.t_ic < 59.0], _interior(res.truth, res.samples))
    assert missed == 0 and extra == 0
    gct_err = [s.gct_ms - t.gct_ms for s, t in pairs if s.gct_ms is not None]
    assert len(gct_err) >= 0.95 * len(pairs) and np.mean(np.abs(gct_err)) <= 10.0
    assert all(s.side is None and s.pelvic_drop_deg is None for s in steps)
    assert all(s.cadence_spm is not None for s in steps[6:])


def test_gaps_reset_the_engine_and_no_step_spans_a_gap() -> None:
    res = simulate(SimParams(duration_s=120.0, dropout_rate=0.05, dropout_s=1.0), seed=11)
    events = analyze(EngineParams(), res.samples)
    gaps = [e for e in events if isinstance(e, Gap)]
    steps = steps_only(events)
    assert gaps, "the simulator produced dropouts; the engine must report them"
    for s in steps:
        for g in gaps:
            assert not (s.t_ic < g.t_end_s and (s.t_fc or s.t_ic) > g.t_start_s)
    # every detected step is a real one: no fake steps around the gaps
    _, _, extra = _match(steps, res.truth)
    assert extra == 0


def test_nan_rows_are_gaps_not_steps() -> None:
    res = simulate(SimParams(duration_s=30.0), seed=5)
    acc = res.samples.acc_mps2.copy()
    t = res.samples.t_s
    hole = (t > 10.0) & (t < 12.0)
    acc[hole] = np.nan
    events = analyze(EngineParams(), SampleBlock(t, acc, res.samples.gyr_dps))
    gaps = [e for e in events if isinstance(e, Gap)]
    assert len(gaps) == 1 and gaps[0].t_start_s < 10.01 and gaps[0].t_end_s > 11.99
    assert not any(10.0 < s.t_ic < 12.0 for s in steps_only(events))


_CHUNK_REC = simulate(SimParams(duration_s=12.0, mount="random", jitter_ms=1.0), seed=21)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cuts=st.lists(st.integers(min_value=1, max_value=len(_CHUNK_REC.samples) - 1),
                     max_size=30, unique=True))
def test_results_do_not_depend_on_block_splits(cuts: list[int]) -> None:
    samples = _CHUNK_REC.samples
    whole = analyze(EngineParams(), samples)
    bounds = [0, *sorted(cuts), len(samples)]
    parts = analyze(EngineParams(), [samples.slice(a, b) for a, b in zip(bounds, bounds[1:])])
    assert len(whole) == len(parts) > 20
    _assert_same_events(whole, parts)


def _assert_same_events(first: list, second: list) -> None:
    """Same events in the same order, floats equal to 1e-9 (summation order may differ)."""
    assert len(first) == len(second)
    for a, b in zip(first, second):
        assert type(a) is type(b)
        for (k, va), vb in zip(a.to_dict().items(), b.to_dict().values()):
            if isinstance(va, float) and isinstance(vb, float):
                assert va == pytest.approx(vb, abs=1e-9), k
            else:
                assert va == vb, k


def _per_call(placement: str, blocks: list[SampleBlock],
              hold: bool) -> tuple[list[int], list, int]:
    """Events, the index of the call that returned each (-1: finish) and how many calls
    left blocks held."""
    params = EngineParams(placement=placement, hold_blocks=hold)
    state = init_state(params)
    calls, events, holding = [], [], 0
    for i, blk in enumerate(blocks):
        state, ev = step(params, state, blk)
        holding += bool(state.held)
        calls += [i] * len(ev)
        events += ev
    state, ev = finish(params, state)
    return calls + [-1] * len(ev), events + ev, holding


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(sizes=st.lists(st.integers(min_value=1, max_value=40), min_size=1, max_size=20))
def test_holding_delays_no_step_whatever_the_block_sizes(sizes: list[int]) -> None:
    samples = _CHUNK_REC.samples
    bounds, k = [0], 0
    while bounds[-1] < len(samples):  # the sizes, over and over
        bounds.append(min(len(samples), bounds[-1] + sizes[k % len(sizes)]))
        k += 1
    blocks = [samples.slice(a, b) for a, b in zip(bounds, bounds[1:])]
    calls, events, _ = _per_call("pelvis", blocks, hold=True)
    plain_calls, plain_events, _ = _per_call("pelvis", blocks, hold=False)
    assert calls == plain_calls
    _assert_same_events(events, plain_events)


def _run_walk_with_dropouts() -> tuple[str, list[SampleBlock]]:
    plan = parse_segments("25:run:3.2,20:walk:1.4,25:run:3.0")
    samples = simulate(SimParams(duration_s=70.0, mount="random", jitter_ms=1.0,
                                 dropout_rate=0.05, dropout_s=0.3, segments=plan),
                       seed=12).samples
    return "pelvis", list(_blocks(samples, 4))


def _gyro_lost_halfway() -> tuple[str, list[SampleBlock]]:
    samples = simulate(SimParams(duration_s=30.0, mount="random"), seed=3).samples
    blocks = list(_blocks(samples, 4))
    half = len(blocks) // 2
    return "pelvis", blocks[:half] + [SampleBlock(b.t_s, b.acc_mps2, None)
                                      for b in blocks[half:]]


def _real_lower_back_walks() -> tuple[str, list[SampleBlock]]:
    trials = lowerback_trials(("Test5", "Test11"))
    if trials is None:
        pytest.skip(MISSING)
    # the free-living circuits and straight walks one after the other, 2-sample blocks
    # (100 Hz: 20 ms notifications)
    out: list[SampleBlock] = []
    t0 = 0.0
    for tr in trials:
        s = tr.samples
        shifted = SampleBlock(s.t_s - s.t_s[0] + t0, s.acc_mps2, s.gyr_dps)
        out += list(_blocks(shifted, 2))
        t0 = float(shifted.t_s[-1]) + 5.0
    return "pelvis", out


def _foot_run_walk_with_dropouts() -> tuple[str, list[SampleBlock]]:
    plan = parse_segments("25:run:3.4,20:walk:1.4,25:run:3.0")
    samples = simulate(SimParams(duration_s=70.0, placement="foot", mount="random",
                                 dropout_rate=0.05, dropout_s=0.3, segments=plan),
                       seed=13).samples
    return "foot", list(_blocks(samples, 4))


def _real_foot_walk_raw_mounting() -> tuple[str, list[SampleBlock]]:
    path = DATA / "foot_walking_gaitmap" / "imu_sample_not_rotated.csv"
    if not path.is_file():
        pytest.skip(MISSING)
    # left foot in its raw sensor orientation: the pitch axis and its sign are found
    # from the motion, and the ring is rescanned once they are (a batch of contacts)
    a = np.loadtxt(path, delimiter=",", skiprows=2)[:, 1:7]
    t = np.arange(a.shape[0]) / 204.8
    return "foot", list(_blocks(SampleBlock(t, a[:, :3].copy(), a[:, 3:].copy()), 4))


@pytest.mark.parametrize("stream", [_run_walk_with_dropouts, _gyro_lost_halfway,
                                    _real_lower_back_walks, _foot_run_walk_with_dropouts,
                                    _real_foot_walk_raw_mounting])
def test_held_blocks_delay_no_step(stream) -> None:
    """Live-sized blocks that cannot complete a step are held and folded in with a later
    one (``hold_blocks``): every step still comes out of the same call, with the same
    values, as when every block is folded at once (pelvis and foot; running, walking,
    dropouts, a sensor whose gyroscope stops reporting, real walking with turns, a foot
    sensor in its raw mounting)."""
    placement, blocks = stream()
    calls, events, holding = _per_call(placement, blocks, hold=True)
    plain_calls, plain_events, plain_holding = _per_call(placement, blocks, hold=False)
    assert plain_holding == 0 and holding > len(blocks) // 10  # the hold path ran
    assert sum(isinstance(e, Step) for e in events) > 25
    if stream in (_run_walk_with_dropouts, _foot_run_walk_with_dropouts):
        assert sum(isinstance(e, Gap) for e in events) >= 2
    assert calls == plain_calls
    _assert_same_events(events, plain_events)


def test_state_stays_bounded() -> None:
    res = simulate(SimParams(duration_s=240.0), seed=2)
    params = EngineParams()
    state = init_state(params)
    held = []
    for i, blk in enumerate(_blocks(res.samples, 200)):
        state, _ = step(params, state, blk)
        if i % 40 == 0:
            det = state.detector
            held.append((det.raw.data.shape[0], det.der.data.shape[0], len(det.pending)))
            assert sum(len(b) for b in state.held) <= 200  # blocks not folded in yet
    state, _ = finish(params, state)
    # the history (5 s) plus at most the last block, whatever the length of the run
    limit = round(params.pelvis.history_s * params.grid.rate_hz) + 202
    assert len(held) >= 5
    assert all(raw <= limit and der <= limit and pending <= 3 for raw, der, pending in held)


def _blocks(samples: SampleBlock, n: int):
    for a in range(0, len(samples), n):
        yield samples.slice(a, a + n)


def test_resampler_interpolates_onto_the_absolute_grid() -> None:
    t = np.array([0.0, 0.01, 0.02, 0.03])
    acc = np.column_stack([t * 100.0, np.zeros(4), np.full(4, 9.81)])
    state, blocks, gaps = resample.step(resample.ResampleParams(rate_hz=200.0),
                                        resample.ResampleState(), SampleBlock(t, acc))
    assert not gaps and len(blocks) == 1 and blocks[0].reset
    assert blocks[0].start_index == 0 and len(blocks[0]) == 7
    np.testing.assert_allclose(blocks[0].acc_mps2[:, 0], np.arange(7) * 0.5)
    # a long pause in the timestamps is a gap: a new segment, flagged reset
    t2 = np.array([0.5, 0.505])
    state, blocks, gaps = resample.step(resample.ResampleParams(rate_hz=200.0), state,
                                        SampleBlock(t2, acc[:2]))
    assert gaps == [(0.03, 0.5)] and blocks[0].reset and blocks[0].start_index == 100


def test_steps_are_emitted_within_50_ms_of_toe_off_in_sample_time() -> None:
    """Look-ahead, counted in samples (not wall time): fed 10 ms blocks as live, each
    step must come out of the engine at most 50 ms of signal after its toe-off."""
    res = simulate(SimParams(duration_s=40.0, mount="random"), seed=8)
    params = EngineParams()
    state = init_state(params)
    delays = []
    for blk in _blocks(res.samples, 2):
        state, events = step(params, state, blk)
        delays += [blk.t_s[-1] - e.t_fc for e in steps_only(events) if e.t_fc is not None]
    assert len(delays) > 100
    assert max(delays) <= 0.050


@settings(max_examples=40, deadline=None)
@given(n=st.integers(0, 300), folded=st.integers(0, 60), chunk=st.integers(1, 80))
def test_running_average_fold_matches_its_recurrence(n: int, folded: int, chunk: int) -> None:
    rng = np.random.default_rng(n + 1000 * folded)
    y, x0 = rng.normal(size=(n, 4)), rng.normal(size=4)
    w = 1.0 / np.minimum(40.0, folded + np.arange(n) + 1.0)
    expected, x = np.empty_like(y), x0
    for k in range(n):
        x = (1.0 - w[k]) * x + w[k] * y[k]
        expected[k] = x
    np.testing.assert_allclose(ema_fold(x0, y, w, chunk=chunk), expected, rtol=0, atol=1e-12)


@given(bounds=st.lists(st.tuples(st.integers(0, 40), st.integers(-3, 12)), min_size=1,
                      max_size=12))
def test_ragged_windows_reduce_each_window_alone(bounds: list[tuple[int, int]]) -> None:
    x = np.random.default_rng(len(bounds)).normal(size=60)
    start = np.array([a for a, _ in bounds])
    stop = np.array([a + n for a, n in bounds])
    win = Windows.of(start, stop)
    vals = x[win.index]
    maxima = win.reduce(np.maximum, vals, np.nan)
    sums = win.reduce(np.add, vals, 0.0)
    firsts = win.first(vals)
    runs = win.cumsum(vals)
    for k, (a, b) in enumerate(zip(start, stop, strict=True)):
        own = x[a:max(a, b)]
        assert win.count[k] == own.size
        if own.size:
            assert maxima[k] == own.max() and firsts[k] == own[0]
            assert sums[k] == pytest.approx(own.sum(), abs=1e-12)
            part = runs[win.offset[k]: win.offset[k] + own.size]
            np.testing.assert_allclose(part, np.cumsum(own), rtol=0, atol=1e-12)
        else:
            assert np.isnan(maxima[k]) and sums[k] == 0.0 and np.isnan(firsts[k])


@given(appends=st.lists(st.tuples(st.integers(0, 30), st.booleans()), min_size=1, max_size=40),
       max_len=st.integers(1, 50))
def test_ring_appends_never_change_what_an_earlier_ring_holds(
        appends: list[tuple[int, bool]], max_len: int) -> None:
    """Appends write into spare room in place; a ring handed out earlier (and a second
    branch appended to it) must still see exactly its own rows."""
    ring, counter, kept = Ring.empty(0, 2), 0, []
    for k, branch in appends:
        new = np.arange(counter, counter + k, dtype=float)[:, None].repeat(2, axis=1)
        counter += k
        if branch and kept:
            old, old_rows = kept[-1]
            other = old.append(-new - 1.0, max_len)  # a second branch off an older ring
            held = np.concatenate([old_rows, -new - 1.0])[-max_len:]
            np.testing.assert_array_equal(other.data, held)
        before = ring.data.copy()
        ring = ring.append(new, max_len)
        expected = np.concatenate([before, new])[-max_len:]
        np.testing.assert_array_equal(ring.data, expected)
        assert ring.end == counter and ring.data.shape[0] <= max_len
        kept.append((ring, expected.copy()))
    for r, rows in kept:
        np.testing.assert_array_equal(r.data, rows)


def test_timing_fold_follows_its_definitions_whatever_the_batches() -> None:
    # 40 alternating contacts every 0.35 s (GCT left 220 ms, right 250 ms), a 5 s pause,
    # then 10 more: cadence restarts after the pause, balance keeps its history
    t_ic = np.concatenate([np.arange(40) * 0.35, 19.0 + np.arange(10) * 0.35])
    side = np.where(np.arange(50) % 2 == 0, timing.LEFT, timing.RIGHT).astype(np.int8)
    t_fc = t_ic + np.where(side == timing.LEFT, 0.22, 0.25)
    t_fc[7] = np.nan  # no toe-off found for one stance
    params = timing.TimingParams()
    _, whole = timing.fold(params, timing.TimingState(), t_ic, t_fc, side)
    assert np.isnan(whole.cadence_spm[0]) and np.isnan(whole.cadence_spm[40])
    np.testing.assert_allclose(whole.cadence_spm[[1, 20, 41, 49]], 60.0 / 0.35)
    np.testing.assert_allclose(whole.stride_time_s[2:40], 0.7)
    after_left = side[8:39] == timing.LEFT
    np.testing.assert_allclose(whole.flight_ms[9:40], np.where(after_left, 130.0, 100.0))
    assert np.isnan(whole.flight_ms[8])  # the previous stance had no toe-off
    np.testing.assert_allclose(whole.gct_balance_pct[1:], 100.0 * 220.0 / 470.0)
    assert whole.step_index.tolist() == list(range(50))
    for cuts in ([1, 2, 3], [7, 8, 40, 41], [25]):
        state, parts = timing.TimingState(), []
        for a, b in zip([0, *cuts], [*cuts, 50], strict=True):
            state, cols = timing.fold(params, state, t_ic[a:b], t_fc[a:b], side[a:b])
            parts.append(np.column_stack(cols))
        np.testing.assert_allclose(np.concatenate(parts), np.column_stack(whole),
                                   rtol=0, atol=1e-9, equal_nan=True)

