"""A small version of the evaluation bank (benchmarks/eval_coaching.py).

Runs simulator IMU -> gait engine -> detectors when both exist, otherwise the synthetic
step generator; several seeds, so nothing is tuned to one.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

from sensord.coaching.params import CoachParams

ROOT = Path(__file__).resolve().parents[1]


def _bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("eval_coaching",
                                                  ROOT / "benchmarks" / "eval_coaching.py")
    assert spec is not None
    assert spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules["eval_coaching"] = mod
    spec.loader.exec_module(mod)
    return mod


def _source() -> str:
    try:
        from sensord.gait.engine import analyze  # noqa: F401
        from sensord.sources.simulator import simulate  # noqa: F401
    except ImportError:
        return "synthetic"
    return "engine"


BENCH = _bench()
SOURCE = _source()
SMALL = {s.name: s for s in BENCH.scenarios(duration_scale=0.4)}
# shorter warm-up and baseline so the shortened runs have room after the baseline
PARAMS = CoachParams(warmup_s=120.0, baseline_window_s=120.0)


@pytest.mark.parametrize("name", ["cadence -5%", "pelvic drop +2 deg"])
@pytest.mark.parametrize("seed", [1, 2])
def test_fatigue_is_detected_within_a_minute_and_a_half(name: str, seed: int) -> None:
    r = BENCH.evaluate_run(SMALL[name], seed, SOURCE, PARAMS)
    assert r.detected, f"{name} seed {seed} ({SOURCE}): {r.kinds}"
    assert r.delay_s is not None
    assert r.delay_s < 90.0
    assert r.false_alarms == 0


@pytest.mark.parametrize("seed", [3, 4, 5])
def test_no_alarm_on_a_steady_run(seed: int) -> None:
    r = BENCH.evaluate_run(SMALL["steady"], seed, SOURCE, PARAMS)
    assert r.baseline_t_s is not None
    assert r.hours > 0.1
    assert r.false_alarms == 0, r.kinds
    assert r.band_alerts == 0, r.kinds


def test_table_reports_rates() -> None:
    r = BENCH.evaluate_run(SMALL["steady"], 6, "synthetic", PARAMS)
    text = BENCH.table([r])
    assert "steady" in text
    assert "FA/h" in text
