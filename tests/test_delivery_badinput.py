"""Bad payloads go to the dead-letter topic with a reason; the bridge keeps going."""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path

import aiomqtt
import pytest

from sensord.contract import DEADLETTER_TOPIC, decode, encode_step
from sensord.model import RunInfo
from tests.servers import (
    InfluxDB1Server,
    IngestProcess,
    MosquittoServer,
    influx_step_indices,
    wait_until,
)
from tests.test_delivery_basic import T0_S, make_steps

pytestmark = pytest.mark.servers

RUN = RunInfo("alice", "pelvis1", "run-bad", "pelvis")
TOPIC = "sensord/v1/alice/pelvis1/steps"


def good(i: int) -> bytes:
    return encode_step(RUN, make_steps(1, start=i)[0], T0_S)


def literal(i: int, field: str, token: bytes) -> bytes:
    """A good payload with ``field``'s number replaced by a raw token (e.g. NaN)."""
    out, n = re.subn(
        rb'"' + field.encode() + rb'":[-0-9.e]+', b'"' + field.encode() + b'":' + token, good(i)
    )
    assert n == 1
    return out


def mutated(i: int, **changes: object) -> bytes:
    doc = json.loads(good(i))
    doc.update(changes)
    return json.dumps(doc).encode()


#: (name, topic, payload, words the reason must contain)
BAD: list[tuple[str, str, bytes, str]] = [
    ("malformed JSON", TOPIC, b'{"schema": "sensord.step/1", ', "malformed JSON"),
    ("not an object", TOPIC, b"[1, 2, 3]", "JSON object"),
    ("wrong type", TOPIC, mutated(1000, gct_ms="fast"), "'gct_ms' must be a number"),
    ("NaN", TOPIC, literal(1001, "gct_ms", b"NaN"), "NaN"),
    ("Infinity", TOPIC, literal(1002, "impact_g", b"-Infinity"), "Infinity"),
    (
        "unknown schema version",
        TOPIC,
        mutated(1003, schema="sensord.step/2"),
        "unknown schema version",
    ),
    ("oversized", TOPIC, mutated(1004, pad="x" * 300_000), "exceeds"),
    ("runner id with #", TOPIC, mutated(1005, runner="al#ice"), "runner"),
    ("runner differs from topic", TOPIC, mutated(1006, runner="bob"), "differs from topic"),
    ("bad id in topic", "sensord/v1/al ice/pelvis1/steps", good(1007), "runner id in topic"),
    ("missing ts_ms", TOPIC, mutated(1008, ts_ms=None), "'ts_ms' is required"),
    ("ts in seconds", TOPIC, mutated(1009, ts_ms=1_700_000_000), "epoch milliseconds"),
    ("negative step index", TOPIC, mutated(1010, step_index=-1), "step_index"),
    ("bad side", TOPIC, mutated(1011, side="middle"), "'side'"),
    ("not UTF-8", TOPIC, b"\xff\xfe\x00garbage", "malformed JSON"),
]


def test_bad_payloads_are_rejected_by_the_shared_validator() -> None:
    from sensord.contract import ContractError

    for name, topic, payload, words in BAD:
        with pytest.raises(ContractError, match=None) as e:
            decode(topic, payload)
        assert words in str(e.value), (name, str(e.value))
    assert decode(TOPIC, good(0)).records[0]["step_index"] == 0


def test_a_publisher_batch_of_the_widest_steps_fits_the_payload_limit() -> None:
    """``PUBLISH_BATCH_STEPS`` steps with every field set (full-precision floats, longest
    ids) still fit ``MAX_PAYLOAD_BYTES``; ``MAX_BATCH_STEPS`` of them would not, which
    is why the publisher splits at the smaller number."""
    from sensord.contract import (
        MAX_BATCH_STEPS,
        PUBLISH_BATCH_STEPS,
        ContractError,
        encode_steps,
    )
    from sensord.model import Step

    x = -123456.78901234567
    widest = [Step(t_ic=86399.123456789012 + i, t_fc=86399.423456789012 + i, gct_ms=x,
                   cadence_spm=x, side="right", pelvic_drop_deg=x, step_index=10**9 + i,
                   step_time_s=x, stride_time_s=x, gct_balance_pct=x,
                   vertical_oscillation_cm=x, impact_g=x, braking_g=x, flight_ms=x)
              for i in range(MAX_BATCH_STEPS)]
    run = RunInfo("r" * 64, "s" * 64, "u" * 64, "pelvis")
    payload = encode_steps(run, widest[:PUBLISH_BATCH_STEPS], 1.7e9)
    assert len(decode(f"sensord/v1/{'r' * 64}/{'s' * 64}/steps", payload).records) == 500
    with pytest.raises(ContractError, match="exceeds"):
        encode_steps(run, widest, 1.7e9)


