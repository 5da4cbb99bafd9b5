"""WitMotion BWT901BLE5.0 / WT901BLE (BLE 5.0 firmware) 9-axis IMU.

Decoded from WitMotion's public documents: *WT901BLECL / BWT901BLE5.0 datasheet*
(v23-0420) and *Bluetooth 5.0 communication protocol* (wit-motion.gitbook.io,
"ble-5.0-protocol"), and WitMotion's ``WitBluetooth_BWT901BLE5_0`` sample code.

GATT
----
Service ``0xFFE5``; notify characteristic ``0xFFE4`` (data); write characteristic
``0xFFE9`` (commands). The device has no standard Battery Service.

Data packet (20 bytes, little endian, no checksum)
--------------------------------------------------

=====  ==========================  =======================================
Bytes  Field                       Scale
=====  ==========================  =======================================
0      header ``0x55``
1      flag ``0x61`` (default set)
2-7    acceleration x, y, z int16  ``/ 32768 * 16`` g
8-13   angular rate x, y, z int16  ``/ 32768 * 2000`` deg/s
14-19  roll, pitch, yaw int16      ``/ 32768 * 180`` deg
=====  ==========================  =======================================

Flag ``0x71`` marks a register-read reply (``55 71 <reg16> <8 x int16>``); it carries
no samples and decodes to nothing. A notification may carry several 20-byte packets.
There is **no timestamp and no sequence number**: the collector times samples on
arrival.

Commands (5 bytes, written to 0xFFE9)
-------------------------------------
``FF AA <register> <value low> <value high>``: unlock ``FF AA 69 88 B5``; output rate
``FF AA 03 <code> 00`` with codes 0x06 = 10 Hz, 0x07 = 20 Hz, 0x08 = 50 Hz,
0x09 = 100 Hz, 0x0B = 200 Hz; save ``FF AA 00 00 00`` (we never save, so the user's
configuration in flash is left alone).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import numpy as np

from sensord.errors import DecodeError
from sensord.model import GRAVITY_MPS2

from .base import Command, DecodedSamples, Encoder, Profile, normalize_uuid, uuid16

__all__ = [
    "WITMOTION",
    "WITMOTION_NOTIFY_UUID",
    "WITMOTION_SERVICE_UUID",
    "WITMOTION_WRITE_UUID",
    "WitMotionEncoder",
    "WitMotionProfile",
    "WitMotionState",
]

WITMOTION_SERVICE_UUID = uuid16(0xFFE5)
WITMOTION_NOTIFY_UUID = uuid16(0xFFE4)
WITMOTION_WRITE_UUID = uuid16(0xFFE9)

PACKET_BYTES = 20
HEADER = 0x55
FLAG_DATA = 0x61
FLAG_REGISTER = 0x71

ACC_FULL_SCALE_G = 16.0
GYR_FULL_SCALE_DPS = 2000.0
ANGLE_FULL_SCALE_DEG = 180.0

REG_SAVE = 0x00
REG_RATE = 0x03
REG_UNLOCK = 0x69
UNLOCK_COMMAND = bytes([0xFF, 0xAA, REG_UNLOCK, 0x88, 0xB5])

RATE_CODES: dict[float, int] = {10.0: 0x06, 20.0: 0x07, 50.0: 0x08, 100.0: 0x09, 200.0: 0x0B}
"""Output-rate register values (register 0x03) of the rates we offer."""


@dataclass(frozen=True, slots=True)
class WitMotionState:
    """WitMotion needs no decoder state; the rate is kept for the collector's timing."""

    rate_hz: float


def rate_command(rate_hz: float) -> bytes:
    """``FF AA 03 <code> 00`` for a rate in :data:`RATE_CODES`."""
    return bytes([0xFF, 0xAA, REG_RATE, RATE_CODES[rate_hz], 0x00])


def decode_packets(payload: bytes) -> DecodedSamples | None:
    """Samples of a notification of one or more 20-byte packets (``None`` if only replies).

    Raises
    ------
    DecodeError
        Length not a multiple of 20, a missing ``0x55`` header or an unknown flag.
    """
    if not payload or len(payload) % PACKET_BYTES:
        raise DecodeError(
            f"witmotion: notification of {len(payload)} bytes is not a whole number of "
            f"{PACKET_BYTES}-byte packets"
        )
    rows: list[tuple[int, ...]] = []
    for i in range(0, len(payload), PACKET_BYTES):
        packet = payload[i : i + PACKET_BYTES]
        if packet[0] != HEADER:
            raise DecodeError(f"witmotion: packet header 0x{packet[0]:02x}, expected 0x55")
        if packet[1] == FLAG_REGISTER:
            continue
        if packet[1] != FLAG_DATA:
            raise DecodeError(f"witmotion: unknown packet flag 0x{packet[1]:02x}")
        rows.append(struct.unpack("<9h", packet[2:]))
    if not rows:
        return None
    raw = np.asarray(rows, dtype=np.float64) / 32768.0
    return DecodedSamples(
        t_s=None,
        acc_mps2=raw[:, 0:3] * ACC_FULL_SCALE_G * GRAVITY_MPS2,
        gyr_dps=raw[:, 3:6] * GYR_FULL_SCALE_DPS,
        angle_deg=raw[:, 6:9] * ANGLE_FULL_SCALE_DEG,
    )


