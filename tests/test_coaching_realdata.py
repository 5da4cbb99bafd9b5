"""Walk/run segmentation on real lower-back walking (Mobilise-D samples, optical reference).

Reads ../shared/data/lowerback_walking_mobgap through tests/realdata.py; skips where the
folder is absent. Everyone walks in these recordings, so no running bout may appear.
"""

from __future__ import annotations

import pytest
from realdata import MISSING, lowerback_trials

from sensord.coaching.activity import classify_step
from sensord.coaching.detectors import bouts, run_offline
from sensord.coaching.params import CoachParams
from sensord.gait.engine import EngineParams, analyze, steps_only

TRIALS = lowerback_trials(("Test5", "Test11"))
pytestmark = [pytest.mark.realdata, pytest.mark.skipif(TRIALS is None, reason=MISSING)]


@pytest.mark.parametrize("trial", TRIALS or [], ids=lambda t: t.name)
def test_real_walking_is_never_a_running_bout(trial) -> None:  # type: ignore[no-untyped-def]
    p = CoachParams()
    steps = steps_only(analyze(EngineParams(placement="pelvis"), trial.samples))
    in_bouts = [s for s in steps
                if any(b.start_s - 0.3 <= s.t_ic <= b.end_s + 0.3 for b in trial.bouts)]
    labels = [classify_step(p, s) for s in in_bouts]
    assert in_bouts
    assert labels.count("walk") >= 0.8 * len(labels)
    state, events = run_offline(p, steps)
    assert [b for b in bouts(state) if b.activity == "run"] == []
    assert [e for e in events if getattr(e, "activity", None) == "run"] == []
