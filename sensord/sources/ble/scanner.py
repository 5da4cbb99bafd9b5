"""Find nearby BLE sensors and recognise their profiles (``sensord scan``)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from bleak import BleakScanner
from bleak.backends.device import BLEDevice
from bleak.backends.scanner import AdvertisementData

from sensord.errors import ServiceError
from sensord.sources.ble.bumble_backend import BumbleRadio, backend_kwargs
from sensord.sources.ble.profiles import match_profile


@dataclass(frozen=True, slots=True)
class ScanResult:
    """One advertising device.

    Attributes
    ----------
    address
        Bluetooth address (as the backend reports it).
    name
        Advertised local name, or ``None``.
    rssi_dbm
        Strongest received signal strength seen, dBm.
    profile
        Name of the recognised sensord profile, or ``None`` for an unsupported device.
    service_uuids
        Advertised service UUIDs.
    """

    address: str
    name: str | None
    rssi_dbm: int
    profile: str | None
    service_uuids: tuple[str, ...]

    @property
    def supported(self) -> bool:
        return self.profile is not None


def _result(device: BLEDevice, adv: AdvertisementData, rssi: int) -> ScanResult:
    name = adv.local_name or device.name
    prof = match_profile(name, list(adv.service_uuids))
    return ScanResult(device.address, name, rssi, None if prof is None else prof.name,
                      tuple(adv.service_uuids))


async def scan(radio: BumbleRadio | None, timeout_s: float = 5.0,
               include_unsupported: bool = False) -> list[ScanResult]:
    """Scan for ``timeout_s`` and list devices, supported sensors first, then by RSSI.

    ``radio`` is a Bumble central, or ``None`` for bleak's OS backend.

    Raises
    ------
    ServiceError
        When scanning cannot start (no adapter, BlueZ not running...).
    """
    best: dict[str, tuple[BLEDevice, AdvertisementData, int]] = {}

    def on_adv(device: BLEDevice, adv: AdvertisementData) -> None:
        prev = best.get(device.address)
        rssi = adv.rssi if prev is None else max(prev[2], adv.rssi)
        best[device.address] = (device, adv, rssi)

    try:
        async with BleakScanner(on_adv, **backend_kwargs(radio, scanner=True)):
            await asyncio.sleep(timeout_s)
    except Exception as e:  # bleak raises backend-specific errors (D-Bus, OS)
        raise ServiceError(
            f"BLE scan failed ({type(e).__name__}: {e}); with no BlueZ, use a Bumble "
            f"transport: --transport usb:0 (or SENSORD_BLE_TRANSPORT)") from e
    results = [_result(d, a, r) for d, a, r in best.values()]
    if not include_unsupported:
        results = [r for r in results if r.supported]
    results.sort(key=lambda r: (not r.supported, -r.rssi_dbm, r.address))
    return results
