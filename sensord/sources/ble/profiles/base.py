"""The uniform interface between BLE sensor profiles, the collector and the virtual sensor.

Every sensor family lives in its own module and exposes one or more :class:`Profile`
instances. A profile is pure protocol code: it never touches Bluetooth, clocks or files.

- The **collector** (``sensord.sources.ble``) recognises a device with
  :func:`sensord.sources.ble.profiles.match_profile`, subscribes to
  :attr:`Profile.notify_uuids`, writes :meth:`Profile.start_commands`, and feeds every
  notification through :meth:`Profile.decode` together with a per-connection decoder
  state obtained from :meth:`Profile.initial_state`. It gets back
  :class:`DecodedSamples`, in SI units, with sensor timestamps where the sensor has any.
- The **virtual sensor** (Bumble) asks :meth:`Profile.encoder` for an :class:`Encoder`,
  forwards GATT writes to :meth:`Encoder.handle_write` (which returns the notifications
  a real device would answer with) and turns simulated samples into the exact
  notification payloads of the real device with :meth:`Encoder.encode`.

Errors: a decoder raises :class:`sensord.errors.DecodeError` for every payload it
cannot decode (short, truncated, unknown frame type, bad length) and nothing else.

UUIDs are lower-case 128-bit strings (``"0000180f-0000-1000-8000-00805f9b34fb"``), the
form bleak and Bumble print; :func:`uuid16` expands a 16-bit SIG UUID and
:func:`normalize_uuid` accepts any of the usual spellings.
"""

from __future__ import annotations

import functools
import re
import struct
from abc import ABC, abstractmethod
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Any, Generic, TypeVar

import numpy as np

from sensord.errors import DecodeError
from sensord.model import FloatArray

__all__ = [
    "BATTERY_LEVEL_UUID",
    "BATTERY_SERVICE_UUID",
    "BLUETOOTH_BASE_UUID_SUFFIX",
    "Command",
    "DecodedSamples",
    "Encoder",
    "Profile",
    "Reader",
    "decode_battery_level",
    "encode_battery_level",
    "normalize_uuid",
    "uuid16",
]

BLUETOOTH_BASE_UUID_SUFFIX = "-0000-1000-8000-00805f9b34fb"

Command = tuple[str, bytes]
"""A GATT write (or notification): ``(characteristic UUID, payload)``."""

StateT = TypeVar("StateT")

_HEX16 = re.compile(r"^(0x)?[0-9a-f]{4}$")
_HEX32 = re.compile(r"^(0x)?[0-9a-f]{8}$")
_UUID128 = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def uuid16(short: int) -> str:
    """The 128-bit string form of a 16-bit Bluetooth SIG UUID (``0x180F`` -> ``0000180f-...``)."""
    return f"{short & 0xFFFF:08x}{BLUETOOTH_BASE_UUID_SUFFIX}"


@functools.lru_cache(maxsize=256)  # decoders check a few UUIDs on every notification
def normalize_uuid(uuid: str) -> str:
    """Lower-case 128-bit form of ``uuid``; 16- and 32-bit short forms are expanded.

    Raises
    ------
    ValueError
        If ``uuid`` is not a UUID in any of the usual spellings.
    """
    u = uuid.strip().lower()
    if _HEX16.match(u) or _HEX32.match(u):
        return f"{int(u, 16):08x}{BLUETOOTH_BASE_UUID_SUFFIX}"
    if _UUID128.match(u):
        return u
    if len(u) == 32 and all(c in "0123456789abcdef" for c in u):
        return f"{u[:8]}-{u[8:12]}-{u[12:16]}-{u[16:20]}-{u[20:]}"
    raise ValueError(f"not a Bluetooth UUID: {uuid!r}")


BATTERY_SERVICE_UUID = uuid16(0x180F)
BATTERY_LEVEL_UUID = uuid16(0x2A19)


def decode_battery_level(payload: bytes) -> int:
    """Battery Level characteristic (0x2A19): one uint8, percent 0-100.

    Bluetooth SIG, *Battery Service 1.0*, §3.1 and the GATT Specification Supplement,
    "Battery Level": a single ``uint8`` in percent; values 101-255 are reserved.

    Raises
    ------
    DecodeError
        If the payload is not exactly one byte or the value is above 100.
    """
    if len(payload) != 1:
        raise DecodeError(f"battery level: expected 1 byte, got {len(payload)}")
    value = payload[0]
    if value > 100:
        raise DecodeError(f"battery level: {value} is above 100 % (reserved value)")
    return value


