"""BLE profile registry, recognition, battery level, and fuzzing of every decoder."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sensord.errors import DecodeError
from sensord.sources.ble.profiles import (
    BATTERY_LEVEL_UUID,
    MOVESENSE,
    POLAR_H10,
    POLAR_VERITY_SENSE,
    PROFILES,
    RSC,
    SENSORD_IMU,
    WITMOTION,
    DecodedSamples,
    decode_battery_level,
    encode_battery_level,
    get_profile,
    match_profile,
    normalize_uuid,
    supported_profiles_text,
    uuid16,
)
from sensord.sources.ble.profiles.movesense import MovesenseState
from sensord.sources.ble.profiles.polar import PolarState
from sensord.sources.ble.profiles.sensord_imu import SensordImuState

# -- registry and recognition ------------------------------------------------------------


def test_registry_names_are_unique_and_found():
    names = [p.name for p in PROFILES]
    assert len(names) == len(set(names))
    for p in PROFILES:
        assert get_profile(p.name.upper()) is p
    assert get_profile("nope") is None


@pytest.mark.parametrize(
    ("name", "services", "expected"),
    [
        ("Polar H10 8C4A1B2D", [], POLAR_H10),
        ("Polar Sense B5A12F3C", [], POLAR_VERITY_SENSE),
        ("Polar Sense B5A12F3C", ["FB005C80-02E7-F387-1CAD-8ACD2D8DF0C8"], POLAR_VERITY_SENSE),
        (None, ["fb005c80-02e7-f387-1cad-8acd2d8df0c8"], POLAR_VERITY_SENSE),
        ("Movesense 174630000192", [], MOVESENSE),
        (None, ["34802252-7185-4d5d-b431-630e7050e8f0"], MOVESENSE),
        ("WT901BLE68", [], WITMOTION),
        ("anything", ["ffe5"], WITMOTION),
        ("Stryd", ["00001814-0000-1000-8000-00805f9b34fb"], RSC),
        (None, ["0x1814"], RSC),
        ("sensord-pelvis", [], SENSORD_IMU),
        (None, ["53454e53-0001-4d6f-8a1f-6b1e2c3d4e5f"], SENSORD_IMU),
        ("My Headphones", ["0000110b-0000-1000-8000-00805f9b34fb"], None),
        (None, ["not a uuid"], None),
        ("", [], None),
    ],
)
def test_match_profile(name, services, expected):
    assert match_profile(name, services) is expected


def test_supported_profiles_text_lists_every_profile():
    text = supported_profiles_text()
    for p in PROFILES:
        assert p.name in text
    assert "cadence only" in text


def test_choose_rate_picks_the_nearest_supported_rate():
    assert POLAR_H10.choose_rate(None) == POLAR_H10.default_rate_hz
    assert POLAR_H10.choose_rate(120.0) == 100.0
    assert POLAR_VERITY_SENSE.choose_rate(208.0) == 52.0
    assert MOVESENSE.choose_rate(float("nan")) == MOVESENSE.default_rate_hz
    assert RSC.choose_rate(100.0) == RSC.default_rate_hz


def test_profiles_are_frozen():
    with pytest.raises(AttributeError):
        POLAR_H10.name = "x"  # type: ignore[misc]


def test_uuid_helpers():
    assert uuid16(0x2A19) == "00002a19-0000-1000-8000-00805f9b34fb"
    assert normalize_uuid("2A19") == BATTERY_LEVEL_UUID
    assert normalize_uuid("0x2a19") == BATTERY_LEVEL_UUID
    assert normalize_uuid("00002A19-0000-1000-8000-00805F9B34FB") == BATTERY_LEVEL_UUID
    assert normalize_uuid("00002a1900001000800000805f9b34fb") == BATTERY_LEVEL_UUID
    with pytest.raises(ValueError, match="not a Bluetooth UUID"):
        normalize_uuid("zz")


# -- battery -------------------------------------------------------------------------------


def test_battery_level_decode():
    assert decode_battery_level(bytes.fromhex("57")) == 87
    assert decode_battery_level(bytes.fromhex("00")) == 0
    assert decode_battery_level(bytes.fromhex("64")) == 100
    assert encode_battery_level(87) == b"\x57"
    assert encode_battery_level(150) == b"\x64"


@pytest.mark.parametrize("payload", ["", "65", "ff", "5700"])
def test_battery_level_malformed(payload):
    with pytest.raises(DecodeError):
        decode_battery_level(bytes.fromhex(payload))


# -- DecodedSamples ------------------------------------------------------------------------


def test_decoded_samples_checks_shapes():
    s = DecodedSamples(np.zeros(2), np.zeros((2, 3)), None)
    assert len(s) == 2
    assert not s.is_control
    assert len(DecodedSamples(cadence_spm=170.0)) == 0
    with pytest.raises(ValueError, match="rows"):
        DecodedSamples(np.zeros(2), np.zeros((3, 3)))
    with pytest.raises(ValueError, match=r"\(n, 3\)"):
        DecodedSamples(None, np.zeros((2, 2)))


# -- every decoder: arbitrary bytes raise DecodeError or nothing ---------------------------


def _seed_packets(profile):
    """Valid notifications of the profile (to mutate) from its own encoder."""
    rate = profile.default_rate_hz
    enc = profile.encoder(rate, True)
    out = []
    for c, cmd in profile.start_commands(rate, True):
        out += enc.handle_write(c, cmd)
    n = 20
    t = 50.0 + np.arange(n) / rate
    rng = np.random.default_rng(1)
    samples = DecodedSamples(
        t,
        rng.normal(size=(n, 3)) * 20,
        rng.normal(size=(n, 3)) * 300,
        cadence_spm=172.0,
        speed_mps=3.3,
        stride_length_m=1.1,
        total_distance_m=1234.0,
    )
    out += enc.encode(samples)
    return [p for _, p in out]


SEEDS = {p.name: _seed_packets(p) for p in PROFILES}


def _chars(profile):
    chars = list(profile.notify_uuids)
    if profile.control_uuid is not None:
        chars.append(profile.control_uuid)
    return chars


@st.composite
def payloads(draw, profile):
    seeds = SEEDS[profile.name]
    kind = draw(st.integers(0, 3))
    if kind == 0 or not seeds:
        return draw(st.binary(max_size=300))
    base = bytearray(draw(st.sampled_from(seeds)))
    if kind == 1:  # truncate
        return bytes(base[: draw(st.integers(0, len(base)))])
    if kind == 2:  # flip bytes
        for _ in range(draw(st.integers(1, 4))):
            if base:
                i = draw(st.integers(0, len(base) - 1))
                base[i] = draw(st.integers(0, 255))
        return bytes(base)
    return bytes(base) + draw(st.binary(min_size=1, max_size=40))  # extend


@st.composite
def states(draw, profile):
    rate = draw(st.one_of(st.none(), st.sampled_from(profile.rates_hz or (1.0,))))
    state = profile.initial_state(rate, draw(st.booleans()))
    if isinstance(state, PolarState) and draw(st.booleans()):
        finite = st.floats(-1e6, 1e6, allow_nan=False).filter(lambda f: f != 0)
        state = replace(
            state,
            acc_factor=draw(finite),
            gyr_factor=draw(finite),
            last_acc_ns=draw(st.one_of(st.none(), st.integers(0, 2**64 - 1))),
            last_gyr_ns=draw(st.one_of(st.none(), st.integers(0, 2**64 - 1))),
        )
    if isinstance(state, MovesenseState) and draw(st.booleans()):
        state = replace(
            state,
            pending=draw(st.one_of(st.none(), st.binary(max_size=200))),
            last_ts_ms=draw(st.one_of(st.none(), st.integers(0, 2**32 - 1))),
            wraps=draw(st.integers(0, 1000)),
        )
    if isinstance(state, SensordImuState) and draw(st.booleans()):
        state = replace(
            state,
            last_ts_us=draw(st.one_of(st.none(), st.integers(0, 2**32 - 1))),
            wraps=draw(st.integers(0, 1000)),
        )
    return state


def _only_decode_errors(profile, state, steps):
    for char, payload in steps:
        try:
            state, out = profile.decode(char, payload, state)
        except DecodeError:
            continue
        assert isinstance(out, list)
        for s in out:
            assert isinstance(s, DecodedSamples)
            if s.t_s is not None:
                assert s.t_s.dtype == np.float64


@pytest.mark.parametrize("profile", PROFILES, ids=lambda p: p.name)
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_decoders_raise_only_decode_error(profile, data):
    state = data.draw(states(profile))
    steps = data.draw(
        st.lists(st.tuples(st.sampled_from(_chars(profile)), payloads(profile)), max_size=6)
    )
    _only_decode_errors(profile, state, steps)


@pytest.mark.parametrize("profile", PROFILES, ids=lambda p: p.name)
def test_seed_packets_decode_cleanly(profile):
    """The fuzzer's seeds are valid: the encoder's own output decodes without error."""
    enc_out = SEEDS[profile.name]
    assert enc_out
    state = profile.initial_state(profile.default_rate_hz, True)
    n = 0
    for payload in enc_out:
        for char in profile.notify_uuids:
            try:
                state, out = profile.decode(char, payload, state)
            except DecodeError:
                continue
            n += sum(len(o) for o in out) + sum(1 for o in out if o.cadence_spm is not None)
            break
    assert n >= 1


@pytest.mark.parametrize("profile", PROFILES, ids=lambda p: p.name)
def test_battery_characteristic_is_standard_where_present(profile):
    if profile.battery_uuid is not None:
        assert profile.battery_uuid == BATTERY_LEVEL_UUID
    assert profile.service_uuid == normalize_uuid(profile.service_uuid)
    for u in profile.notify_uuids:
        assert u == normalize_uuid(u)


@pytest.mark.parametrize(
    "profile", [POLAR_H10, POLAR_VERITY_SENSE, MOVESENSE, SENSORD_IMU], ids=lambda p: p.name
)
def test_encoders_stay_silent_until_started_and_after_stop(profile):
    enc = profile.encoder()
    samples = DecodedSamples(np.arange(4) / 52.0 + 1.0, np.zeros((4, 3)), np.zeros((4, 3)))
    assert not enc.streaming
    assert enc.encode(samples) == []
    for c, cmd in profile.start_commands(None, True):
        enc.handle_write(c, cmd)
    assert enc.streaming
    assert enc.encode(samples) != []
    for c, cmd in profile.stop_commands():
        enc.handle_write(c, cmd)
    assert not enc.streaming
    assert enc.encode(samples) == []
