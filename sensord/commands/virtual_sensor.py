"""``sensord virtual-sensor``: run a virtual BLE sensor (Bumble) for other processes.

The sensor lives on an in-process virtual radio; a second virtual controller on that
radio is exposed as an HCI transport (default ``tcp-server:127.0.0.1:9000``), which any
Bumble host, e.g. ``sensord scan --transport tcp-client:127.0.0.1:9000``, can drive::

    sensord virtual-sensor --profile polar-h10 --duration-s 1800 --fatigue-onset-s 600
    sensord scan --transport tcp-client:127.0.0.1:9000

Samples come from the simulator (default) or from ``--recording FILE`` and loop.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import math
import sys

import numpy as np

from sensord.errors import InputError, ServiceError
from sensord.sources.ble.bumble_backend import VirtualAir, expose_air
from sensord.sources.ble.profiles import PROFILES
from sensord.sources.ble.virtual_sensor import (
    UNSUPPORTED,
    Faults,
    SensorFeed,
    VirtualSensor,
    VirtualSensorParams,
    feed_from_simulation,
)

HELP = "a virtual BLE sensor (Bumble)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    a = parser.add_argument
    a("--profile", required=True, choices=[p.name for p in PROFILES] + [UNSUPPORTED],
      help="which real sensor to impersonate")
    a("--name", help="advertised name (default: what the real device advertises)")
    a("--hci", default="tcp-server:127.0.0.1:9000",
      help="HCI transport to expose the virtual radio on (Bumble spec; default %(default)s)")
    a("--recording", help="stream this recording CSV (looped) instead of the simulator")
    a("--duration-s", type=float, default=600.0, help="simulated run length, s (looped)")
    a("--seed", type=int, default=1, help="simulator seed")
    a("--cadence-spm", type=float, default=170.0, help="simulated cadence")
    a("--speed-mps", type=float, default=3.2, help="simulated running speed")
    a("--placement", choices=["pelvis", "foot"], default="pelvis", help="simulated placement")
    a("--speed", type=float, default=1.0, help="time factor (1 = real time)")
    a("--battery-pct", type=int, default=87, help="battery level served on 0x2A19")
    a("--disconnect-at-s", type=float, action="append", default=[],
      help="fault: drop the link at this feed time (repeatable)")
    a("--stall-at-s", type=float, help="fault: stop notifying at this feed time")
    a("--stall-for-s", type=float, default=math.inf, help="fault: stall length (inf)")
    for flag, what in (("duplicate", "sent twice"), ("swap", "swapped with the next"),
                       ("drop", "not sent"), ("malformed", "sent with a corrupt first byte"),
                       ("truncate", "cut to half its length")):
        a(f"--{flag}-every", type=int, default=0, metavar="N",
          help=f"fault: every N-th data notification {what} (0 = never)")


def _feed(args: argparse.Namespace) -> SensorFeed:
    if args.recording:
        from sensord.sources.recording import read_recording

        rec = read_recording(args.recording)
        return SensorFeed(rec.samples, None, float(args.speed_mps))
    rate = 200.0
    return feed_from_simulation(float(args.duration_s), rate, seed=int(args.seed),
                                cadence_spm=float(args.cadence_spm),
                                speed_mps=float(args.speed_mps), placement=args.placement)


async def _main(args: argparse.Namespace) -> int:
    faults = Faults(disconnect_at_s=tuple(args.disconnect_at_s), stall_at_s=args.stall_at_s,
                    stall_for_s=float(args.stall_for_s),
                    duplicate_every=args.duplicate_every, swap_every=args.swap_every,
                    drop_every=args.drop_every, malformed_every=args.malformed_every,
                    truncate_every=args.truncate_every)
    params = VirtualSensorParams(profile=args.profile, name=args.name, speed=float(args.speed),
                                 battery_pct=int(args.battery_pct), loop_feed=True,
                                 faults=faults)
    feed = _feed(args)
    air = VirtualAir()
    transport = await expose_air(air, args.hci)
    try:
        async with VirtualSensor(air, params, feed) as sensor:
            steps = feed.step_times_s
            cadence = (f", {60.0 / float(np.median(np.diff(steps))):.0f} spm"
                       if steps is not None and steps.size > 2 else "")
            print(f"virtual {args.profile} sensor '{sensor.name}' at {sensor.address} "
                  f"({feed.duration_s:.0f} s feed, looped{cadence}); HCI on {args.hci}\n"
                  f"try: sensord scan --transport {_client_spec(args.hci)}", flush=True)
            await asyncio.get_running_loop().create_future()  # until Ctrl-C
    finally:
        with contextlib.suppress(Exception):
            await transport.close()
    return 0


def _client_spec(server_spec: str) -> str:
    if server_spec.startswith("tcp-server:"):
        host, port = server_spec[len("tcp-server:"):].rsplit(":", 1)
        return f"tcp-client:{'127.0.0.1' if host == '_' else host}:{port}"
    return "<the matching Bumble transport>"


def run(args: argparse.Namespace) -> int:
    if args.speed <= 0:
        raise InputError(f"--speed must be > 0, got {args.speed}")
    try:
        return asyncio.run(_main(args))
    except OSError as e:
        raise ServiceError(f"cannot expose the virtual radio on {args.hci}: {e}") from e
    except KeyboardInterrupt:
        print("stopped", file=sys.stderr)
        return 0
