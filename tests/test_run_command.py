"""`sensord run` on embedded defaults: the whole local chain, end to end."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path


def test_run_on_defaults_streams_steps_raises_alerts_and_writes_a_report(tmp_path: Path) -> None:
    r = subprocess.run([sys.executable, "-m", "sensord.cli", "run", "--speed", "0",
                        "--store", str(tmp_path), "--quiet"],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    store = list(tmp_path.glob("*.jsonl"))
    assert len(store) == 1
    records = [json.loads(line) for line in store[0].read_text().splitlines()]
    kinds = {rec["record"] for rec in records}
    assert {"run", "step", "formsummary"} <= kinds
    steps = [rec for rec in records if rec["record"] == "step"]
    assert len(steps) > 2400  # 15 min at ~170-180 spm
    raised = [rec for rec in records if rec["record"] == "alert" and rec["state"] == "raised"]
    # form degrades after 10 minutes in the default simulation: the coach must say so,
    # and not before
    assert raised and min(a["began_at_s"] for a in raised
                          if a["kind"] != "overstride_start") > 540.0
    assert "!!" in r.stdout
    assert "publishing to mqtt://127.0.0.1:" in r.stderr  # a local broker for the run
    html = list(tmp_path.glob("*.html"))
    assert len(html) == 1 and "<svg" in html[0].read_text()


def test_run_refuses_bad_arguments_with_one_line(tmp_path: Path) -> None:
    for args, says in ((["--sensor", str(tmp_path / "nope.csv")], "no such file"),
                       (["--speed", "-1"], "--speed"),
                       (["--duration-s", "5"], "--duration-s")):
        r = subprocess.run([sys.executable, "-m", "sensord.cli", "run", *args, "--broker", "none",
                            "--store", str(tmp_path)], capture_output=True, text=True,
                           timeout=120)
        assert r.returncode == 2, args
        assert "Traceback" not in r.stderr
        assert says in r.stderr.splitlines()[-1]


def test_run_through_a_virtual_ble_sensor_and_the_collector(tmp_path: Path) -> None:
    """The live path: virtual sensor (Bumble, real GATT) -> bleak -> collector -> engine."""
    r = subprocess.run([sys.executable, "-m", "sensord.cli", "run", "--sensor", "virtual:polar-h10",
                        "--duration-s", "30", "--speed", "4", "--store", str(tmp_path),
                        "--broker", "none"], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    records = [json.loads(line) for line in next(tmp_path.glob("*.jsonl")).read_text().splitlines()]
    steps = [rec for rec in records if rec["record"] == "step"]
    # 30 s at ~170 steps/min, all seen by the engine after crossing the BLE stack
    assert 75 <= len(steps) <= 90
    assert any(rec["record"] == "sensorhealth" and rec["connected"] for rec in records)


def test_run_takes_placement_from_the_recording_and_runner_from_the_flag(tmp_path: Path) -> None:
    """A foot recording replayed without --placement is coached as foot contacts; an
    explicit --runner wins over the config's."""
    rec = tmp_path / "foot.csv"
    r = subprocess.run([sys.executable, "-m", "sensord.cli", "simulate", "--out", str(rec),
                        "--placement", "foot", "--duration-s", "60"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    truth = len((tmp_path / "foot.truth.jsonl").read_text().splitlines())
    config = tmp_path / "runner.toml"
    config.write_text('[runner]\nid = "from-config"\n[protocol]\n'
                      'plan = "1 min run / 3 min walk x 6"\n')
    store = tmp_path / "runs"
    r = subprocess.run([sys.executable, "-m", "sensord.cli", "run", "--sensor", str(rec),
                        "--speed", "0", "--broker", "none", "--store", str(store), "--quiet",
                        "--config", str(config), "--runner", "alice"],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    records = [json.loads(line) for line in next(store.glob("*.jsonl")).read_text().splitlines()]
    run = next(rec for rec in records if rec["record"] == "run")
    assert (run["runner_id"], run["placement"], run["sensor_side"]) == ("alice", "foot", "left")
    steps = [rec for rec in records if rec["record"] == "step"]
    assert abs(len(steps) - truth) <= 2  # one contact per stride, not a pelvis "step" each
    assert all(s["placement"] == "foot" for s in steps)
    html = next(store.glob("*.html")).read_text()
    assert "No return-to-run plan given" not in html  # the config's plan is in the report
    assert "3 min walk" in html


def test_run_refuses_unusable_store_and_report_paths_before_running(tmp_path: Path) -> None:
    a_file = tmp_path / "file"
    a_file.write_text("x")
    for args, says in ((["--store", str(a_file)], "--store"),
                       (["--report", str(tmp_path)], "--report"),
                       (["--runner", "bad runner/#"], "--runner")):
        r = subprocess.run([sys.executable, "-m", "sensord.cli", "run", "--broker", "none",
                            "--speed", "0", "--duration-s", "60", "--store",
                            str(tmp_path / "runs"), *args],
                           capture_output=True, text=True, timeout=120)
        assert r.returncode == 2, (args, r.stderr)
        assert len(r.stderr.strip().splitlines()) == 1 and says in r.stderr, r.stderr
    assert a_file.read_text() == "x"
