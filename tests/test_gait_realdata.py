"""The engine against real lower-back walking recordings with optical reference.

Reads ../shared/data/lowerback_walking_mobgap (Mobilise-D technical validation study
samples, Stereophoto reference). Skips where the folder is absent.
"""

from __future__ import annotations

import numpy as np
import pytest
from realdata import MISSING, lowerback_final_contacts, lowerback_trials, match

from sensord.gait.engine import EngineParams, analyze, steps_only

TRIALS = lowerback_trials(("Test5",))
pytestmark = [pytest.mark.realdata,
              pytest.mark.skipif(TRIALS is None, reason=MISSING)]


def _cadence(ic: np.ndarray) -> float:
    """Mean of the per-step cadences 60 / interval, the same for engine and reference."""
    return float(np.mean(60.0 / np.diff(np.sort(ic))))


@pytest.mark.parametrize("trial", TRIALS or [], ids=lambda t: t.name)
def test_lower_back_walking_against_optical_reference(trial) -> None:
    steps = steps_only(analyze(EngineParams(placement="pelvis"), trial.samples))
    ic = np.array([s.t_ic for s in steps])
    side = np.array([s.side for s in steps])
    for bout in trial.bouts:
        within = (ic >= bout.ic_s[0] - 0.25) & (ic <= bout.ic_s[-1] + 0.25)
        errors, missed, extra = match(ic[within], bout.ic_s, tolerance_s=0.25)
        assert missed == 0 and extra == 0, (missed, extra)
        assert np.mean(np.abs(errors)) <= 0.030
        assert abs(_cadence(ic[within]) - _cadence(bout.ic_s)) <= 1.0
        expected = np.where(bout.ic_left, "left", "right")
        assert np.mean(side[within] == expected) >= 0.85


def test_lower_back_walking_final_contact_against_optical_reference() -> None:
    """Walking toe-off from the pelvis: pooled over the straight-walk trials, the FC of
    each detected stance against the reference FC of the same foot after its IC."""
    errors = []
    for trial in TRIALS or []:
        ic_ref, ic_side, fc_ref, fc_side = lowerback_final_contacts(trial.name)
        steps = steps_only(analyze(EngineParams(placement="pelvis"), trial.samples))
        for s in steps:
            j = int(np.argmin(np.abs(ic_ref - s.t_ic)))
            if s.t_fc is None or abs(ic_ref[j] - s.t_ic) > 0.1:
                continue
            later = [f for f, side in zip(fc_ref, fc_side) if side == ic_side[j] and f > ic_ref[j]]
            if later:
                errors.append(s.t_fc - min(later))
    assert len(errors) >= 25
    assert float(np.median(np.abs(errors))) <= 0.040
