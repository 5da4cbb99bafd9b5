"""Movesense GSP profile: byte-exact commands and IMU6/Acc notifications, round trips."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sensord.errors import DecodeError
from sensord.sources.ble.profiles import MOVESENSE, DecodedSamples
from sensord.sources.ble.profiles.movesense import (
    MOVESENSE_COMMAND_UUID,
    MOVESENSE_DATA_UUID,
)

# IMU6, reference 0x53, t = 1000 ms, acc (1.0, -2.0, 9.75) m/s², gyro (0.5, 0, -90) deg/s
IMU6_ONE = "02 53 e8030000 0000803f 000000c0 00001c41 0000003f 00000000 0000b4c2"


def decode_all(payloads, state):
    out = []
    for p in payloads:
        state, res = MOVESENSE.decode(MOVESENSE_DATA_UUID, bytes.fromhex(p), state)
        out += res
    return state, out


def test_subscribe_and_unsubscribe_commands_are_byte_exact():
    # SUBSCRIBE (1), reference 0x53, "/Meas/IMU6/52"
    assert MOVESENSE.start_commands(52, gyro=True) == [
        (MOVESENSE_COMMAND_UUID, bytes.fromhex("01 53 2f4d6561732f494d55362f3532"))
    ]
    assert MOVESENSE.start_commands(104, gyro=False) == [
        (MOVESENSE_COMMAND_UUID, b"\x01\x53/Meas/Acc/104")
    ]
    assert MOVESENSE.stop_commands() == [(MOVESENSE_COMMAND_UUID, bytes.fromhex("02 53"))]


def test_imu6_notification_is_byte_exact():
    _, out = decode_all([IMU6_ONE], MOVESENSE.initial_state(52, gyro=True))
    assert len(out) == 1
    np.testing.assert_array_equal(out[0].t_s, [1.0])
    np.testing.assert_array_equal(out[0].acc_mps2, [[1.0, -2.0, 9.75]])
    np.testing.assert_array_equal(out[0].gyr_dps, [[0.5, 0.0, -90.0]])


def test_imu6_groups_all_acc_vectors_before_all_gyro_vectors():
    # two samples: acc (1,1,1), (2,2,2); gyro (3,3,3), (4,4,4); t0 = 2000 ms at 52 Hz
    one, two, three, four = "0000803f", "00000040", "00004040", "00008040"
    payload = "02 53 d0070000" + one * 3 + two * 3 + three * 3 + four * 3
    _, out = decode_all([payload], MOVESENSE.initial_state(52, gyro=True))
    np.testing.assert_allclose(out[0].t_s, [2.0, 2.0 + 1 / 52])
    np.testing.assert_array_equal(out[0].acc_mps2, [[1, 1, 1], [2, 2, 2]])
    np.testing.assert_array_equal(out[0].gyr_dps, [[3, 3, 3], [4, 4, 4]])


def test_non_finite_floats_pass_as_nan_without_warnings():
    # a signalling NaN (quiet bit clear) made numpy warn "invalid value encountered in cast"
    payload = "02 53 0a000000 010080ff 0000807f 00001c41"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _, out = decode_all([payload], MOVESENSE.initial_state(26, gyro=False))
    assert np.isnan(out[0].acc_mps2[0, 0])
    assert out[0].acc_mps2[0, 1] == np.inf
    assert out[0].acc_mps2[0, 2] == pytest.approx(9.75)


def test_acc_only_subscription():
    payload = "02 53 0a000000 0000803f 000000c0 00001c41"
    _, out = decode_all([payload], MOVESENSE.initial_state(26, gyro=False))
    assert out[0].gyr_dps is None
    np.testing.assert_array_equal(out[0].acc_mps2, [[1.0, -2.0, 9.75]])
    np.testing.assert_array_equal(out[0].t_s, [0.01])


def test_split_message_is_reassembled_from_data_part2():
    full = bytes.fromhex(IMU6_ONE)
    part1 = full[:20].hex()
    part2 = "03 53 " + full[20:].hex()
    state, out = decode_all([part1], MOVESENSE.initial_state(52, gyro=True))
    assert out == []
    assert state.pending is not None
    state, out = decode_all([part2], state)
    np.testing.assert_array_equal(out[0].gyr_dps, [[0.5, 0.0, -90.0]])
    assert state.pending is None


def test_timestamp_wrap_is_unwrapped():
    near_wrap = (2**32 - 10).to_bytes(4, "little").hex()
    after = (5).to_bytes(4, "little").hex()
    body = "0000803f 000000c0 00001c41 0000003f 00000000 0000b4c2"
    state, out = decode_all(
        [f"02 53 {near_wrap} {body}", f"02 53 {after} {body}"],
        MOVESENSE.initial_state(52, gyro=True),
    )
    assert out[1].t_s[0] - out[0].t_s[0] == pytest.approx(0.015)
    assert state.wraps == 1


def test_command_results_are_reported():
    state = MOVESENSE.initial_state(52)
    _, ok = decode_all(["01 53 00c8"], state)
    _, full = decode_all(["01 53 01fb"], state)
    _, hello = decode_all(["01 53 48656c6c6f"], state)
    assert ok[0].control_ok is True
    assert full[0].control_ok is False
    assert "507" in (full[0].control_message or "")
    assert hello[0].control_ok is True


def test_other_client_references_are_ignored():
    other = "02 54" + IMU6_ONE[5:]
    _, out = decode_all([other], MOVESENSE.initial_state(52))
    assert out == []


@pytest.mark.parametrize(
    "payload",
    [
        "",
        "02",
        "02 53 e803",  # truncated timestamp
        "01 53 00",  # 1-byte status
        "07 53 e8030000",  # unknown response type
        "03 53 0000803f",  # DATA_PART2 without DATA
    ],
)
def test_malformed_notifications_raise_decode_error(payload):
    with pytest.raises(DecodeError):
        MOVESENSE.decode(
            MOVESENSE_DATA_UUID, bytes.fromhex(payload), MOVESENSE.initial_state(52, gyro=True)
        )


def test_endless_split_message_raises_decode_error():
    state, _ = decode_all(["02 53 e8030000 00"], MOVESENSE.initial_state(52, gyro=True))
    for _ in range(68):  # 5 + 68 * 60 = 4085 bytes: still accepted
        state, out = decode_all(["03 53 " + "00" * 60], state)
        assert out == []
    with pytest.raises(DecodeError):
        decode_all(["03 53 " + "00" * 60], state)


def test_encoder_subscribe_hello_and_errors():
    enc = MOVESENSE.encoder()
    assert enc.handle_write(MOVESENSE_COMMAND_UUID, bytes.fromhex("00 07")) == [
        (MOVESENSE_DATA_UUID, bytes.fromhex("01 07 48656c6c6f"))
    ]
    assert enc.handle_write(MOVESENSE_COMMAND_UUID, b"\x01\x07/Meas/Temp") == [
        (MOVESENSE_DATA_UUID, bytes.fromhex("01 07 0194"))
    ]
    assert not enc.streaming
    assert enc.handle_write(MOVESENSE_COMMAND_UUID, b"\x01\x07/Meas/IMU6/208") == [
        (MOVESENSE_DATA_UUID, bytes.fromhex("01 07 00c8"))
    ]
    assert enc.streaming
    assert enc.rate_hz == 208.0
    enc.handle_write(MOVESENSE_COMMAND_UUID, bytes.fromhex("02 07"))
    assert not enc.streaming


vec = st.floats(-150.0, 150.0, allow_nan=False, width=32)


@settings(max_examples=40, deadline=None)
@given(st.data())
def test_encoder_decoder_round_trip(draw):
    gyro = draw.draw(st.booleans())
    rate = draw.draw(st.sampled_from(MOVESENSE.rates_hz))
    n = draw.draw(st.integers(1, 80))
    acc = np.array(draw.draw(st.lists(st.tuples(vec, vec, vec), min_size=n, max_size=n)))
    gyr = np.array(draw.draw(st.lists(st.tuples(vec, vec, vec), min_size=n, max_size=n)))
    t = 3.0 + np.arange(n) / rate
    enc = MOVESENSE.encoder(rate, gyro)
    state = MOVESENSE.initial_state(rate, gyro)
    for char, cmd in MOVESENSE.start_commands(rate, gyro):
        for c, resp in enc.handle_write(char, cmd):
            state, res = MOVESENSE.decode(c, resp, state)
            assert res[0].control_ok is True
    out = []
    for c, payload in enc.encode(DecodedSamples(t, acc, gyr if gyro else None)):
        assert len(payload) <= 155
        state, res = MOVESENSE.decode(c, payload, state)
        out += res
    assert sum(len(o) for o in out) == n
    np.testing.assert_allclose(np.concatenate([o.t_s for o in out]), t, atol=1.5e-3)
    np.testing.assert_array_equal(np.concatenate([o.acc_mps2 for o in out]), acc)
    if gyro:
        np.testing.assert_array_equal(np.concatenate([o.gyr_dps for o in out]), gyr)
    else:
        assert all(o.gyr_dps is None for o in out)
