"""Nothing lost, nothing doubled: every generated step is in InfluxDB exactly once after

- the bridge is SIGKILLed mid-stream and restarted,
- the broker is stopped for 30 s during a run and started again,
- the database is unreachable for 30 s,
- the publisher's host loses the broker for a minute,
- one of two bridge replicas on a shared subscription is SIGKILLed.

Outage lengths are the issue's (30 s / 60 s); set SENSORD_OUTAGE_SCALE=0.1 to shorten them
while developing. Steps come from a deterministic generator (tests/test_delivery_basic).
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from sensord.contract import BrokerConfig
from sensord.model import RunInfo, Step
from sensord.sinks.mqtt_publisher import MqttPublisher
from tests.servers import (
    InfluxDB1Server,
    IngestProcess,
    MosquittoServer,
    TcpProxy,
    influx_step_indices,
    wait_until,
)
from tests.test_delivery_basic import T0_S, make_steps

pytestmark = [pytest.mark.servers, pytest.mark.slow]

SCALE = float(os.environ.get("SENSORD_OUTAGE_SCALE", "1"))
#: Generous upper bound for the system to settle after a fault (not a timing assertion).
SETTLE_S = 120.0


def start_bridge(
    tmp: Path, mqtt: MosquittoServer, db: InfluxDB1Server, name: str = "ingest", *extra: str
) -> IngestProcess:
    proc = IngestProcess.between(tmp / name, mqtt, db.url, "--client-id", f"sensord-{name}",
                                 "--linger-ms", "100", "--max-backoff-s", "2",
                                 "--receive-max", "200", *extra)
    proc.start()
    return proc


async def emit(pub: MqttPublisher, steps: list[Step], per_s: float) -> None:
    """Publish steps one message each at about ``per_s`` steps per second."""
    for s in steps:
        await pub.publish_step(s)
        await asyncio.sleep(1.0 / per_s)


async def count(db: InfluxDB1Server, run_id: str) -> int:
    return len(await asyncio.to_thread(influx_step_indices, db, run_id))


async def until(pred_desc: str, fn: object, timeout_s: float = SETTLE_S) -> None:
    await asyncio.to_thread(wait_until, fn, timeout_s, pred_desc)


async def assert_exactly_once(db: InfluxDB1Server, run_id: str, n: int) -> None:
    await until(f"{n} steps of {run_id}", lambda: len(influx_step_indices(db, run_id)) >= n)
    assert influx_step_indices(db, run_id) == list(range(n))


def publisher(tmp: Path, host: str, port: int, run: RunInfo) -> MqttPublisher:
    return MqttPublisher(
        BrokerConfig(host=host, port=port),
        run,
        epoch_offset_s=T0_S,
        spool_path=tmp / f"spool-{run.run_id}.sqlite",
        backoff_max_s=1.0,
    )


async def test_bridge_sigkill_mid_stream_then_restart(
    tmp_path: Path, mosquitto: MosquittoServer, influxdb1: InfluxDB1Server
) -> None:
    influxdb1.create_database("sensord")
    bridge = await asyncio.to_thread(start_bridge, tmp_path, mosquitto, influxdb1)
    run = RunInfo("alice", "pelvis1", "run-kill", "pelvis")
    steps = make_steps(3000)
    try:
        async with publisher(tmp_path, mosquitto.host, mosquitto.port, run) as pub:
            producer = asyncio.create_task(emit(pub, steps, 600))
            await until(
                "some steps written", lambda: len(influx_step_indices(influxdb1, "run-kill")) >= 300
            )
            bridge.kill()  # SIGKILL: no chance to flush or acknowledge
            at_kill = await count(influxdb1, "run-kill")
            await producer
            assert await pub.flush(60)
        assert 0 < at_kill < len(steps)  # it really died mid-stream
        await asyncio.to_thread(bridge.start)
        await assert_exactly_once(influxdb1, "run-kill", len(steps))
    finally:
        await asyncio.to_thread(bridge.stop)


async def test_broker_stopped_for_30_s_during_a_run(
    tmp_path: Path, mosquitto: MosquittoServer, influxdb1: InfluxDB1Server
) -> None:
    influxdb1.create_database("sensord")
    bridge = await asyncio.to_thread(start_bridge, tmp_path, mosquitto, influxdb1)
    run = RunInfo("alice", "pelvis1", "run-broker", "pelvis")
    steps = make_steps(1500)
    try:
        async with publisher(tmp_path, mosquitto.host, mosquitto.port, run) as pub:
            producer = asyncio.create_task(emit(pub, steps, 40))
            await until(
                "some steps written",
                lambda: len(influx_step_indices(influxdb1, "run-broker")) >= 100,
            )
            await asyncio.to_thread(mosquitto.stop)
            await asyncio.sleep(30 * SCALE)
            spooled_during_outage = pub.stats.queued
            await asyncio.to_thread(mosquitto.start)
            await producer
            assert await pub.flush(SETTLE_S)
        assert spooled_during_outage > 0  # the publisher really had to keep them
        await assert_exactly_once(influxdb1, "run-broker", len(steps))
    finally:
        await asyncio.to_thread(bridge.stop)


async def test_database_unreachable_for_30_s(
    tmp_path: Path, mosquitto: MosquittoServer, influxdb1: InfluxDB1Server
) -> None:
    influxdb1.create_database("sensord")
    bridge = await asyncio.to_thread(start_bridge, tmp_path, mosquitto, influxdb1)
    run = RunInfo("alice", "pelvis1", "run-db", "pelvis")
    steps = make_steps(1500)
    try:
        async with publisher(tmp_path, mosquitto.host, mosquitto.port, run) as pub:
            producer = asyncio.create_task(emit(pub, steps, 40))
            await until(
                "some steps written", lambda: len(influx_step_indices(influxdb1, "run-db")) >= 100
            )
            await asyncio.to_thread(influxdb1.stop)
            await asyncio.sleep(30 * SCALE)
            await asyncio.to_thread(influxdb1.start)
            await producer
            assert await pub.flush(SETTLE_S)
        await assert_exactly_once(influxdb1, "run-db", len(steps))
        assert "database write failed" in bridge.log_tail(1_000_000)  # it did retry
    finally:
        await asyncio.to_thread(bridge.stop)


async def test_publisher_host_loses_the_broker_for_a_minute(
    tmp_path: Path, mosquitto: MosquittoServer, influxdb1: InfluxDB1Server
) -> None:
    influxdb1.create_database("sensord")
    bridge = await asyncio.to_thread(start_bridge, tmp_path, mosquitto, influxdb1)
    link = TcpProxy(mosquitto.host, mosquitto.port)  # the publisher's network path
    run = RunInfo("bob", "foot-r", "run-partition", "foot", sensor_side="right")
    steps = make_steps(1700)
    try:
        async with publisher(tmp_path, link.host, link.port, run) as pub:
            producer = asyncio.create_task(emit(pub, steps, 25))
            await until(
                "some steps written",
                lambda: len(influx_step_indices(influxdb1, "run-partition")) >= 100,
            )
            link.cut()
            await asyncio.sleep(60 * SCALE)
            spooled_during_outage = pub.stats.queued
            link.restore()
            await producer
            assert await pub.flush(SETTLE_S)
        assert spooled_during_outage > 0
        await assert_exactly_once(influxdb1, "run-partition", len(steps))
    finally:
        link.cut()
        await asyncio.to_thread(bridge.stop)


async def test_two_replicas_on_a_shared_subscription_one_killed(
    tmp_path: Path, mosquitto: MosquittoServer, influxdb1: InfluxDB1Server
) -> None:
    influxdb1.create_database("sensord")
    a = await asyncio.to_thread(
        start_bridge, tmp_path, mosquitto, influxdb1, "replica-a", "--shared-group", "g"
    )
    b = await asyncio.to_thread(
        start_bridge, tmp_path, mosquitto, influxdb1, "replica-b", "--shared-group", "g"
    )
    runs = [RunInfo(f"runner{i}", "pelvis1", f"run-share-{i}", "pelvis") for i in range(2)]
    steps = make_steps(1200)
    try:
        async with (
            publisher(tmp_path, mosquitto.host, mosquitto.port, runs[0]) as p0,
            publisher(tmp_path, mosquitto.host, mosquitto.port, runs[1]) as p1,
        ):
            producers = [asyncio.create_task(emit(p, steps, 150)) for p in (p0, p1)]
            await until(
                "some steps written",
                lambda: len(influx_step_indices(influxdb1, "run-share-0")) >= 200,
            )
            b.kill()
            await asyncio.gather(*producers)
            assert await p0.flush(60)
            assert await p1.flush(60)
        await asyncio.to_thread(b.start)  # its session still holds what it had not acked
        for run in runs:
            await assert_exactly_once(influxdb1, run.run_id, len(steps))
        assert "connected to" in a.log_tail()
    finally:
        await asyncio.to_thread(a.stop)
        await asyncio.to_thread(b.stop)
