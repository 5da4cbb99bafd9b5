"""Running Speed and Cadence (RSC): standard footpods (Stryd, Polar Stride, RunScribe...).

Decoded from the Bluetooth SIG *Running Speed and Cadence Service 1.0* (RSCS_SPEC_V10,
§3.1 "RSC Measurement") and the *GATT Specification Supplement*, "RSC Measurement"
(0x2A53).

GATT
----
Service ``0x1814``; RSC Measurement ``0x2A53`` (notify, no start command: the footpod
notifies about once a second as soon as notifications are enabled). RSC Feature
``0x2A54`` and SC Control Point ``0x2A55`` are not needed. Battery via 0x180F/0x2A19.

RSC Measurement (little endian)
-------------------------------

=======  ========================  ===========  =======================================
Bytes    Field                     Type         Unit / meaning
=======  ========================  ===========  =======================================
0        flags                     uint8        bit 0: stride length present;
                                                bit 1: total distance present;
                                                bit 2: 0 walking, 1 running
1-2      instantaneous speed       uint16       1/256 m/s
3        instantaneous cadence     uint8        1/min
(+2)     instantaneous stride len  uint16       1/100 m, if flag bit 0
(+4)     total distance            uint32       1/10 m, if flag bit 1
=======  ========================  ===========  =======================================

Cadence: steps or strides?
--------------------------
The SIG documents give the cadence unit only as "per minute" (1/min); the service
describes it as the user's cadence and never says "per foot", so **per the spec the
value is steps per minute (foot strikes of both feet)**, which is what sensord reports
(``cadence_spm``, steps/min) unchanged. Some footpods nonetheless send *stride*
cadence (one foot, half the step rate). :attr:`RscProfile.cadence_mode` chooses:

- ``"steps"``: trust the spec, report the value as is;
- ``"strides"``: the footpod sends per-foot cadence; report twice the value;
- ``"auto"`` (default): as ``"steps"``, except that a value below 120/min while the
  runner is running (status bit 2 set, or speed >= 2 m/s) is taken as stride cadence
  and doubled: running step cadences are 140-220 steps/min, per-foot cadences 70-110,
  so the two ranges do not overlap.

Instantaneous stride length is passed through as sent (metres); total distance in
metres. A notification decodes to one :class:`DecodedSamples` without IMU arrays and
without a timestamp (the collector times it on arrival).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from sensord.errors import DecodeError

from .base import Command, DecodedSamples, Encoder, Profile, Reader, normalize_uuid, uuid16

__all__ = [
    "RSC",
    "RSC_MEASUREMENT_UUID",
    "RSC_SERVICE_UUID",
    "CadenceMode",
    "RscEncoder",
    "RscProfile",
    "RscState",
    "decode_rsc_measurement",
    "encode_rsc_measurement",
]

RSC_SERVICE_UUID = uuid16(0x1814)
RSC_MEASUREMENT_UUID = uuid16(0x2A53)
RSC_FEATURE_UUID = uuid16(0x2A54)

FLAG_STRIDE_LENGTH = 0x01
FLAG_TOTAL_DISTANCE = 0x02
FLAG_RUNNING = 0x04

AUTO_STRIDE_BELOW_SPM = 120
AUTO_RUNNING_SPEED_MPS = 2.0

CadenceMode = Literal["auto", "steps", "strides"]


@dataclass(frozen=True, slots=True)
class RscState:
    """RSC needs no history; the state only carries the cadence interpretation."""

    cadence_mode: CadenceMode = "auto"


def decode_rsc_measurement(payload: bytes, cadence_mode: CadenceMode = "auto") -> DecodedSamples:
    """One RSC Measurement (0x2A53) -> cadence (steps/min), speed, stride length, distance.

    Raises
    ------
    DecodeError
        Payload shorter than its flags announce, or with trailing bytes.
    """
    r = Reader(payload, "rsc measurement")
    flags = r.u8()
    speed_mps = r.u16() / 256.0
    cadence = r.u8()
    stride_m = r.u16() / 100.0 if flags & FLAG_STRIDE_LENGTH else None
    distance_m = r.u32() / 10.0 if flags & FLAG_TOTAL_DISTANCE else None
    if r.remaining:
        raise DecodeError(
            f"rsc measurement: {r.remaining} unexpected trailing byte(s) for flags 0x{flags:02x}"
        )
    running = bool(flags & FLAG_RUNNING)
    factor = 1.0
    if cadence_mode == "strides" or (
        cadence_mode == "auto"
        and 0 < cadence < AUTO_STRIDE_BELOW_SPM
        and (running or speed_mps >= AUTO_RUNNING_SPEED_MPS)
    ):
        factor = 2.0
    return DecodedSamples(
        cadence_spm=cadence * factor,
        speed_mps=speed_mps,
        stride_length_m=stride_m,
        total_distance_m=distance_m,
        running=running,
    )


def encode_rsc_measurement(
    speed_mps: float,
    cadence_per_min: float,
    stride_length_m: float | None = None,
    total_distance_m: float | None = None,
    running: bool = True,
) -> bytes:
    """Inverse of :func:`decode_rsc_measurement` (``cadence_per_min`` as sent on air)."""
    flags = FLAG_RUNNING if running else 0
    body = bytearray()
    body += max(0, min(0xFFFF, round(speed_mps * 256.0))).to_bytes(2, "little")
    body += bytes([max(0, min(0xFF, round(cadence_per_min)))])
    if stride_length_m is not None:
        flags |= FLAG_STRIDE_LENGTH
        body += max(0, min(0xFFFF, round(stride_length_m * 100.0))).to_bytes(2, "little")
    if total_distance_m is not None:
        flags |= FLAG_TOTAL_DISTANCE
        body += max(0, min(0xFFFFFFFF, round(total_distance_m * 10.0))).to_bytes(4, "little")
    return bytes([flags]) + bytes(body)


@dataclass(frozen=True)
class RscProfile(Profile[RscState]):
    """Running Speed and Cadence footpod profile (cadence-only source).

    Attributes
    ----------
    cadence_mode
        How to read the cadence byte (see the module docstring).
    """

    cadence_mode: CadenceMode = "auto"

    def initial_state(self, rate_hz: float | None = None, gyro: bool = True) -> RscState:
        return RscState(cadence_mode=self.cadence_mode)

    def start_commands(self, rate_hz: float | None = None, gyro: bool = True) -> list[Command]:
        return []

    def stop_commands(self) -> list[Command]:
        return []

    def decode(
        self, char_uuid: str, payload: bytes, state: RscState
    ) -> tuple[RscState, list[DecodedSamples]]:
        if normalize_uuid(char_uuid) != RSC_MEASUREMENT_UUID:
            raise DecodeError(f"rsc: notification from unexpected characteristic {char_uuid}")
        return state, [decode_rsc_measurement(payload, state.cadence_mode)]

    def encoder(self, rate_hz: float | None = None, gyro: bool = True) -> RscEncoder:
        return RscEncoder(per_foot=self.cadence_mode == "strides")


class RscEncoder(Encoder):
    """A simulated footpod: one RSC Measurement per :meth:`encode` call.

    ``encode`` reads ``cadence_spm`` (steps/min), ``speed_mps`` and the optional
    ``stride_length_m`` / ``total_distance_m`` / ``running`` of its input; with
    ``per_foot`` it sends half the step cadence, like footpods that report strides.
    """

    def __init__(self, per_foot: bool = False) -> None:
        self.per_foot = per_foot

    @property
    def streaming(self) -> bool:
        return True

    @property
    def rate_hz(self) -> float:
        return 1.0

    def handle_write(self, char_uuid: str, payload: bytes) -> list[Command]:
        return []

    def encode(self, samples: DecodedSamples) -> list[Command]:
        if samples.cadence_spm is None:
            return []
        cadence = samples.cadence_spm / (2.0 if self.per_foot else 1.0)
        payload = encode_rsc_measurement(
            speed_mps=samples.speed_mps or 0.0,
            cadence_per_min=cadence,
            stride_length_m=samples.stride_length_m,
            total_distance_m=samples.total_distance_m,
            running=True if samples.running is None else samples.running,
        )
        return [(RSC_MEASUREMENT_UUID, payload)]


RSC = RscProfile(
    name="rsc",
    description="Bluetooth Running Speed and Cadence footpod (cadence and speed only)",
    service_uuid=RSC_SERVICE_UUID,
    notify_uuids=(RSC_MEASUREMENT_UUID,),
    control_uuid=None,
    name_patterns=("stryd*", "polar stride*", "runscribe*", "*footpod*", "*runpod*"),
    rates_hz=(),
    default_rate_hz=1.0,
    has_gyro=False,
    has_timestamps=False,
)
