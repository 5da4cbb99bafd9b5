"""Runner config: the example loads, and bad files are refused naming file/key/reason."""

from __future__ import annotations

from pathlib import Path

import pytest

from sensord.coaching.config import load_config
from sensord.errors import InputError

ROOT = Path(__file__).resolve().parents[1]


def test_example_config_loads() -> None:
    cfg = load_config(ROOT / "configs" / "runner.example.toml")
    assert cfg.runner_id == "runner-01"
    assert cfg.placement == "pelvis"
    assert cfg.params.cadence_min_spm == 170.0
    assert cfg.params.cusum_h == 5.0
    assert cfg.params.pain_stop_score == 3
    assert cfg.protocol is not None
    assert [i.activity for i in cfg.protocol.intervals[:2]] == ["run", "walk"]
    assert len(cfg.protocol.intervals) == 12


@pytest.mark.parametrize(
    ("text", "key", "reason"),
    [
        ("[targets]\ncadence_min_spm = 185\ncadence_max_spm = 175\n",
         "targets.cadence_min_spm", "above max"),
        ("[baseline]\nwarmup_s = -10\n", "baseline.warmup_s", ">= 0"),
        ("[pain]\nstop_score = 11\n", "pain.stop_score", "0-10"),
        ("[pain]\nstop_score = 2.5\n", "pain.stop_score", "integer"),
        ("[targets]\ncadense_min_spm = 170\n", "targets.cadense_min_spm", "unknown key"),
        ("[target]\ncadence_min_spm = 170\n", "target", "unknown section"),
        ("[detectors]\nsensitivity = \"extreme\"\n", "detectors.sensitivity", "unknown"),
        ("[detectors]\nblock_s = \"5\"\n", "detectors.block_s", "must be a number"),
        ("[detectors]\newma_lambda = 1.5\n", "detectors.ewma_lambda", "(0, 1]"),
        ("[protocol]\nplan = \"1 min sprint / 2 min walk\"\n", "protocol", "cannot read"),
        ("[protocol]\nrepeat = 2\n[[protocol.intervals]]\nactivity = \"run\"\n"
         "duration_s = -5\n", "protocol", "intervals[0].duration_s"),
        ("[runner]\nplacement = \"wrist\"\n", "runner.placement", "pelvis"),
        ("[targets\n", "TOML syntax error", "line 1"),
        ("[targets]\ncadence_min_spm = 1" + "0" * 400 + "\n", "targets.cadence_min_spm",
         "out of range"),
    ],
)
def test_bad_config_is_refused_naming_file_key_reason(
    tmp_path: Path, text: str, key: str, reason: str
) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(InputError) as exc:
        load_config(path)
    msg = str(exc.value)
    assert str(path) in msg
    assert key in msg
    assert reason in msg


def test_missing_file_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="cannot read runner config"):
        load_config(tmp_path / "nope.toml")


def test_structured_protocol_form(tmp_path: Path) -> None:
    path = tmp_path / "r.toml"
    path.write_text("[protocol]\nrepeat = 3\n[[protocol.intervals]]\nactivity = \"run\"\n"
                    "duration_s = 90\n[[protocol.intervals]]\nactivity = \"walk\"\n"
                    "duration_s = 120\n")
    cfg = load_config(path)
    assert cfg.protocol is not None
    assert [(i.activity, i.duration_s) for i in cfg.protocol.intervals] == [
        ("run", 90.0), ("walk", 120.0)] * 3
