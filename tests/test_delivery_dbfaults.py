"""Database answers: 429/503 retried (Retry-After honoured), and so are 401/403/404 (a wrong
token, a database not created yet: fixing it must not find the data dead-lettered); points
the database rejects (400) are dead-lettered."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import urllib.request
from pathlib import Path

import aiomqtt
import pytest

from sensord.contract import DEADLETTER_TOPIC
from sensord.ingest.transport import parse_retry_after
from sensord.model import RunInfo
from tests.servers import (
    FlakyHttpProxy,
    InfluxDB1Server,
    IngestProcess,
    MosquittoServer,
    influx_step_indices,
    wait_until,
)
from tests.test_delivery_basic import T0_S, make_steps, publish_one_by_one

pytestmark = pytest.mark.servers


def test_parse_retry_after() -> None:
    assert parse_retry_after("3") == 3.0
    assert parse_retry_after(" 0.5 ") == 0.5
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0  # in the past
    assert parse_retry_after("soon") is None
    assert parse_retry_after(None) is None


@pytest.mark.parametrize(("status", "retry_after_s"),
                         [(429, 1.0), (503, None), (401, None), (403, None), (404, None)])
async def test_busy_or_misconfigured_database_is_retried_until_everything_is_written_once(
    tmp_path: Path,
    mosquitto: MosquittoServer,
    influxdb1: InfluxDB1Server,
    status: int,
    retry_after_s: float | None,
) -> None:
    influxdb1.create_database("sensord")
    flaky = FlakyHttpProxy(influxdb1.url, n_failures=3, status=status, retry_after_s=retry_after_s)
    bridge = IngestProcess.between(tmp_path / "ingest", mosquitto, flaky.url,
                                   "--linger-ms", "50", "--max-backoff-s", "1")
    await asyncio.to_thread(bridge.start)
    run = RunInfo("alice", "pelvis1", f"run-busy-{status}", "pelvis")
    try:
        await publish_one_by_one(mosquitto.port, run, make_steps(100), tmp_path / "spool.sqlite")
        await asyncio.to_thread(
            wait_until,
            lambda: len(influx_step_indices(influxdb1, run.run_id)) >= 100,
            60,
            "100 steps",
        )
        assert influx_step_indices(influxdb1, run.run_id) == list(range(100))
        assert flaky.failed == 3
        log = bridge.log_tail(1_000_000)
        assert log.count(f"HTTP {status}") == 3
        if retry_after_s is not None:
            assert log.count("retrying in 1.0 s") == 3  # the server's Retry-After
    finally:
        await asyncio.to_thread(bridge.stop)
        flaky.close()


async def test_points_the_database_rejects_are_dead_lettered_the_rest_written(
    tmp_path: Path, mosquitto: MosquittoServer, influxdb1: InfluxDB1Server
) -> None:
    influxdb1.create_database("sensord")
    # A string flight_ms already in the shard: a float flight_ms is now a type conflict.
    conflict = (
        "steps,placement=pelvis,run_id=other,runner=alice,sensor=pelvis1,side=left "
        f'flight_ms="oops" {round(T0_S * 1000) - 1000}'
    )
    await asyncio.to_thread(
        urllib.request.urlopen,
        urllib.request.Request(
            f"{influxdb1.url}/write?db=sensord&precision=ms", data=conflict.encode(), method="POST"
        ),
    )
    bridge = IngestProcess.between(tmp_path / "ingest", mosquitto, influxdb1.url,
                                   "--linger-ms", "300")
    await asyncio.to_thread(bridge.start)
    run = RunInfo("alice", "pelvis1", "run-reject", "pelvis")
    steps = make_steps(20)
    steps[7] = dataclasses.replace(steps[7], flight_ms=120.0)  # the one that conflicts
    try:
        async with aiomqtt.Client(mosquitto.host, mosquitto.port, identifier="watch") as watch:
            await watch.subscribe(DEADLETTER_TOPIC, qos=1)
            await publish_one_by_one(mosquitto.port, run, steps, tmp_path / "spool.sqlite")
            async for message in watch.messages:
                letter = json.loads(message.payload)  # type: ignore[arg-type]
                break
        assert letter["reason"].startswith("rejected by database: HTTP 400")
        assert json.loads(letter["payload"])["step_index"] == 7
        await asyncio.to_thread(
            wait_until,
            lambda: len(influx_step_indices(influxdb1, "run-reject")) >= 19,
            30,
            "the 19 good steps",
        )
        assert influx_step_indices(influxdb1, "run-reject") == [i for i in range(20) if i != 7]
        assert bridge.running
    finally:
        await asyncio.to_thread(bridge.stop)
