"""``sensord scan``: list nearby supported BLE sensors.

::

    sensord scan                                   # the OS Bluetooth stack (BlueZ...)
    sensord scan --transport usb:0                 # a USB dongle via Bumble, no BlueZ
    sensord scan --transport tcp-client:127.0.0.1:9000   # a `sensord virtual-sensor`
    sensord scan --transport virtual               # in-process demo: one per profile

The transport also comes from ``$SENSORD_BLE_TRANSPORT``.
"""

from __future__ import annotations

import argparse
import asyncio
import json

from sensord.errors import InputError
from sensord.sources.ble.bumble_backend import (
    DEFAULT_TRANSPORT,
    VIRTUAL_TRANSPORT,
    BumbleRadio,
    VirtualAir,
    resolve_transport,
)
from sensord.sources.ble.scanner import ScanResult, scan

HELP = "list nearby supported BLE sensors"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    a = parser.add_argument
    a("--transport", help="BLE transport: system (default), usb:0, hci-socket:0, "
                          "tcp-client:HOST:PORT, virtual (or $SENSORD_BLE_TRANSPORT)")
    a("--timeout-s", type=float, default=5.0, help="how long to listen (default 5)")
    a("--all", action="store_true", help="also list devices that are not supported sensors")
    a("--json", action="store_true", help="one JSON object per line")


def _print(results: list[ScanResult], as_json: bool) -> None:
    if as_json:
        for r in results:
            print(json.dumps({"name": r.name, "address": r.address, "rssi_dbm": r.rssi_dbm,
                              "profile": r.profile, "service_uuids": list(r.service_uuids)}))
        return
    if not results:
        print("no supported sensor found (is it awake and not connected to a phone?)")
        return
    print(f"{'NAME':<24} {'ADDRESS':<20} {'RSSI':>5}  PROFILE")
    for r in results:
        print(f"{(r.name or '?'):<24} {r.address:<20} {r.rssi_dbm:>5}  "
              f"{r.profile or '(not supported)'}")


async def _demo_sensors(air: VirtualAir) -> list[object]:
    from sensord.sources.ble.virtual_sensor import (
        DEFAULT_NAMES,
        VirtualSensor,
        VirtualSensorParams,
        feed_from_simulation,
    )

    feed = feed_from_simulation(10.0, 200.0)
    sensors = [VirtualSensor(air, VirtualSensorParams(profile=n, loop_feed=True), feed)
               for n in DEFAULT_NAMES]
    for s in sensors:
        await s.start()
    return list(sensors)


async def _main(args: argparse.Namespace) -> list[ScanResult]:
    spec = resolve_transport(args.transport)
    if spec == DEFAULT_TRANSPORT:
        return await scan(None, args.timeout_s, args.all)
    air = VirtualAir() if spec == VIRTUAL_TRANSPORT else None
    sensors = await _demo_sensors(air) if air is not None else []
    radio = await BumbleRadio.open(spec, air)
    try:
        return await scan(radio, args.timeout_s, args.all)
    finally:
        await radio.close()
        for s in sensors:
            await s.stop()  # type: ignore[attr-defined]


def run(args: argparse.Namespace) -> int:
    if not 0.1 <= args.timeout_s <= 300:
        raise InputError(f"--timeout-s must be 0.1-300, got {args.timeout_s}")
    results = asyncio.run(_main(args))
    _print(results, args.json)
    return 0
