"""Interval plans: parsing, and compliance against walk/run bouts."""

from __future__ import annotations

import pytest

from sensord.coaching.activity import Bout
from sensord.coaching.detectors import bouts, run_offline
from sensord.coaching.params import CoachParams
from sensord.coaching.protocol import compliance, parse_plan
from sensord.coaching.synthetic import SynthRun, synth_steps


def test_parse_plain_plan() -> None:
    p = parse_plan("1 min run / 3 min walk x 6")
    assert len(p.intervals) == 12
    assert p.intervals[0].activity == "run"
    assert p.intervals[0].duration_s == 60.0
    assert p.intervals[1].duration_s == 180.0
    assert p.total_s == 6 * 240.0


def test_parse_groups_units_and_separators() -> None:
    p = parse_plan("5 min walk + (90s run, 2 min walk) x2 + walk 30 sec")
    assert [(i.activity, i.duration_s) for i in p.intervals] == [
        ("walk", 300.0), ("run", 90.0), ("walk", 120.0), ("run", 90.0), ("walk", 120.0),
        ("walk", 30.0)]


@pytest.mark.parametrize(("text", "reason"), [
    ("", "empty plan"), ("1 min sprint", "cannot read"), ("1 fortnight run", "unknown time unit"),
    ("2 min", "neither run nor walk"), ("1 min run x 0", "at least 1"),
])
def test_bad_plans(text: str, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        parse_plan(text)


def test_compliance_exact_and_partial() -> None:
    plan = parse_plan("1 min run / 2 min walk x 2")
    b = [Bout("run", 0, 60, 170), Bout("walk", 60, 180, 200), Bout("run", 180, 270, 250),
         Bout("walk", 270, 300, 50)]
    rep = compliance(plan, b)
    assert [round(r.actual_s) for r in rep.intervals] == [60, 120, 90, 30]
    assert [round(r.compliance_pct) for r in rep.intervals] == [100, 100, 50, 25]
    assert rep.overall_pct == pytest.approx((60 * 100 + 120 * 100 + 60 * 50 + 120 * 25) / 360)
    assert rep.planned_run_s == 120.0
    assert rep.actual_run_s == 150.0
    assert "overall" in rep.format()


def test_compliance_missing_intervals_and_short_blips() -> None:
    plan = parse_plan("1 min run / 1 min walk x 2")
    b = [Bout("walk", -30, 0, 40), Bout("run", 0, 55, 160), Bout("still", 55, 58, 0),
         Bout("run", 58, 62, 10), Bout("walk", 62, 120, 100)]
    rep = compliance(plan, b)
    assert [round(r.actual_s) for r in rep.intervals] == [62, 58, 0, 0]
    assert rep.intervals[2].start_s is None


def test_compliance_from_detected_bouts_of_a_synthetic_session() -> None:
    plan = parse_plan("1 min run / 3 min walk x 3")
    walks = tuple((60.0 + 240.0 * i, 240.0 + 240.0 * i) for i in range(3))
    steps = synth_steps(SynthRun(duration_s=720.0, walks=walks), 7)
    state, _ = run_offline(CoachParams(), steps)
    rep = compliance(plan, bouts(state))
    assert rep.overall_pct > 90.0
    assert all(r.compliance_pct > 85.0 for r in rep.intervals)
