"""End to end: MqttPublisher -> mosquitto -> sensord ingest -> InfluxDB 1.6 / VictoriaMetrics."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from sensord.contract import BrokerConfig
from sensord.model import Alert, FormSummary, PainReport, RunInfo, SensorHealth, Step
from sensord.sinks.mqtt_publisher import MqttPublisher
from tests.servers import (
    InfluxDB1Server,
    IngestProcess,
    MosquittoServer,
    VictoriaServer,
    influx_step_indices,
    wait_until,
)

pytestmark = pytest.mark.servers

T0_S = 1_700_000_000.0


def make_steps(n: int, start: int = 0) -> list[Step]:
    """Deterministic steps: index i at t_ic = 0.36 i s, alternating sides."""
    out = []
    for i in range(start, start + n):
        t = 0.36 * i
        out.append(
            Step(
                t_ic=t,
                t_fc=t + 0.21,
                gct_ms=210.0 + (i % 7),
                cadence_spm=166.0 + (i % 5) * 0.5,
                side="left" if i % 2 else "right",
                pelvic_drop_deg=None if i % 11 == 0 else 4.0 + (i % 3) * 0.25,
                step_index=i,
                step_time_s=0.36,
                impact_g=2.5,
            )
        )
    return out


async def publish_one_by_one(port: int, run: RunInfo, steps: list[Step], spool: Path) -> None:
    """Publish ``steps`` one message each through a real MqttPublisher on the loopback
    broker at ``port`` and wait until the broker has acknowledged them all."""
    async with MqttPublisher(BrokerConfig(port=port), run, epoch_offset_s=T0_S,
                             spool_path=spool) as pub:
        for s in steps:
            await pub.publish_step(s)
        assert await pub.flush(30)


def bridge(tmp: Path, mqtt: MosquittoServer, db_args: list[str], *extra: str) -> IngestProcess:
    args = ["--broker", f"{mqtt.host}:{mqtt.port}", "--linger-ms", "50", *db_args, *extra]
    return IngestProcess(tmp, args)


async def test_every_kind_lands_with_the_documented_schema(
    tmp_path: Path, mosquitto: MosquittoServer, influxdb1: InfluxDB1Server
) -> None:
    influxdb1.create_database("sensord")
    ingest = bridge(tmp_path / "ingest", mosquitto, ["--influx-url", influxdb1.url])
    await asyncio.to_thread(ingest.start)
    run = RunInfo("alice", "pelvis1", "run-basic", "pelvis")
    steps = make_steps(200)
    broker = BrokerConfig(port=mosquitto.port)
    try:
        async with MqttPublisher(
            broker, run, epoch_offset_s=T0_S, spool_path=tmp_path / "spool.sqlite"
        ) as pub:
            for s in steps[:100]:
                await pub.publish_step(s)
            await pub.publish_steps(steps[100:])
            await pub.publish_summary(
                FormSummary(t_s=10.0, cadence_spm=168.0, form_score=81.5, activity="run", steps=28)
            )
            await pub.publish_alert(
                Alert(
                    "cadence_low",
                    "warning",
                    "cadence_spm",
                    170.0,
                    160.0,
                    30.0,
                    42.0,
                    "raised",
                    "Quicker steps",
                    side=None,
                )
            )
            for side in ("left", "right"):  # one detector, both sides, the same moment
                await pub.publish_alert(
                    Alert("pelvic_drop_rising", "warning", "pelvic_drop_deg", 5.0, 8.0, 60.0,
                          75.0, "raised", "Hips dropping", side=side)
                )
            await pub.publish_health(
                SensorHealth(
                    t_s=5.0, connected=True, packet_loss_pct=0.5, reconnects=1, battery_pct=80
                )
            )
            await pub.publish_pain(PainReport(t_s=50.0, score=4, location="left knee"))
            assert await pub.flush(30)

        def stored() -> list[int]:
            return influx_step_indices(influxdb1, "run-basic")

        await asyncio.to_thread(wait_until, lambda: len(stored()) == 200, 30, "200 steps")
        assert stored() == list(range(200))
        row = influxdb1.query("SELECT * FROM steps WHERE step_index = 7", db="sensord")[0]
        assert row["time"] == round((T0_S + 0.36 * 7) * 1000)
        assert (row["runner"], row["sensor"], row["placement"], row["side"]) == (
            "alice",
            "pelvis1",
            "pelvis",
            "left",
        )
        assert row["t_ic_s"] == pytest.approx(0.36 * 7)
        assert "flight_ms" not in row or row["flight_ms"] is None  # nulls omitted

        def one(measurement: str) -> list[dict[str, object]]:
            return influxdb1.query(f"SELECT * FROM {measurement}", db="sensord")

        await asyncio.to_thread(
            wait_until,
            lambda: all(one(m) for m in ("summary", "alerts", "health", "pain")),
            30,
            "summary, alert, health and pain points",
        )
        assert one("pain")[0]["score"] == 4
        assert one("pain")[0]["location"] == "left knee"
        await asyncio.to_thread(wait_until, lambda: len(one("alerts")) == 3, 30, "3 alerts")
        alerts = sorted(one("alerts"), key=lambda a: (str(a["kind"]), str(a["side"])))
        assert [(a["kind"], a["side"], a["state"], a["active"]) for a in alerts] == [
            ("cadence_low", "unknown", "raised", 1),
            ("pelvic_drop_rising", "left", "raised", 1),
            ("pelvic_drop_rising", "right", "raised", 1),
        ]
        assert one("summary")[0]["activity"] == "run"
        assert one("health")[0]["connected"] == 1

        types = {
            (r["fieldKey"], r["fieldType"])
            for r in influxdb1.query("SHOW FIELD KEYS", db="sensord")
        }
        for expected in [
            ("step_index", "integer"),
            ("gct_ms", "float"),
            ("t_ic_s", "float"),
            ("score", "integer"),
            ("active", "integer"),
            ("connected", "integer"),
            ("battery_pct", "integer"),
            ("reconnects", "integer"),
            ("form_score", "float"),
            ("activity", "string"),
            ("message", "string"),
        ]:
            assert expected in types
    finally:
        await asyncio.to_thread(ingest.stop)


async def test_v2_write_api_to_victoriametrics_is_idempotent(
    tmp_path: Path, mosquitto: MosquittoServer, victoria: VictoriaServer
) -> None:
    ingest = bridge(
        tmp_path / "ingest",
        mosquitto,
        ["--db-mode", "v2", "--influx-url", victoria.url, "--bucket", "sensord"],
    )
    await asyncio.to_thread(ingest.start)
    run = RunInfo("bob", "foot-l", "run-vm", "foot", sensor_side="left")
    steps = make_steps(150)
    try:
        # steps 40-89 are redelivered: they must overwrite, not add
        await publish_one_by_one(mosquitto.port, run, steps + steps[40:90],
                                 tmp_path / "spool.sqlite")

        def samples() -> list[int]:
            """Step indices stored, one per identity (timestamp): VictoriaMetrics merges
            exact duplicates (same series, timestamp and value) lazily, so the raw
            export may still list a redelivered point twice until then."""
            series = victoria.export('{__name__="steps_step_index",run_id="run-vm"}')
            points = {(t, int(v)) for s in series
                      for t, v in zip(s["timestamps"], s["values"], strict=True)}
            assert len({t for t, _ in points}) == len(points), "same time, different value"
            return sorted(v for _, v in points)

        await asyncio.to_thread(wait_until, lambda: len(samples()) >= 150, 30, "150 samples")
        await asyncio.to_thread(ingest.stop)  # everything acknowledged => everything written
        assert samples() == list(range(150))
    finally:
        await asyncio.to_thread(ingest.stop)