async def test_bad_payloads_dead_lettered_and_good_ones_around_them_written(
    tmp_path: Path, mosquitto: MosquittoServer, influxdb1: InfluxDB1Server
) -> None:
    influxdb1.create_database("sensord")
    bridge = IngestProcess.between(tmp_path / "ingest", mosquitto, influxdb1.url,
                                   "--linger-ms", "50")
    await asyncio.to_thread(bridge.start)
    try:
        async with aiomqtt.Client(mosquitto.host, mosquitto.port, identifier="watch") as watch:
            await watch.subscribe(DEADLETTER_TOPIC, qos=1)
            async with aiomqtt.Client(mosquitto.host, mosquitto.port, identifier="pub") as pub:
                i = 0
                for _, topic, payload, _ in BAD:
                    await pub.publish(TOPIC, good(i), qos=1)  # a good one before each bad one
                    i += 1
                    await pub.publish(topic, payload, qos=1)
                await pub.publish(TOPIC, good(i), qos=1)
                n_good = i + 1
            letters = []
            async for message in watch.messages:
                letters.append(json.loads(message.payload))
                if len(letters) == len(BAD):
                    break
        for (name, topic, payload, words), letter in zip(BAD, letters, strict=True):
            assert letter["schema"] == "sensord.deadletter/1"
            assert letter["topic"] == topic, name
            assert words in letter["reason"], (name, letter["reason"])
            assert letter["size_bytes"] == len(payload)
            if len(payload) <= 64 * 1024 and "payload" in letter:
                assert letter["payload"].encode() == payload, name
        assert letters[6]["truncated"] is True  # the oversized one is cut
        assert "payload_b64" in letters[-1]  # not UTF-8: kept as base64

        await asyncio.to_thread(
            wait_until,
            lambda: len(influx_step_indices(influxdb1, "run-bad")) >= n_good,
            30,
            "the good steps",
        )
        assert influx_step_indices(influxdb1, "run-bad") == list(range(n_good))
        assert bridge.running  # never stopped on bad input
    finally:
        await asyncio.to_thread(bridge.stop)


async def test_a_malformed_message_inside_a_backlog_does_not_stall_the_bridge(
    tmp_path: Path, mosquitto: MosquittoServer, influxdb1: InfluxDB1Server
) -> None:
    """The bridge pauses reading while its backlog is full; publishing a dead letter then
    waited for a PUBACK nothing read: a timeout, a reconnect, the same message again, for
    ever, and nothing else ingested."""
    influxdb1.create_database("sensord")
    bridge = IngestProcess.between(tmp_path / "ingest", mosquitto, influxdb1.url,
                                   "--receive-max", "50")
    await asyncio.to_thread(bridge.start)  # (creates the persistent session)
    await asyncio.to_thread(bridge.stop)
    run = RunInfo("alice", "pelvis1", "run-backlog", "pelvis")
    messages = [encode_step(run, s, T0_S) for s in make_steps(4000)]
    messages[2500] = b'{"not": "valid"'
    async with aiomqtt.Client(mosquitto.host, mosquitto.port, identifier="fill",
                              max_inflight_messages=1000) as pub:
        for i in range(0, len(messages), 1000):
            await asyncio.gather(*(pub.publish("sensord/v1/alice/pelvis1/steps", m, qos=1)
                                   for m in messages[i:i + 1000]))
    await asyncio.to_thread(bridge.start)
    try:
        want = [i for i in range(4000) if i != 2500]
        await asyncio.to_thread(
            wait_until, lambda: influx_step_indices(influxdb1, run.run_id) == want, 60,
            "the 3999 good steps behind and after the malformed one")
        log = bridge.log_tail(10**6)
        assert "dead-lettered a message" in log and "timed out" not in log
    finally:
        await asyncio.to_thread(bridge.stop)
