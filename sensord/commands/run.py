"""``sensord run``: the live pipeline, from a sensor to coaching alerts and delivery.

With no arguments it runs on embedded defaults: a simulated runner (whose form
degrades late in the run) streamed through the engine and the coaching detectors at
30x real time, printing every step and alert, keeping everything in a local store and
writing an HTML report at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import logging
import os
import re
import signal
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from sensord.coaching.config import load_config
from sensord.coaching.params import CoachParams
from sensord.contract import BrokerConfig, check_id
from sensord.errors import InputError
from sensord.gait.engine import EngineParams
from sensord.model import (
    PLACEMENTS,
    SIDES,
    Alert,
    FormSummary,
    Gap,
    RunInfo,
    SampleBlock,
    SensorHealth,
    Step,
)
from sensord.runtime import Output, RunConfig, run_pipeline
from sensord.sinks.local_broker import LocalBroker, find_mosquitto
from sensord.sources.base import Source, SourceEvent
from sensord.sources.recording import read_metadata
from sensord.sources.replay import ReplayParams, ReplaySource
from sensord.sources.sim_source import SimSource, SimSourceParams
from sensord.sources.simulator import FatigueProfile, SimParams

if TYPE_CHECKING:
    from sensord.live_view import LiveView

HELP = "live run: sensor -> engine -> coaching -> delivery"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--sensor", default="sim",
                   help="'sim' (simulated runner, default), a recording FILE.csv to replay, "
                        "'virtual[:PROFILE]' (a virtual BLE sensor fed by the simulator, "
                        "through the real collector), or a BLE sensor's address or name")
    p.add_argument("--profile", help="BLE profile (default: recognised from the device); "
                   "for 'virtual': sensord-imu, polar-h10, polar-verity, movesense, "
                   "witmotion, rsc")
    p.add_argument("--transport", help="BLE transport: system (default), usb:0, "
                   "tcp-client:HOST:PORT, ... (or $SENSORD_BLE_TRANSPORT)")
    p.add_argument("--placement", choices=PLACEMENTS,
                   help="sensor placement (default: the config's [runner] placement, a "
                        "recording's '# placement=' comment, else pelvis)")
    p.add_argument("--side", choices=SIDES, help="foot placement: which shoe (default: a "
                                                 "recording's '# sensor_side=' comment)")
    p.add_argument("--runner", help="runner id (default: the config's, else 'runner')")
    p.add_argument("--config", help="runner TOML config (targets, thresholds, protocol)")
    p.add_argument("--speed", type=float, default=None,
                   help="replay/simulation speed factor (default 30 for sim, 1 for files; "
                        "0 = as fast as possible)")
    p.add_argument("--duration-s", type=float, default=None,
                   help="sim/virtual: run length (default 15 min); a live sensor: stop "
                        "after this long (default: run until Ctrl-C)")
    p.add_argument("--fatigue-onset-s", type=float, default=600.0,
                   help="sim: when form starts to degrade (negative: never)")
    p.add_argument("--seed", type=int, default=1, help="sim: random seed")
    p.add_argument("--store", default="sensord-runs",
                   help="local store directory (JSON Lines per run; default ./sensord-runs)")
    p.add_argument("--broker", default="auto",
                   help="MQTT broker HOST:PORT to publish to; 'auto' (default) starts a "
                        "loopback-only mosquitto for this run if one is installed; 'none' "
                        "publishes nothing. Password from $SENSORD_MQTT_PASSWORD")
    p.add_argument("--mqtt-user", help="MQTT username (default: the runner id)")
    p.add_argument("--report", help="HTML report path (default <store>/<run id>.html)")
    p.add_argument("--quiet", action="store_true", help="print alerts and the summary only")


def run(args: argparse.Namespace) -> int:
    args.duration_given = args.duration_s is not None
    if args.duration_s is None:
        args.duration_s = 900.0
    coach, plan, runner = CoachParams(), None, args.runner
    if args.config:
        cfg = load_config(args.config)
        coach, runner = cfg.params, runner or cfg.runner_id
        plan = cfg.protocol.text if cfg.protocol is not None else None
        args.placement = args.placement or cfg.placement
    runner = check_id(runner or "runner", "--runner")
    if args.sensor.lower().endswith(".csv"):
        meta = read_metadata(args.sensor)  # (a missing file: a one-line error here)
        if meta.get("placement") in PLACEMENTS:
            args.placement = args.placement or meta["placement"]
        if meta.get("sensor_side") in SIDES:
            args.side = args.side or meta["sensor_side"]
    args.placement = args.placement or "pelvis"
    store = Path(args.store)
    try:
        store.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise InputError(f"--store {store}: cannot use it as the store directory "
                         f"({e.strerror}); pass a writable directory") from None
    if args.report and Path(args.report).is_dir():
        raise InputError(f"--report {args.report}: is a directory; pass an HTML file path")
    speed = args.speed if args.speed is not None else (30.0 if args.sensor == "sim" else 1.0)
    if speed < 0:
        raise InputError(f"--speed {speed}: must be >= 0 (0 = as fast as possible)")
    run_id = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()) + "-" + uuid.uuid4().hex[:6]
    source = _source(args, speed)
    # live sensors stream until stopped: --duration-s (if given) or Ctrl-C ends the run
    live = args.sensor != "sim" and not args.sensor.lower().endswith(".csv")
    max_s = args.duration_s if live and (args.sensor.startswith("virtual")
                                         or args.duration_given) else None
    info = RunInfo(runner_id=runner, sensor_id=_sensor_id(args.sensor), run_id=run_id,
                   placement=args.placement, sensor_side=args.side)
    # aiomqtt warns whenever more than a handful of QoS 1 publishes are in flight, which
    # is how the publisher works on purpose (a window of unacknowledged messages)
    logging.getLogger("mqtt").setLevel(logging.ERROR)  # aiomqtt's logger
    local: LocalBroker | None = None
    # the throw-away local broker gets a throw-away outbox: nobody could receive its
    # leftovers, and they must not go to the next run's broker
    local_outbox: tempfile.TemporaryDirectory[str] | None = None
    broker = None
    if args.broker == "auto":
        if find_mosquitto() is not None:
            local = LocalBroker().__enter__()
            local_outbox = tempfile.TemporaryDirectory(prefix="sensord-outbox-")
            broker = BrokerConfig(host="127.0.0.1", port=local.port)
        else:
            print("no mosquitto installed: not publishing over MQTT (install mosquitto, or "
                  "pass --broker HOST:PORT)", file=sys.stderr)
    elif args.broker != "none":
        from sensord.commands.ingest import parse_broker

        host, port = parse_broker(args.broker)
        broker = BrokerConfig(host=host, port=port, username=args.mqtt_user or runner,
                              password=os.environ.get("SENSORD_MQTT_PASSWORD"))
    cfg_run = RunConfig(run=info, engine=EngineParams(placement=args.placement,
                                                      sensor_side=args.side),
                        store_dir=store, broker=broker,
                        epoch_offset_s=time.time(), coach=coach,
                        outbox_dir=Path(local_outbox.name) if local_outbox else None)
    print(f"sensord run {run_id}: runner {runner}, sensor {args.sensor}, {args.placement}, "
          f"speed {speed:g}x", file=sys.stderr)
    if broker is not None:
        print(f"publishing to mqtt://{broker.host}:{broker.port} "
              f"(sensord/v1/{runner}/{info.sensor_id}/...)"
              + (" [local broker for this run]" if local else ""), file=sys.stderr)
    try:
        if sys.stdout.isatty() and not args.quiet:
            from sensord.live_view import LiveView

            total = args.duration_s if args.sensor == "sim" else None
            with LiveView(info, total_s=total) as view:
                outputs = asyncio.run(_run(cfg_run, source, _to_view(view), max_s))
        else:
            outputs = asyncio.run(_run(cfg_run, source, _Printer(quiet=args.quiet), max_s))
    finally:
        if local is not None:
            local.__exit__(None, None, None)
        if local_outbox is not None:
            local_outbox.cleanup()
    report = Path(args.report) if args.report else store / f"{run_id}.html"
    _write_report(info, outputs, report, coach, plan)
    steps = [o for o in outputs if isinstance(o, Step)]
    alerts = [o for o in outputs if isinstance(o, Alert) and o.state == "raised"]
    print(f"done: {len(steps)} steps, {len(alerts)} alerts; store {store / (run_id + '.jsonl')}; "
          f"report {report}", file=sys.stderr)
    return 0


async def _run(cfg: RunConfig, source: AbstractAsyncContextManager[Source],
               on_output: Callable[[Output], None], max_s: float | None) -> list[Output]:
    """Open the source and run the pipeline until the source ends, ``max_s`` seconds of
    signal have passed, or SIGINT/SIGTERM: each closes the source, so the run finishes
    normally (steps settled, coaching closed, report written)."""
    async with source as opened:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, lambda: loop.create_task(opened.close()))
        try:
            return await run_pipeline(cfg, _until(opened, max_s), on_output)
        finally:
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(sig)


async def _until(source: Source, max_s: float | None) -> AsyncIterator[SourceEvent]:
    t0: float | None = None
    async for event in source.stream():
        yield event
        if max_s is not None and isinstance(event, SampleBlock) and len(event):
            t0 = float(event.t_s[0]) if t0 is None else t0
            if float(event.t_s[-1]) - t0 >= max_s:
                await source.close()
                return


def _sensor_id(sensor: str) -> str:
    """A valid MQTT id (letters, digits, '_', '.', '-'; at most 64) for a sensor argument."""
    if sensor.lower().endswith(".csv"):
        sensor = Path(sensor).stem
    return re.sub(r"[^A-Za-z0-9_.-]", "-", sensor)[:64] or "sensor"


def _source(args: argparse.Namespace, speed: float) -> AbstractAsyncContextManager[Source]:
    """The source named by --sensor (not yet opened)."""
    if args.sensor == "sim" or args.sensor.startswith("virtual"):
        if not 10.0 <= args.duration_s <= 6 * 3600.0:
            raise InputError(f"--duration-s {args.duration_s}: must be 10 s to 6 h")
        onset = args.fatigue_onset_s
        fatigue = (FatigueProfile(onset_s=onset, ramp_s=120.0, cadence_pct=-6.0,
                                  pelvic_drop_deg=3.0, gct_pct=6.0)
                   if 0 <= onset < args.duration_s else FatigueProfile())
        sim = SimParams(duration_s=args.duration_s, placement=args.placement,
                        sensor_side=args.side or "left", fatigue=fatigue, mount="random")
        if args.sensor == "sim":
            return SimSource(SimSourceParams(sim=sim, seed=args.seed, speed=speed,
                                             block_s=0.5))
        from sensord.sources.ble.virtual_sensor import SensorFeed, virtual_collector
        from sensord.sources.simulator import simulate

        profile = args.sensor.partition(":")[2] or args.profile or "sensord-imu"
        # the feed runs a little past --duration-s, where the run is stopped
        res = simulate(dataclasses.replace(sim, duration_s=sim.duration_s + 5.0), args.seed)
        feed = SensorFeed(res.samples, step_times_s=np.array([t.t_ic for t in res.truth]),
                          speed_mps=sim.speed_mps)
        return virtual_collector(profile, feed, speed=max(speed, 1.0))
    if args.sensor.lower().endswith(".csv"):
        return ReplaySource(ReplayParams(path=args.sensor, speed=speed, block_s=0.5))
    from sensord.sources.ble.collector import BleCollector, CollectorParams

    looks_like_address = re.fullmatch(r"([0-9A-Fa-f]{2}:){5}[0-9A-Fa-f]{2}|[0-9A-Fa-f-]{36}",
                                      args.sensor) is not None
    return BleCollector(CollectorParams(
        address=args.sensor if looks_like_address else None,
        name=None if looks_like_address else args.sensor, profile=args.profile,
        transport=args.transport))


def _to_view(view: LiveView) -> Callable[[Output], None]:
    """Route pipeline outputs to the rich live view (terminal)."""

    def on_output(o: Output) -> None:
        if isinstance(o, Step):
            view.on_step(o)
        elif isinstance(o, Alert):
            view.on_alert(o)
        elif isinstance(o, FormSummary):
            view.on_summary(o)
        elif isinstance(o, SensorHealth):
            view.on_health(o)

    return on_output


def _write_report(info: RunInfo, outputs: list[Output], path: Path,
                  coach: CoachParams, plan: str | None) -> None:
    from sensord.report import build_report
    from sensord.report.data import from_events

    html = build_report(from_events(info, outputs, source="sensord run", coach=coach),
                        plan_text=plan)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(html, encoding="utf-8")
    except OSError as e:
        raise InputError(f"--report {path}: cannot write the report ({e.strerror}); the run "
                         f"is kept in the store: sensord report {info.run_id}") from None


class _Printer:
    """One line per step and per alert (a pipe- and log-friendly live view)."""

    def __init__(self, quiet: bool) -> None:
        self.quiet = quiet

    def __call__(self, o: Output) -> None:
        if isinstance(o, Step) and not self.quiet:
            def f(v: float | None, fmt: str) -> str:
                return "-" if v is None else format(v, fmt)
            print(f"{o.t_ic:8.2f}s step {o.step_index:5d} {o.side or '-':5s} "
                  f"cadence {f(o.cadence_spm, '5.1f')} spm  GCT {f(o.gct_ms, '4.0f')} ms  "
                  f"drop {f(o.pelvic_drop_deg, '4.1f')}°  "
                  f"VO {f(o.vertical_oscillation_cm, '4.1f')} cm"
                  f"  impact {f(o.impact_g, '3.1f')} g", flush=True)
        elif isinstance(o, Alert):
            mark = "!!" if o.state == "raised" else "ok"
            print(f"{o.t_s:8.2f}s {mark} [{o.severity}] {o.kind}: {o.message}", flush=True)
        elif isinstance(o, FormSummary) and self.quiet and o.form_score is not None:
            print(f"{o.t_s:8.2f}s form {o.form_score:5.1f} cadence "
                  f"{o.cadence_spm or 0:5.1f}", flush=True)
        elif isinstance(o, Gap):
            print(f"{o.t_start_s:8.2f}s gap until {o.t_end_s:.2f}s", flush=True)
