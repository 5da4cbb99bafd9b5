"""The recording format and `sensord analyze` / `sensord simulate` from the command line."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from sensord.cli import main
from sensord.sources.recording import read_recording, write_recording
from sensord.sources.simulator import SimParams, simulate

GOOD_HEADER = "t,ax,ay,az,gx,gy,gz\n"


def sensord(*args: str) -> subprocess.CompletedProcess[str]:
    """The real command line, in a fresh interpreter."""
    return subprocess.run([sys.executable, "-m", "sensord.cli", *args],
                          capture_output=True, text=True, timeout=120)


def sensord_inproc(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """The same entry point in this process (fast: no interpreter start-up)."""
    code = main(list(args))
    out = capsys.readouterr()
    return code, out.out, out.err


def _rows(n: int = 400, rate: float = 100.0) -> str:
    t = np.arange(n) / rate
    return "".join(f"{x:.3f},0.1,0.2,9.8,1,2,3\n" for x in t)


BAD = [
    ("", ":", "empty file"),
    ("# only a comment\n", ":", "empty file"),
    (GOOD_HEADER, ":2", "no samples"),
    ("t,ax,ay\n0,1,2\n", ":1", "missing column(s) az"),
    ("t,ax,ay,az,gx\n0,1,2,9.8,1\n", ":1", "gyroscope columns incomplete"),
    (GOOD_HEADER + "0.00,0.1,0.2,9.8,1,2,3\n0.01,0.1,abc,9.8,1,2,3\n", ":3 column 'ay'",
     "not a number"),
    (GOOD_HEADER + "0.00,0.1,0.2,9.8,1,2,3\n0.01,0.1,0.2,9.8,1,2,3\n0.005,0,0,9.8,1,2,3\n",
     ":4 column 't'", "time does not increase"),
    (GOOD_HEADER + "0.00,0.1,0.2,9.8,1,2,3\nnan,0.1,0.2,9.8,1,2,3\n", ":3 column 't'",
     "not finite"),
    (GOOD_HEADER + "0.00,0.1,0.2,9.8,1,2,3\n0.01,0.1,0.2,9.8,1,2,3\n0.02,0.1,0.2,9.8e6,1,2,3\n",
     ":4 column 'az'", "absurd magnitude"),
    (GOOD_HEADER + _rows().replace(",9.8,", ",1.0,"), " column 'ax'", "looks like g"),
    (GOOD_HEADER + "0,0,0,9.8,0,0,0\n2,0,0,9.8,0,0,0\n4,0,0,9.8,0,0,0\n", " column 't'",
     "outside 50-1000 Hz"),
    (GOOD_HEADER + "0,,,,,,\n0.01,,,,,,\n", ":", "no sample has finite sensor values"),
]


@pytest.mark.parametrize(("content", "where", "what"), BAD, ids=[b[2] for b in BAD])
def test_bad_recordings_get_one_line_errors_with_file_line_column(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str, where: str,
        what: str) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(content)
    code, out, err = sensord_inproc(capsys, "analyze", str(path), "--placement", "pelvis")
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert f"{path}{where}" in lines[0] and what in lines[0]
    assert out == ""


def test_bad_input_from_the_real_command_line_has_no_traceback(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text("t,ax\n0,1\n")
    r = sensord("analyze", str(path), "--placement", "pelvis")
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert r.stderr.startswith("sensord: error: ") and "missing column" in r.stderr


def test_truncated_row_is_a_gap_not_an_error(tmp_path: Path) -> None:
    path = tmp_path / "cut.csv"
    path.write_text(GOOD_HEADER + _rows() + "4.000,0.1\n")
    rec = read_recording(path)
    assert len(rec.samples) == 401 and np.isnan(rec.samples.acc_mps2[-1, 1])


def test_missing_file_and_unknown_placement(tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = sensord_inproc(capsys, "analyze", str(tmp_path / "nope.csv"),
                                  "--placement", "pelvis")
    assert code == 2 and "no such file" in err
    path = tmp_path / "ok.csv"
    path.write_text(GOOD_HEADER + _rows())
    code, _, err = sensord_inproc(capsys, "analyze", str(path))
    assert code == 2 and "--placement" in err


def test_outputs_that_would_destroy_the_input_or_cannot_be_written_are_refused(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "ok.csv"
    original = GOOD_HEADER + _rows()
    path.write_text(original)
    for out, says in ((str(path), "is the recording itself"),
                      (str(tmp_path / "no" / "x.jsonl"), "cannot write"),
                      (str(tmp_path), "cannot write")):
        code, _, err = sensord_inproc(capsys, "analyze", str(path), "--placement", "pelvis",
                                      "--out", out)
        assert code == 2 and says in err and len(err.strip().splitlines()) == 1, err
    assert path.read_text() == original
    code, _, err = sensord_inproc(capsys, "simulate", "--out", str(tmp_path / "s.csv"),
                                  "--truth", str(tmp_path / "s.csv"))
    assert code == 2 and "--truth" in err
    assert not (tmp_path / "s.csv").exists()


def test_a_byte_order_mark_is_not_part_of_the_header(tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    """Spreadsheet tools write UTF-8 CSV with a BOM: it must not hide the header or the
    metadata comment."""
    res = simulate(SimParams(duration_s=20.0), seed=1)
    path = tmp_path / "bom.csv"
    write_recording(path, res.samples, {"placement": "pelvis"})
    path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())
    code, _, err = sensord_inproc(capsys, "analyze", str(path), "--out",
                                  str(tmp_path / "s.jsonl"))
    assert code == 0, err
    assert len((tmp_path / "s.jsonl").read_text().splitlines()) >= 50


def test_nan_stretch_inside_a_good_file_is_a_gap(tmp_path: Path) -> None:
    res = simulate(SimParams(duration_s=20.0), seed=1)
    acc = res.samples.acc_mps2.copy()
    acc[(res.samples.t_s > 8) & (res.samples.t_s < 9)] = np.nan
    from sensord.model import SampleBlock
    path = tmp_path / "holes.csv"
    write_recording(path, SampleBlock(res.samples.t_s, acc, res.samples.gyr_dps),
                    {"placement": "pelvis"})
    rec = read_recording(path)
    assert np.isnan(rec.samples.acc_mps2).any() and rec.metadata["placement"] == "pelvis"
    r = sensord("analyze", str(path))
    assert r.returncode == 0, r.stderr
    ics = [json.loads(line)["t_ic"] for line in r.stdout.splitlines()]
    assert ics and not any(8.0 < t < 9.0 for t in ics)
    assert "1 gaps" in r.stderr


def test_simulate_then_analyze_round_trip(tmp_path: Path) -> None:
    out = tmp_path / "run.csv"
    r = sensord("simulate", "--out", str(out), "--duration-s", "30", "--seed", "4")
    assert r.returncode == 0, r.stderr
    truth = [json.loads(x) for x in (tmp_path / "run.truth.jsonl").read_text().splitlines()]
    res = tmp_path / "steps.jsonl"
    r = sensord("analyze", str(out), "--out", str(res))
    assert r.returncode == 0, r.stderr
    steps = [json.loads(x) for x in res.read_text().splitlines()]
    for key in ("t_ic", "t_fc", "gct_ms", "cadence_spm", "side", "pelvic_drop_deg",
                "gct_balance_pct", "vertical_oscillation_cm", "step_time_s", "stride_time_s",
                "impact_g", "braking_g"):
        assert key in steps[0]
    assert abs(len(steps) - len(truth)) <= 2
    gct = np.median([s["gct_ms"] for s in steps if s["gct_ms"] is not None])
    assert abs(gct - np.median([t["gct_ms"] for t in truth])) < 10
