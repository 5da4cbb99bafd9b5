"""The bridge's memory stays bounded while the database is down and the broker floods it."""

from __future__ import annotations

import asyncio

import aiomqtt
import pytest

from sensord.contract import BrokerConfig, encode_step
from sensord.ingest.bridge import IngestBridge, IngestConfig
from sensord.ingest.transport import InfluxV1Writer
from sensord.model import RunInfo
from tests.servers import InfluxDB1Server, MosquittoServer, influx_step_indices, wait_until
from tests.test_delivery_basic import T0_S, make_steps

pytestmark = pytest.mark.servers


async def test_held_messages_bounded_during_an_outage_then_all_delivered(
    mosquitto: MosquittoServer, influxdb1: InfluxDB1Server
) -> None:
    influxdb1.create_database("sensord")
    await asyncio.to_thread(influxdb1.stop)  # the database is down while the broker floods
    writer = InfluxV1Writer(influxdb1.url, "sensord")
    cfg = IngestConfig(
        client_id="bounded", receive_max=50, batch_max_lines=10, linger_s=0.05, backoff_max_s=0.5
    )
    bridge = IngestBridge(BrokerConfig(port=mosquitto.port), writer, cfg)
    # unread (gate) + open batch + queued batch + batch awaiting a write slot + writes
    bound = cfg.receive_max + (cfg.write_concurrency + 3) * cfg.batch_max_lines
    task = asyncio.create_task(bridge.run())
    peak = 0

    async def watch() -> None:
        nonlocal peak
        while True:
            peak = max(peak, bridge.held_messages)
            await asyncio.sleep(0.005)

    watcher = asyncio.create_task(watch())
    run = RunInfo("alice", "pelvis1", "run-bounded", "pelvis")
    steps = make_steps(1500)
    try:
        await asyncio.wait_for(bridge.connected.wait(), 30)
        async with aiomqtt.Client(mosquitto.host, mosquitto.port, identifier="flood") as pub:
            for s in steps:  # all 1500 accepted by the broker (QoS 1)
                await pub.publish(
                    "sensord/v1/alice/pelvis1/steps", encode_step(run, s, T0_S), qos=1
                )
        while bridge.held_messages < cfg.receive_max:  # noqa: ASYNC110 - state, not time
            await asyncio.sleep(0.01)
        await asyncio.sleep(1.0)  # give an unbounded bridge every chance to overfill
        assert 0 < peak <= bound
        await asyncio.to_thread(influxdb1.start)  # the database is back
        await asyncio.to_thread(
            wait_until,
            lambda: len(influx_step_indices(influxdb1, "run-bounded")) >= len(steps),
            120,
            "every step written",
        )
    finally:
        watcher.cancel()
        bridge.stop()
        await asyncio.wait_for(task, 30)
    assert peak <= bound, bridge.stats
    assert influx_step_indices(influxdb1, "run-bounded") == list(range(len(steps)))
