"""``sensord pain``: validates first (exit 2, nothing published), then publishes."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

import aiomqtt
import pytest

from sensord.contract import BrokerConfig, decode
from sensord.model import RunInfo
from sensord.sinks.mqtt_publisher import MqttPublisher
from tests.servers import MosquittoServer

pytestmark = pytest.mark.servers

REPO = Path(__file__).resolve().parent.parent


def pain_cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    return subprocess.run(
        [sys.executable, "-m", "sensord.cli", "pain", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        timeout=60,
    )


async def test_bad_scores_exit_2_and_publish_nothing_then_a_good_one_lands(
    tmp_path: Path, mosquitto: MosquittoServer
) -> None:
    broker = ["--broker", f"{mosquitto.host}:{mosquitto.port}"]
    run = RunInfo("alice", "pelvis1", "run-pain", "pelvis")
    async with (
        aiomqtt.Client(mosquitto.host, mosquitto.port, identifier="watch") as watch,
        MqttPublisher(
            BrokerConfig(port=mosquitto.port),
            run,
            epoch_offset_s=1.7e9,
            spool_path=tmp_path / "spool.sqlite",
        ) as pub,
    ):
        await watch.subscribe("sensord/v1/+/pain", qos=1)
        await asyncio.wait_for(pub.connected.wait(), 30)
        for bad in ("11", "-1", "3.5", "seven", ""):
            out = await asyncio.to_thread(pain_cli, "--runner", "alice", "--score", bad, *broker)
            assert out.returncode == 2, (bad, out.stderr)
            assert out.stderr.startswith("sensord: error: --score"), out.stderr
            assert len(out.stderr.strip().splitlines()) == 1
        out = await asyncio.to_thread(pain_cli, "--runner", "al#ice", "--score", "3", *broker)
        assert out.returncode == 2
        assert "--runner" in out.stderr

        out = await asyncio.to_thread(
            pain_cli, "--runner", "alice", "--score", "6", "--location", "left knee", *broker
        )
        assert out.returncode == 0, out.stderr
        async for message in watch.messages:  # the first (and only) pain message
            env = decode(message.topic.value, bytes(message.payload))  # type: ignore[arg-type]
            break
    assert env.run_id == "run-pain"  # found from the live run's retained status
    record = env.records[0]
    assert (record["score"], record["location"]) == (6, "left knee")
    assert record["t_s"] >= 0
    assert json.loads(message.payload)["schema"] == "sensord.pain/1"  # type: ignore[arg-type]


def test_unreachable_broker_is_a_one_line_error() -> None:
    from tests.servers import free_port

    out = pain_cli(
        "--runner",
        "alice",
        "--score",
        "2",
        "--run-id",
        "r1",
        "--broker",
        f"127.0.0.1:{free_port()}",
    )
    assert out.returncode == 2
    assert out.stderr.startswith("sensord: error: cannot publish to the broker")


def test_a_missing_ca_file_is_a_one_line_error() -> None:
    out = pain_cli("--runner", "alice", "--score", "3", "--broker", "127.0.0.1:1", "--tls",
                   "--ca-file", "/nonexistent/ca.pem")
    assert out.returncode == 2
    assert out.stderr.startswith("sensord: error: --ca-file /nonexistent/ca.pem: cannot load")
    assert len(out.stderr.strip().splitlines()) == 1
