"""Live-path benchmark: latency, CPU per stream, concurrent sensors per process.

Run::

    python benchmarks/bench_live.py            # all three, ~3 minutes
    python benchmarks/bench_live.py --quick    # shorter runs

Setup: virtual sensors (Bumble peripherals, ``sensord-imu`` profile at 200 Hz with gyro)
run in a *separate process* behind an HCI bridge (``tcp-server``); this process is the
collector side only: Bumble host stack over the HCI transport + bleak (sensord's Bumble
backend) + :class:`BleCollector` (+ the gait engine where stated). That is what a user
with a USB dongle runs (``--transport usb:0``), minus the USB driver.

1. **Latency**: for every step the engine emits, host time of emission minus the host
   time at which the sensor sampled the toe-off (``t_fc``) that completes the step.
   Also the transport part alone: sample due at the sensor -> ``SampleBlock`` yielded.
2. **CPU per 200 Hz stream**: process CPU time / wall time of this process with 1 and with
   8 streams, with and without the engine; the difference / 7 is what one more stream
   costs, the rest is the fixed cost of the process.
3. **Concurrent sensors**: N sensors on one radio; sustained when every stream delivers
   >= 99 % of its samples, transport p99 < 100 ms and this process stays < 80 % of a core.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import os
import socket
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sensord.gait import engine
from sensord.model import SampleBlock, Step
from sensord.sources.ble.bumble_backend import BumbleRadio
from sensord.sources.ble.collector import BleCollector, CollectorParams

RATE_HZ = 200.0
PROFILE = "sensord-imu"
WARMUP_S = 2.0  # clock envelope and engine filters settle
#: Sensor packetisation: 4 samples (20 ms at 200 Hz) per notification.
TICK_S = 0.02
#: Streams in the many-sensor run of the CPU-per-stream measure.
MANY = 8


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _serve(n: int, port: int, duration_s: float, ready: mp.Event,  # type: ignore[valid-type]
           tick_s: float = TICK_S) -> None:
    """Sensor process: n virtual sensors on one air, exposed on tcp-server:port."""
    from sensord.sources.ble.bumble_backend import VirtualAir, expose_air
    from sensord.sources.ble.virtual_sensor import (
        VirtualSensor,
        VirtualSensorParams,
        feed_from_simulation,
    )

    async def main() -> None:
        feed = feed_from_simulation(duration_s + 30.0, RATE_HZ, seed=11)
        air = VirtualAir()
        await expose_air(air, f"tcp-server:127.0.0.1:{port}")
        sensors = [VirtualSensor(air, VirtualSensorParams(profile=PROFILE, name=f"sensord {i:02d}",
                                                          tick_s=tick_s), feed)
                   for i in range(n)]
        for s in sensors:
            await s.start()
        ready.set()  # type: ignore[attr-defined]
        await asyncio.sleep(duration_s + 60.0)

    asyncio.run(main())


@dataclass
class StreamResult:
    samples: int = 0
    transport_latency_s: list[float] = field(default_factory=list)
    step_latency_s: list[float] = field(default_factory=list)
    steps: int = 0
    loss_pct: float = 0.0
    engine_calls: int = 0
    engine_cpu_s: float = 0.0
    #: engine calls and CPU by kind: "held" (block held back), "fold", "fold+step"
    engine_kinds: dict[str, list[float]] = field(default_factory=dict)


async def _consume(col: BleCollector, until: float, with_engine: bool,
                   res: StreamResult, measure_from: float) -> None:
    loop = asyncio.get_running_loop()
    eparams = engine.EngineParams()
    estate = engine.init_state(eparams)
    origin = col.opened_host_s
    async for ev in col.stream():
        now = loop.time()
        if isinstance(ev, SampleBlock):
            measuring = now >= measure_from
            if measuring:
                res.samples += len(ev)
                # sample due at the sensor (host) ~= origin + t (minimum-latency mapping)
                res.transport_latency_s.append(now - (origin + float(ev.t_s[-1])))
            if with_engine:
                cpu0 = time.thread_time()
                estate, events = engine.step(eparams, estate, ev)
                if measuring:
                    cpu = time.thread_time() - cpu0
                    res.engine_calls += 1
                    res.engine_cpu_s += cpu
                    kind = "held" if estate.held else ("fold+step" if events else "fold")
                    n_cpu = res.engine_kinds.setdefault(kind, [0.0, 0.0])
                    n_cpu[0] += 1
                    n_cpu[1] += cpu
                for e in events:
                    if measuring and isinstance(e, Step) and e.t_fc is not None:
                        res.steps += 1
                        res.step_latency_s.append(now - (origin + e.t_fc))
        if now >= until:
            break
    res.loss_pct = col.health_state.missing_samples / max(1, res.samples) * 100


async def _run(n: int, port: int, seconds: float, with_engine: bool
               ) -> tuple[list[StreamResult], float]:
    radio = await BumbleRadio.open(f"tcp-client:127.0.0.1:{port}")
    cols: list[BleCollector] = []
    try:
        for i in range(n):
            col = BleCollector(CollectorParams(name=f"sensord {i:02d}", rate_hz=RATE_HZ,
                                               scan_timeout_s=10.0), radio=radio)
            await col.open()
            cols.append(col)
        loop = asyncio.get_running_loop()
        results = [StreamResult() for _ in cols]
        cpu0, wall0 = time.process_time(), loop.time()
        until = wall0 + seconds
        await asyncio.gather(*(_consume(c, until, with_engine, r, wall0 + WARMUP_S)
                               for c, r in zip(cols, results, strict=True)))
        cpu = (time.process_time() - cpu0) / (loop.time() - wall0)
        return results, cpu
    finally:
        for c in cols:
            await c.close()
        await radio.close()


def _with_sensors(n: int, seconds: float, with_engine: bool,
                  tick_s: float = TICK_S) -> tuple[list[StreamResult], float]:
    port = _free_port()
    ctx = mp.get_context("spawn")
    ready = ctx.Event()
    proc = ctx.Process(target=_serve, args=(n, port, seconds + 15.0, ready, tick_s),
                       daemon=True)
    proc.start()
    try:
        if not ready.wait(60):
            raise RuntimeError("sensor process did not start")
        return asyncio.run(_run(n, port, seconds, with_engine))
    finally:
        proc.terminate()
        proc.join(5)


def _p(x: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(x) * 1000.0, q)) if x else float("nan")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--max-sensors", type=int, default=16)
    args = ap.parse_args()
    secs = 10.0 if args.quick else 30.0
    print(f"host: {os.cpu_count()} cores, python {sys.version.split()[0]}; "
          f"profile {PROFILE} at {RATE_HZ:g} Hz with gyro, sensors in a separate process")

    res, cpu = _with_sensors(1, secs, with_engine=True)
    r = res[0]
    print(f"\n[1] latency over {secs:g} s, {r.steps} steps")
    print(f"    toe-off sampled -> step emitted: p50 {_p(r.step_latency_s, 50):.1f} ms, "
          f"p99 {_p(r.step_latency_s, 99):.1f} ms, max {_p(r.step_latency_s, 100):.1f} ms "
          f"(target p99 < 50 ms)")
    print(f"    sample due -> SampleBlock yielded: p50 {_p(r.transport_latency_s, 50):.1f} ms, "
          f"p99 {_p(r.transport_latency_s, 99):.1f} ms")
    print(f"    CPU with engine: {cpu * 100:.2f} % of one core; the engine alone "
          f"{r.engine_cpu_s / max(r.engine_calls, 1) * 1e6:.0f} us per notification "
          f"(offline, warm, on 20 ms blocks: see bench_engine.py)")
    print("    engine calls: " + ", ".join(
        f"{kind} {n / max(r.engine_calls, 1) * 100:.0f} % at {t / max(n, 1) * 1e6:.0f} us"
        for kind, (n, t) in sorted(r.engine_kinds.items())))

    print("\n[2] CPU per 200 Hz stream, target < 2 % of one core: the process's CPU with 1 and "
          f"with {MANY} streams; per stream = the difference / {MANY - 1} (what each added "
          "sensor costs), the rest is the process's fixed cost (event loop, radio)")
    for with_engine in (False, True):
        cpus = {}
        for n in (1, MANY):
            res, cpus[n] = _with_sensors(n, secs, with_engine=with_engine)
        per = (cpus[MANY] - cpus[1]) / (MANY - 1)
        what = "Bumble host + bleak + collector + gait engine" if with_engine else \
            "Bumble host + bleak + collector"
        print(f"    {what}, {TICK_S * 1000:.0f} ms packets: {per * 100:.2f} % per stream "
              f"(1 stream {cpus[1] * 100:.2f} %, {MANY} streams {cpus[MANY] * 100:.2f} %, "
              f"fixed {(cpus[1] - per) * 100:.2f} %)")
    res, cpu = _with_sensors(1, secs, with_engine=False, tick_s=0.1)
    print(f"    100 ms packets (Polar-like), 1 stream, no engine: {cpu * 100:.2f} % of one core; "
          f"samples {res[0].samples}, loss {res[0].loss_pct:.2f} %")

    print("\n[3] concurrent sensors on one radio, one process")
    n = 1
    best = 0
    while n <= args.max_sensors:
        res, cpu = _with_sensors(n, min(secs, 15.0), with_engine=False)
        expected = RATE_HZ * (min(secs, 15.0) - WARMUP_S)
        worst = min(r.samples for r in res) / expected * 100
        p99 = max(_p(r.transport_latency_s, 99) for r in res)
        ok = worst >= 99.0 and p99 < 100.0 and cpu < 0.8
        print(f"    N={n:2d}: CPU {cpu * 100:5.1f} %, worst stream {worst:5.1f} % of samples, "
              f"transport p99 {p99:6.1f} ms -> {'sustained' if ok else 'NOT sustained'}")
        if not ok:
            break
        best = n
        n *= 2
    print(f"    sustained: {best} sensors")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
