"""Every dashboard query and alert rule, executed against a real InfluxDB 1.6.

The database holds two synthetic 30-minute runs, published with ``MqttPublisher`` to a
real mosquitto and written by a real ``sensord ingest`` process: ``ana`` runs
steadily, ``ben`` fatigues (cadence falls, contact time and right-side pelvic drop rise,
form score drops, a pelvic-drop alert is raised, pain 5/10 is reported, his sensor goes
silent three minutes before the end). Panel queries get Grafana's macros and variables
substituted the way Grafana would; alert rules are evaluated as Grafana's reduce and
threshold expressions would evaluate them.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from sensord.contract import BrokerConfig, publish_event
from sensord.dashboards.alerting import RuleSpec, alert_rules
from sensord.dashboards.boards import UID_LIVE, UID_REVIEW, UID_TEAM, all_dashboards
from sensord.model import Alert, FormSummary, PainReport, RunInfo, SensorHealth, Side, Step
from sensord.sinks.mqtt_publisher import MqttPublisher
from tests.servers import (
    INFLUXD_BIN,
    MOSQUITTO_BIN,
    InfluxDB1Server,
    IngestProcess,
    MosquittoServer,
    running,
    wait_until,
)

pytestmark = pytest.mark.servers

DB = "sensord"
T0_MS = 1_767_261_600_000  # 2026-01-01T10:00:00Z
DURATION_S = 1800.0
END_MS = T0_MS + int(DURATION_S * 1000)


# --------------------------------------------------------------------------- data


@dataclass(frozen=True)
class SimRun:
    """Shape of one synthetic run: how much each metric drifts by the end."""

    runner: str
    run_id: str
    fatigue: float  # 0 = steady, 1 = fully fatigued by the end
    offline_last_s: float = 0.0

    @property
    def info(self) -> RunInfo:
        return RunInfo(self.runner, f"{self.runner}-imu", self.run_id, "pelvis")


def _f(run: SimRun, t: float) -> float:
    return run.fatigue * max(0.0, (t / DURATION_S - 0.3) / 0.7)  # sets in after 30 %


def run_events(run: SimRun) -> list[Step | FormSummary | Alert | PainReport | SensorHealth]:
    """Every event of one synthetic run, in run time (seconds from the start)."""
    out: list[Step | FormSummary | Alert | PainReport | SensorHealth] = []
    t, i = 0.0, 0
    while t < DURATION_S:
        f = _f(run, t)
        cadence = 176.0 - 14.0 * f + 0.8 * math.sin(i / 7.0)
        side: Side = "left" if i % 2 == 0 else "right"
        drop = (5.0 + 0.3 * math.sin(i / 5.0)) + (4.0 * f if side == "right" else 0.5 * f)
        gct = 230.0 + 30.0 * f + 3.0 * math.sin(i / 3.0)
        out.append(Step(
            t_ic=t, t_fc=t + gct / 1000, gct_ms=gct, cadence_spm=cadence, side=side,
            pelvic_drop_deg=drop, step_index=i, step_time_s=60.0 / cadence,
            stride_time_s=120.0 / cadence, gct_balance_pct=50.0 - 2.5 * f,
            vertical_oscillation_cm=8.0 + 1.5 * f, impact_g=2.5 + 0.6 * f,
            braking_g=0.4 + 0.2 * f, flight_ms=110.0 - 30 * f))
        t += 60.0 / cadence
        i += 1
    for k in range(int(DURATION_S / 5)):
        t = 5.0 * (k + 1)
        f = _f(run, t)
        out.append(FormSummary(
            t_s=t, form_score=92.0 - 45.0 * f, cadence_spm=176.0 - 14.0 * f,
            gct_ms=230.0 + 30.0 * f, pelvic_drop_left_deg=5.0 + 0.5 * f,
            pelvic_drop_right_deg=5.0 + 4.0 * f, gct_balance_pct=50.0 - 2.5 * f,
            vertical_oscillation_cm=8.0 + 1.5 * f, impact_g=2.5 + 0.6 * f,
            braking_g=0.4 + 0.2 * f, step_time_cv_pct=2.0 + 3.0 * f,
            steps=int(t * 176 / 60), activity="run"))
        if t <= DURATION_S - run.offline_last_s:
            out.append(SensorHealth(t_s=t, connected=True, packet_loss_pct=0.5, reconnects=0,
                                    latency_ms=40.0, battery_pct=int(80 - t / 100)))
    if run.fatigue > 0:
        out.append(Alert("pelvic_drop_rising", "warning", "pelvic_drop_right_deg", 5.0, 8.1,
                         1100.0, 1200.0, "raised", "Right hip dropping: squeeze your glutes",
                         side="right"))
        out.append(PainReport(t_s=1500.0, score=5, location="right knee"))
    else:
        out.append(Alert("cadence_low", "info", "cadence_spm", 176.0, 169.0, 300.0, 310.0,
                         "raised", "Cadence low"))
        out.append(Alert("cadence_low", "info", "cadence_spm", 176.0, 175.0, 300.0, 400.0,
                         "cleared", "Cadence back"))
        out.append(PainReport(t_s=900.0, score=1, location="calf"))
    return out


def n_steps(run: SimRun) -> int:
    return sum(isinstance(e, Step) for e in run_events(run))


STEADY = SimRun("ana", "ana-run-1", 0.0)
FATIGUED = SimRun("ben", "ben-run-1", 1.0, offline_last_s=180.0)


async def publish(run: SimRun, sink: Any) -> None:
    """Send one run through a RunSink (MqttPublisher or LocalStore)."""
    events = run_events(run)
    steps = [e for e in events if isinstance(e, Step)]
    for k in range(0, len(steps), 500):
        await sink.publish_steps(steps[k:k + 500])
    for e in events:
        if not isinstance(e, Step):
            await publish_event(sink, e)


async def _publish_all(broker_port: int, spool_dir: Path) -> None:
    for run in (STEADY, FATIGUED):
        async with MqttPublisher(BrokerConfig(port=broker_port), run.info,
                                 epoch_offset_s=T0_MS / 1000,
                                 spool_path=spool_dir / f"{run.runner}.sqlite") as pub:
            await publish(run, pub)
            assert await pub.flush(60)


def _counts(server: InfluxDB1Server) -> dict[str, int]:
    out = {}
    for m in ("steps", "summary", "alerts", "pain", "health"):
        try:
            rows = server.query(f'SELECT count(*) FROM "{m}"', db=DB)
        except (RuntimeError, OSError):
            return {}
        out[m] = max((int(v) for r in rows for k, v in r.items()
                      if k.startswith("count") and v is not None),
                     default=0)
    return out


@contextlib.contextmanager
def pipeline_influx(root: Path) -> Iterator[InfluxDB1Server]:
    """InfluxDB 1.6 holding both runs, written by the real pipeline:
    MqttPublisher -> mosquitto -> ``sensord ingest`` -> InfluxDB."""
    for binary in (INFLUXD_BIN, MOSQUITTO_BIN):
        if not Path(binary).exists():
            pytest.skip(f"{binary} is not installed")
    with running(InfluxDB1Server(root / "influx")) as server, \
            running(MosquittoServer(root / "mqtt")) as broker:
        assert isinstance(server, InfluxDB1Server)
        server.create_database(DB)
        ingest = IngestProcess(root / "ingest", [
            "--broker", f"{broker.host}:{broker.port}", "--influx-url", server.url,
            "--database", DB, "--linger-ms", "50"])
        with running(ingest):
            asyncio.run(_publish_all(broker.port, root))
            want = {"steps": n_steps(STEADY) + n_steps(FATIGUED),
                    "summary": 2 * int(DURATION_S / 5), "alerts": 3, "pain": 2}
            wait_until(lambda: all(_counts(server).get(k) == v for k, v in want.items()),
                       60, f"ingest to write {want}")
        yield server


@pytest.fixture(scope="module")
def influx(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InfluxDB1Server]:
    """The pipeline-filled InfluxDB for this module."""
    with pipeline_influx(tmp_path_factory.mktemp("stack-pipeline")) as server:
        yield server


# --------------------------------------------------------------------------- Grafana


def render(query: str, *, runner: str = ".*", run_id: str = ".*", t_from_ms: int = T0_MS,
           t_to_ms: int = END_MS, interval: str = "10s", split: str = "5m") -> str:
    """Substitute Grafana's InfluxQL macros and the template variables."""
    q = query.replace("$timeFilter", f"time >= {t_from_ms}ms and time <= {t_to_ms}ms")
    q = q.replace("$__interval", interval).replace("$split", split)
    q = q.replace("$run_id", run_id).replace("$runner", runner)
    assert not re.search(r"\$[A-Za-z_]", q), f"unsubstituted macro in {q}"
    return q


