"""evolve(): the functional update every per-sample and per-packet state goes through."""

from __future__ import annotations

import numpy as np
import pytest

from sensord.gait.pelvis import PelvisParams, init_pelvis
from sensord.sources.ble.health import HealthState
from sensord.state import evolve


def test_evolve_copies_with_changes_and_rejects_unknown_fields() -> None:
    old = init_pelvis(PelvisParams(), 200.0)
    new = evolve(old, cand_next=7, trough_g=0.5)
    assert (new.cand_next, new.trough_g, old.cand_next, old.trough_g) == (7, 0.5, 0, np.inf)
    assert new.raw is old.raw and type(new) is type(old)
    with pytest.raises(TypeError, match=r"no field.*cand_nxt"):
        evolve(old, cand_nxt=7)
    with pytest.raises(AttributeError):
        new.cand_next = 8  # type: ignore[misc]  # still frozen


def test_evolve_keeps_equality_semantics_of_value_states() -> None:
    a = HealthState()
    b = evolve(a, packets=3)
    assert b == evolve(HealthState(), packets=3) and b != a and a == HealthState()
