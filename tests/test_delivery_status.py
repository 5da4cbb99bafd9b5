"""Retained presence: online while connected, offline by last will or on a clean stop."""

from __future__ import annotations

import json
from pathlib import Path

import aiomqtt
import pytest

from sensord.contract import BrokerConfig
from sensord.model import RunInfo
from sensord.sinks.mqtt_publisher import MqttPublisher
from tests.servers import MosquittoServer, TcpProxy

pytestmark = pytest.mark.servers

TOPIC = "sensord/v1/alice/pelvis1/status"


async def retained_status(mqtt: MosquittoServer) -> dict[str, object]:
    async with aiomqtt.Client(mqtt.host, mqtt.port) as c:
        await c.subscribe(TOPIC, qos=1)
        async for message in c.messages:
            assert message.retain
            doc: dict[str, object] = json.loads(message.payload)  # type: ignore[arg-type]
            return doc
    raise AssertionError("no status")


async def next_status(c: aiomqtt.Client) -> dict[str, object]:
    async for message in c.messages:
        doc: dict[str, object] = json.loads(message.payload)  # type: ignore[arg-type]
        return doc
    raise AssertionError("no status")


async def test_online_then_last_will_then_online_then_clean_offline(
    tmp_path: Path, mosquitto: MosquittoServer
) -> None:
    link = TcpProxy(mosquitto.host, mosquitto.port)
    run = RunInfo("alice", "pelvis1", "run-status", "pelvis")
    async with aiomqtt.Client(mosquitto.host, mosquitto.port, identifier="watch") as watch:
        await watch.subscribe(TOPIC, qos=1)
        pub = MqttPublisher(
            BrokerConfig(host=link.host, port=link.port),
            run,
            epoch_offset_s=1.7e9,
            spool_path=tmp_path / "spool.sqlite",
            backoff_max_s=0.5,
        )
        async with pub:
            first = await next_status(watch)
            assert (first["state"], first["run_id"]) == ("online", "run-status")
            assert first["run_start_ms"] == 1_700_000_000_000
            link.cut()  # the publisher vanishes without a DISCONNECT: the will fires
            assert (await next_status(watch))["state"] == "offline"
            link.restore()
            assert (await next_status(watch))["state"] == "online"
        assert (await next_status(watch))["state"] == "offline"  # clean stop
    assert (await retained_status(mosquitto))["state"] == "offline"
    link.cut()
