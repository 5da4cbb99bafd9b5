"""The open sensord IMU profile for DIY sensors (ESP32, nRF52, any BLE microcontroller).

This is sensord's own protocol; ``docs/ble-profiles.md`` is its specification for
makers (byte tables, a worked example, an Arduino-style sketch). Summary:

GATT
----
Service ``53454e53-0001-4d6f-8a1f-6b1e2c3d4e5f`` ("SENS" in the first four bytes),
data characteristic ``53454e53-0002-4d6f-8a1f-6b1e2c3d4e5f`` (notify), control
characteristic ``53454e53-0003-4d6f-8a1f-6b1e2c3d4e5f`` (write). Battery through the
standard Battery Service 0x180F / Battery Level 0x2A19. Advertised name should start
with ``sensord`` (e.g. ``sensord-pelvis``) and the service UUID should be advertised.

Data notification (little endian), protocol version 1
-----------------------------------------------------

======  ======  =================================================================
Offset  Type    Field
======  ======  =================================================================
0       uint8   protocol version, 1
1       uint8   flags: bit 0 gyro present; bits 1-2 accelerometer range code
                (0: ±2 g, 1: ±4 g, 2: ±8 g, 3: ±16 g); bits 3-4 gyro range code
                (0: ±250, 1: ±500, 2: ±1000, 3: ±2000 deg/s); bits 5-7 zero
2       uint8   rate code (see :data:`RATE_CODES`)
3       uint8   sample count n (>= 1)
4-5     uint16  sequence number, +1 per notification, wraps 65535 -> 0
6-9     uint32  sensor time of the FIRST sample, microseconds, wraps every
                2^32 us (71.6 min); later samples follow at the nominal rate
10-     int16   n samples of ax, ay, az [, gx, gy, gz]: value * range / 32768
======  ======  =================================================================

Control writes
--------------
``01 <rate code> <flags>`` start streaming (flags as above; bit 0 requests the gyro),
``02`` stop, ``03 <rate code>`` change rate while streaming. Unknown or malformed
writes are ignored by the device.

Decoded ``t_s`` are seconds of sensor time, unwrapped by the decoder state.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import numpy as np

from sensord.errors import DecodeError
from sensord.model import GRAVITY_MPS2, FloatArray
from sensord.state import evolve

from .base import Command, DecodedSamples, Encoder, Profile, Reader, normalize_uuid

__all__ = [
    "ACC_RANGES_G",
    "GYR_RANGES_DPS",
    "RATE_CODES",
    "SENSORD_IMU",
    "SENSORD_IMU_CONTROL_UUID",
    "SENSORD_IMU_DATA_UUID",
    "SENSORD_IMU_SERVICE_UUID",
    "SensordImuEncoder",
    "SensordImuProfile",
    "SensordImuState",
    "decode_packet",
    "encode_packet",
]

SENSORD_IMU_SERVICE_UUID = "53454e53-0001-4d6f-8a1f-6b1e2c3d4e5f"
SENSORD_IMU_DATA_UUID = "53454e53-0002-4d6f-8a1f-6b1e2c3d4e5f"
SENSORD_IMU_CONTROL_UUID = "53454e53-0003-4d6f-8a1f-6b1e2c3d4e5f"

PROTOCOL_VERSION = 1
HEADER_BYTES = 10
FLAG_GYRO = 0x01

OP_START = 0x01
OP_STOP = 0x02
OP_RATE = 0x03

RATE_CODES: dict[int, float] = {
    1: 25.0,
    2: 50.0,
    3: 100.0,
    4: 200.0,
    5: 26.0,
    6: 52.0,
    7: 104.0,
    8: 208.0,
}
"""Rate code -> sample rate in Hz (BMI160-style 25/50/100/200, LSM6-style 26/52/104/208)."""

ACC_RANGES_G: tuple[float, ...] = (2.0, 4.0, 8.0, 16.0)
GYR_RANGES_DPS: tuple[float, ...] = (250.0, 500.0, 1000.0, 2000.0)

_WRAP_US = 1 << 32
_RATE_TO_CODE = {rate: code for code, rate in RATE_CODES.items()}


def make_flags(gyro: bool, acc_range_g: float = 16.0, gyr_range_dps: float = 2000.0) -> int:
    """The flags byte for a configuration (ranges must be in the tables)."""
    return (
        (FLAG_GYRO if gyro else 0)
        | (ACC_RANGES_G.index(acc_range_g) << 1)
        | (GYR_RANGES_DPS.index(gyr_range_dps) << 3)
    )


@dataclass(frozen=True, slots=True)
class Packet:
    """One decoded data notification, before unwrapping the time."""

    seq: int
    timestamp_us: int
    rate_hz: float
    acc_mps2: FloatArray
    gyr_dps: FloatArray | None


#: Data notification header: version, flags, rate code, sample count, sequence number,
#: timestamp (us).
_HEADER = "<BBBBHI"


def decode_packet(payload: bytes) -> Packet:
    """Decode one data notification.

    Raises
    ------
    DecodeError
        Wrong version, reserved flag bits set, unknown rate code, zero sample count, or
        a length that does not match the header.
    """
    r = Reader(payload, "sensord-imu packet")
    version, flags, rate_code, n, seq, ts_us = r.unpack(_HEADER)
    if version != PROTOCOL_VERSION:
        raise DecodeError(f"sensord-imu: protocol version {version}, expected {PROTOCOL_VERSION}")
    if flags & 0xE0:
        raise DecodeError(f"sensord-imu: reserved flag bits set in 0x{flags:02x}")
    if rate_code not in RATE_CODES:
        raise DecodeError(f"sensord-imu: unknown rate code {rate_code}")
    gyro = bool(flags & FLAG_GYRO)
    stride = 12 if gyro else 6
    if n == 0:
        raise DecodeError("sensord-imu: sample count 0")
    if r.remaining != n * stride:
        raise DecodeError(
            f"sensord-imu: {r.remaining} sample bytes, header announces {n} x {stride}"
        )
    raw = np.frombuffer(r.rest(), dtype="<i2").astype(np.float64).reshape(n, stride // 2)
    acc_range = ACC_RANGES_G[(flags >> 1) & 0x03]
    gyr_range = GYR_RANGES_DPS[(flags >> 3) & 0x03]
    acc = raw[:, 0:3] * (acc_range / 32768.0 * GRAVITY_MPS2)
    gyr = raw[:, 3:6] * (gyr_range / 32768.0) if gyro else None
    return Packet(seq, ts_us, RATE_CODES[rate_code], acc, gyr)


def encode_packet(
    seq: int,
    timestamp_us: int,
    rate_hz: float,
    acc_mps2: FloatArray,
    gyr_dps: FloatArray | None,
    acc_range_g: float = 16.0,
    gyr_range_dps: float = 2000.0,
) -> bytes:
    """Inverse of :func:`decode_packet` (values clipped to int16 like a real ADC)."""
    acc = np.asarray(acc_mps2, dtype=np.float64).reshape(-1, 3)
    n = acc.shape[0]
    cols = [acc / GRAVITY_MPS2 / acc_range_g]
    if gyr_dps is not None:
        cols.append(np.asarray(gyr_dps, dtype=np.float64).reshape(-1, 3) / gyr_range_dps)
    scaled = np.hstack(cols) * 32768.0
    ints = np.clip(np.rint(np.nan_to_num(scaled)), -32768, 32767).astype("<i2")
    header = struct.pack(
        _HEADER,
        PROTOCOL_VERSION,
        make_flags(gyr_dps is not None, acc_range_g, gyr_range_dps),
        _RATE_TO_CODE[rate_hz],
        n,
        seq & 0xFFFF,
        timestamp_us % _WRAP_US,
    )
    return header + ints.tobytes()


@dataclass(frozen=True)  # no slots: updated with evolve()
class SensordImuState:
    """Unwraps the 32-bit microsecond clock across notifications."""

    last_ts_us: int | None = None
    wraps: int = 0


@dataclass(frozen=True)
class SensordImuProfile(Profile[SensordImuState]):
    """The open sensord IMU profile.

    Attributes
    ----------
    acc_range_g, gyr_range_dps
        Ranges requested at start.
    """

    acc_range_g: float = 16.0
    gyr_range_dps: float = 2000.0

    def initial_state(self, rate_hz: float | None = None, gyro: bool = True) -> SensordImuState:
        return SensordImuState()

    def start_commands(self, rate_hz: float | None = None, gyro: bool = True) -> list[Command]:
        code = _RATE_TO_CODE[self.choose_rate(rate_hz)]
        flags = make_flags(gyro, self.acc_range_g, self.gyr_range_dps)
        return [(SENSORD_IMU_CONTROL_UUID, bytes([OP_START, code, flags]))]

    def stop_commands(self) -> list[Command]:
        return [(SENSORD_IMU_CONTROL_UUID, bytes([OP_STOP]))]

    def decode(
        self, char_uuid: str, payload: bytes, state: SensordImuState
    ) -> tuple[SensordImuState, list[DecodedSamples]]:
        if normalize_uuid(char_uuid) != SENSORD_IMU_DATA_UUID:
            raise DecodeError(
                f"sensord-imu: notification from unexpected characteristic {char_uuid}"
            )
        p = decode_packet(payload)
        wraps = state.wraps
        if state.last_ts_us is not None and p.timestamp_us < state.last_ts_us - _WRAP_US // 2:
            wraps += 1
        t0_s = (p.timestamp_us + wraps * _WRAP_US) * 1e-6
        n = p.acc_mps2.shape[0]
        t = t0_s + np.arange(n, dtype=np.float64) / p.rate_hz
        new_state = evolve(state, last_ts_us=p.timestamp_us, wraps=wraps)
        return new_state, [DecodedSamples(t, p.acc_mps2, p.gyr_dps, seq=p.seq)]

    def encoder(self, rate_hz: float | None = None, gyro: bool = True) -> SensordImuEncoder:
        return SensordImuEncoder(self.choose_rate(rate_hz), gyro)


class SensordImuEncoder(Encoder):
    """A simulated DIY sensor speaking the sensord IMU profile.

    Packs up to ``max_payload`` bytes per notification (default 182: an ATT MTU of 185,
    what ESP32 / nRF52 stacks and BlueZ usually agree on).
    """

    def __init__(self, rate_hz: float, gyro: bool = True, max_payload: int = 182) -> None:
        self._rate_hz = rate_hz
        self.gyro = gyro
        self.acc_range_g = 16.0
        self.gyr_range_dps = 2000.0
        self.max_payload = max_payload
        self.seq = 0
        self._streaming = False

    @property
    def streaming(self) -> bool:
        return self._streaming

    @property
    def rate_hz(self) -> float:
        return self._rate_hz

    @property
    def samples_per_packet(self) -> int:
        stride = 12 if self.gyro else 6
        return max(1, min(255, (self.max_payload - HEADER_BYTES) // stride))

    def handle_write(self, char_uuid: str, payload: bytes) -> list[Command]:
        if normalize_uuid(char_uuid) != SENSORD_IMU_CONTROL_UUID or not payload:
            return []
        op = payload[0]
        if op == OP_START and len(payload) == 3 and payload[1] in RATE_CODES:
            flags = payload[2]
            if flags & 0xE0:
                return []
            self._rate_hz = RATE_CODES[payload[1]]
            self.gyro = bool(flags & FLAG_GYRO)
            self.acc_range_g = ACC_RANGES_G[(flags >> 1) & 0x03]
            self.gyr_range_dps = GYR_RANGES_DPS[(flags >> 3) & 0x03]
            self._streaming = True
        elif op == OP_STOP and len(payload) == 1:
            self._streaming = False
        elif op == OP_RATE and len(payload) == 2 and payload[1] in RATE_CODES:
            self._rate_hz = RATE_CODES[payload[1]]
        return []

    def encode(self, samples: DecodedSamples) -> list[Command]:
        if not self._streaming or samples.t_s is None or samples.acc_mps2 is None:
            return []
        k = self.samples_per_packet
        out: list[Command] = []
        for i in range(0, len(samples), k):
            gyr = None
            if self.gyro:
                gyr = (
                    samples.gyr_dps[i : i + k]
                    if samples.gyr_dps is not None
                    else np.zeros((min(k, len(samples) - i), 3))
                )
            payload = encode_packet(
                self.seq,
                round(float(samples.t_s[i]) * 1e6),
                self._rate_hz,
                samples.acc_mps2[i : i + k],
                gyr,
                self.acc_range_g,
                self.gyr_range_dps,
            )
            self.seq = (self.seq + 1) & 0xFFFF
            out.append((SENSORD_IMU_DATA_UUID, payload))
        return out


SENSORD_IMU = SensordImuProfile(
    name="sensord-imu",
    description="Open sensord IMU profile for DIY sensors (ESP32, nRF52), see docs",
    service_uuid=SENSORD_IMU_SERVICE_UUID,
    notify_uuids=(SENSORD_IMU_DATA_UUID,),
    control_uuid=SENSORD_IMU_CONTROL_UUID,
    name_patterns=("sensord*",),
    rates_hz=tuple(sorted(RATE_CODES.values())),
    default_rate_hz=104.0,
    has_gyro=True,
    has_timestamps=True,
)
