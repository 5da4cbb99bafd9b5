"""``sensord run``: the live pipeline, from a sensor to coaching alerts and delivery.

With no arguments it runs on embedded defaults: a simulated runner (whose form
degrades late in the run) streamed through the engine and the coaching detectors at
30x real time, printing every step and alert, keeping everything in a local store and
writing an HTML report at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from sensord.coaching.config import load_config
from sensord.coaching.params import CoachParams
from sensord.contract import BrokerConfig
from sensord.errors import InputError
from sensord.gait.engine import EngineParams
from sensord.model import PLACEMENTS, SIDES, Alert, FormSummary, Gap, RunInfo, SensorHealth, Step
from sensord.runtime import Output, RunConfig, replay_source, run_pipeline, simulated_source
from sensord.sinks.local_broker import LocalBroker, find_mosquitto
from sensord.sources.simulator import FatigueProfile, SimParams

if TYPE_CHECKING:
    from sensord.live_view import LiveView

HELP = "live run: sensor -> engine -> coaching -> delivery"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--sensor", default="sim",
                   help="'sim' (simulated runner, default) or a recording FILE.csv "
                        "to replay")
    p.add_argument("--placement", choices=PLACEMENTS, default="pelvis")
    p.add_argument("--side", choices=SIDES, help="foot placement: which shoe")
    p.add_argument("--runner", default="runner", help="runner id (default 'runner')")
    p.add_argument("--config", help="runner TOML config (targets, thresholds, protocol)")
    p.add_argument("--speed", type=float, default=None,
                   help="replay/simulation speed factor (default 30 for sim, 1 for files; "
                        "0 = as fast as possible)")
    p.add_argument("--duration-s", type=float, default=900.0,
                   help="sim: run length (default 15 min)")
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
    coach = CoachParams()
    runner = args.runner
    if args.config:
        cfg = load_config(args.config)
        coach, runner = cfg.params, cfg.runner_id or runner
    speed = args.speed if args.speed is not None else (30.0 if args.sensor == "sim" else 1.0)
    if speed < 0:
        raise InputError(f"--speed {speed}: must be >= 0 (0 = as fast as possible)")
    run_id = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()) + "-" + uuid.uuid4().hex[:6]
    info = RunInfo(runner_id=runner, sensor_id="sim" if args.sensor == "sim" else
                   Path(args.sensor).stem[:64], run_id=run_id, placement=args.placement,
                   sensor_side=args.side)
    if args.sensor == "sim":
        if not 10.0 <= args.duration_s <= 6 * 3600.0:
            raise InputError(f"--duration-s {args.duration_s}: must be 10 s to 6 h")
        onset = args.fatigue_onset_s
        fatigue = (FatigueProfile(onset_s=onset, ramp_s=120.0, cadence_pct=-6.0,
                                  pelvic_drop_deg=3.0, gct_pct=6.0)
                   if 0 <= onset < args.duration_s else FatigueProfile())
        sim = SimParams(duration_s=args.duration_s, placement=args.placement,
                        sensor_side=args.side or "left", fatigue=fatigue, mount="random")
        source = simulated_source(sim, args.seed, speed, 0.5)
    elif args.sensor.lower().endswith(".csv"):
        source = replay_source(args.sensor, speed, 0.5)
    else:
        raise InputError(f"--sensor {args.sensor!r}: give 'sim' or a recording FILE.csv")
    # aiomqtt warns whenever more than a handful of QoS 1 publishes are in flight, which
    # is how the publisher works on purpose (a window of unacknowledged messages)
    logging.getLogger("mqtt").setLevel(logging.ERROR)  # aiomqtt's logger
    local: LocalBroker | None = None
    broker = None
    if args.broker == "auto":
        if find_mosquitto() is not None:
            local = LocalBroker().__enter__()
            broker = BrokerConfig(host="127.0.0.1", port=local.port)
    elif args.broker != "none":
        from sensord.commands.ingest import parse_broker

        host, port = parse_broker(args.broker)
        broker = BrokerConfig(host=host, port=port, username=args.mqtt_user or runner,
                              password=os.environ.get("SENSORD_MQTT_PASSWORD"))
    store = Path(args.store)
    cfg_run = RunConfig(run=info, engine=EngineParams(placement=args.placement,
                                                      sensor_side=args.side),
                        speed=speed, store_dir=store, broker=broker,
                        epoch_offset_s=time.time(), coach=coach)
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
                outputs = asyncio.run(run_pipeline(cfg_run, source, _to_view(view)))
        else:
            outputs = asyncio.run(run_pipeline(cfg_run, source, _Printer(quiet=args.quiet)))
    finally:
        if local is not None:
            local.__exit__(None, None, None)
    report = Path(args.report) if args.report else store / f"{run_id}.html"
    _write_report(info, outputs, report)
    steps = [o for o in outputs if isinstance(o, Step)]
    alerts = [o for o in outputs if isinstance(o, Alert) and o.state == "raised"]
    print(f"done: {len(steps)} steps, {len(alerts)} alerts; store {store / (run_id + '.jsonl')}; "
          f"report {report}", file=sys.stderr)
    return 0


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


def _write_report(info: RunInfo, outputs: list[Output], path: Path) -> None:
    from sensord.report.data import from_events
    from sensord.report.html import render

    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render(from_events(info, outputs, source="sensord run")), encoding="utf-8")


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
