"""Tests of the streaming coaching detectors on synthetic step streams."""

from __future__ import annotations

import dataclasses
import itertools

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sensord.coaching.detectors import State, bouts, finish, init_state, run_offline, step
from sensord.coaching.params import CoachParams
from sensord.coaching.synthetic import SynthFatigue, SynthRun, synth_steps
from sensord.model import Alert, FormSummary, PainReport, Step

P = CoachParams()


def _alerts(events: list[Alert | FormSummary]) -> list[Alert]:
    return [e for e in events if isinstance(e, Alert)]


_STEPS_CACHE: dict[int, list[Step]] = {}


def _fatigued(seed: int) -> list[Step]:
    if seed not in _STEPS_CACHE:
        run = SynthRun(
            duration_s=1200.0,
            walks=((560.0, 620.0),),
            fatigue=SynthFatigue(800.0, 60.0, cadence_pct=-5.0, pelvic_drop_deg=2.0,
                                 pelvic_side="left"),
        )
        _STEPS_CACHE[seed] = synth_steps(run, seed)
    return _STEPS_CACHE[seed]


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cuts=st.lists(st.integers(min_value=0, max_value=4000), max_size=12),
       seed=st.sampled_from([3, 4]))
def test_chunk_invariance_random_splits(cuts: list[int], seed: int) -> None:
    steps = _fatigued(seed)
    pain = [PainReport(700.0, 2), PainReport(1000.0, 4, "lower back")]
    ref_state, ref = run_offline(P, steps, pain)
    bounds = sorted({0, len(steps), *[min(c, len(steps)) for c in cuts]})
    state = init_state()
    got: list[Alert | FormSummary] = []
    for a, b in itertools.pairwise(bounds):
        chunk = steps[a:b]
        lo = steps[a - 1].t_ic if a > 0 else -1e9
        hi = chunk[-1].t_ic if b < len(steps) else 1e9
        chunk_pain = [r for r in pain if lo < r.t_s <= hi]
        state, ev = step(P, state, chunk, chunk_pain)
        got.extend(ev)
    state, ev = finish(P, state)
    got.extend(ev)
    assert got == ref
    assert state == ref_state


def test_cadence_drop_detected_soon_after_onset_several_seeds() -> None:
    for seed in (11, 12, 13):
        run = SynthRun(duration_s=1200.0, fatigue=SynthFatigue(800.0, 60.0, cadence_pct=-5.0))
        _, ev = run_offline(P, synth_steps(run, seed))
        raised = [a for a in _alerts(ev) if a.kind == "cadence_low" and a.state == "raised"]
        assert raised, f"seed {seed}: no cadence alert"
        a = raised[0]
        assert 800.0 <= a.t_s <= 860.0
        assert 760.0 <= a.began_at_s <= a.t_s
        assert a.baseline is not None
        assert a.current is not None
        assert a.current < a.baseline
        assert a.message.startswith("Cadence ")
        assert "early-run" in a.message


def test_pelvic_drop_detected_on_the_fatigued_side_only() -> None:
    run = SynthRun(duration_s=1200.0,
                   fatigue=SynthFatigue(800.0, 60.0, pelvic_drop_deg=2.0, pelvic_side="right"))
    _, ev = run_offline(P, synth_steps(run, 21))
    drops = [a for a in _alerts(ev) if a.kind == "pelvic_drop_rising" and a.state == "raised"]
    assert [a.side for a in drops] == ["right"]
    assert drops[0].t_s - 800.0 < 60.0


def test_steady_runs_raise_nothing_several_seeds() -> None:
    for seed in (31, 32, 33, 34):
        _, ev = run_offline(P, synth_steps(SynthRun(duration_s=2400.0), seed))
        assert _alerts(ev) == [], f"seed {seed}"


def test_walk_breaks_gaps_and_pace_changes_do_not_alarm() -> None:
    run = SynthRun(duration_s=2400.0, pace=((900.0, 0.9), (1300.0, 1.1), (1600.0, 1.0)),
                   walks=((1800.0, 1920.0),), gaps=((2100.0, 2115.0),))
    for seed in (41, 42):
        _, ev = run_offline(P, synth_steps(run, seed))
        kinds = {a.kind for a in _alerts(ev)}
        assert not kinds & {"cadence_low", "pelvic_drop_rising", "variability_rising",
                            "impact_rising", "vertical_oscillation_rising"}, kinds


def test_clear_messages_say_only_what_the_numbers_show() -> None:
    """The band chart clears a little below the band (noise allowance): then it must not
    say 'back in your target band'."""
    p = dataclasses.replace(P, cadence_min_spm=177.0, cadence_max_spm=186.0)
    run = SynthRun(duration_s=1500.0,
                   fatigue=SynthFatigue(800.0, 30.0, cadence_pct=-6.0, recover_s=1000.0))
    cleared = [a for seed in (51, 52) for a in _alerts(run_offline(p, synth_steps(run, seed))[1])
               if a.kind == "cadence_below_band" and a.state == "cleared"]
    assert cleared
    for a in cleared:
        assert ("back in your target band" in a.message) == (a.current >= 177.0), a


def test_alert_clears_after_recovery_then_cooldown() -> None:
    run = SynthRun(duration_s=1500.0,
                   fatigue=SynthFatigue(800.0, 30.0, cadence_pct=-6.0, recover_s=1000.0))
    _, ev = run_offline(P, synth_steps(run, 51))
    cad = [a for a in _alerts(ev) if a.kind == "cadence_low"]
    assert [a.state for a in cad] == ["raised", "cleared"]
    assert 1000.0 < cad[1].t_s < 1000.0 + 120.0
    assert cad[1].severity == "info"


