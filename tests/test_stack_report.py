"""``sensord report``: from a recording and from a real InfluxDB 1.6, rendered in Chromium.

The recording is simulated (a 10-minute run that fatigues from minute 4) and goes
through the real gait engine and coaching detectors; the database run is the fatigued
synthetic run of ``test_stack_queries``. The HTML is opened in headless Chromium (via
chromedriver when selenium is installed, and with ``--dump-dom`` without it): no
console errors, and every plot is present and drawn.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from sensord.cli import main
from tests.servers import InfluxDB1Server
from tests.test_stack_queries import DB, FATIGUED, STEADY, T0_MS, n_steps, pipeline_influx, publish

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
CHROME_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                "--no-first-run", "--disable-background-networking",
                "--disable-component-update", "--disable-sync"]
#: Plots every full report must contain.
PLOTS = {"form_score", "cadence_spm", "gct_ms", "pelvic_drop_deg", "gct_balance_pct",
         "early_late", "balance", "activity"}
#: Set to a path to refresh the committed screenshot (docs/report-screenshot.png).
SCREENSHOT_ENV = "SENSORD_REPORT_SCREENSHOT"


@pytest.fixture(scope="module")
def recording(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A simulated 10-minute pelvis run with fatigue from minute 4."""
    from sensord.sources.recording import write_recording
    from sensord.sources.simulator import FatigueProfile, SimParams, simulate

    params = SimParams(duration_s=600.0, cadence_spm=176.0, fatigue=FatigueProfile(
        onset_s=240.0, ramp_s=240.0, cadence_pct=-6.0, pelvic_drop_deg=3.0, gct_pct=8.0))
    sim = simulate(params, seed=3)
    path = tmp_path_factory.mktemp("rec") / "tempo-run.csv"
    write_recording(path, sim.samples, {**sim.metadata, "runner": "cleo"})
    return path


