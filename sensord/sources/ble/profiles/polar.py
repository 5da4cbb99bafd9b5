"""Polar Measurement Data (PMD) service: Polar H10 and Polar Verity Sense.

Decoded from Polar's public documentation and reference implementation:

- *Polar Measurement Data Specification for 3rd Party* (polarofficial/polar-ble-sdk,
  ``technical_documentation/Polar_Measurement_Data_Specification.pdf``),
- the SDK's Android sources (``BlePMDClient.kt``, ``PmdDataFrame.kt``, ``PmdSetting.kt``,
  ``PmdControlPointResponse.kt``, ``model/AccData.kt``, ``model/GyrData.kt``,
  ``model/PmdTimeStampUtils.kt``) and ``technical_documentation/TimeSystemExplained.md``.

GATT
----
Service ``FB005C80-02E7-F387-1CAD-8ACD2D8DF0C8``; control point ``...5C81`` (write +
notify: responses), data ``...5C82`` (notify).

Control point
-------------
Requests: ``[op][measurement type][settings...]`` with ops ``0x01`` get measurement
settings, ``0x02`` start, ``0x03`` stop; measurement types ``0x02`` ACC, ``0x05`` GYRO
(bit 7 of the type byte selects offline recording; we always use online, 0).
Settings are TLV-ish: ``[setting type][count][value x count]`` with types 0 sample rate
(uint16), 1 resolution (uint16), 2 range (uint16), 3 range in milli-units (uint32),
4 channels (uint8), 5 factor (float32, only in responses). All little endian.

Responses (notifications on the control point): ``[0xF0][op][type][status][more]
[parameters...]``; status 0 = success, other codes are listed in :data:`CP_STATUS`.
The device may also notify ``[0x01][types...]`` when it stops online streams itself
(``PmdControlPointCommand.kt``, ONLINE_MEASUREMENT_STOPPED).
The start response carries the FACTOR setting (``05 01 <float32>``) that scales
compressed samples.

Data frames
-----------
``[measurement type][timestamp uint64 ns][frame type][content]``. The timestamp is that
of the **last** sample in the frame, nanoseconds since 2000-01-01T00:00:00 on the
sensor's clock (set by the phone; otherwise it counts from an arbitrary origin).
Frame type bit 7 (``0x80``) marks a delta-compressed frame; bits 0-6 are the type.

- Uncompressed ACC types 0, 1, 2: signed x, y, z of 1, 2, 3 bytes each, in mG
  (factor not applied, as in the SDK).
- Delta-compressed frames: a reference sample (channels x ceil(resolution/8) bytes,
  signed little endian), then blocks ``[delta bit width][sample count][packed deltas]``
  whose deltas are ``count x channels`` signed (two's complement) integers of
  ``width`` bits packed LSB-first, each block padded to a whole byte. Every delta is
  added to the previous sample. ACC compressed type 1: 16-bit samples x factor = mG;
  ACC compressed type 0: 16-bit x factor = G. GYRO compressed type 0: 16-bit x factor =
  deg/s; GYRO compressed type 1: 32-bit IEEE-754 bit patterns (deltas on the integer
  bit pattern) x factor = deg/s.

Sample times are back-filled from the frame timestamp: with a previous frame of the
same measurement the interval is split evenly over the samples (as the SDK does),
unless that interval implies a rate more than 25 % off the configured one (a lost
frame), in which case the nominal rate is used; the first frame uses the nominal rate.
Decoded times are seconds on the sensor clock since the Polar epoch.

ACC and GYRO arrive in separate frames. When the gyroscope is on, the decoder state
pairs them: accelerometer samples are emitted once gyroscope samples covering their
time have arrived, with the gyroscope linearly interpolated onto the accelerometer
times; accelerometer samples older than the first gyroscope sample are dropped, and if
the gyroscope falls more than 2 s behind, accelerometer samples are emitted with NaN
gyroscope rows (SampleBlock treats NaN as a gap).
"""

from __future__ import annotations

import itertools
import math
import struct
from dataclasses import dataclass, field
from enum import IntEnum

import numpy as np

from sensord.errors import DecodeError
from sensord.model import GRAVITY_MPS2, FloatArray
from sensord.state import evolve