def test_first_strides_long_info_alert() -> None:
    run = SynthRun(duration_s=400.0, first_strides_extra_pct=35.0)
    _, ev = run_offline(P, synth_steps(run, 61))
    fs = [a for a in _alerts(ev) if a.kind == "first_strides_long"]
    assert len(fs) == 1
    assert fs[0].severity == "info"
    assert "shorten" in fs[0].message
    _, ev2 = run_offline(P, synth_steps(SynthRun(duration_s=400.0), 61))
    assert not [a for a in _alerts(ev2) if a.kind == "first_strides_long"]


def test_pain_stop_and_clear_and_history_kept() -> None:
    steps = synth_steps(SynthRun(duration_s=200.0), 71)
    pain = [PainReport(50.0, 2), PainReport(90.0, 3, "left hip"), PainReport(150.0, 1)]
    state, ev = run_offline(P, steps, pain)
    ps = [a for a in _alerts(ev) if a.kind == "pain_stop"]
    assert [(a.state, a.severity) for a in ps] == [("raised", "critical"), ("cleared", "info")]
    assert ps[0].message == "Pain 3/10 (left hip): stop running and walk home"
    assert ps[0].t_s == 90.0
    assert state.pain == tuple(pain)
    p5 = CoachParams(pain_stop_score=5)
    _, ev5 = run_offline(p5, steps, pain)
    assert not [a for a in _alerts(ev5) if a.kind == "pain_stop"]


def test_form_summaries_every_5_s_with_score_and_factors() -> None:
    run = SynthRun(duration_s=1200.0, fatigue=SynthFatigue(800.0, 60.0, cadence_pct=-6.0))
    _, ev = run_offline(P, synth_steps(run, 81))
    fs = [e for e in ev if isinstance(e, FormSummary)]
    ts = [f.t_s for f in fs]
    assert all(abs((b - a) - 5.0) < 1e-9 for a, b in itertools.pairwise(ts))
    early = [f for f in fs if 600 < f.t_s < 780]
    late = [f for f in fs if f.t_s > 1000]
    assert all(f.form_score is not None and f.form_score > 90 for f in early)
    assert all(f.form_score is not None and f.form_score < 90 for f in late)
    assert late[-1].form_factors is not None
    assert late[-1].form_factors.split(",")[0] == "cadence_spm"
    assert all(f.activity == "run" for f in late)
    assert all(f.cadence_spm is not None and 150 < f.cadence_spm < 175 for f in late)


def test_walk_run_bouts() -> None:
    run = SynthRun(duration_s=900.0, walks=((300.0, 480.0),), gaps=((700.0, 720.0),))
    state, _ = run_offline(P, synth_steps(run, 91))
    got = [(b.activity, b.start_s, b.end_s) for b in bouts(state)]
    assert [g[0] for g in got] == ["run", "walk", "run", "still", "run"]
    assert abs(got[1][1] - 300.0) < 3.0
    assert abs(got[1][2] - 480.0) < 3.0
    assert abs(got[3][1] - 700.0) < 1.0
    assert abs(got[3][2] - 720.0) < 1.0


def test_state_is_bounded() -> None:
    def size(s: State) -> int:
        return (len(s.block_steps) + len(s.recent) + len(s.baseline_buf) + len(s.first)
                + len(s.settled) + len(s.pain))

    p = CoachParams(max_bouts=16)
    short, _ = run_offline(p, synth_steps(SynthRun(duration_s=1200.0), 5))
    long_run = SynthRun(duration_s=6 * 3600.0, walks=tuple(
        (t, t + 60.0) for t in range(1200, 6 * 3600, 600)))
    long, _ = run_offline(p, synth_steps(long_run, 5))
    assert size(long) <= size(short) + 40
    assert len(long.bouts) == 16
    assert long.bouts[-1].start_s > 6 * 3600.0 - 700.0


def test_foot_sensor_stream_one_contact_per_stride() -> None:
    """A shoe sensor sees one foot: no step time, flight, drop, balance or oscillation."""
    from dataclasses import replace

    run = SynthRun(duration_s=1200.0, fatigue=SynthFatigue(800.0, 60.0, cadence_pct=-5.0))
    foot = [
        replace(s, placement="foot", step_time_s=None, flight_ms=None, pelvic_drop_deg=None,
                gct_balance_pct=None, vertical_oscillation_cm=None)
        for s in synth_steps(run, 101) if s.side == "left"
    ]
    state, ev = run_offline(P, foot)
    assert state.baseline is not None
    raised = [a for a in _alerts(ev) if a.state == "raised"]
    assert [a.kind for a in raised][:1] == ["cadence_low"]
    assert 800.0 < raised[0].t_s < 870.0
    assert not [a for a in raised if a.kind == "pelvic_drop_rising"]
    assert [b.activity for b in bouts(state)] == ["run"]


def test_balance_shift_detected_on_the_leaning_side() -> None:
    for seed in (1, 2):
        run = SynthRun(duration_s=1100.0, fatigue=SynthFatigue(800.0, 60.0, balance_pct=3.0))
        _, ev = run_offline(P, synth_steps(run, seed))
        raised = [a for a in _alerts(ev) if a.state == "raised"]
        assert [(a.kind, a.side) for a in raised] == [("gct_balance_drift", "left")]
        assert raised[0].t_s - 800.0 < 150.0
