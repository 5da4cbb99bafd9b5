"""``sensord run`` with a broker, as a runner uses it.

- A run that finishes out of reach of the broker keeps its steps in the publisher's
  outbox (one per runner and sensor, in the store directory); the next run with the same
  runner and sensor sends them, each still under its own run id.
- ``sensord pain`` during a live run reaches that run's coaching: the stop alert is
  raised during the run and the report is kept with it.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

import aiomqtt
import pytest

from sensord.contract import decode
from sensord.sinks.spool import Spool
from tests.servers import MosquittoServer

pytestmark = [pytest.mark.servers]


def sensord_run(store: Path, broker: str, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sensord.cli", "run", "--runner", "alice", "--duration-s", "60",
         "--speed", "0", "--store", str(store), "--broker", broker, "--quiet", *extra],
        capture_output=True, text=True, timeout=300)


def stored_steps(store: Path) -> dict[str, int]:
    """Steps per run id in the local store (what each run detected)."""
    out: dict[str, int] = {}
    for f in store.glob("*.jsonl"):
        records = [json.loads(line) for line in f.read_text().splitlines()]
        out[f.stem] = sum(1 for r in records if r["record"] == "step")
    return out


async def test_steps_left_in_the_outbox_are_sent_by_the_next_run(
    tmp_path: Path, mosquitto: MosquittoServer
) -> None:
    store = tmp_path / "runs"
    broker = f"{mosquitto.host}:{mosquitto.port}"
    await asyncio.to_thread(mosquitto.stop)  # the runner is out of reach of their broker
    offline = await asyncio.to_thread(sensord_run, store, broker)
    assert offline.returncode == 0, offline.stderr
    assert "messages not delivered" in offline.stderr
    (first_run,) = stored_steps(store)
    # a run on another broker (here a throw-away local one) must not take them
    elsewhere = await asyncio.to_thread(sensord_run, store, "auto")
    assert elsewhere.returncode == 0, elsewhere.stderr
    (elsewhere_run,) = set(stored_steps(store)) - {first_run}
    (outbox,) = store.glob("*.outbox.sqlite")
    assert len(Spool(outbox)) > 150
    await asyncio.to_thread(mosquitto.start)

    received: dict[str, set[int]] = {}

    async def watch_steps(client: aiomqtt.Client) -> None:
        async for message in client.messages:
            env = decode(message.topic.value, bytes(message.payload))  # type: ignore[arg-type]
            received.setdefault(env.run_id, set()).update(
                int(r["step_index"]) for r in env.records)

    async with aiomqtt.Client(mosquitto.host, mosquitto.port, identifier="coach") as watch:
        await watch.subscribe("sensord/v1/alice/+/steps", qos=1)
        watcher = asyncio.create_task(watch_steps(watch))
        online = await asyncio.to_thread(sensord_run, store, broker)
        assert online.returncode == 0, online.stderr
        assert "messages not delivered" not in online.stderr
        expected = stored_steps(store)
        del expected[elsewhere_run]
        assert len(expected) == 2 and expected[first_run] > 150  # 60 s detected offline
        want = {run: set(range(n)) for run, n in expected.items()}
        for _ in range(300):  # (the run waits for the broker's acknowledgements on exit)
            if received == want:
                break
            await asyncio.sleep(0.1)
        watcher.cancel()
    assert received == want
    assert len(Spool(outbox)) == 0


def test_a_pain_report_during_a_live_run_raises_the_stop_alert(
    tmp_path: Path, mosquitto: MosquittoServer
) -> None:
    store = tmp_path / "runs"
    broker = f"{mosquitto.host}:{mosquitto.port}"
    # 60 s of running at 3x: about 20 s of wall time to report pain in
    live = subprocess.Popen(
        [sys.executable, "-m", "sensord.cli", "run", "--runner", "alice", "--duration-s", "60",
         "--speed", "3", "--store", str(store), "--broker", broker, "--quiet"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        pain = subprocess.run(
            [sys.executable, "-m", "sensord.cli", "pain", "--runner", "alice", "--score", "4",
             "--location", "lower back", "--broker", broker, "--status-wait-s", "10"],
            capture_output=True, text=True, timeout=60)
        assert pain.returncode == 0, pain.stderr
        out, err = live.communicate(timeout=240)
    finally:
        live.kill()
    assert live.returncode == 0, err
    assert "pain_stop: Pain 4/10 (lower back): stop running" in out
    (run_file,) = store.glob("*.jsonl")
    records = [json.loads(line) for line in run_file.read_text().splitlines()]
    pains = [r for r in records if r["record"] == "painreport"]
    assert [(r["score"], r["location"]) for r in pains] == [(4, "lower back")]
    stops = [r for r in records if r["record"] == "alert" and r["kind"] == "pain_stop"]
    assert [a["state"] for a in stops] == ["raised"]
    assert run_file.stem in pain.stdout  # the report went to this very run
