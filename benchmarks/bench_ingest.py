"""Benchmark of ``sensord ingest``: mosquitto -> bridge -> InfluxDB 1.x.

Not a test: run ``python benchmarks/bench_ingest.py [--steps N] [--batch K]``.

1. Throughput. N steps (in messages of K steps, ``sensord.steps/1``; K=1 is
   ``sensord.step/1``) are queued in the broker for the bridge's persistent session while
   it is offline; then the bridge starts (pinned to one CPU core) and we time until every
   point is queryable. The ceiling is a plain aiomqtt subscriber on the same backlog that
   decodes nothing and writes nothing. Reported both as wall-clock rate (on a 2-core box
   this is bounded by mosquitto + influxd sharing the other core, and by mosquitto's
   slow drain of a large stored queue) and per CPU-second of the (single-threaded)
   bridge process: the capacity of one core. Peak RSS shows memory stays bounded.
2. Latency. Steps published live (one message each, 50 steps/s, several runners), each
   at its toe-off; a poller records when each becomes queryable (default batching:
   5000 points / 200 ms linger). Reports p50 / p99 (poll period 20 ms adds <= 20 ms).

Starts its own mosquitto and influxd in a temporary directory (tests/servers.py).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import aiomqtt

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from sensord.contract import encode_step, encode_steps, topic  # noqa: E402
from sensord.model import RunInfo, Step  # noqa: E402
from tests.servers import InfluxDB1Server, IngestProcess, MosquittoServer  # noqa: E402

T0_S = 1_700_000_000.0


def steps_for(n: int, start: int = 0) -> list[Step]:
    return [
        Step(
            t_ic=0.36 * i,
            t_fc=0.36 * i + 0.2,
            gct_ms=200.0 + i % 9,
            cadence_spm=168.0,
            side="left" if i % 2 else "right",
            pelvic_drop_deg=4.2,
            step_index=i,
            step_time_s=0.36,
            impact_g=2.4,
            braking_g=0.4,
            vertical_oscillation_cm=8.1,
        )
        for i in range(start, start + n)
    ]


def payloads(n_steps: int, batch: int, run: RunInfo) -> list[bytes]:
    steps = steps_for(n_steps)
    if batch == 1:
        return [encode_step(run, s, T0_S) for s in steps]
    return [encode_steps(run, steps[i : i + batch], T0_S) for i in range(0, n_steps, batch)]


async def queue_backlog(mqtt: MosquittoServer, msgs: list[bytes], run: RunInfo) -> None:
    t = topic(run.runner_id, run.sensor_id, "steps")
    async with aiomqtt.Client(
        mqtt.host, mqtt.port, identifier="bench-pub", max_inflight_messages=1000
    ) as c:
        for i in range(0, len(msgs), 1000):
            await asyncio.gather(*(c.publish(t, m, qos=1) for m in msgs[i : i + 1000]))


async def register_session(mqtt: MosquittoServer, client_id: str) -> None:
    """Create a persistent session subscribed like the bridge, then go offline."""
    from paho.mqtt.packettypes import PacketTypes
    from paho.mqtt.properties import Properties

    props = Properties(PacketTypes.CONNECT)
    props.SessionExpiryInterval = 3600
    async with aiomqtt.Client(
        mqtt.host,
        mqtt.port,
        identifier=client_id,
        protocol=aiomqtt.ProtocolVersion.V5,
        clean_start=False,
        properties=props,
    ) as c:
        await c.subscribe("sensord/v1/+/+/steps", qos=1)


async def plain_subscriber(mqtt: MosquittoServer, client_id: str, n_msgs: int) -> float:
    """Drain the backlog; seconds taken (from CONNACK to the last message)."""
    from paho.mqtt.packettypes import PacketTypes
    from paho.mqtt.properties import Properties

    props = Properties(PacketTypes.CONNECT)
    props.SessionExpiryInterval = 3600
    props.ReceiveMaximum = 2000
    got = 0
    t0 = time.perf_counter()
    async with aiomqtt.Client(
        mqtt.host,
        mqtt.port,
        identifier=client_id,
        protocol=aiomqtt.ProtocolVersion.V5,
        clean_start=False,
        properties=props,
    ) as c:
        async for _ in c.messages:
            got += 1
            if got == n_msgs:
                break
    return time.perf_counter() - t0


def count_points(db: InfluxDB1Server, run_id: str) -> int:
    rows = db.query(f"SELECT count(step_index) FROM steps WHERE run_id = '{run_id}'", db="sensord")
    return int(rows[0]["count"]) if rows else 0


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process (all its threads)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def pin(pid: int | None, cpu: int) -> None:
    if (
        pid is not None
        and hasattr(os, "sched_setaffinity")
        and os.cpu_count()
        and cpu < (os.cpu_count() or 1)
    ):
        os.sched_setaffinity(pid, {cpu})


async def throughput(tmp: Path, n_steps: int, batch: int) -> dict[str, float]:
    mqtt = MosquittoServer(tmp / f"mq-{batch}")
    db = InfluxDB1Server(tmp / f"db-{batch}")
    mqtt.start()
    db.start()
    pin(mqtt.pid, 0)
    pin(db.pid, 0)
    db.create_database("sensord")
    run = RunInfo("bench", "pelvis1", f"bench-{batch}", "pelvis")
    msgs = payloads(n_steps, batch, run)
    try:
        # ceiling: a subscriber that only receives
        await register_session(mqtt, "ceiling")
        await queue_backlog(mqtt, msgs, run)
        everywhere = os.sched_getaffinity(0)
        pin(os.getpid(), 1)  # the same single core the bridge gets
        c0 = time.process_time()
        ceiling_s = await plain_subscriber(mqtt, "ceiling", len(msgs))
        ceiling_cpu_s = time.process_time() - c0
        os.sched_setaffinity(0, everywhere)

        bridge = IngestProcess(
            tmp / f"bridge-{batch}",
            [
                "--broker",
                f"{mqtt.host}:{mqtt.port}",
                "--influx-url",
                db.url,
                "--client-id",
                "bench-bridge",
            ],
        )
        await register_session(mqtt, "bench-bridge")
        await queue_backlog(mqtt, msgs, run)
        # start-up CPU (imports, connect) of an idle bridge, to subtract
        idle = IngestProcess(
            tmp / f"idle-{batch}",
            [
                "--broker",
                f"{mqtt.host}:{mqtt.port}",
                "--influx-url",
                db.url,
                "--client-id",
                "bench-idle",
            ],
        )
        idle.start()
        assert idle.pid is not None
        b0 = cpu_s(idle.pid)
        idle.stop()
        t0 = time.perf_counter()
        bridge.start()
        assert bridge.pid is not None
        pin(bridge.pid, 1)
        while count_points(db, run.run_id) < n_steps:  # noqa: ASYNC110 - polling a DB
            await asyncio.sleep(0.25)  # rarely: count() over all points costs influxd CPU
        bridge_s = time.perf_counter() - t0
        bridge_cpu_s = cpu_s(bridge.pid) - b0
        rss = peak_rss_mb(bridge.pid)
        bridge.stop()
    finally:
        mqtt.stop()
        db.stop()
    return {
        "batch": batch,
        "steps": n_steps,
        "ceiling_steps_per_s": n_steps / ceiling_s,
        "bridge_steps_per_s": n_steps / bridge_s,
        "ratio": ceiling_s / bridge_s,
        "ceiling_steps_per_cpu_s": n_steps / ceiling_cpu_s,
        "bridge_steps_per_cpu_s": n_steps / bridge_cpu_s,
        "cpu_ratio": ceiling_cpu_s / bridge_cpu_s,
        "bridge_peak_rss_mb": rss,
    }


async def latency(tmp: Path, n_steps: int, runners: int, per_s: float) -> dict[str, float]:
    mqtt = MosquittoServer(tmp / "mq-lat")
    db = InfluxDB1Server(tmp / "db-lat")
    mqtt.start()
    db.start()
    db.create_database("sensord")
    bridge = IngestProcess(
        tmp / "bridge-lat",
        [
            "--broker",
            f"{mqtt.host}:{mqtt.port}",
            "--influx-url",
            db.url,
            "--client-id",
            "lat-bridge",
        ],
    )
    bridge.start()
    sent: dict[int, float] = {}
    seen: dict[int, float] = {}
    try:
        run = RunInfo("lat", "pelvis1", "bench-lat", "pelvis")
        # epoch offset chosen so each step's toe-off is "now" when it is published
        async with aiomqtt.Client(mqtt.host, mqtt.port, identifier="lat-pub") as c:
            t = topic(run.runner_id, run.sensor_id, "steps")

            async def poll() -> None:
                while len(seen) < n_steps:
                    rows = await asyncio.to_thread(
                        db.query,
                        "SELECT step_index FROM steps WHERE run_id = 'bench-lat' "
                        f"AND step_index >= {min(set(sent) - set(seen), default=0)}",
                        "sensord",
                    )
                    now = time.perf_counter()
                    for r in rows:
                        seen.setdefault(int(r["step_index"]), now)
                    await asyncio.sleep(0.02)

            poller = asyncio.create_task(poll())
            for i, s in enumerate(steps_for(n_steps)):
                await c.publish(t, encode_step(run, s, T0_S), qos=1)
                sent[i] = time.perf_counter()
                await asyncio.sleep(1.0 / (per_s * runners))
            await asyncio.wait_for(poller, 60)
    finally:
        bridge.stop()
        mqtt.stop()
        db.stop()
    lat_ms = sorted((seen[i] - sent[i]) * 1000 for i in sent)
    return {
        "steps": n_steps,
        "p50_ms": statistics.median(lat_ms),
        "p99_ms": lat_ms[int(0.99 * (len(lat_ms) - 1))],
        "max_ms": lat_ms[-1],
    }


async def main() -> None:
    import logging

    logging.getLogger("mqtt").setLevel(logging.ERROR)  # aiomqtt's "pending publish calls"
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=200_000)
    ap.add_argument("--batch", type=int, nargs="+", default=[20, 1])
    ap.add_argument("--latency-steps", type=int, default=1000)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-ingest-") as d:
        tmp = Path(d)
        for k in args.batch:
            n = args.steps if k > 1 else min(args.steps, 50_000)
            r = await throughput(tmp, n, k)
            print(
                f"throughput, {k:>3} steps/message, {r['steps']} steps:\n"
                f"  wall:      bridge {r['bridge_steps_per_s']:,.0f} steps/s, plain subscriber "
                f"{r['ceiling_steps_per_s']:,.0f} steps/s, ratio {r['ratio']:.2f}\n"
                f"  per core:  bridge {r['bridge_steps_per_cpu_s']:,.0f} steps/CPU-s, plain "
                f"subscriber {r['ceiling_steps_per_cpu_s']:,.0f} steps/CPU-s, ratio "
                f"{r['cpu_ratio']:.2f}\n"
                f"  bridge peak RSS {r['bridge_peak_rss_mb']:.0f} MB",
                flush=True,
            )
        r = await latency(tmp, args.latency_steps, runners=4, per_s=12.5)
        print(
            f"latency publish(toe-off) -> queryable, {r['steps']} steps at 50 steps/s: "
            f"p50 {r['p50_ms']:.0f} ms, p99 {r['p99_ms']:.0f} ms, max {r['max_ms']:.0f} ms"
        )


if __name__ == "__main__":
    asyncio.run(main())
