"""Polar PMD profile: byte-exact frames, delta compression, control point, round trips."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sensord.errors import DecodeError
from sensord.model import GRAVITY_MPS2
from sensord.sources.ble.profiles import POLAR_H10, POLAR_VERITY_SENSE, DecodedSamples
from sensord.sources.ble.profiles.polar import (
    PMD_CONTROL_UUID,
    PMD_DATA_UUID,
    PolarState,
    decode_delta_frame,
    encode_delta_frame,
)

G = GRAVITY_MPS2


def data(profile, payloads, state):
    out = []
    for p in payloads:
        state, res = profile.decode(PMD_DATA_UUID, bytes.fromhex(p), state)
        out += res
    return state, out


def test_start_commands_are_byte_exact():
    # [op start][type][rate 00 01 <u16>][resolution 01 01 <16>][range 02 01 <u16>]
    assert POLAR_H10.start_commands(100, gyro=True) == [
        (PMD_CONTROL_UUID, bytes.fromhex("02 02 00 01 6400 01 01 1000 02 01 0800"))
    ]
    assert POLAR_VERITY_SENSE.start_commands(52, gyro=True) == [
        (PMD_CONTROL_UUID, bytes.fromhex("02 02 00 01 3400 01 01 1000 02 01 0800")),
        (PMD_CONTROL_UUID, bytes.fromhex("02 05 00 01 3400 01 01 1000 02 01 d007")),
    ]
    assert POLAR_VERITY_SENSE.stop_commands() == [
        (PMD_CONTROL_UUID, bytes.fromhex("03 02")),
        (PMD_CONTROL_UUID, bytes.fromhex("03 05")),
    ]


def test_h10_raw_type1_frame_back_fills_times_at_the_rate():
    state = POLAR_H10.initial_state(100, gyro=False)
    # ACC, t_last = 1 s (ns since 2000-01-01), frame type 0x01: int16 mG x,y,z
    _, out = data(POLAR_H10, ["02 00ca9a3b00000000 01 e803 18fc 0000 0000 0000 e803"], state)
    assert len(out) == 1
    s = out[0]
    assert s.gyr_dps is None
    np.testing.assert_allclose(s.t_s, [0.99, 1.0])
    np.testing.assert_allclose(s.acc_mps2, [[G, -G, 0.0], [0.0, 0.0, G]])


def test_second_frame_splits_the_interval_between_timestamps():
    state = POLAR_H10.initial_state(100, gyro=False)
    # 2 samples ending at 1.000 s, then 2 samples ending at 1.0202 s (10.1 ms spacing)
    state, out = data(
        POLAR_H10,
        [
            "02 00ca9a3b00000000 01 000000000000 000000000000",
            "02 " + (1_020_200_000).to_bytes(8, "little").hex() + " 01 " + "00" * 12,
        ],
        state,
    )
    np.testing.assert_allclose(out[1].t_s, [1.0101, 1.0202])
    # a lost frame (interval 10x too long) falls back to the nominal rate
    _, out2 = data(
        POLAR_H10, ["02 " + (1_220_200_000).to_bytes(8, "little").hex() + " 01 " + "00" * 12], state
    )
    np.testing.assert_allclose(out2[0].t_s, [1.2102, 1.2202])


def test_raw_type0_and_type2_sample_widths():
    state = POLAR_H10.initial_state(25, gyro=False)
    _, out = data(POLAR_H10, ["02 00ca9a3b00000000 00 01 ff 7f"], state)
    np.testing.assert_allclose(out[0].acc_mps2, [[1e-3 * G, -1e-3 * G, 127e-3 * G]])
    # type 2: 24-bit signed: 0x0186a0 = 100000 mG, 0xfe7960 = -100000 mG, 0
    _, out = data(POLAR_H10, ["02 00ca9a3b00000000 02 a08601 6079fe 000000"], state)
    np.testing.assert_allclose(out[0].acc_mps2, [[100.0 * G, -100.0 * G, 0.0]])


DELTA_CONTENT = (
    # reference sample (100, -50, 1000) int16
    "6400 ceff e803"
    # block: width 4, 2 samples: (1,-1,2), (-3,0,7) packed LSB-first
    " 04 02 f1d270"
    # block: width 3, 1 sample: (-4, 3, 0)
    " 03 01 1c00"
    # block: width 8, 1 sample: (100, -100, -128)
    " 08 01 649c80"
)
DELTA_SAMPLES = [
    [100, -50, 1000],
    [101, -51, 1002],
    [98, -51, 1009],
    [94, -48, 1009],
    [194, -148, 881],
]


def test_delta_frame_with_several_widths_is_byte_exact():
    assert decode_delta_frame(bytes.fromhex(DELTA_CONTENT), 3, 16) == DELTA_SAMPLES


def test_verity_compressed_acc_frame_uses_the_factor_from_the_start_response():
    state = POLAR_VERITY_SENSE.initial_state(52, gyro=False)
    # start response: F0, op 02, ACC, success, more=0, FACTOR (05 01) float32 0.244140625
    state, ctrl = POLAR_VERITY_SENSE.decode(
        PMD_CONTROL_UUID, bytes.fromhex("f0 02 02 00 00 05 01 00007a3e"), state
    )
    assert ctrl[0].control_ok is True
    assert state.acc_factor == pytest.approx(0.244140625)
    _, out = data(POLAR_VERITY_SENSE, ["02 0094357700000000 81 " + DELTA_CONTENT], state)
    s = out[0]
    expected = np.array(DELTA_SAMPLES, dtype=float) * 0.244140625 * 1e-3 * G
    np.testing.assert_allclose(s.acc_mps2, expected)
    np.testing.assert_allclose(s.t_s, 2.0 - np.arange(4, -1, -1) / 52.0)


def test_compressed_type0_acc_is_in_g_and_gyro_type0_in_dps():
    state = PolarState(rate_hz=52.0, acc_factor=0.5, gyr_factor=0.25)
    _, out = data(POLAR_VERITY_SENSE, ["02 00ca9a3b00000000 80 0200 feff 0000"], state)
    np.testing.assert_allclose(out[0].acc_mps2, [[1.0 * G, -1.0 * G, 0.0]])
    _, out = data(POLAR_VERITY_SENSE, ["05 00ca9a3b00000000 80 0400 fcff 0800"], state)
    assert out[0].acc_mps2 is None
    np.testing.assert_allclose(out[0].gyr_dps, [[1.0, -1.0, 2.0]])


def test_gyro_type1_float_bit_patterns():
    state = PolarState(rate_hz=52.0)
    # reference 1.0f, -2.0f, 0.5f; one delta of +0x00400000 on x (1.0f -> 1.5f), 24-bit width
    _, out = data(
        POLAR_VERITY_SENSE,
        ["05 00ca9a3b00000000 81 0000803f 000000c0 0000003f 18 01 000040 000000 000000"],
        state,
    )
    np.testing.assert_allclose(out[0].gyr_dps, [[1.0, -2.0, 0.5], [1.5, -2.0, 0.5]])


def test_acc_and_gyro_frames_are_paired_when_gyro_is_on():
    state = POLAR_VERITY_SENSE.initial_state(52, gyro=True)
    # compressed type 0: reference (1, 0, 0), then width 2, one sample, deltas (1, 0, 0)
    # -> bits 01 00 00 -> 0x01; samples (1, 0, 0), (2, 0, 0) x factor 1 -> g
    acc_frame = "02 00ca9a3b00000000 80 0100 0000 0000 02 01 01"
    state, out = data(POLAR_VERITY_SENSE, [acc_frame], state)
    assert out == []  # waiting for the gyroscope
    state, out = data(POLAR_VERITY_SENSE, ["05 00ca9a3b00000000 80 0a00 0000 0000 02 01 01"], state)
    assert len(out) == 1
    assert out[0].acc_mps2 is not None
    assert out[0].gyr_dps is not None
    np.testing.assert_allclose(out[0].t_s, [1.0 - 1 / 52, 1.0])
    np.testing.assert_allclose(out[0].gyr_dps[:, 0], [10.0, 11.0])


def test_control_point_error_is_reported_not_raised():
    state = POLAR_H10.initial_state(100, gyro=False)
    _, out = POLAR_H10.decode(PMD_CONTROL_UUID, bytes.fromhex("f0 02 02 08"), state)
    assert out[0].control_ok is False
    assert "invalid sample rate" in (out[0].control_message or "")


@pytest.mark.parametrize(
    "payload",
    [
        "",
        "02",
        "02 00ca9a3b000000",  # truncated timestamp
        "02 00ca9a3b00000000",  # no frame type
        "02 00ca9a3b00000000 01 e803 18fc",  # raw type 1, not whole samples
        "02 00ca9a3b00000000 01",  # raw, no samples
        "02 00ca9a3b00000000 03 000000",  # unknown raw ACC frame type
        "02 00ca9a3b00000000 85 0000 0000 0000",  # unknown compressed ACC frame type
        "02 00ca9a3b00000000 81 6400 ceff",  # truncated reference sample
        "02 00ca9a3b00000000 81 6400 ceff e803 04 02 f1",  # truncated delta block
        "02 00ca9a3b00000000 81 6400 ceff e803 00 02",  # delta width 0
        "02 00ca9a3b00000000 81 6400 ceff e803 21 01 0000000000000000000000000000",  # width 33
        "05 00ca9a3b00000000 00 0000 0000 0000",  # raw gyro not supported
        "7f 00ca9a3b00000000 00 00",  # unknown measurement type
    ],
)
def test_malformed_frames_raise_decode_error(payload):
    state = POLAR_VERITY_SENSE.initial_state(52, gyro=False)
    with pytest.raises(DecodeError):
        POLAR_VERITY_SENSE.decode(PMD_DATA_UUID, bytes.fromhex(payload), state)


def test_unknown_characteristic_raises_decode_error():
    with pytest.raises(DecodeError):
        POLAR_H10.decode("2a37", b"\x00", POLAR_H10.initial_state())


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.lists(st.integers(-32768, 32767), min_size=3, max_size=3), min_size=1, max_size=40),
    st.integers(1, 12),
)
def test_delta_encoding_round_trips(samples, block):
    assert decode_delta_frame(encode_delta_frame(samples, 16, block), 3, 16) == samples


def _drive(profile, rate, gyro, t, acc, gyr):
    enc = profile.encoder(rate, gyro)
    state = profile.initial_state(rate, gyro)
    out = []
    for char, cmd in profile.start_commands(rate, gyro):
        for c, resp in enc.handle_write(char, cmd):
            state, res = profile.decode(c, resp, state)
            out += res
    for c, payload in enc.encode(DecodedSamples(t, acc, gyr)):
        assert len(payload) <= 229
        state, res = profile.decode(c, payload, state)
        out += res
    return out


vec = st.floats(-70.0, 70.0, allow_nan=False)
rate_vec = st.floats(-1900.0, 1900.0, allow_nan=False)


@settings(max_examples=40, deadline=None)
@given(st.data())
def test_verity_encoder_decoder_round_trip(draw):
    n = draw.draw(st.integers(1, 120))
    acc = np.array(draw.draw(st.lists(st.tuples(vec, vec, vec), min_size=n, max_size=n)))
    gyr = np.array(
        draw.draw(st.lists(st.tuples(rate_vec, rate_vec, rate_vec), min_size=n, max_size=n))
    )
    t = 100.0 + np.arange(n) / 52.0
    out = _drive(POLAR_VERITY_SENSE, 52, True, t, acc, gyr)
    ctrl = [o for o in out if o.is_control]
    assert all(o.control_ok for o in ctrl)
    assert len(ctrl) == 2
    got = [o for o in out if not o.is_control]
    ta = np.concatenate([o.t_s for o in got])
    np.testing.assert_allclose(ta, t, atol=1e-6)
    np.testing.assert_allclose(np.concatenate([o.acc_mps2 for o in got]), acc, atol=0.0013)
    np.testing.assert_allclose(np.concatenate([o.gyr_dps for o in got]), gyr, atol=0.031)


@settings(max_examples=40, deadline=None)
@given(st.data())
def test_h10_encoder_decoder_round_trip(draw):
    n = draw.draw(st.integers(1, 100))
    rate = draw.draw(st.sampled_from(POLAR_H10.rates_hz))
    acc = np.array(draw.draw(st.lists(st.tuples(vec, vec, vec), min_size=n, max_size=n)))
    t = 5.0 + np.arange(n) / rate
    out = _drive(POLAR_H10, rate, False, t, acc, None)
    got = [o for o in out if not o.is_control]
    np.testing.assert_allclose(np.concatenate([o.t_s for o in got]), t, atol=1e-6)
    np.testing.assert_allclose(np.concatenate([o.acc_mps2 for o in got]), acc, atol=0.005)


def test_encoder_rejects_unsupported_rate_and_type():
    enc = POLAR_VERITY_SENSE.encoder()
    [(_, resp)] = enc.handle_write(
        PMD_CONTROL_UUID, bytes.fromhex("02 02 00 01 6400 01 01 1000 02 01 0800")
    )
    assert resp == bytes.fromhex("f0 02 02 08 00")
    [(_, resp)] = POLAR_H10.encoder().handle_write(PMD_CONTROL_UUID, bytes.fromhex("02 05"))
    assert resp == bytes.fromhex("f0 02 05 02 00")
    assert not enc.streaming


def test_encoder_answers_get_settings():
    enc = POLAR_H10.encoder()
    [(_, resp)] = enc.handle_write(PMD_CONTROL_UUID, bytes.fromhex("01 02"))
    # rates 25/50/100/200, resolution 16, ranges 2/4/8, channels 3
    assert resp == bytes.fromhex(
        "f0 01 02 00 00 00 04 1900 3200 6400 c800 01 01 1000 02 03 0200 0400 0800 04 01 03"
    )
    _, out = POLAR_H10.decode(PMD_CONTROL_UUID, resp, POLAR_H10.initial_state())
    assert out[0].control_ok is True
    assert "sample_rate=25/50/100/200" in (out[0].control_message or "")


def test_device_initiated_stop_is_reported_and_unknown_codes_raise():
    state = POLAR_VERITY_SENSE.initial_state()
    _, out = POLAR_VERITY_SENSE.decode(PMD_CONTROL_UUID, bytes.fromhex("01 02 05"), state)
    assert out[0].control_ok is False
    assert "ACC, GYRO" in (out[0].control_message or "")
    with pytest.raises(DecodeError):
        POLAR_VERITY_SENSE.decode(PMD_CONTROL_UUID, bytes.fromhex("02 00ca9a3b"), state)


def test_unparseable_settings_response_is_informational_but_bad_start_factor_raises():
    state = POLAR_H10.initial_state()
    _, out = POLAR_H10.decode(PMD_CONTROL_UUID, bytes.fromhex("f0 01 02 00 01 00 04 19"), state)
    assert out[0].control_ok is True
    assert "settings 00041" in (out[0].control_message or "")
    with pytest.raises(DecodeError):
        POLAR_H10.decode(PMD_CONTROL_UUID, bytes.fromhex("f0 02 02 00 00 05 01 0000c07f"), state)
