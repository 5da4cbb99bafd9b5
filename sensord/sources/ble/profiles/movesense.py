"""Movesense sensors running the GATT sensor-data ("GSP") app.

Decoded from the Movesense device library sample ``samples/gatt_sensordata_app``
(``GATTSensorDataClient.cpp``: UUIDs, command and response codes; its Python client
``movesense_sensor_data.py``: subscription paths with a leading slash and the
DATA / DATA_PART2 reassembly), the "GATT SensorData protocol" page of the Movesense
documentation (movesense.com/docs/esw/gatt_sensordata_protocol) and the Movesense
measurement API (``movesense-api/meas/imu.yaml``, ``meas/acc.yaml``: SBEM layout of
``IMU6Data`` / ``AccData``, "Timestamp: local timestamp of first measurement", ms).

GATT
----
Service ``34802252-7185-4d5d-b431-630e7050e8f0``; command characteristic
``34800001-7185-4d5d-b431-630e7050e8f0`` (write), data characteristic
``34800002-7185-4d5d-b431-630e7050e8f0`` (notify). Both characteristic UUIDs are the
service UUID with bytes 12-13 (the 16-bit "sub-UUID") replaced by 0x0001 / 0x0002.

Commands (central -> sensor, on the command characteristic)
-----------------------------------------------------------
``[command][client reference][data]``: ``0`` HELLO (no data), ``1`` SUBSCRIBE (data =
Whiteboard resource path as ASCII, e.g. ``/Meas/IMU6/52``), ``2`` UNSUBSCRIBE (no
data; same reference as the subscription). The reference must not be 0.

Notifications (sensor -> central, on the data characteristic)
-------------------------------------------------------------
``[response type][client reference][body]``:

- ``1`` COMMAND_RESULT: body is a 2-byte HTTP-like status, **big endian** (the sample
  answers a full subscription table with ``01 FB`` = 507), or ``"Hello"`` after HELLO.
- ``2`` DATA: body is the SBEM-serialised resource value. For ``/Meas/IMU6/<rate>``:
  ``uint32`` timestamp (ms, sensor uptime, little endian) followed by ``N`` float32
  accelerometer vectors (x, y, z, m/s²) and then ``N`` float32 gyroscope vectors
  (deg/s), i.e. ``4 + 24 N`` bytes; for ``/Meas/Acc/<rate>`` only the accelerometer
  (``4 + 12 N`` bytes).
- ``3`` DATA_PART2 (newer app versions): the continuation of a DATA notification too
  long for one ATT packet (IMU9 at 104 Hz in the official client); its body (after
  its own 2-byte header) is appended to the preceding DATA body.

Assumptions (documented because the sample app does not spell them out)
----------------------------------------------------------------------
- A DATA notification whose body is not a whole number of samples is the first part
  of a split message and is held until its DATA_PART2 arrives; a split never happens
  at a sample boundary (the app splits at a fixed byte size, 155 bytes in our encoder).
- The timestamp is that of the first sample; the others follow at the nominal rate.
  It wraps at 2^32 ms (49.7 days); the decoder state unwraps it. Decoded ``t_s`` are
  seconds of sensor uptime.
- The sensor sends ``rate / 13`` samples per notification (4 at 52 Hz), as observed
  on Movesense firmware; the decoder accepts any count.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import numpy as np

from sensord.errors import DecodeError
from sensord.model import FloatArray
from sensord.state import evolve

from .base import Command, DecodedSamples, Encoder, Profile, Reader, normalize_uuid

__all__ = [
    "MOVESENSE",
    "MOVESENSE_COMMAND_UUID",
    "MOVESENSE_DATA_UUID",
    "MOVESENSE_SERVICE_UUID",
    "MovesenseEncoder",
    "MovesenseProfile",
    "MovesenseState",
]

MOVESENSE_SERVICE_UUID = "34802252-7185-4d5d-b431-630e7050e8f0"
MOVESENSE_COMMAND_UUID = "34800001-7185-4d5d-b431-630e7050e8f0"
MOVESENSE_DATA_UUID = "34800002-7185-4d5d-b431-630e7050e8f0"

CMD_HELLO = 0
CMD_SUBSCRIBE = 1
CMD_UNSUBSCRIBE = 2
RESP_COMMAND_RESULT = 1
RESP_DATA = 2
RESP_DATA_PART2 = 3

CLIENT_REFERENCE = 0x53
"""The client reference sensord uses for its one subscription (any non-zero byte)."""

MAX_NOTIFICATION_BYTES = 155
MAX_MESSAGE_BYTES = 4096
"""A split DATA message longer than this is malformed (the app's buffer is smaller)."""
_WRAP_MS = 1 << 32


@dataclass(frozen=True)  # no slots: updated with evolve()
class MovesenseState:
    """Per-connection decoder state.

    Attributes
    ----------
    rate_hz
        Subscribed sample rate.
    gyro
        ``True`` for an IMU6 subscription, ``False`` for Acc only.
    reference
        Client reference of our subscription; notifications with others are ignored.
    pending
        Body of a DATA notification waiting for its DATA_PART2.
    last_ts_ms, wraps
        For unwrapping the 32-bit millisecond timestamp.
    """

    rate_hz: float
    gyro: bool = True
    reference: int = CLIENT_REFERENCE
    pending: bytes | None = None
    last_ts_ms: int | None = None
    wraps: int = 0


def resource_path(rate_hz: float, gyro: bool) -> str:
    """The Whiteboard resource we subscribe to, e.g. ``/Meas/IMU6/52``."""
    return f"/Meas/{'IMU6' if gyro else 'Acc'}/{round(rate_hz)}"


def _parse_path(path: str) -> tuple[bool, int] | None:
    """``(gyro, rate)`` of an IMU6 / Acc resource path, ``None`` for anything else."""
    parts = [p for p in path.strip().split("/") if p]
    if len(parts) != 3 or parts[0].lower() != "meas" or not parts[2].isdigit():
        return None
    kind = parts[1].lower()
    if kind not in ("imu6", "acc"):
        return None
    return kind == "imu6", int(parts[2])


def _decode_body(body: bytes, state: MovesenseState) -> tuple[MovesenseState, DecodedSamples]:
    stride = 24 if state.gyro else 12
    r = Reader(body, "movesense data")
    ts_ms = r.u32()
    rest = r.rest()
    if not rest or len(rest) % stride:
        raise DecodeError(
            f"movesense data: {len(rest)} sample bytes is not a whole number of "
            f"{stride}-byte {'IMU6' if state.gyro else 'Acc'} samples"
        )
    n = len(rest) // stride
    with np.errstate(invalid="ignore"):  # a signalling NaN stays NaN: a gap downstream
        values = np.frombuffer(rest, dtype="<f4").astype(np.float64)
    acc = values[: 3 * n].reshape(n, 3)
    gyr = values[3 * n :].reshape(n, 3) if state.gyro else None
    wraps = state.wraps
    if state.last_ts_ms is not None and ts_ms < state.last_ts_ms - _WRAP_MS // 2:
        wraps += 1
    t0_s = (ts_ms + wraps * _WRAP_MS) / 1000.0
    t = t0_s + np.arange(n, dtype=np.float64) / state.rate_hz
    new_state = evolve(state, last_ts_ms=ts_ms, wraps=wraps, pending=None)
    return new_state, DecodedSamples(t, acc, gyr)


def _decode(payload: bytes, state: MovesenseState) -> tuple[MovesenseState, list[DecodedSamples]]:
    r = Reader(payload, "movesense notification")
    kind = r.u8()
    ref = r.u8()
    body = r.rest()
    if kind == RESP_COMMAND_RESULT:
        if body == b"Hello":
            return state, [DecodedSamples(control_ok=True, control_message="movesense: hello")]
        if len(body) != 2:
            raise DecodeError(f"movesense command result: expected 2-byte status, got {body!r}")
        status = int.from_bytes(body, "big")
        return state, [
            DecodedSamples(
                control_ok=200 <= status < 300,
                control_message=f"movesense: command (reference {ref}) status {status}",
            )
        ]
    if kind not in (RESP_DATA, RESP_DATA_PART2):
        raise DecodeError(f"movesense: unknown response type {kind}")
    if ref != state.reference:
        return state, []  # another client's subscription
    stride = 24 if state.gyro else 12
    out: list[DecodedSamples] = []
    if kind == RESP_DATA:
        if state.pending is not None:
            out.append(
                DecodedSamples(
                    control_ok=False,
                    control_message="movesense: split data packet lost its second part",
                )
            )
            state = evolve(state, pending=None)
        if len(body) < 4:
            raise DecodeError(f"movesense data: {len(body)} byte body, no timestamp")
        if len(body) > 4 and (len(body) - 4) % stride == 0:
            state, samples = _decode_body(body, state)
            out.append(samples)
            return state, out
        return evolve(state, pending=body), out
    if state.pending is None:
        raise DecodeError("movesense: DATA_PART2 without a preceding DATA part")
    joined = state.pending + body
    if len(joined) > MAX_MESSAGE_BYTES:
        raise DecodeError(
            f"movesense: split data message grew past {MAX_MESSAGE_BYTES} bytes without "
            "completing a whole number of samples"
        )
    if (len(joined) - 4) % stride == 0:
        state, samples = _decode_body(joined, state)
        return state, [samples]
    return evolve(state, pending=joined), []


@dataclass(frozen=True)
class MovesenseProfile(Profile[MovesenseState]):
    """Movesense GSP profile (``/Meas/IMU6`` or ``/Meas/Acc`` subscription)."""

    def initial_state(self, rate_hz: float | None = None, gyro: bool = True) -> MovesenseState:
        return MovesenseState(rate_hz=self.choose_rate(rate_hz), gyro=gyro)

    def start_commands(self, rate_hz: float | None = None, gyro: bool = True) -> list[Command]:
        path = resource_path(self.choose_rate(rate_hz), gyro)
        return [
            (
                MOVESENSE_COMMAND_UUID,
                bytes([CMD_SUBSCRIBE, CLIENT_REFERENCE]) + path.encode("ascii"),
            )
        ]

    def stop_commands(self) -> list[Command]:
        return [(MOVESENSE_COMMAND_UUID, bytes([CMD_UNSUBSCRIBE, CLIENT_REFERENCE]))]

    def decode(
        self, char_uuid: str, payload: bytes, state: MovesenseState
    ) -> tuple[MovesenseState, list[DecodedSamples]]:
        if normalize_uuid(char_uuid) != MOVESENSE_DATA_UUID:
            raise DecodeError(f"movesense: notification from unexpected characteristic {char_uuid}")
        return _decode(payload, state)

    def encoder(self, rate_hz: float | None = None, gyro: bool = True) -> MovesenseEncoder:
        return MovesenseEncoder(self, self.choose_rate(rate_hz))


class MovesenseEncoder(Encoder):
    """A simulated Movesense running the GATT sensor-data app."""

    def __init__(
        self, profile: MovesenseProfile, rate_hz: float, max_payload: int = MAX_NOTIFICATION_BYTES
    ) -> None:
        self.profile = profile
        self._rate_hz = rate_hz
        self.max_payload = max_payload
        self.reference: int | None = None
        self.gyro = True

    @property
    def streaming(self) -> bool:
        return self.reference is not None

    @property
    def rate_hz(self) -> float:
        return self._rate_hz

    @property
    def samples_per_notification(self) -> int:
        """Samples the real sensor packs into one DATA message at this rate."""
        return max(1, round(self._rate_hz / 13))

    def handle_write(self, char_uuid: str, payload: bytes) -> list[Command]:
        if normalize_uuid(char_uuid) != MOVESENSE_COMMAND_UUID or len(payload) < 2:
            return []
        cmd, ref = payload[0], payload[1]

        def result(status: int) -> list[Command]:
            return [
                (MOVESENSE_DATA_UUID, bytes([RESP_COMMAND_RESULT, ref]) + status.to_bytes(2, "big"))
            ]

        if cmd == CMD_HELLO:
            return [(MOVESENSE_DATA_UUID, bytes([RESP_COMMAND_RESULT, ref]) + b"Hello")]
        if cmd == CMD_UNSUBSCRIBE:
            if ref == self.reference:
                self.reference = None
            return []
        if cmd != CMD_SUBSCRIBE or ref == 0:
            return result(400)
        if self.reference is not None:
            return result(507)
        parsed = _parse_path(payload[2:].decode("ascii", errors="replace"))
        if parsed is None or parsed[1] not in {round(r) for r in self.profile.rates_hz}:
            return result(404)
        self.gyro, rate = parsed
        self._rate_hz = float(rate)
        self.reference = ref
        return result(200)

    def _message(self, t0_s: float, acc: FloatArray, gyr: FloatArray | None) -> bytes:
        ts_ms = round(t0_s * 1000.0) % _WRAP_MS
        body = struct.pack("<I", ts_ms) + np.asarray(acc, dtype="<f4").tobytes()
        if gyr is not None:
            body += np.asarray(gyr, dtype="<f4").tobytes()
        return body

    def encode(self, samples: DecodedSamples) -> list[Command]:
        if self.reference is None or samples.t_s is None or samples.acc_mps2 is None:
            return []
        if self.gyro and samples.gyr_dps is None:
            raise ValueError("movesense encoder: IMU6 subscription needs gyroscope samples")
        ref = self.reference
        k = self.samples_per_notification
        out: list[Command] = []
        for i in range(0, len(samples), k):
            acc = samples.acc_mps2[i : i + k]
            gyr = (
                samples.gyr_dps[i : i + k] if (self.gyro and samples.gyr_dps is not None) else None
            )
            body = self._message(float(samples.t_s[i]), acc, gyr)
            first = self.max_payload - 2
            out.append((MOVESENSE_DATA_UUID, bytes([RESP_DATA, ref]) + body[:first]))
            for j in range(first, len(body), first):
                out.append(
                    (MOVESENSE_DATA_UUID, bytes([RESP_DATA_PART2, ref]) + body[j : j + first])
                )
        return out


MOVESENSE = MovesenseProfile(
    name="movesense",
    description="Movesense sensor with the GATT sensor-data app (/Meas/IMU6 or /Meas/Acc)",
    service_uuid=MOVESENSE_SERVICE_UUID,
    notify_uuids=(MOVESENSE_DATA_UUID,),
    control_uuid=MOVESENSE_COMMAND_UUID,
    name_patterns=("movesense*",),
    rates_hz=(13.0, 26.0, 52.0, 104.0, 208.0),
    default_rate_hz=104.0,
    has_gyro=True,
    has_timestamps=True,
)
