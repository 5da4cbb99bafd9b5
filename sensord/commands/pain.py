"""``sensord pain``: report a 0-10 pain score (NRS) for a runner's live run.

The score is validated before anything touches the network (exit 2, nothing published,
on a bad value). The run is found from the runner's retained ``.../status`` message
(``online``, most recent), which also gives the run time of the report; ``--run-id``
overrides it. The report is published at QoS 1 on ``sensord/v1/<runner>/pain`` and the
command waits for the broker's acknowledgement.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from dataclasses import dataclass
from pathlib import Path

from sensord.commands.ingest import parse_broker, read_secret
from sensord.errors import InputError, ServiceError

HELP = "report a 0-10 pain score for a live run"


def _score(text: str) -> int:
    try:
        value = int(text.strip(), 10)
    except ValueError:
        raise InputError(f"--score must be a whole number from 0 to 10, got {text!r}") from None
    if not 0 <= value <= 10:
        raise InputError(f"--score must be from 0 (no pain) to 10 (worst), got {value}")
    return value


def _location(text: str | None) -> str | None:
    if text is None or not text.strip():
        return None
    if len(text) > 200 or any(ord(c) < 32 for c in text):
        raise InputError("--location must be one line of at most 200 characters")
    return text.strip()


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags of ``sensord pain``."""
    a = parser.add_argument
    a("--runner", required=True, help="runner id (also the MQTT username by default)")
    a("--score", required=True, help="pain 0 (none) .. 10 (worst), whole number")
    a("--location", help="where it hurts, e.g. 'left knee'")
    a("--run-id", help="run to attach the report to (default: the runner's live run)")
    a("--broker", default="127.0.0.1:1883", help="MQTT broker HOST[:PORT]")
    a("--mqtt-username", help="MQTT user (default: the runner id)")
    a("--mqtt-password-file", type=Path, help="file with the password (or $SENSORD_MQTT_PASSWORD)")
    a("--tls", action="store_true", help="connect with TLS")
    a("--ca-file", help="CA bundle for the broker's certificate")
    a("--status-wait-s", type=float, default=2.0, help="how long to look for the live run")


@dataclass(frozen=True, slots=True)
class LiveRun:
    """The runner's live run, from its retained status."""

    run_id: str
    run_start_ms: int


async def _publish(args: argparse.Namespace, score: int, location: str | None) -> str:
    import aiomqtt

    from sensord.contract import (
        BrokerConfig,
        ContractError,
        check_id,
        encode_pain,
        pain_topic,
        status_filter,
    )
    from sensord.model import PainReport, RunInfo

    runner = check_id(args.runner, "--runner")
    host, port = parse_broker(args.broker)
    broker = BrokerConfig(
        host=host,
        port=port,
        username=args.mqtt_username or runner,
        password=read_secret("SENSORD_MQTT_PASSWORD", args.mqtt_password_file, "MQTT password"),
        tls=bool(args.tls),
        ca_file=args.ca_file,
    )
    try:
        async with aiomqtt.Client(
            broker.host,
            broker.port,
            username=broker.username,
            password=broker.password,
            tls_context=broker.tls_context(),
            timeout=10,
        ) as client:
            live: LiveRun | None = None
            if args.run_id is None:
                live = await _find_live_run(client, status_filter(runner), args.status_wait_s)
                if live is None:
                    raise InputError(
                        f"no live run found for runner {runner!r} (no online status on "
                        f"{status_filter(runner)}); pass --run-id"
                    )
            run_id = check_id(args.run_id or (live.run_id if live else ""), "--run-id")
            now_s = time.time()
            start_s = live.run_start_ms / 1000.0 if live else now_s
            report = PainReport(t_s=round(now_s - start_s, 3), score=score, location=location)
            run = RunInfo(runner, "-", run_id, "pelvis")
            payload = encode_pain(run, report, start_s)
            await client.publish(pain_topic(runner), payload, qos=1)
            return run_id
    except ContractError as e:
        raise InputError(str(e)) from None
    except aiomqtt.MqttError as e:
        raise ServiceError(f"cannot publish to the broker at {host}:{port}: {e}") from None


async def _find_live_run(client: object, filter_: str, wait_s: float) -> LiveRun | None:
    import aiomqtt

    assert isinstance(client, aiomqtt.Client)
    best: LiveRun | None = None
    best_ts = -1
    await client.subscribe(filter_, qos=1)
    deadline = time.monotonic() + wait_s
    try:
        while (remaining := deadline - time.monotonic()) > 0:
            try:
                message = await asyncio.wait_for(anext(aiter(client.messages)), remaining)
            except TimeoutError:
                break
            try:
                doc = json.loads(bytes(message.payload))
            except ValueError:
                continue
            if not isinstance(doc, dict) or doc.get("state") != "online":
                continue
            ts, run_id, start = doc.get("ts_ms"), doc.get("run_id"), doc.get("run_start_ms")
            if isinstance(ts, int) and isinstance(run_id, str) and isinstance(start, int):
                if ts > best_ts:
                    best, best_ts = LiveRun(run_id, start), ts
                # retained messages arrive together right after subscribing
                deadline = min(deadline, time.monotonic() + 0.3)
    finally:
        await client.unsubscribe(filter_)
    return best


def run(args: argparse.Namespace) -> int:
    """Validate, then publish; exit 2 with a one-line message on any error."""
    score = _score(str(args.score))
    location = _location(args.location)
    run_id = asyncio.run(_publish(args, score, location))
    print(f"pain {score}/10 reported for runner {args.runner}, run {run_id}")
    return 0
