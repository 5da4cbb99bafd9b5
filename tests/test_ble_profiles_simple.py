"""WitMotion, RSC footpod and the open sensord IMU profile: byte-exact packets, round trips."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sensord.errors import DecodeError
from sensord.model import GRAVITY_MPS2
from sensord.sources.ble.profiles import RSC, SENSORD_IMU, WITMOTION, DecodedSamples
from sensord.sources.ble.profiles.rsc import (
    RSC_MEASUREMENT_UUID,
    decode_rsc_measurement,
    encode_rsc_measurement,
)
from sensord.sources.ble.profiles.sensord_imu import (
    SENSORD_IMU_CONTROL_UUID,
    SENSORD_IMU_DATA_UUID,
)
from sensord.sources.ble.profiles.witmotion import (
    WITMOTION_NOTIFY_UUID,
    WITMOTION_WRITE_UUID,
)

G = GRAVITY_MPS2

# -- WitMotion --------------------------------------------------------------------------

# acc (2048, 0, -2048) -> (1, 0, -1) g; gyro (16384, -16384, 0) -> (1000, -1000, 0) deg/s;
# angles (8192, -8192, 16384) -> (45, -45, 90) deg
WIT_PACKET = "55 61 0008 0000 00f8 0040 00c0 0000 0020 00e0 0040"


def test_witmotion_packet_is_byte_exact():
    state = WITMOTION.initial_state(50)
    _, out = WITMOTION.decode(WITMOTION_NOTIFY_UUID, bytes.fromhex(WIT_PACKET), state)
    s = out[0]
    assert s.t_s is None
    np.testing.assert_allclose(s.acc_mps2, [[G, 0.0, -G]])
    np.testing.assert_allclose(s.gyr_dps, [[1000.0, -1000.0, 0.0]])
    np.testing.assert_allclose(s.angle_deg, [[45.0, -45.0, 90.0]])


def test_witmotion_several_packets_and_register_replies():
    reply = "55 71 3a00" + "00" * 16
    payload = bytes.fromhex(WIT_PACKET + reply + WIT_PACKET)
    _, out = WITMOTION.decode(WITMOTION_NOTIFY_UUID, payload, WITMOTION.initial_state())
    assert len(out[0]) == 2
    _, only_reply = WITMOTION.decode(
        WITMOTION_NOTIFY_UUID, bytes.fromhex(reply), WITMOTION.initial_state()
    )
    assert only_reply == []


def test_witmotion_start_commands_unlock_then_set_rate():
    assert WITMOTION.start_commands(50) == [
        (WITMOTION_WRITE_UUID, bytes.fromhex("ff aa 69 88 b5")),
        (WITMOTION_WRITE_UUID, bytes.fromhex("ff aa 03 08 00")),
    ]
    assert WITMOTION.start_commands(200)[1][1] == bytes.fromhex("ff aa 03 0b 00")
    enc = WITMOTION.encoder(10)
    for c, b in WITMOTION.start_commands(100):
        enc.handle_write(c, b)
    assert enc.rate_hz == 100.0


@pytest.mark.parametrize(
    "payload",
    [
        "",
        "55 61 0008",
        WIT_PACKET + "55",
        "54" + WIT_PACKET[2:],  # bad header
        "55 62" + WIT_PACKET[5:],  # unknown flag
    ],
)
def test_witmotion_malformed_raise_decode_error(payload):
    with pytest.raises(DecodeError):
        WITMOTION.decode(WITMOTION_NOTIFY_UUID, bytes.fromhex(payload), WITMOTION.initial_state())


acc_g = st.floats(-15.9, 15.9, allow_nan=False)
gyr_v = st.floats(-1990.0, 1990.0, allow_nan=False)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(acc_g, acc_g, acc_g, gyr_v, gyr_v, gyr_v), min_size=1, max_size=30))
def test_witmotion_round_trip(rows):
    arr = np.array(rows)
    acc, gyr = arr[:, :3] * G, arr[:, 3:]
    enc = WITMOTION.encoder()
    state = WITMOTION.initial_state()
    out = []
    for c, p in enc.encode(DecodedSamples(None, acc, gyr)):
        assert len(p) == 20
        state, res = WITMOTION.decode(c, p, state)
        out += res
    np.testing.assert_allclose(np.concatenate([o.acc_mps2 for o in out]), acc, atol=16 * G / 65536)
    np.testing.assert_allclose(np.concatenate([o.gyr_dps for o in out]), gyr, atol=2000 / 65536)


# -- RSC ---------------------------------------------------------------------------------


def test_rsc_full_measurement_is_byte_exact():
    # flags 0x07 (stride, distance, running), 3.5 m/s, 172/min, 1.23 m, 1234.5 m
    s = decode_rsc_measurement(bytes.fromhex("07 8003 ac 7b00 39300000"))
    assert s.speed_mps == 3.5
    assert s.cadence_spm == 172.0
    assert s.stride_length_m == pytest.approx(1.23)
    assert s.total_distance_m == pytest.approx(1234.5)
    assert s.running is True
    assert s.acc_mps2 is None
    assert s.t_s is None


def test_rsc_cadence_interpretation():
    per_foot = bytes.fromhex("04 0003 58")  # running, 3.0 m/s, 88/min
    assert decode_rsc_measurement(per_foot, "auto").cadence_spm == 176.0
    assert decode_rsc_measurement(per_foot, "steps").cadence_spm == 88.0
    assert decode_rsc_measurement(per_foot, "strides").cadence_spm == 176.0
    walking = bytes.fromhex("00 8001 6e")  # walking, 1.5 m/s, 110/min
    assert decode_rsc_measurement(walking, "auto").cadence_spm == 110.0
    assert decode_rsc_measurement(walking, "auto").running is False
    assert decode_rsc_measurement(walking, "auto").stride_length_m is None


def test_rsc_profile_decodes_via_the_uniform_interface():
    state = RSC.initial_state()
    _, out = RSC.decode("2a53", bytes.fromhex("04 0003 ac"), state)
    assert out[0].cadence_spm == 172.0
    assert RSC.start_commands() == []


@pytest.mark.parametrize(
    "payload", ["", "04", "04 0003", "05 0003 ac 7b", "06 0003 ac 393000", "00 0003 ac 00"]
)
def test_rsc_malformed_raise_decode_error(payload):
    with pytest.raises(DecodeError):
        decode_rsc_measurement(bytes.fromhex(payload))


@settings(max_examples=60, deadline=None)
@given(
    st.floats(0.0, 255.0),
    st.floats(0.0, 20.0),
    st.one_of(st.none(), st.floats(0.0, 655.0)),
    st.one_of(st.none(), st.floats(0.0, 4e8)),
    st.booleans(),
)
def test_rsc_round_trip(cadence, speed, stride, distance, running):
    profile = replace(RSC, cadence_mode="steps")
    enc = profile.encoder()
    [(c, payload)] = enc.encode(
        DecodedSamples(
            cadence_spm=cadence,
            speed_mps=speed,
            stride_length_m=stride,
            total_distance_m=distance,
            running=running,
        )
    )
    _, [s] = profile.decode(c, payload, profile.initial_state())
    # each field is rounded to its unit: off by at most half a unit (a tie, 0.125 m in
    # cm, is exactly half, give or take the float error of 0.125 - 0.12)
    tie = 1e-9
    assert s.cadence_spm == pytest.approx(cadence, abs=0.5 + tie)
    assert s.speed_mps == pytest.approx(speed, abs=1 / 512 + tie)
    assert s.running is running
    if stride is None:
        assert s.stride_length_m is None
    else:
        assert s.stride_length_m == pytest.approx(stride, abs=0.005 + tie)
    if distance is None:
        assert s.total_distance_m is None
    else:
        assert s.total_distance_m == pytest.approx(distance, abs=0.05 + tie)


def test_rsc_encoder_per_foot_halves_the_cadence():
    payload = encode_rsc_measurement(3.0, 88.0)
    assert payload == bytes.fromhex("04 0003 58")
    strides = replace(RSC, cadence_mode="strides")
    [(_, p)] = strides.encoder().encode(DecodedSamples(cadence_spm=176.0, speed_mps=3.0))
    assert p == payload
    assert RSC_MEASUREMENT_UUID.startswith("00002a53")


# -- sensord IMU -------------------------------------------------------------------------

# version 1; flags 0x1f: gyro, ±16 g, ±2000 deg/s; rate code 7 (104 Hz); 2 samples;
# seq 0x0102; t = 1 000 000 us; s0: acc (0, 0, 2048) gyr (256, -256, 0);
# s1: acc (1024, -1024, 2048) gyr (0, 0, 128)
IMU_PACKET = "01 1f 07 02 0201 40420f00 0000 0000 0008 0001 00ff 0000 0004 00fc 0008 0000 0000 8000"


def test_sensord_imu_packet_is_byte_exact():
    state = SENSORD_IMU.initial_state()
    _, [s] = SENSORD_IMU.decode(SENSORD_IMU_DATA_UUID, bytes.fromhex(IMU_PACKET), state)
    assert s.seq == 0x0102
    np.testing.assert_allclose(s.t_s, [1.0, 1.0 + 1 / 104])
    np.testing.assert_allclose(s.acc_mps2, [[0, 0, G], [0.5 * G, -0.5 * G, G]])
    np.testing.assert_allclose(s.gyr_dps, [[15.625, -15.625, 0], [0, 0, 7.8125]])


def test_sensord_imu_acc_only_with_other_range():
    # flags 0x04: no gyro, ±8 g (code 2); rate code 2 (50 Hz); 1 sample; seq 7; t = 0
    payload = bytes.fromhex("01 04 02 01 0700 00000000 0010 00f0 0000")
    _, [s] = SENSORD_IMU.decode(SENSORD_IMU_DATA_UUID, payload, SENSORD_IMU.initial_state())
    assert s.gyr_dps is None
    np.testing.assert_allclose(s.acc_mps2, [[G, -G, 0.0]])


def test_sensord_imu_commands_and_timestamp_wrap():
    assert SENSORD_IMU.start_commands(104, gyro=True) == [
        (SENSORD_IMU_CONTROL_UUID, bytes.fromhex("01 07 1f"))
    ]
    assert SENSORD_IMU.start_commands(50, gyro=False) == [
        (SENSORD_IMU_CONTROL_UUID, bytes.fromhex("01 02 1e"))
    ]
    assert SENSORD_IMU.stop_commands() == [(SENSORD_IMU_CONTROL_UUID, b"\x02")]
    late = bytes.fromhex("01 06 02 01 0000") + (2**32 - 1000).to_bytes(4, "little") + b"\0" * 6
    early = bytes.fromhex("01 06 02 01 0100") + (1000).to_bytes(4, "little") + b"\0" * 6
    state = SENSORD_IMU.initial_state()
    state, [a] = SENSORD_IMU.decode(SENSORD_IMU_DATA_UUID, late, state)
    state, [b] = SENSORD_IMU.decode(SENSORD_IMU_DATA_UUID, early, state)
    assert b.t_s[0] - a.t_s[0] == pytest.approx(0.002)


@pytest.mark.parametrize(
    "payload",
    [
        "",
        "01 1f 07 02 0201 40420f",  # truncated header
        "02 1f 07 01 0000 00000000" + "00" * 12,  # version 2
        "01 3f 07 01 0000 00000000" + "00" * 12,  # reserved flag bit
        "01 1f 09 01 0000 00000000" + "00" * 12,  # unknown rate code
        "01 1f 07 00 0000 00000000",  # zero samples
        "01 1f 07 02 0000 00000000" + "00" * 12,  # fewer samples than announced
        "01 1e 07 01 0000 00000000" + "00" * 12,  # more bytes than announced (acc only)
    ],
)
def test_sensord_imu_malformed_raise_decode_error(payload):
    with pytest.raises(DecodeError):
        SENSORD_IMU.decode(
            SENSORD_IMU_DATA_UUID, bytes.fromhex(payload), SENSORD_IMU.initial_state()
        )


@settings(max_examples=40, deadline=None)
@given(st.data())
def test_sensord_imu_round_trip(draw):
    gyro = draw.draw(st.booleans())
    rate = draw.draw(st.sampled_from(SENSORD_IMU.rates_hz))
    rows = draw.draw(
        st.lists(st.tuples(acc_g, acc_g, acc_g, gyr_v, gyr_v, gyr_v), min_size=1, max_size=60)
    )
    arr = np.array(rows)
    acc, gyr = arr[:, :3] * G, arr[:, 3:]
    # starts just before the uint32 microsecond clock wraps (2^32 us = 4294.967296 s)
    t = 4294.9 + np.arange(len(arr)) / rate
    enc = SENSORD_IMU.encoder(rate, gyro)
    for c, b in SENSORD_IMU.start_commands(rate, gyro):
        assert enc.handle_write(c, b) == []
    assert enc.streaming
    state = SENSORD_IMU.initial_state(rate, gyro)
    out = []
    for c, p in enc.encode(DecodedSamples(t, acc, gyr)):
        assert len(p) <= 182
        state, res = SENSORD_IMU.decode(c, p, state)
        out += res
    assert [o.seq for o in out] == list(range(len(out)))
    np.testing.assert_allclose(np.concatenate([o.t_s for o in out]), t, atol=2e-6)
    np.testing.assert_allclose(np.concatenate([o.acc_mps2 for o in out]), acc, atol=16 * G / 65536)
    if gyro:
        np.testing.assert_allclose(np.concatenate([o.gyr_dps for o in out]), gyr, atol=2000 / 65536)
    else:
        assert all(o.gyr_dps is None for o in out)


def test_docs_worked_example_matches_the_decoder():
    from pathlib import Path

    doc = (Path(__file__).resolve().parents[1] / "docs" / "ble-profiles.md").read_text()
    section = doc.split("### Worked example", 1)[1]
    hex_block = section.split("```", 2)[1]
    assert bytes.fromhex(hex_block) == bytes.fromhex(IMU_PACKET)