def encode_packet(acc_mps2: np.ndarray, gyr_dps: np.ndarray, angle_deg: np.ndarray) -> bytes:
    """One ``55 61`` packet (values clipped to the int16 range like the sensor)."""
    scaled = np.concatenate(
        [
            np.asarray(acc_mps2, dtype=np.float64) / GRAVITY_MPS2 / ACC_FULL_SCALE_G,
            np.asarray(gyr_dps, dtype=np.float64) / GYR_FULL_SCALE_DPS,
            np.asarray(angle_deg, dtype=np.float64) / ANGLE_FULL_SCALE_DEG,
        ]
    )
    ints = np.clip(np.rint(np.nan_to_num(scaled * 32768.0)), -32768, 32767).astype(int)
    return bytes([HEADER, FLAG_DATA]) + struct.pack("<9h", *ints.tolist())


@dataclass(frozen=True)
class WitMotionProfile(Profile[WitMotionState]):
    """WitMotion BLE 5.0 profile."""

    def initial_state(self, rate_hz: float | None = None, gyro: bool = True) -> WitMotionState:
        return WitMotionState(rate_hz=self.choose_rate(rate_hz))

    def start_commands(self, rate_hz: float | None = None, gyro: bool = True) -> list[Command]:
        rate = self.choose_rate(rate_hz)
        return [(WITMOTION_WRITE_UUID, UNLOCK_COMMAND), (WITMOTION_WRITE_UUID, rate_command(rate))]

    def stop_commands(self) -> list[Command]:
        return []  # the sensor streams whenever notifications are enabled

    def decode(
        self, char_uuid: str, payload: bytes, state: WitMotionState
    ) -> tuple[WitMotionState, list[DecodedSamples]]:
        if normalize_uuid(char_uuid) != WITMOTION_NOTIFY_UUID:
            raise DecodeError(f"witmotion: notification from unexpected characteristic {char_uuid}")
        samples = decode_packets(payload)
        return state, ([] if samples is None else [samples])

    def encoder(self, rate_hz: float | None = None, gyro: bool = True) -> WitMotionEncoder:
        return WitMotionEncoder(self.choose_rate(rate_hz))


class WitMotionEncoder(Encoder):
    """A simulated BWT901BLE5.0: always streaming, one packet per sample."""

    def __init__(self, rate_hz: float) -> None:
        self._rate_hz = rate_hz
        self.unlocked = False

    @property
    def streaming(self) -> bool:
        return True

    @property
    def rate_hz(self) -> float:
        return self._rate_hz

    def handle_write(self, char_uuid: str, payload: bytes) -> list[Command]:
        if normalize_uuid(char_uuid) != WITMOTION_WRITE_UUID:
            return []
        if len(payload) != 5 or payload[0] != 0xFF or payload[1] != 0xAA:
            return []
        if payload == UNLOCK_COMMAND:
            self.unlocked = True
        elif payload[2] == REG_RATE:
            for rate, code in RATE_CODES.items():
                if code == payload[3]:
                    self._rate_hz = rate
        return []

    def encode(self, samples: DecodedSamples) -> list[Command]:
        if samples.acc_mps2 is None:
            return []
        n = len(samples)
        gyr = samples.gyr_dps if samples.gyr_dps is not None else np.zeros((n, 3))
        ang = samples.angle_deg if samples.angle_deg is not None else np.zeros((n, 3))
        return [
            (WITMOTION_NOTIFY_UUID, encode_packet(samples.acc_mps2[i], gyr[i], ang[i]))
            for i in range(n)
        ]


WITMOTION = WitMotionProfile(
    name="witmotion",
    description="WitMotion BWT901BLE5.0 / WT901BLE 9-axis IMU (no timestamps)",
    service_uuid=WITMOTION_SERVICE_UUID,
    notify_uuids=(WITMOTION_NOTIFY_UUID,),
    control_uuid=WITMOTION_WRITE_UUID,
    name_patterns=("wt901*", "bwt901*", "wt9011*", "witmotion*"),
    rates_hz=tuple(RATE_CODES),
    default_rate_hz=100.0,
    has_gyro=True,
    has_timestamps=False,
    battery_uuid=None,
)
