"""``sensord report`` on bad or unlucky input: every case is one ``sensord: error:`` line
and exit status 2 (or, for a run cut off mid-write, a one-line warning), nothing the user
pointed at is modified, and no secret is shown.

Real components throughout: the CLI entry point, SQLite files, the ``sensord run`` JSON
Lines store and a simulated recording through the gait engine.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from sensord.cli import main
from sensord.coaching.protocol import parse_plan, plan_from_mapping
from sensord.runtime import JsonlStore
from tests.test_stack_queries import STEADY, n_steps, run_events


def _one_error_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("sensord: error: "), err
    return lines[0]


@pytest.fixture(scope="module")
def recording(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A simulated 90-second pelvis run (a real recording, through the gait engine)."""
    from sensord.sources.recording import write_recording
    from sensord.sources.simulator import SimParams, simulate

    sim = simulate(SimParams(duration_s=90.0), seed=5)
    path = tmp_path_factory.mktemp("rec") / "easy-run.csv"
    write_recording(path, sim.samples, sim.metadata)
    return path


@pytest.fixture(scope="module")
def run_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The ``.jsonl`` store of a run with one alert raised and then cleared."""
    store = JsonlStore(tmp_path_factory.mktemp("runs"), STEADY.info)
    for e in run_events(STEADY):
        store.add(e)  # type: ignore[arg-type]
    store.close()
    return store.path


# ----------------------------------------------------------------- local store (bug 1)


def test_reading_a_foreign_or_empty_sqlite_file_as_a_store_never_modifies_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    other = tmp_path / "other.db"
    db = sqlite3.connect(other)
    db.execute("CREATE TABLE notes (x TEXT)")
    db.execute("INSERT INTO notes VALUES ('keep me')")
    db.commit()
    db.close()
    empty = tmp_path / "empty.db"
    empty.write_bytes(b"")
    for path in (other, empty):
        before = path.read_bytes()
        assert main(["report", "r1", "--store", str(path), "-o", str(tmp_path / "o.html")]) == 2
        line = _one_error_line(capsys.readouterr().err)
        assert f"{path} is not a sensord local store" in line
        assert path.read_bytes() == before
        assert sorted(p.name for p in tmp_path.iterdir()) == ["empty.db", "other.db"]


# ------------------------------------------------------------------- --influx-url (2, 3)


def test_influx_url_credentials_are_never_shown(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report", "r1", "--influx-url", "http://alice:s3cret@127.0.0.1:1"]) == 2
    line = _one_error_line(capsys.readouterr().err)
    assert "s3cret" not in line
    assert "http://alice:***@127.0.0.1:1" in line
    assert "--influx-token-file" in line  # where the password goes instead


@pytest.mark.parametrize("url", ["http://[::1", "http://h:abc"])
def test_malformed_influx_url_is_one_line(url: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report", "r1", "--influx-url", url]) == 2
    line = _one_error_line(capsys.readouterr().err)
    assert f"--influx-url {url!r} is not a valid URL" in line
    assert "http://HOST:PORT" in line


# ---------------------------------------------------------------- run files (bugs 4, 5)


def test_torn_last_line_of_a_run_file_is_skipped_but_a_bad_middle_line_is_not(
    run_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    torn = '{"record":"step","t_ic":1801.2,"gct_ms":23'  # a crash mid-write: no newline
    text = run_file.read_text()
    n_lines = len(text.splitlines())
    crashed = tmp_path / "crashed.jsonl"
    crashed.write_text(text + torn)
    out = tmp_path / "crashed.html"
    assert main(["report", str(crashed), "-o", str(out)]) == 0
    err = capsys.readouterr().err.strip().splitlines()
    assert err[0] == (f"sensord: warning: {crashed}:{n_lines + 1}: skipped the incomplete "
                      "last line (the run stopped while writing it)")
    assert err[1].startswith(f"wrote {out} ({n_steps(STEADY)} steps")
    assert out.read_text().startswith("<!DOCTYPE html>")
    # the same broken line anywhere else, or ended by its newline, is still an error
    for bad in (torn + "\n" + text, text + torn + "\n"):
        crashed.write_text(bad)
        assert main(["report", str(crashed), "-o", str(out)]) == 2
        line = _one_error_line(capsys.readouterr().err)
        n = 1 if bad.startswith(torn) else n_lines + 1
        assert f"{crashed}:{n}: not a sensord run record" in line


def test_report_counts_raised_alerts_only(run_file: Path, tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    # the run raised one alert and cleared it: one alert, as the page and `sensord run` say
    out = tmp_path / "steady.html"
    assert main(["report", str(run_file), "-o", str(out)]) == 0
    assert capsys.readouterr().err == f"wrote {out} ({n_steps(STEADY)} steps, 1 alerts)\n"
    assert "alerts raised</span><b>1</b>" in out.read_text()


# ------------------------------------------------------------- output over input (bug 6)


def test_report_never_writes_over_its_input(recording: Path, run_file: Path, tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    alias = tmp_path / "alias.jsonl"
    alias.symlink_to(run_file)
    for inp, out in ((recording, recording), (run_file, run_file), (run_file, alias),
                     (STEADY.run_id, run_file)):
        before = Path(out).read_bytes()
        argv = ["report", str(inp), "-o", str(out)]
        if inp == STEADY.run_id:
            argv += ["--store", str(run_file.parent)]
        assert main(argv) == 2
        line = _one_error_line(capsys.readouterr().err)
        assert "the report would overwrite its input" in line and "another -o" in line
        assert Path(out).read_bytes() == before


# ------------------------------------------------------------------------ --pain (bug 7)


@pytest.mark.parametrize("pain", ["1:-5=3", "1:75=3", "-0:30=3"])
def test_pain_time_must_be_minutes_and_seconds(pain: str, recording: Path, tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "o.html"
    assert main(["report", str(recording), f"--pain={pain}", "-o", str(out)]) == 2
    line = _one_error_line(capsys.readouterr().err)
    assert f"--pain {pain!r}: time {pain.partition('=')[0]!r} is not MM:SS" in line
    assert not out.exists()


# ------------------------------------------------------------------- plan bounds (bug 8)


@pytest.mark.parametrize(("plan", "limit"), [
    ("1 min run / 1 min walk x 99999999999", "at least 1 and at most 100"),
    ("1 min run / 1 min walk x 101", "at least 1 and at most 100"),
    ("9" * 400 + " s run / 1 min walk", "longer than 24 h"),
    ("25 h run", "longer than 24 h"),
], ids=["huge-repeat", "repeat-101", "400-digit-duration", "25-hours"])
def test_plan_is_bounded(plan: str, limit: str, recording: Path, tmp_path: Path,
                         capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(ValueError, match=limit):
        parse_plan(plan)
    assert main(["report", str(recording), "--plan", plan, "-o", str(tmp_path / "o.html")]) == 2
    assert limit in _one_error_line(capsys.readouterr().err)


@pytest.mark.parametrize(("protocol", "message"), [
    ("repeat = 100000000000000000000\n", "repeat: must be an integer from 1 to 100"),
    ("repeat = 101\n", "repeat: must be an integer from 1 to 100"),
    ("[[protocol.intervals]]\nactivity = 'walk'\nduration_s = inf\n",
     "intervals[0].duration_s: must be a number of seconds > 0 and <= 86400 (24 h)"),
], ids=["huge-repeat", "repeat-101", "infinite-duration"])
def test_config_protocol_is_bounded(protocol: str, message: str, recording: Path,
                                    tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = tmp_path / "runner.toml"
    cfg.write_text("[protocol]\n" + protocol
                   + "[[protocol.intervals]]\nactivity = 'run'\nduration_s = 60\n")
    assert main(["report", str(recording), "--config", str(cfg),
                 "-o", str(tmp_path / "o.html")]) == 2
    line = _one_error_line(capsys.readouterr().err)
    assert "runner.toml" in line and message in line
    import tomllib

    with pytest.raises(ValueError, match=r"^(repeat|intervals\[0\])"):
        plan_from_mapping(tomllib.loads(cfg.read_text())["protocol"])