from .base import Command, DecodedSamples, Encoder, Profile, Reader, normalize_uuid

__all__ = [
    "PMD_CONTROL_UUID",
    "PMD_DATA_UUID",
    "PMD_SERVICE_UUID",
    "POLAR_EPOCH_UNIX_S",
    "POLAR_H10",
    "POLAR_VERITY_SENSE",
    "MeasurementType",
    "PolarEncoder",
    "PolarProfile",
    "PolarState",
    "decode_delta_frame",
    "encode_delta_frame",
]

PMD_SERVICE_UUID = "fb005c80-02e7-f387-1cad-8acd2d8df0c8"
PMD_CONTROL_UUID = "fb005c81-02e7-f387-1cad-8acd2d8df0c8"
PMD_DATA_UUID = "fb005c82-02e7-f387-1cad-8acd2d8df0c8"

POLAR_EPOCH_UNIX_S = 946_684_800
"""2000-01-01T00:00:00Z as a Unix time: add to decoded ``t_s`` for Unix seconds."""

MG_TO_MPS2 = GRAVITY_MPS2 / 1000.0

CP_RESPONSE = 0xF0
CP_ONLINE_MEASUREMENT_STOPPED = 0x01
OP_GET_SETTINGS = 0x01
OP_START = 0x02
OP_STOP = 0x03

SETTING_SAMPLE_RATE = 0
SETTING_RESOLUTION = 1
SETTING_RANGE = 2
SETTING_RANGE_MILLIUNIT = 3
SETTING_CHANNELS = 4
SETTING_FACTOR = 5
_SETTING_SIZES = {0: 2, 1: 2, 2: 2, 3: 4, 4: 1, 5: 4}
_SETTING_NAMES = {
    0: "sample_rate",
    1: "resolution",
    2: "range",
    3: "range_milliunit",
    4: "channels",
    5: "factor",
}

CP_STATUS: dict[int, str] = {
    0: "success",
    1: "invalid op code",
    2: "invalid measurement type",
    3: "not supported",
    4: "invalid length",
    5: "invalid parameter",
    6: "already in state",
    7: "invalid resolution",
    8: "invalid sample rate",
    9: "invalid range",
    10: "invalid MTU",
    11: "invalid number of channels",
    12: "invalid state",
    13: "device in charger",
    14: "disk full",
}

DELTA_FRAME_BIT = 0x80
MAX_GYRO_LAG_S = 2.0
RATE_TOLERANCE = 0.25


class MeasurementType(IntEnum):
    """PMD measurement types (``PmdMeasurementType.kt``)."""

    ECG = 0
    PPG = 1
    ACC = 2
    PPI = 3
    GYRO = 5
    MAGNETOMETER = 6
    SDK_MODE = 9
    LOCATION = 10
    PRESSURE = 11
    TEMPERATURE = 12


_KNOWN_TYPES = {int(t) for t in MeasurementType}


# -- delta compression ----------------------------------------------------------------


def _signed(value: int, bits: int) -> int:
    """Two's complement interpretation of the low ``bits`` bits of ``value``."""
    value &= (1 << bits) - 1
    return value - (1 << bits) if value >> (bits - 1) else value


