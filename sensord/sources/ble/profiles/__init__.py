"""BLE sensor profiles: pure protocol code, one module per sensor family.

The registry :data:`PROFILES` lists every supported protocol; :func:`match_profile`
recognises a device from its advertisement, :func:`get_profile` looks one up by name,
and :func:`supported_profiles_text` lists them for error messages. See
:mod:`sensord.sources.ble.profiles.base` for the interface and ``docs/ble-profiles.md``
for the protocols.
"""

from __future__ import annotations

from typing import Any

from .base import (
    BATTERY_LEVEL_UUID,
    BATTERY_SERVICE_UUID,
    Command,
    DecodedSamples,
    Encoder,
    Profile,
    decode_battery_level,
    encode_battery_level,
    normalize_uuid,
    uuid16,
)
from .movesense import MOVESENSE
from .polar import POLAR_H10, POLAR_VERITY_SENSE
from .rsc import RSC
from .sensord_imu import SENSORD_IMU
from .witmotion import WITMOTION

__all__ = [
    "BATTERY_LEVEL_UUID",
    "BATTERY_SERVICE_UUID",
    "MOVESENSE",
    "POLAR_H10",
    "POLAR_VERITY_SENSE",
    "PROFILES",
    "RSC",
    "SENSORD_IMU",
    "WITMOTION",
    "Command",
    "DecodedSamples",
    "Encoder",
    "Profile",
    "decode_battery_level",
    "encode_battery_level",
    "get_profile",
    "match_profile",
    "normalize_uuid",
    "supported_profiles_text",
    "uuid16",
]

PROFILES: tuple[Profile[Any], ...] = (
    SENSORD_IMU,
    POLAR_VERITY_SENSE,
    POLAR_H10,
    MOVESENSE,
    WITMOTION,
    RSC,
)
"""Every supported profile, in matching priority order."""


def get_profile(name: str) -> Profile[Any] | None:
    """The profile called ``name`` (case-insensitive), or ``None``."""
    key = name.strip().lower()
    for p in PROFILES:
        if p.name == key:
            return p
    return None


def match_profile(name: str | None, service_uuids: list[str]) -> Profile[Any] | None:
    """Recognise a device from its advertised local name and service UUIDs.

    A profile whose service UUID is advertised wins; when several share that service
    (Polar H10 / Verity Sense) the advertised name decides, else the first registered.
    Without a service match, the name patterns decide. Malformed UUID strings are
    ignored.
    """
    advertised: set[str] = set()
    for u in service_uuids:
        try:
            advertised.add(normalize_uuid(u))
        except ValueError:
            continue
    by_service = [p for p in PROFILES if p.service_uuid in advertised]
    if by_service:
        for p in by_service:
            if p.matches_name(name):
                return p
        return by_service[0]
    for p in PROFILES:
        if p.matches_name(name):
            return p
    return None


def supported_profiles_text() -> str:
    """A multi-line list of the supported profiles, for error messages."""
    return "supported BLE sensors:\n" + "\n".join(f"  - {p.summary()}" for p in PROFILES)