@pytest.fixture(scope="module")
def report_html(recording: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("html") / "report.html"
    rc = main(["report", str(recording), "-o", str(out), "--pain", "8:30=4 left knee",
               "--plan", "4 min run / 1 min walk x 2"])
    assert rc == 0
    return out


@pytest.fixture(scope="module")
def influx(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InfluxDB1Server]:
    """Both synthetic runs, through MqttPublisher -> mosquitto -> sensord ingest."""
    with pipeline_influx(tmp_path_factory.mktemp("report-pipeline")) as server:
        yield server


def _plots(html: str) -> set[str]:
    return set(re.findall(r'data-plot="([a-z_]+)"', html))


def test_report_from_recording_has_every_section(report_html: Path) -> None:
    html = report_html.read_text()
    assert _plots(html) >= PLOTS
    assert "plan" in _plots(html)  # the prescribed-plan timeline
    assert "overall compliance" in html
    assert "4/10" in html
    assert "left knee" in html
    assert "runner <b>cleo</b>" in html
    # the engine + coaching found the fatigue: an alert row and a worse late cadence
    assert re.search(r"<td>[^<]*(cadence|pelvic_drop|gct)[a-z_]*</td>", html)
    assert 'class="worse"' in html
    # self-contained: no external resources, no scripts
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", html)
    assert "<script" not in html


def test_report_from_influxdb(influx: InfluxDB1Server, tmp_path: Path) -> None:
    out = tmp_path / "ben.html"
    rc = main(["report", FATIGUED.run_id, "--influx-url", influx.url, "--db", DB,
               "-o", str(out)])
    assert rc == 0
    html = out.read_text()
    assert _plots(html) >= PLOTS
    assert "runner <b>ben</b>" in html
    assert "pelvic_drop_rising" in html
    assert "5/10" in html
    assert "right knee" in html
    assert "2026-01-01 10:00 UTC" in html  # start time recovered from the points
    m = re.search(r"steps</span><b>(\d+)</b>", html)
    assert m is not None
    assert int(m.group(1)) == n_steps(FATIGUED)


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A local store (SQLite) holding the fatigued run, written through LocalStore."""
    import asyncio

    from sensord.sinks.local_store import LocalStore

    path = tmp_path_factory.mktemp("store") / "runs.sqlite"

    async def write() -> None:
        for run in (STEADY, FATIGUED):
            async with LocalStore(path, run.info, epoch_offset_s=T0_MS / 1000) as sink:
                await publish(run, sink)

    asyncio.run(write())
    return path


def test_report_from_local_store(store: Path, tmp_path: Path) -> None:
    out = tmp_path / "ben-store.html"
    assert main(["report", FATIGUED.run_id, "--store", str(store), "-o", str(out)]) == 0
    html = out.read_text()
    assert _plots(html) >= PLOTS
    assert "pelvic_drop_rising" in html
    assert "5/10" in html
    assert "2026-01-01 10:00 UTC" in html
    m = re.search(r"steps</span><b>(\d+)</b>", html)
    assert m is not None
    assert int(m.group(1)) == n_steps(FATIGUED)


def test_report_unknown_run_in_store_exits_2(store: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report", "nope", "--store", str(store)]) == 2
    err = capsys.readouterr().err
    assert "'nope' is not in" in err
    assert "ben-run-1" in err


RUNNER_TOML = """
[runner]
id = "dana"
[targets]
cadence_min_spm = 164.0
cadence_max_spm = 172.0
[baseline]
warmup_s = 60.0
window_s = 120.0
[protocol]
repeat = 2
[[protocol.intervals]]
activity = "run"
duration_s = 240
[[protocol.intervals]]
activity = "walk"
duration_s = 60
"""


def test_report_uses_the_runners_config(recording: Path, tmp_path: Path) -> None:
    """``--config``: the runner's own targets, baseline window and plan, as ``sensord run``
    uses them (the defaults would draw 170-180 spm and, on a 10-minute run, compare
    thirds of the run instead of the baseline window)."""
    cfg = tmp_path / "dana.toml"
    cfg.write_text(RUNNER_TOML)
    out = tmp_path / "config.html"
    assert main(["report", str(recording), "-o", str(out), "--config", str(cfg)]) == 0
    html = out.read_text()
    assert "target band 164–172 spm" in html and "target band 170–180" not in html
    assert "Baseline = median of early (baseline) (1:00–3:00)" in html
    assert "(240 s run / 60 s walk) x 2" in html and "overall compliance" in html
    default = tmp_path / "default.html"
    assert main(["report", str(recording), "-o", str(default)]) == 0
    assert "target band 170–180 spm" in default.read_text()
    # a stored run keeps its alerts, and its charts follow the config too
    from sensord.runtime import JsonlStore
    from tests.test_stack_queries import run_events

    store = JsonlStore(tmp_path / "runs", FATIGUED.info)
    for e in run_events(FATIGUED):
        store.add(e)  # type: ignore[arg-type]
    store.close()
    out2 = tmp_path / "stored.html"
    assert main(["report", str(store.path), "-o", str(out2), "--config", str(cfg)]) == 0
    assert "target band 164–172 spm" in out2.read_text()


def test_report_bad_config_exits_2(recording: Path, tmp_path: Path,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    cfg = tmp_path / "bad.toml"
    cfg.write_text("[targets]\ncadence_min_spm = 'fast'\n")
    assert main(["report", str(recording), "--config", str(cfg)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "bad.toml" in err[0] and "cadence_min_spm" in err[0]


def test_report_from_sensord_run_jsonl_store(tmp_path: Path) -> None:
    from sensord.runtime import JsonlStore
    from tests.test_stack_queries import run_events

    store = JsonlStore(tmp_path / "runs", FATIGUED.info)
    for e in run_events(FATIGUED):
        store.add(e)  # type: ignore[arg-type]
    store.close()
    out = tmp_path / "from-dir.html"
    assert main(["report", FATIGUED.run_id, "--store", str(tmp_path / "runs"),
                 "-o", str(out)]) == 0
    html = out.read_text()
    assert _plots(html) >= PLOTS
    assert "5/10" in html
    assert "pelvic_drop_rising" in html
    out2 = tmp_path / "from-file.html"
    assert main(["report", str(store.path), "-o", str(out2)]) == 0
    assert _plots(out2.read_text()) >= PLOTS


def test_report_unknown_run_in_jsonl_store_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "runs").mkdir()
    (tmp_path / "runs" / "r-1.jsonl").write_text('{"record":"run"}\n')
    assert main(["report", "nope", "--store", str(tmp_path / "runs")]) == 2
    assert "runs there: r-1" in capsys.readouterr().err
    assert main(["report", "r-1", "--store", str(tmp_path / "runs")]) == 2
    assert "r-1.jsonl:1: not a sensord run record" in capsys.readouterr().err


def test_report_unknown_run_exits_2(influx: InfluxDB1Server, tmp_path: Path,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(["report", "no-such-run", "--influx-url", influx.url, "--db", DB,
               "-o", str(tmp_path / "x.html")])
    err = capsys.readouterr().err
    assert rc == 2
    assert "run 'no-such-run' not found" in err
    assert "ben-run-1" in err  # lists the runs that exist
    assert not (tmp_path / "x.html").exists()


def test_report_unknown_database_exits_2(influx: InfluxDB1Server,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report", "ben-run-1", "--influx-url", influx.url, "--db", "nope"]) == 2
    assert "database not found" in capsys.readouterr().err


def test_report_unreachable_influx_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    from tests.servers import free_port

    url = f"http://127.0.0.1:{free_port()}"
    assert main(["report", "r1", "--influx-url", url]) == 2
    err = capsys.readouterr().err
    assert err.startswith("sensord: error: cannot reach InfluxDB")
    assert len(err.strip().splitlines()) == 1


@pytest.mark.parametrize(("argv", "message"), [
    (["report", "/nonexistent/run.csv"], "no such recording"),
    (["report", "r1", "--influx-url", "ftp://x"], "--influx-url must look like"),
    (["report", "{rec}", "--pain", "soon=4"], "is not MM:SS"),
    (["report", "{rec}", "--pain", "1:00=eleven"], "pain score"),
    (["report", "{rec}", "--plan", "run forever"], "--plan"),
    (["report", "r1", "--store", "/nonexistent/runs.sqlite"], "/nonexistent/runs.sqlite"),
    (["report", "r1", "--store", "{rec}"], "is not a sensord local store"),
    (["report", "r1", "--store", "x.sqlite", "--influx-url", "http://h:1"], "not both"),
    (["report", "r1", "--influx-url", "http://127.0.0.1:1", "--influx-token-file",
      "/nonexistent/token"], "cannot read --influx-token-file"),
])
def test_report_bad_input_exits_2(argv: list[str], message: str, recording: Path,
                                  tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = [a.replace("{rec}", str(recording)) for a in argv] + ["-o", str(tmp_path / "o.html")]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err
    assert "Traceback" not in err


def test_report_of_a_non_recording_file_exits_2(tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "notes.csv"
    bad.write_text("hello,world\n1,2\n")
    assert main(["report", str(bad), "-o", str(tmp_path / "o.html")]) == 2
    assert "missing column" in capsys.readouterr().err


# ------------------------------------------------------------------ Chromium


def _chrome_argv(tmp: Path) -> list[str]:
    assert CHROMIUM is not None
    return [CHROMIUM, *CHROME_FLAGS, f"--user-data-dir={tmp / 'profile'}"]


@pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed")
def test_report_dom_in_chromium_has_every_plot_drawn(report_html: Path, tmp_path: Path) -> None:
    r = subprocess.run([*_chrome_argv(tmp_path), "--dump-dom", report_html.as_uri()],
                       capture_output=True, text=True, timeout=120, check=False)
    assert r.returncode == 0, r.stderr[-2000:]
    dom = r.stdout
    assert _plots(dom) >= PLOTS
    assert dom.count("<polyline") >= 6  # metric lines were drawn
    assert "no data" not in dom


def _driver(tmp: Path):  # type: ignore[no-untyped-def]
    webdriver = pytest.importorskip("selenium.webdriver")
    from selenium.webdriver.chrome.service import Service

    if CHROMEDRIVER is None or CHROMIUM is None:
        pytest.skip("chromium / chromedriver not installed")
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for flag in [*CHROME_FLAGS, f"--user-data-dir={tmp / 'selenium-profile'}",
                 "--window-size=1000,3000"]:
        opts.add_argument(flag)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)


def test_report_in_chromium_has_no_console_errors_and_plots_render(
    report_html: Path, tmp_path: Path
) -> None:
    driver = _driver(tmp_path)
    try:
        # the console check can fail: a page with a script error is caught
        broken = tmp_path / "broken.html"
        broken.write_text("<!DOCTYPE html><script>throw new Error('boom')</script>")
        driver.get(broken.as_uri())
        assert any("boom" in e["message"] for e in driver.get_log("browser"))

        driver.get(report_html.as_uri())
        errors = [e for e in driver.get_log("browser") if e["level"] in ("SEVERE", "WARNING")]
        assert errors == []
        figures = driver.find_elements("css selector", "figure.plot")
        names = {f.get_attribute("data-plot") for f in figures}
        assert names >= PLOTS
        for f in figures:
            svg = f.find_element("css selector", "svg")
            assert svg.size["width"] > 300, f.get_attribute("data-plot")
            assert svg.size["height"] > 40, f.get_attribute("data-plot")
        drawn = driver.execute_script(
            "return Array.from(document.querySelectorAll('polyline.series'))"
            ".map(p => p.getBBox().width)")
        assert len(drawn) >= 6
        assert min(drawn) > 100  # lines span the run, not a dot in a corner
        target = os.environ.get(SCREENSHOT_ENV)
        shot = Path(target) if target else tmp_path / "report.png"
        driver.set_window_size(1000, 3000)
        assert driver.save_screenshot(str(shot))
        assert shot.stat().st_size > 20_000
    finally:
        driver.quit()