def series_of(server: InfluxDB1Server, q: str) -> list[dict[str, Any]]:
    """The series of the first statement (Grafana's frames), error if InfluxDB errors."""
    result = server.raw_query(q, db=DB)["results"][0]
    assert "error" not in result, f"{q}: {result.get('error')}"
    return list(result.get("series", []))


def _targets(d: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for p in d["panels"]:
        for t in p.get("targets", []):
            yield p["title"], t


def _numbers(s: dict[str, Any]) -> list[float]:
    return [v for row in s["values"] for v in row[1:] if isinstance(v, int | float)]


@pytest.mark.parametrize("board", all_dashboards(), ids=lambda d: d["uid"])
def test_every_panel_query_returns_data_for_each_runner(
    influx: InfluxDB1Server, board: dict[str, Any]
) -> None:
    for run in (STEADY, FATIGUED):
        for title, t in _targets(board):
            q = render(t["query"], runner=run.runner, run_id=run.run_id)
            series = series_of(influx, q)
            assert series, f"{board['uid']} / {title}: no series for {run.runner}: {q}"
            assert _numbers(series[0]) or any(
                isinstance(v, str) for row in series[0]["values"] for v in row[1:]
            ), f"{title}: only nulls"
            for tag_col in re.findall(r'GROUP BY .*?"(\w+)"', q):
                assert all(tag_col in s.get("tags", {}) for s in series), (title, tag_col)


@pytest.mark.parametrize("board", all_dashboards(), ids=lambda d: d["uid"])
def test_template_variable_and_annotation_queries_run(
    influx: InfluxDB1Server, board: dict[str, Any]
) -> None:
    for var in board["templating"]["list"]:
        if var["type"] != "query":
            continue
        values = {row[-1] for s in series_of(influx, render(var["query"], runner="ben"))
                  for row in s["values"]}
        assert values == ({"ben-run-1"} if var["name"] == "run_id" else {"ana", "ben"})
    n = 0
    for ann in board["annotations"]["list"]:
        if ann.get("builtIn"):
            continue
        target = ann["target"]
        series = series_of(influx, render(target["query"], runner="ben", run_id="ben-run-1"))
        assert series, ann["name"]
        cols = series[0]["columns"]
        for col in ("titleColumn", "textColumn", "tagsColumn"):
            assert target[col] in [*cols, ""], (ann["name"], col, cols)
        n += 1
    assert n >= 1


def _panel(uid: str, title: str) -> dict[str, Any]:
    board = next(d for d in all_dashboards() if d["uid"] == uid)
    return next(p for p in board["panels"] if p["title"] == title)


def test_pelvic_drop_panel_splits_left_and_right_and_shows_the_rise(
    influx: InfluxDB1Server,
) -> None:
    p = _panel(UID_LIVE, "Pelvic drop by stance side")
    q = render(p["targets"][0]["query"], runner="ben", run_id="ben-run-1", interval="5m")
    series = {s["tags"]["side"]: _numbers(s) for s in series_of(influx, q)}
    assert set(series) == {"left", "right"}
    assert series["right"][-1] - series["right"][0] > 2.5  # right-side drop rises
    assert abs(series["left"][-1] - series["left"][0]) < 1.0


def test_cadence_panel_has_the_target_band() -> None:
    p = _panel(UID_LIVE, "Cadence (steps/min)")
    steps = p["fieldConfig"]["defaults"]["thresholds"]["steps"]
    assert [s["value"] for s in steps] == [None, 170.0, 180.0]
    assert steps[1]["color"] == "green"
    assert p["fieldConfig"]["defaults"]["custom"]["thresholdsStyle"]["mode"] == "line+area"


def test_team_table_puts_the_most_degraded_runner_first(influx: InfluxDB1Server) -> None:
    p = _panel(UID_TEAM, "Runners by form (most degraded first)")
    rows = []
    for s in series_of(influx, render(p["targets"][0]["query"])):
        rec = dict(zip(s["columns"], s["values"][0], strict=True))
        rows.append((s["tags"]["runner"], rec["form_score"]))
    sort = next(t for t in p["transformations"] if t["id"] == "sortBy")["options"]["sort"][0]
    assert sort == {"field": "form_score", "desc": False}
    ordered = sorted(rows, key=lambda r: r[1])
    assert [r[0] for r in ordered] == ["ben", "ana"]


def test_run_review_early_vs_late_shows_fatigue(influx: InfluxDB1Server) -> None:
    p = _panel(UID_REVIEW, "Early vs late (first and last split)")
    reduce_ = p["transformations"][0]["options"]
    assert reduce_["reducers"] == ["firstNotNull", "lastNotNull"]
    for run, expect_drop in ((FATIGUED, True), (STEADY, False)):
        s = series_of(influx, render(p["targets"][0]["query"], runner=run.runner,
                                     run_id=run.run_id))[0]
        col = s["columns"].index("cadence_spm")
        vals = [row[col] for row in s["values"] if row[col] is not None]
        assert len(vals) == 6  # 30 min in 5-minute splits
        early, late = vals[0], vals[-1]
        assert (early - late > 8.0) is expect_drop, (run.runner, early, late)


# --------------------------------------------------------------------------- alerts


def reduce_values(values: list[float | None], reducer: str) -> float | None:
    """Grafana's reduce expression in ``dropNN`` mode."""
    vals = [v for v in values if v is not None and not math.isnan(v)]
    if not vals:
        return None
    fns = {"last": lambda: vals[-1], "mean": lambda: sum(vals) / len(vals),
           "max": lambda: max(vals), "min": lambda: min(vals), "sum": lambda: sum(vals),
           "count": lambda: float(len(vals))}
    return float(fns[reducer]())


def evaluate(server: InfluxDB1Server, rule: RuleSpec, now_ms: int) -> dict[str, bool]:
    """Alert instances (series labels) -> firing, as Grafana evaluates A -> B -> C."""
    q = render(rule.query, t_from_ms=now_ms - rule.window_s * 1000, t_to_ms=now_ms)
    out: dict[str, bool] = {}
    for s in series_of(server, q):
        value = reduce_values([row[1] for row in s["values"]], rule.reducer)
        key = ",".join(f"{k}={v}" for k, v in sorted(s.get("tags", {}).items()))
        if value is None:
            continue
        out[key] = value > rule.threshold if rule.op == "gt" else value < rule.threshold
    return out


@pytest.mark.parametrize("rule", alert_rules(), ids=lambda r: r.uid)
def test_alert_rule_fires_for_the_fatigued_run_only(
    influx: InfluxDB1Server, rule: RuleSpec
) -> None:
    now_ms = END_MS if rule.uid != "sensord-sensor-offline" else END_MS - 30_000
    state = evaluate(influx, rule, now_ms)
    firing = {k for k, v in state.items() if v}
    assert any("runner=ben" in k for k in firing), (rule.uid, state)
    assert not any("runner=ana" in k for k in firing), (rule.uid, state)


@pytest.mark.parametrize("rule", alert_rules(), ids=lambda r: r.uid)
def test_alert_rules_quiet_early_in_both_runs(influx: InfluxDB1Server, rule: RuleSpec) -> None:
    state = evaluate(influx, rule, T0_MS + 480_000)  # 8 minutes in: nobody is tired yet
    assert not any(state.values()), (rule.uid, state)