def decode_delta_frame(content: bytes, channels: int, resolution_bits: int) -> list[list[int]]:
    """Samples of a PMD delta-compressed frame body (``BlePMDClient.parseDeltaFramesAll``).

    Parameters
    ----------
    content
        Frame content after the 10-byte header.
    channels
        Channels per sample (3 for ACC / GYRO).
    resolution_bits
        Bits of the reference sample (16 for int16 data, 32 for float bit patterns).

    Returns
    -------
    list of list of int
        Samples as signed integers of ``resolution_bits`` (reference sample first).

    Raises
    ------
    DecodeError
        Truncated reference sample or delta block, or a delta width of 0 or > 32.
    """
    nbytes = (resolution_bits + 7) // 8
    r = Reader(content, "polar delta frame")
    ref = [
        _signed(int.from_bytes(r.take(nbytes), "little"), resolution_bits) for _ in range(channels)
    ]
    samples = [ref]
    modulus = 1 << resolution_bits
    while r.remaining:
        width = r.u8()
        count = r.u8()
        if width == 0 or width > 32:
            raise DecodeError(f"polar delta frame: delta bit width {width} out of 1..32")
        nbits = width * count * channels
        packed = int.from_bytes(r.take((nbits + 7) // 8), "little")
        mask = (1 << width) - 1
        last = samples[-1]
        k = 0
        for _ in range(count):
            nxt = []
            for ch in range(channels):
                delta = _signed((packed >> (k * width)) & mask, width)
                k += 1
                nxt.append(_signed((last[ch] + delta) % modulus, resolution_bits))
            samples.append(nxt)
            last = nxt
    return samples


def _width_for(deltas: list[int]) -> int:
    """Smallest two's complement width (>= 2) that holds every delta."""
    w = 2
    for d in deltas:
        need = (d.bit_length() + 1) if d >= 0 else ((-d - 1).bit_length() + 1)
        w = max(w, need)
    return w


def encode_delta_frame(
    samples: list[list[int]], resolution_bits: int, block_samples: int = 8
) -> bytes:
    """Inverse of :func:`decode_delta_frame`: reference sample + blocks of deltas.

    Each block of up to ``block_samples`` deltas gets the smallest bit width that
    holds it, so a frame usually contains several widths, as the real devices send.
    """
    nbytes = (resolution_bits + 7) // 8
    modulus = 1 << resolution_bits
    out = bytearray()
    for v in samples[0]:
        out += (v % modulus).to_bytes(nbytes, "little")
    deltas = []
    for prev, cur in itertools.pairwise(samples):
        deltas.append([_signed(c - p, resolution_bits) for p, c in zip(prev, cur, strict=True)])
    for start in range(0, len(deltas), block_samples):
        block = deltas[start : start + block_samples]
        flat = [d for row in block for d in row]
        width = _width_for(flat)
        packed = 0
        for k, d in enumerate(flat):
            packed |= (d & ((1 << width) - 1)) << (k * width)
        nbits = width * len(flat)
        out += bytes([width, len(block)])
        out += packed.to_bytes((nbits + 7) // 8, "little")
    return bytes(out)


# -- settings ---------------------------------------------------------------------------


def parse_settings(params: bytes) -> dict[int, list[float]]:
    """PMD settings ``[type][count][values...]`` -> ``{type: [values]}`` (``PmdSetting.kt``).

    The FACTOR setting (type 5) is decoded as IEEE-754 float32, the others as unsigned.

    Raises
    ------
    DecodeError
        Unknown setting type or truncated values.
    """
    r = Reader(params, "polar settings")
    out: dict[int, list[float]] = {}
    while r.remaining:
        kind = r.u8()
        if kind not in _SETTING_SIZES:
            raise DecodeError(f"polar settings: unknown setting type {kind}")
        count = r.u8()
        size = _SETTING_SIZES[kind]
        values: list[float] = []
        for _ in range(count):
            raw = r.take(size)
            if kind == SETTING_FACTOR:
                values.append(float(struct.unpack("<f", raw)[0]))
            else:
                values.append(float(int.from_bytes(raw, "little")))
        out[kind] = values
    return out


def serialize_settings(settings: dict[int, list[float]]) -> bytes:
    """Inverse of :func:`parse_settings`."""
    out = bytearray()
    for kind, values in settings.items():
        out += bytes([kind, len(values)])
        for v in values:
            if kind == SETTING_FACTOR:
                out += struct.pack("<f", v)
            else:
                out += int(v).to_bytes(_SETTING_SIZES[kind], "little")
    return bytes(out)


# -- decoder state ----------------------------------------------------------------------


def _empty3() -> FloatArray:
    return np.empty((0, 3))


def _empty1() -> FloatArray:
    return np.empty(0)


@dataclass(frozen=True, eq=False)  # no slots: updated with evolve()
class PolarState:
    """Per-connection PMD decoder state.

    Attributes
    ----------
    rate_hz
        Configured sample rate (ACC and GYRO use the same).
    gyro
        Whether a GYRO stream was started (ACC is then paired with it).
    acc_factor, gyr_factor
        FACTOR settings from the start responses (1.0 until one arrives).
    last_acc_ns, last_gyr_ns
        Timestamp of the previous frame of each kind, for back-filling sample times.
    acc_t_s, acc_mps2, gyr_t_s, gyr_dps
        Samples waiting for pairing (only used when ``gyro``).
    """

    rate_hz: float
    gyro: bool = False
    acc_factor: float = 1.0
    gyr_factor: float = 1.0
    last_acc_ns: int | None = None
    last_gyr_ns: int | None = None
    acc_t_s: FloatArray = field(default_factory=_empty1)
    acc_mps2: FloatArray = field(default_factory=_empty3)
    gyr_t_s: FloatArray = field(default_factory=_empty1)
    gyr_dps: FloatArray = field(default_factory=_empty3)


def _sample_times(ts_ns: int, n: int, last_ns: int | None, rate_hz: float) -> FloatArray:
    """Back-filled sample times (s) of a frame whose last sample is at ``ts_ns``."""
    nominal_ns = 1e9 / rate_hz
    dt_ns = nominal_ns
    if last_ns is not None and ts_ns > last_ns:
        implied = (ts_ns - last_ns) / n
        if abs(implied - nominal_ns) <= RATE_TOLERANCE * nominal_ns:
            dt_ns = implied
    offsets = (np.arange(n, dtype=np.float64) - (n - 1)) * dt_ns
    return np.asarray((ts_ns + offsets) * 1e-9, dtype=np.float64)


def _frame_samples(mtype: int, ftype: int, content: bytes, state: PolarState) -> FloatArray:
    """Physical values of one frame: ACC in m/s², GYRO in deg/s, shape (n, 3)."""
    compressed = bool(ftype & DELTA_FRAME_BIT)
    kind = ftype & 0x7F
    if mtype == MeasurementType.ACC:
        if not compressed:
            if kind not in (0, 1, 2):
                raise DecodeError(f"polar ACC: unsupported raw frame type {kind}")
            size = kind + 1
            if not content or len(content) % (3 * size):
                raise DecodeError(
                    f"polar ACC raw type {kind}: content of {len(content)} bytes is not "
                    f"a whole number of {3 * size}-byte samples"
                )
            raw = np.array(
                [
                    _signed(int.from_bytes(content[i : i + size], "little"), 8 * size)
                    for i in range(0, len(content), size)
                ],
                dtype=np.float64,
            ).reshape(-1, 3)
            return raw * MG_TO_MPS2
        if kind == 0:
            ints = decode_delta_frame(content, 3, 16)
            return np.asarray(ints, dtype=np.float64) * state.acc_factor * GRAVITY_MPS2
        if kind == 1:
            ints = decode_delta_frame(content, 3, 16)
            return np.asarray(ints, dtype=np.float64) * state.acc_factor * MG_TO_MPS2
        raise DecodeError(f"polar ACC: unsupported compressed frame type {kind}")
    # GYRO
    if not compressed:
        raise DecodeError(f"polar GYRO: raw frame type {kind} is not supported")
    if kind == 0:
        ints = decode_delta_frame(content, 3, 16)
        return np.asarray(ints, dtype=np.float64) * state.gyr_factor
    if kind == 1:
        ints = decode_delta_frame(content, 3, 32)
        bits = np.asarray(ints, dtype=np.int64).astype(np.uint32)
        floats = bits.view(np.float32).astype(np.float64)
        with np.errstate(invalid="ignore", over="ignore"):
            return np.asarray(floats * state.gyr_factor, dtype=np.float64)
    raise DecodeError(f"polar GYRO: unsupported compressed frame type {kind}")


def _pair(state: PolarState) -> tuple[PolarState, list[DecodedSamples]]:
    """Emit accelerometer samples whose time the gyroscope already covers."""
    at, acc, gt, gyr = state.acc_t_s, state.acc_mps2, state.gyr_t_s, state.gyr_dps
    out: list[DecodedSamples] = []
    if len(at) == 0:
        # no accelerometer waiting: keep only the recent gyroscope (bounded memory)
        recent = gt >= gt[-1] - MAX_GYRO_LAG_S if len(gt) else np.zeros(0, dtype=bool)
        return evolve(state, gyr_t_s=gt[recent], gyr_dps=gyr[recent]), out
    if len(gt) == 0:
        # No gyroscope yet: hold accelerometer samples, up to MAX_GYRO_LAG_S.
        keep = at >= at[-1] - MAX_GYRO_LAG_S
        lagging = ~keep
        if lagging.any():
            out.append(
                DecodedSamples(at[lagging], acc[lagging], np.full((int(lagging.sum()), 3), np.nan))
            )
        return evolve(state, acc_t_s=at[keep], acc_mps2=acc[keep]), out
    before = at < gt[0] - 0.5 / state.rate_hz
    # accelerometer samples older than the first gyroscope sample: drop (start-up only)
    ready = (~before) & (at <= gt[-1] + 0.5 / state.rate_hz)
    stale = (~before) & (~ready) & (at < at[-1] - MAX_GYRO_LAG_S)
    if ready.any():
        t = at[ready]
        g = np.column_stack([np.interp(t, gt, gyr[:, k]) for k in range(3)])
        out.append(DecodedSamples(t, acc[ready], g))
    if stale.any():
        n = int(stale.sum())
        out.append(DecodedSamples(at[stale], acc[stale], np.full((n, 3), np.nan)))
    keep = ~(before | ready | stale)
    new_at, new_acc = at[keep], acc[keep]
    # keep the gyroscope samples still needed for interpolation: from the last one at
    # or before the oldest accelerometer sample still to come (or the newest emitted)
    emitted = ready | stale
    if len(new_at):
        horizon = float(new_at[0])
    elif emitted.any():
        horizon = float(at[emitted][-1])
    else:
        horizon = float(gt[-1])
    cut = max(int(np.searchsorted(gt, horizon, side="right")) - 1, 0)
    return (
        evolve(state, acc_t_s=new_at, acc_mps2=new_acc, gyr_t_s=gt[cut:], gyr_dps=gyr[cut:]),
        out,
    )


def _decode_control(payload: bytes, state: PolarState) -> tuple[PolarState, list[DecodedSamples]]:
    r = Reader(payload, "polar control point")
    first = r.u8()
    if first == CP_ONLINE_MEASUREMENT_STOPPED:
        # server-initiated: the device stopped online streams ([0x01][types...])
        names = []
        for t in payload[1:]:
            try:
                names.append(MeasurementType(t & 0x3F).name)
            except ValueError:
                names.append(f"type {t}")
        return state, [
            DecodedSamples(
                control_ok=False,
                control_message="polar: device stopped online measurement "
                + (", ".join(names) or "(unspecified)"),
            )
        ]
    if first != CP_RESPONSE:
        raise DecodeError(f"polar control point: unknown notification code 0x{first:02x}")
    op = r.u8()
    mtype = r.u8()
    status = r.u8()
    more = r.u8() if r.remaining else 0
    params = r.rest()
    try:
        what = MeasurementType(mtype & 0x3F).name
    except ValueError:
        what = f"type {mtype}"
    opname = {OP_GET_SETTINGS: "get settings", OP_START: "start", OP_STOP: "stop"}.get(
        op, f"op 0x{op:02x}"
    )
    if status != 0:
        reason = CP_STATUS.get(status, f"status {status}")
        return state, [
            DecodedSamples(control_ok=False, control_message=f"polar {opname} {what}: {reason}")
        ]
    message = f"polar {opname} {what}: ok"
    if params and op in (OP_START, OP_GET_SETTINGS):
        try:
            settings = parse_settings(params)
        except DecodeError:
            if op == OP_START:
                raise
            # a settings list we cannot fully parse (newer setting types, or split
            # over several notifications): informational only, keep the raw bytes
            settings = {}
            message += f" (settings {params.hex()})"
        if settings:
            shown = ", ".join(
                f"{_SETTING_NAMES[k]}={'/'.join(f'{v:g}' for v in vs)}"
                for k, vs in settings.items()
            )
            message += f" ({shown})"
        if op == OP_START and settings.get(SETTING_FACTOR):
            factor = settings[SETTING_FACTOR][0]
            if not math.isfinite(factor) or factor == 0.0:
                raise DecodeError(f"polar start response: unusable factor {factor!r}")
            if mtype & 0x3F == MeasurementType.ACC:
                state = evolve(state, acc_factor=factor)
            elif mtype & 0x3F == MeasurementType.GYRO:
                state = evolve(state, gyr_factor=factor)
    if more:
        message += " (more to follow)"
    return state, [DecodedSamples(control_ok=True, control_message=message)]


def _decode_data(payload: bytes, state: PolarState) -> tuple[PolarState, list[DecodedSamples]]:
    r = Reader(payload, "polar data frame")
    mtype = r.u8()
    ts_ns = r.u64()
    ftype = r.u8()
    content = r.rest()
    if mtype not in _KNOWN_TYPES:
        raise DecodeError(f"polar data frame: unknown measurement type 0x{mtype:02x}")
    if mtype not in (MeasurementType.ACC, MeasurementType.GYRO):
        return state, []  # a stream we did not ask for (ECG, PPG...): not ours to decode
    values = _frame_samples(mtype, ftype, content, state)
    n = values.shape[0]
    if mtype == MeasurementType.ACC:
        t = _sample_times(ts_ns, n, state.last_acc_ns, state.rate_hz)
        state = evolve(state, last_acc_ns=ts_ns)
        if not state.gyro:
            return state, [DecodedSamples(t, values, None)]
        state = evolve(
            state,
            acc_t_s=np.concatenate([state.acc_t_s, t]),
            acc_mps2=np.concatenate([state.acc_mps2, values]),
        )
        return _pair(state)
    t = _sample_times(ts_ns, n, state.last_gyr_ns, state.rate_hz)
    state = evolve(state, last_gyr_ns=ts_ns)
    if not state.gyro:
        return state, [DecodedSamples(t, None, values)]
    if len(state.gyr_t_s) and t[0] <= state.gyr_t_s[-1]:
        # out-of-order or repeated frame: keep the gyro time axis increasing
        keep_new = t > state.gyr_t_s[-1]
        t, values = t[keep_new], values[keep_new]
    state = evolve(
        state,
        gyr_t_s=np.concatenate([state.gyr_t_s, t]),
        gyr_dps=np.concatenate([state.gyr_dps, values]),
    )
    return _pair(state)


# -- profile ----------------------------------------------------------------------------


def _start_command(mtype: int, rate_hz: float, resolution: int, range_: int) -> bytes:
    return bytes([OP_START, mtype]) + serialize_settings(
        {
            SETTING_SAMPLE_RATE: [rate_hz],
            SETTING_RESOLUTION: [resolution],
            SETTING_RANGE: [range_],
        }
    )


@dataclass(frozen=True)
class PolarProfile(Profile[PolarState]):
    """PMD profile of one Polar device model.

    Attributes
    ----------
    acc_range_g
        The ACC range requested at start (g).
    gyr_range_dps
        The GYRO range requested at start (deg/s).
    acc_frame_type
        Frame type the (virtual) device sends ACC in: ``0x01`` raw int16 mG (H10),
        ``0x81`` delta-compressed int16 x factor mG (Verity Sense).
    acc_factor, gyr_factor
        FACTOR the virtual device reports in its start response.
    """

    acc_range_g: int = 8
    gyr_range_dps: int = 2000
    acc_frame_type: int = 0x01
    acc_factor: float = 1.0
    gyr_factor: float = 1.0
    acc_ranges_g: tuple[int, ...] = (8,)

    def initial_state(self, rate_hz: float | None = None, gyro: bool = True) -> PolarState:
        return PolarState(rate_hz=self.choose_rate(rate_hz), gyro=gyro and self.has_gyro)

    def start_commands(self, rate_hz: float | None = None, gyro: bool = True) -> list[Command]:
        rate = self.choose_rate(rate_hz)
        cmds = [(PMD_CONTROL_UUID, _start_command(MeasurementType.ACC, rate, 16, self.acc_range_g))]
        if gyro and self.has_gyro:
            cmds.append(
                (
                    PMD_CONTROL_UUID,
                    _start_command(MeasurementType.GYRO, rate, 16, self.gyr_range_dps),
                )
            )
        return cmds

    def stop_commands(self) -> list[Command]:
        cmds = [(PMD_CONTROL_UUID, bytes([OP_STOP, MeasurementType.ACC]))]
        if self.has_gyro:
            cmds.append((PMD_CONTROL_UUID, bytes([OP_STOP, MeasurementType.GYRO])))
        return cmds

    def settings_commands(self) -> list[Command]:
        """Get-measurement-settings requests (optional, for diagnostics)."""
        cmds = [(PMD_CONTROL_UUID, bytes([OP_GET_SETTINGS, MeasurementType.ACC]))]
        if self.has_gyro:
            cmds.append((PMD_CONTROL_UUID, bytes([OP_GET_SETTINGS, MeasurementType.GYRO])))
        return cmds

    def decode(
        self, char_uuid: str, payload: bytes, state: PolarState
    ) -> tuple[PolarState, list[DecodedSamples]]:
        uuid = normalize_uuid(char_uuid)
        if uuid == PMD_DATA_UUID:
            return _decode_data(payload, state)
        if uuid == PMD_CONTROL_UUID:
            return _decode_control(payload, state)
        raise DecodeError(f"polar: notification from unexpected characteristic {char_uuid}")

    def encoder(self, rate_hz: float | None = None, gyro: bool = True) -> PolarEncoder:
        return PolarEncoder(self, self.choose_rate(rate_hz))


class PolarEncoder(Encoder):
    """A simulated Polar device: answers the PMD control point and sends data frames.

    ``encode`` turns each call's samples into as many frames as needed to stay under
    ``max_payload`` bytes (the devices require an ATT MTU of 232, i.e. 229-byte
    notifications). Sample times are sensor-clock seconds since the Polar epoch and
    must be non-negative.
    """

    def __init__(self, profile: PolarProfile, rate_hz: float, max_payload: int = 229) -> None:
        self.profile = profile
        self._rate_hz = rate_hz
        self.max_payload = max_payload
        self.acc_on = False
        self.gyr_on = False

    @property
    def streaming(self) -> bool:
        return self.acc_on or self.gyr_on

    @property
    def rate_hz(self) -> float:
        return self._rate_hz

    def _settings(self, mtype: int) -> dict[int, list[float]]:
        p = self.profile
        if mtype == MeasurementType.ACC:
            return {
                SETTING_SAMPLE_RATE: list(p.rates_hz),
                SETTING_RESOLUTION: [16],
                SETTING_RANGE: [float(g) for g in p.acc_ranges_g],
                SETTING_CHANNELS: [3],
            }
        return {
            SETTING_SAMPLE_RATE: list(p.rates_hz),
            SETTING_RESOLUTION: [16],
            SETTING_RANGE: [float(p.gyr_range_dps)],
            SETTING_CHANNELS: [3],
        }

    def handle_write(self, char_uuid: str, payload: bytes) -> list[Command]:
        if normalize_uuid(char_uuid) != PMD_CONTROL_UUID or not payload:
            return []
        op = payload[0]
        mtype = payload[1] & 0x3F if len(payload) > 1 else 0

        def respond(status: int, params: bytes = b"") -> list[Command]:
            return [(PMD_CONTROL_UUID, bytes([CP_RESPONSE, op, mtype, status, 0]) + params)]

        if op not in (OP_GET_SETTINGS, OP_START, OP_STOP):
            return respond(1)
        if len(payload) < 2:
            return respond(4)
        supported = {int(MeasurementType.ACC)}
        if self.profile.has_gyro:
            supported.add(int(MeasurementType.GYRO))
        if mtype not in supported:
            return respond(2)
        if op == OP_GET_SETTINGS:
            return respond(0, serialize_settings(self._settings(mtype)))
        if op == OP_STOP:
            if mtype == MeasurementType.ACC:
                self.acc_on = False
            else:
                self.gyr_on = False
            return respond(0)
        try:
            settings = parse_settings(payload[2:])
        except DecodeError:
            return respond(5)
        rate = settings.get(SETTING_SAMPLE_RATE, [self._rate_hz])[0]
        if rate not in self.profile.rates_hz:
            return respond(8)
        if settings.get(SETTING_RESOLUTION, [16])[0] != 16:
            return respond(7)
        if (self.acc_on and mtype == MeasurementType.ACC) or (
            self.gyr_on and mtype == MeasurementType.GYRO
        ):
            return respond(6)
        self._rate_hz = rate
        if mtype == MeasurementType.ACC:
            self.acc_on = True
            factor = self.profile.acc_factor
        else:
            self.gyr_on = True
            factor = self.profile.gyr_factor
        return respond(0, serialize_settings({SETTING_FACTOR: [factor]}))

    def _frames(
        self, mtype: int, ftype: int, t_s: FloatArray, ints: list[list[int]]
    ) -> list[bytes]:
        frames: list[bytes] = []
        compressed = bool(ftype & DELTA_FRAME_BIT)
        i = 0
        n = len(ints)
        while i < n:
            if compressed:
                # grow the frame while it fits
                k = min(n - i, 64)
                while True:
                    body = encode_delta_frame(ints[i : i + k], 16)
                    if 10 + len(body) <= self.max_payload or k == 1:
                        break
                    k = max(1, k * 3 // 4)
            else:
                k = min(n - i, max(1, (self.max_payload - 10) // 6))
                body = b"".join(struct.pack("<hhh", *row) for row in ints[i : i + k])
            ts_ns = round(float(t_s[i + k - 1]) * 1e9)
            frames.append(bytes([mtype]) + struct.pack("<Q", ts_ns) + bytes([ftype]) + body)
            i += k
        return frames

    def encode(self, samples: DecodedSamples) -> list[Command]:
        if not self.streaming or samples.t_s is None or len(samples) == 0:
            return []
        t = np.asarray(samples.t_s, dtype=np.float64)
        if t.min() < 0:
            raise ValueError("polar encoder: sample times must be >= 0 (Polar epoch seconds)")
        frames: list[bytes] = []
        if self.acc_on and samples.acc_mps2 is not None:
            ftype = self.profile.acc_frame_type
            mg = np.asarray(samples.acc_mps2, dtype=np.float64) / MG_TO_MPS2
            scale = self.profile.acc_factor if ftype & DELTA_FRAME_BIT else 1.0
            ints = np.clip(np.rint(np.nan_to_num(mg / scale)), -32768, 32767).astype(int)
            frames += self._frames(MeasurementType.ACC, ftype, t, ints.tolist())
        if self.gyr_on and samples.gyr_dps is not None:
            g = np.asarray(samples.gyr_dps, dtype=np.float64) / self.profile.gyr_factor
            ints = np.clip(np.rint(np.nan_to_num(g)), -32768, 32767).astype(int)
            frames += self._frames(MeasurementType.GYRO, 0x80, t, ints.tolist())
        # interleave the two streams in time order, like the device does
        frames.sort(key=lambda f: (int.from_bytes(f[1:9], "little"), f[0]))
        return [(PMD_DATA_UUID, f) for f in frames]


POLAR_H10 = PolarProfile(
    name="polar-h10",
    description="Polar H10 chest strap, PMD service, accelerometer only",
    service_uuid=PMD_SERVICE_UUID,
    notify_uuids=(PMD_CONTROL_UUID, PMD_DATA_UUID),
    control_uuid=PMD_CONTROL_UUID,
    name_patterns=("polar h10*",),
    rates_hz=(25.0, 50.0, 100.0, 200.0),
    default_rate_hz=100.0,
    has_gyro=False,
    has_timestamps=True,
    acc_range_g=8,
    acc_frame_type=0x01,
    acc_ranges_g=(2, 4, 8),
)

POLAR_VERITY_SENSE = PolarProfile(
    name="polar-verity",
    description="Polar Verity Sense (and OH1), PMD service, accelerometer + gyroscope",
    service_uuid=PMD_SERVICE_UUID,
    notify_uuids=(PMD_CONTROL_UUID, PMD_DATA_UUID),
    control_uuid=PMD_CONTROL_UUID,
    name_patterns=("polar sense*", "polar verity*", "polar oh1*"),
    rates_hz=(52.0,),
    default_rate_hz=52.0,
    has_gyro=True,
    has_timestamps=True,
    acc_range_g=8,
    gyr_range_dps=2000,
    acc_frame_type=0x81,
    # 8 g over int16 and 2000 deg/s over int16, as float32-exact values
    acc_factor=8000.0 / 32768.0,
    gyr_factor=2000.0 / 32768.0,
    acc_ranges_g=(8,),
)