def encode_battery_level(percent: int) -> bytes:
    """Inverse of :func:`decode_battery_level` (clamped to 0-100)."""
    return bytes([max(0, min(100, int(percent)))])


@dataclass(frozen=True, slots=True, eq=False)
class DecodedSamples:
    """What one notification decodes to; also the input of :meth:`Encoder.encode`.

    Attributes
    ----------
    t_s
        Sensor timestamps of the samples in seconds on the *sensor's* clock (origin
        profile-specific, documented per profile; wrap-arounds already unwrapped by
        the decoder state), shape ``(n,)``, or ``None`` when the sensor sends none
        (the collector then times samples on arrival).
    acc_mps2
        Specific force, m/s², gravity included, sensor frame, shape ``(n, 3)``, or
        ``None`` (gyro-only frame or a cadence-only source).
    gyr_dps
        Angular rate, deg/s, sensor frame, shape ``(n, 3)``, or ``None``.
    seq
        The packet's sequence number where the protocol has one (for loss counting).
    cadence_spm
        Cadence-only sources (RSC footpods): steps per minute (both feet).
    speed_mps, stride_length_m, total_distance_m, running
        Further RSC fields where present.
    angle_deg
        Orientation angles (roll, pitch, yaw) in degrees where the sensor computes
        them itself (WitMotion), shape ``(n, 3)``.
    control_ok, control_message
        Set instead of samples when the notification is a control-point response or
        device event: ``control_ok`` is ``False`` when the device reports a failure.
    """

    t_s: FloatArray | None = None
    acc_mps2: FloatArray | None = None
    gyr_dps: FloatArray | None = None
    seq: int | None = None
    cadence_spm: float | None = None
    speed_mps: float | None = None
    stride_length_m: float | None = None
    total_distance_m: float | None = None
    running: bool | None = None
    angle_deg: FloatArray | None = None
    control_ok: bool | None = None
    control_message: str | None = None

    def __post_init__(self) -> None:
        n: int | None = None
        for name in ("t_s", "acc_mps2", "gyr_dps", "angle_deg"):
            arr = getattr(self, name)
            if arr is None:
                continue
            if name == "t_s":
                if arr.ndim != 1:
                    raise ValueError(f"DecodedSamples.t_s must be 1-D, got {arr.shape}")
                rows = arr.shape[0]
            else:
                if arr.ndim != 2 or arr.shape[1] != 3:
                    raise ValueError(f"DecodedSamples.{name} must be (n, 3), got {arr.shape}")
                rows = arr.shape[0]
            if n is None:
                n = rows
            elif rows != n:
                raise ValueError(f"DecodedSamples: {name} has {rows} rows, expected {n}")

    def __len__(self) -> int:
        for arr in (self.t_s, self.acc_mps2, self.gyr_dps, self.angle_deg):
            if arr is not None:
                return int(arr.shape[0])
        return 0

    @property
    def is_control(self) -> bool:
        """True for a control-point response / device event rather than data."""
        return self.control_ok is not None


class Reader:
    """Bounds-checked little-endian reads over a notification payload.

    Every read past the end raises :class:`DecodeError`, so decoders never leak
    ``struct.error`` or ``IndexError``.
    """

    __slots__ = ("data", "offset", "what")

    def __init__(self, data: bytes, what: str, offset: int = 0) -> None:
        self.data = bytes(data)
        self.offset = offset
        self.what = what

    @property
    def remaining(self) -> int:
        return len(self.data) - self.offset

    def take(self, n: int) -> bytes:
        if n < 0 or self.offset + n > len(self.data):
            raise DecodeError(
                f"{self.what}: truncated, needs {n} more byte(s) at offset {self.offset}, "
                f"payload has {len(self.data)}"
            )
        out = self.data[self.offset : self.offset + n]
        self.offset += n
        return out

    def unpack(self, fmt: str) -> tuple[Any, ...]:
        size = struct.calcsize(fmt)
        return struct.unpack(fmt, self.take(size))

    def u8(self) -> int:
        return int(self.take(1)[0])

    def u16(self) -> int:
        return int(self.unpack("<H")[0])

    def u32(self) -> int:
        return int(self.unpack("<I")[0])

    def u64(self) -> int:
        return int(self.unpack("<Q")[0])

    def rest(self) -> bytes:
        return self.take(self.remaining)


class Encoder(ABC):
    """The device side of a profile, for the virtual sensor.

    An encoder is a small state machine owned by one simulated device (it holds the
    sequence counter, whether streaming was started, the configured rate...). It is
    the only mutable object in this package and is never shared.
    """

    @property
    @abstractmethod
    def streaming(self) -> bool:
        """Whether the simulated device is currently sending data notifications."""

    @property
    @abstractmethod
    def rate_hz(self) -> float:
        """The sample rate the device is configured for."""

    @abstractmethod
    def handle_write(self, char_uuid: str, payload: bytes) -> list[Command]:
        """React to a GATT write from the central; return notifications to send back.

        Unknown or malformed commands get the device's error response where the
        protocol has one, or are ignored (empty list) like the real device does.
        """

    @abstractmethod
    def encode(self, samples: DecodedSamples) -> list[Command]:
        """Notifications carrying ``samples`` exactly as the real device sends them.

        Returns an empty list while not streaming. ``samples.t_s`` are sensor-clock
        seconds (ignored by protocols without timestamps); values beyond the
        protocol's range are clipped as the real sensor's ADC would.
        """


@dataclass(frozen=True)
class Profile(ABC, Generic[StateT]):
    """One supported sensor protocol; concrete profiles are frozen dataclass subclasses.

    Attributes
    ----------
    name
        Short identifier used on the command line and in config files.
    description
        One line for humans: which devices, what data.
    service_uuid
        The primary GATT service that identifies the protocol.
    notify_uuids
        Characteristics the collector subscribes to; every notification from any of
        them goes to :meth:`decode` (control-point responses included).
    control_uuid
        Characteristic the start/stop commands are written to, or ``None``.
    name_patterns
        Case-insensitive shell patterns (``fnmatch``) on the advertised local name.
    rates_hz
        Sample rates the device supports, ascending (empty for cadence-only sources).
    default_rate_hz
        The rate used when the user asks for none.
    has_gyro
        Whether the device can stream a gyroscope.
    has_timestamps
        Whether notifications carry sensor timestamps (else the collector times them).
    battery_uuid
        Battery Level characteristic (0x2A19) to read, or ``None`` where the device
        has no standard Battery Service.
    """

    name: str
    description: str
    service_uuid: str
    notify_uuids: tuple[str, ...]
    control_uuid: str | None
    name_patterns: tuple[str, ...]
    rates_hz: tuple[float, ...]
    default_rate_hz: float
    has_gyro: bool
    has_timestamps: bool
    battery_uuid: str | None = BATTERY_LEVEL_UUID

    # -- recognition -------------------------------------------------------------

    def matches_name(self, name: str | None) -> bool:
        """Whether an advertised local name looks like this device."""
        if not name:
            return False
        low = name.strip().lower()
        return any(fnmatchcase(low, p.lower()) for p in self.name_patterns)

    def choose_rate(self, rate_hz: float | None) -> float:
        """The supported rate closest to ``rate_hz`` (the default when ``None``)."""
        if rate_hz is None or not np.isfinite(rate_hz) or rate_hz <= 0 or not self.rates_hz:
            return self.default_rate_hz
        return min(self.rates_hz, key=lambda r: (abs(r - rate_hz), -r))

    # -- protocol ----------------------------------------------------------------

    @abstractmethod
    def initial_state(self, rate_hz: float | None = None, gyro: bool = True) -> StateT:
        """A fresh decoder state for one connection streaming at ``rate_hz``."""

    @abstractmethod
    def start_commands(self, rate_hz: float | None = None, gyro: bool = True) -> list[Command]:
        """Writes that configure and start streaming (in order)."""

    @abstractmethod
    def stop_commands(self) -> list[Command]:
        """Writes that stop streaming."""

    @abstractmethod
    def decode(
        self, char_uuid: str, payload: bytes, state: StateT
    ) -> tuple[StateT, list[DecodedSamples]]:
        """Decode one notification. Pure: returns the new state, never mutates ``state``.

        Raises
        ------
        DecodeError
            For any payload that does not decode under this profile.
        """

    @abstractmethod
    def encoder(self, rate_hz: float | None = None, gyro: bool = True) -> Encoder:
        """A fresh device-side encoder (for the virtual sensor)."""

    def summary(self) -> str:
        """One line for :func:`supported_profiles_text`."""
        if not self.rates_hz:
            return f"{self.name}: {self.description} [cadence only]"
        rates = ", ".join(f"{r:g}" for r in self.rates_hz)
        kind = "acc+gyro" if self.has_gyro else "acc"
        return f"{self.name}: {self.description} [{kind}; rates {rates} Hz]"


def as_float_array(values: Any, columns: int | None = None) -> FloatArray:
    """``values`` as a float64 array ((n,) or (n, columns)); a helper for encoders."""
    arr = np.asarray(values, dtype=np.float64)
    if columns is not None:
        arr = arr.reshape(-1, columns)
    return arr
