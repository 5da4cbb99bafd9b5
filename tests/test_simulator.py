"""Tests of the physically grounded runner simulator and ``sensord simulate``."""

from __future__ import annotations

import itertools
import json
import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from sensord.cli import main
from sensord.errors import InputError
from sensord.model import GRAVITY_MPS2, SampleBlock
from sensord.sources import simulator as sim
from sensord.sources.recording import read_recording
from sensord.sources.simulator import (
    FatigueProfile,
    SimParams,
    iter_simulated_blocks,
    parse_segments,
    read_truth,
    simulate,
)

G = GRAVITY_MPS2
QUIET = SimParams(duration_s=60.0, acc_noise_mps2=0.0, gyro_noise_dps=0.0)
#: No pelvis rotation and no noise: the sensor frame is the world frame.
FLAT = replace(QUIET, pelvic_drop_deg=0.0, yaw_deg=0.0, tilt_deg=0.0)


def _window(block: SampleBlock, t0: float, t1: float) -> np.ndarray:
    m = (block.t_s >= t0) & (block.t_s < t1)
    return np.asarray(block.acc_mps2[m])


# ---- physics ---------------------------------------------------------------------------


@pytest.mark.parametrize("cv", [0.0, 5.0])
def test_momentum_balance_mean_vertical_force_is_g(cv: float) -> None:
    res = simulate(replace(FLAT, variability_cv_pct=cv, rate_hz=1000.0), seed=2)
    tr = res.truth
    # whole steps from the first to the last IC
    acc = _window(res.samples, tr[1].t_ic, tr[-2].t_ic)
    assert abs(acc[:, 2].mean() - G) < 0.01 * G
    assert abs(acc[:, 0].mean()) < 0.02 * G  # constant speed: no net AP impulse
    # flight is ballistic: specific force exactly zero
    st = tr[5]
    flight = _window(res.samples, st.t_fc + 0.005, tr[6].t_ic - 0.005)
    assert flight.size
    assert np.abs(flight).max() < 1e-9


def test_running_peak_matches_spring_mass_estimate() -> None:
    p = replace(FLAT, impact_g=0.0, variability_cv_pct=0.0, rate_hz=1000.0)
    res = simulate(p, seed=0)
    t_step = 60.0 / p.cadence_spm
    expected = G * math.pi / 2 * t_step / (p.gct_ms / 1000.0)
    assert abs(res.samples.acc_mps2[:, 2].max() - expected) < 0.01 * expected


def test_vertical_oscillation_is_plausible_and_no_drift() -> None:
    res = simulate(replace(QUIET, variability_cv_pct=4.0), seed=1)
    vo = np.array([t.vertical_oscillation_cm for t in res.truth])
    assert 5.0 < vo.mean() < 11.0
    # double-integrating the model's own height: every run step starts and ends at z=0
    steps = [s for s in _planned(res_params=QUIET, seed=1, n=50) if not s.walk]
    for st in steps:
        a = {k: float(getattr(st, k)) for k in ("Tc", "v_land", "Ia", "P", "Q", "R")}
        z_to = sim._z_run(np.array([st.Tc]), a)[0]
        assert abs(z_to) < 1e-9


def test_vertical_oscillation_truth_matches_double_integration() -> None:
    p = replace(FLAT, rate_hz=1000.0, duration_s=20.0)
    res = simulate(p, seed=2)
    t, az = res.samples.t_s, res.samples.acc_mps2[:, 2] - G
    steps = {round(s.t_ic, 9): s for s in _planned(p, seed=2, n=80)}
    for tr in res.truth[5:10]:
        st = steps[round(tr.t_ic, 9)]
        m = (t > tr.t_ic) & (t < tr.t_ic + st.T)
        tt = np.concatenate([[tr.t_ic], t[m]])  # the force is zero at IC: az = -g
        a = np.concatenate([[-G], az[m]])
        dt = np.diff(tt)
        v = st.v_land + np.concatenate([[0.0], np.cumsum((a[1:] + a[:-1]) / 2 * dt)])
        z = np.concatenate([[0.0], np.cumsum((v[1:] + v[:-1]) / 2 * dt)])
        assert (z.max() - z.min()) * 100 == pytest.approx(tr.vertical_oscillation_cm, abs=0.05)
        assert abs(z[-1]) < 0.002  # lands where it started


def _planned(res_params: SimParams, seed: int, n: int) -> list[sim._Step]:
    planner = sim._Planner(res_params, sim._sub_rng(seed, 1))
    return [planner.next() for _ in range(n)]


@pytest.mark.parametrize(("cadence", "gct", "impact", "vo"), [
    (130.0, 120.0, 0.0, 2.0), (230.0, 120.0, 3.0, -2.0), (150.0, 330.0, 3.0, 2.0),
])
def test_ground_only_pushes_even_at_extremes(cadence: float, gct: float, impact: float,
                                             vo: float) -> None:
    fat = FatigueProfile(onset_s=0.0, ramp_s=1.0, vertical_oscillation_cm=vo)
    p = replace(FLAT, duration_s=30.0, rate_hz=500.0, cadence_spm=cadence, gct_ms=gct,
                impact_g=impact, variability_cv_pct=10.0, fatigue=fat)
    assert simulate(p, seed=0).samples.acc_mps2[:, 2].min() >= -1e-9
    planner = sim._Planner(p, sim._sub_rng(0, 1))
    heights = []
    for _ in range(2000):
        planner.next()
        heights.append(planner.z)
    assert np.abs(heights).max() < 0.05  # landing height never drifts away


@pytest.mark.parametrize("strike", ["rear", "mid", "fore"])
def test_gravity_at_foot_flat(strike: sim.FootStrike) -> None:
    res = simulate(replace(QUIET, placement="foot", duration_s=20.0, rate_hz=500.0,
                           foot_strike=strike), seed=4)
    for st in res.truth[2:6]:
        # foot-flat is between 30 % and 50 % of stance
        a = _window(res.samples, st.t_ic + 0.32 * st.gct_ms / 1000, st.t_ic + 0.48 * st.gct_ms
                    / 1000)
        assert a.size
        assert np.allclose(np.linalg.norm(a, axis=1), G, atol=0.05)
        assert np.allclose(a[:, 2], G, atol=0.05)
    gyr = res.samples.gyr_dps
    assert gyr is not None
    assert 300.0 < np.abs(gyr[:, 1]).max() < 1500.0  # swing pitch rate, deg/s


@pytest.mark.parametrize("strike", ["rear", "fore"])
def test_foot_world_mean_force_is_g(strike: sim.FootStrike) -> None:
    p = replace(QUIET, placement="foot", duration_s=20.0, rate_hz=1000.0, foot_strike=strike)
    s = sim._Simulator(p, 0)
    s._steps_until(30.0)
    strides = sim._foot_strides(s.steps, 1.0, 1.0, strike)
    arr = sim._arrays_foot(strides)
    t = np.arange(strides[3].t_ic, strides[13].t_ic, 0.0002)
    _, _, world = sim._foot_signals(t, arr)
    assert abs(world[:, 2].mean() - G) < 0.02 * G
    assert abs(world[:, 0].mean()) < 0.02 * G


def cases_strikes() -> tuple[sim.FootStrike, ...]:
    return ("rear", "fore")


def test_foot_strike_pattern_shows_in_pitch_at_contact() -> None:
    cases: tuple[tuple[sim.FootStrike, float], ...] = (("rear", -1.0), ("fore", 1.0))
    for strike, sign in cases:
        p = replace(QUIET, placement="foot", duration_s=10.0, foot_strike=strike)
        s = sim._Simulator(p, 0)
        s._steps_until(12.0)
        arr = sim._arrays_foot(sim._foot_strides(s.steps, 1.0, 1.0, strike))
        t_ic = arr["t_ic"][3:6]
        _, _, th = sim._foot_pose(t_ic, arr)
        assert np.all(np.sign(th) == sign)
    pelvis = {k: simulate(replace(QUIET, duration_s=10.0, foot_strike=k), seed=0).truth
              for k in cases_strikes()}
    assert np.mean([t.impact_g for t in pelvis["fore"]]) < np.mean(
        [t.impact_g for t in pelvis["rear"]])


def test_pelvis_gyro_consistent_with_orientation() -> None:
    """R(t)ᵀ dR/dt equals the skew matrix of the reported angular rate."""
    p = QUIET
    s = sim._Simulator(p, 0)
    s._steps_until(10.0)
    a = sim._arrays(s.steps)
    t = np.linspace(2.0, 4.0, 400)
    h = 1e-6
    j = np.searchsorted(a["t_ic"], t, side="right") - 1
    g = {k: v[j] for k, v in a.items()}

    def rot(tt: np.ndarray) -> np.ndarray:
        ang = sim._pelvis_angles(tt - g["t_ic"], g)
        return sim._rot_zyx(ang[0], ang[1], ang[2])

    r = rot(t)
    dr = (rot(t + h) - rot(t - h)) / (2 * h)
    w_skew = np.einsum("nji,njk->nik", r, dr)
    w = np.stack([w_skew[:, 2, 1], w_skew[:, 0, 2], w_skew[:, 1, 0]], axis=1)
    _, gyr = sim._pelvis_signals(t, a)
    assert np.allclose(np.degrees(w), gyr, atol=1e-3)


def test_lever_arm_adds_rotational_acceleration_only() -> None:
    p = replace(QUIET, rate_hz=1000.0)
    a = simulate(p, seed=1)
    b = simulate(replace(p, lever_arm_cm=10.0), seed=1)
    diff = b.samples.acc_mps2 - a.samples.acc_mps2
    assert 0.2 < np.abs(diff).max() < 30.0
    assert a.samples.gyr_dps is not None
    assert b.samples.gyr_dps is not None
    assert np.array_equal(a.samples.gyr_dps, b.samples.gyr_dps)
    # the rotation is periodic: over whole steps the tangential part averages out and the
    # centripetal part is small (ω² r)
    tr = a.truth
    m = (a.samples.t_s >= tr[2].t_ic) & (a.samples.t_s < tr[-2].t_ic)
    assert np.abs(diff[m].mean(axis=0)).max() < 0.15


def test_pelvic_drop_sign_and_yaw_sign_per_side() -> None:
    s = sim._Simulator(QUIET, 0)
    s._steps_until(10.0)
    a = sim._arrays(s.steps)
    for st in s.steps[3:7]:
        tt = st.t_ic + np.array([0.0, 0.4 * st.Tc, 0.1 * st.Tc])
        j = np.searchsorted(a["t_ic"], tt, side="right") - 1
        g = {k: v[j] for k, v in a.items()}
        roll, _, _, _, _, dyaw = sim._pelvis_angles(tt - g["t_ic"], g)
        drop = math.degrees(roll[1] - roll[0])
        if st.sigma > 0:  # left stance: right side drops = positive about +x
            assert drop > 3.0
            assert dyaw[2] < 0.0
        else:
            assert drop < -3.0
            assert dyaw[2] > 0.0
        assert abs(abs(drop) - math.degrees(st.drop_rad)) < 1e-9


def test_running_brakes_then_propels() -> None:
    res = simulate(replace(FLAT, rate_hz=1000.0, variability_cv_pct=0.0), seed=1)
    st = res.truth[10]
    gct_s = st.gct_ms / 1000.0
    early = _window(res.samples, st.t_ic + 0.1 * gct_s, st.t_ic + 0.4 * gct_s)[:, 0]
    late = _window(res.samples, st.t_ic + 0.6 * gct_s, st.t_ic + 0.9 * gct_s)[:, 0]
    assert early.max() < 0.0 < late.min()
    assert (-early).max() / G == pytest.approx(st.braking_g, rel=0.02)
    # mediolateral push towards the midline: -y in a left stance, +y in a right stance
    mid = _window(res.samples, st.t_ic + 0.45 * gct_s, st.t_ic + 0.55 * gct_s)[:, 1].mean()
    assert mid < 0.0 if st.side == "left" else mid > 0.0


def test_walking_ap_peaks_before_ic_and_brakes_after() -> None:
    p = replace(FLAT, segments=parse_segments("30:walk:1.4"), duration_s=30.0,
                variability_cv_pct=0.0, rate_hz=1000.0)
    res = simulate(p, seed=0)
    for st in res.truth[5:9]:
        before = _window(res.samples, st.t_ic - 0.06, st.t_ic - 0.005)[:, 0]
        after = _window(res.samples, st.t_ic + 0.005, st.t_ic + 0.06)[:, 0]
        assert before.mean() > 0.0 > after.mean()


def test_walking_has_no_flight_and_oscillates_around_g() -> None:
    p = replace(QUIET, segments=parse_segments("30:walk:1.4"), duration_s=30.0,
                pelvic_drop_deg=0.0, yaw_deg=0.0, tilt_deg=0.0)
    res = simulate(p, seed=0)
    az = res.samples.acc_mps2[:, 2]
    assert az.min() > 0.5 * G
    assert 0.15 * G < (az.max() - az.min()) / 2 < 0.45 * G
    tr = res.truth
    assert all(t.mode == "walk" for t in tr)
    cad = np.mean([t.cadence_spm for t in tr])
    assert 100.0 < cad < 120.0
    # stance ≈ 60 % of the stride = 1.2 step times
    assert all(abs(t.gct_ms / 1000 / t.step_time_s - 1.2) < 0.1 for t in tr)
    # vertical force rising through IC
    st = tr[5]
    before = _window(res.samples, st.t_ic - 0.03, st.t_ic)[:, 2].mean()
    after = _window(res.samples, st.t_ic, st.t_ic + 0.03)[:, 2].mean()
    assert after > before


# ---- truth -------------------------------------------------------------------------


def test_truth_consistency_and_cadence() -> None:
    p = replace(QUIET, duration_s=120.0, cadence_spm=176.0, asymmetry_pct=10.0)
    res = simulate(p, seed=5)
    tr = res.truth
    assert len(tr) > 300
    for t in tr:
        assert t.gct_ms == pytest.approx((t.t_fc - t.t_ic) * 1000.0)
        assert t.cadence_spm == pytest.approx(60.0 / t.step_time_s)
    for a, b in itertools.pairwise(tr):
        assert b.t_ic == pytest.approx(a.t_ic + b.step_time_s)
        assert a.side != b.side
    cad = np.mean([t.cadence_spm for t in tr])
    assert abs(cad - 176.0) < 2.0
    left = np.mean([t.gct_ms for t in tr if t.side == "left"])
    right = np.mean([t.gct_ms for t in tr if t.side == "right"])
    assert left > right * 1.05
    drop_l = np.mean([t.pelvic_drop_deg for t in tr if t.side == "left"])
    drop_r = np.mean([t.pelvic_drop_deg for t in tr if t.side == "right"])
    assert drop_l > drop_r


def test_pace_change_is_not_fatigue() -> None:
    p = replace(QUIET, segments=parse_segments("60:run:3.0,60:run:4.5"), duration_s=120.0)
    tr = simulate(p, seed=0).truth
    slow = [t for t in tr if t.t_ic < 55]
    fast = [t for t in tr if t.t_ic > 80]
    assert np.mean([t.cadence_spm for t in fast]) > np.mean([t.cadence_spm for t in slow])
    assert np.mean([t.gct_ms for t in fast]) < np.mean([t.gct_ms for t in slow])
    assert all(t.fatigue == 0.0 for t in tr)


def test_fatigue_changes_late_truth_as_configured() -> None:
    fat = FatigueProfile(onset_s=60.0, ramp_s=60.0, cadence_pct=-5.0, gct_pct=10.0,
                         pelvic_drop_deg=3.0, vertical_oscillation_cm=1.0, impact_g=0.5)
    p = replace(QUIET, duration_s=240.0, fatigue=fat, variability_cv_pct=1.0)
    tr = simulate(p, seed=0).truth
    early = [t for t in tr if t.t_ic < 55]
    late = [t for t in tr if t.t_ic > 125]
    assert all(t.fatigue == 1.0 for t in late)
    assert all(t.fatigue == 0.0 for t in early)

    def m(xs: list[sim.TruthStep], k: str) -> float:
        return float(np.mean([getattr(t, k) for t in xs]))

    assert m(late, "cadence_spm") / m(early, "cadence_spm") == pytest.approx(0.95, abs=0.01)
    assert m(late, "gct_ms") / m(early, "gct_ms") == pytest.approx(1.10, abs=0.015)
    assert m(late, "pelvic_drop_deg") - m(early, "pelvic_drop_deg") == pytest.approx(3.0, abs=0.3)
    assert m(late, "impact_g") > m(early, "impact_g") + 0.2
    assert m(late, "vertical_oscillation_cm") > m(early, "vertical_oscillation_cm") + 0.3
    assert m(late, "step_time_s") > m(early, "step_time_s")


def test_fatigue_impact_and_vo_deltas_alone() -> None:
    def delta(fat: FatigueProfile, key: str) -> float:
        p = replace(QUIET, duration_s=150.0, fatigue=fat, variability_cv_pct=0.0)
        tr = simulate(p, seed=0).truth
        early = np.mean([getattr(t, key) for t in tr if t.t_ic < 55])
        late = np.mean([getattr(t, key) for t in tr if t.t_ic > 125])
        return float(late - early)

    # the transient adds on top of a rising half-sine that momentum balance trims a little
    imp = delta(FatigueProfile(onset_s=60.0, ramp_s=60.0, impact_g=0.5), "impact_g")
    assert imp == pytest.approx(0.45, abs=0.06)
    vo = delta(FatigueProfile(onset_s=60.0, ramp_s=60.0, vertical_oscillation_cm=1.0),
               "vertical_oscillation_cm")
    assert vo == pytest.approx(1.0, abs=0.05)


def test_hills_change_physiology_a_little() -> None:
    p = replace(QUIET, segments=parse_segments("60:run:3.2,60:run:3.2:+8,60:run:3.2:-8"),
                duration_s=180.0)
    tr = simulate(p, seed=0).truth

    def m(lo: float, hi: float, k: str) -> float:
        return float(np.mean([getattr(t, k) for t in tr if lo < t.t_ic < hi]))

    flat, up, down = (5, 58), (65, 118), (125, 178)
    assert m(*up, "gct_ms") > m(*flat, "gct_ms") > m(*down, "gct_ms")
    assert m(*up, "cadence_spm") > m(*flat, "cadence_spm") > m(*down, "cadence_spm")
    assert m(*up, "impact_g") < m(*flat, "impact_g") < m(*down, "impact_g")
    assert m(*up, "cadence_spm") < 1.05 * m(*flat, "cadence_spm")  # "a little"


def test_fatigue_raises_step_time_variability() -> None:
    fat = FatigueProfile(onset_s=60.0, ramp_s=30.0, variability_cv_pct=4.0)
    tr = simulate(replace(QUIET, duration_s=180.0, fatigue=fat, variability_cv_pct=1.0),
                  seed=0).truth
    early = np.array([t.step_time_s for t in tr if t.t_ic < 58])
    late = np.array([t.step_time_s for t in tr if t.t_ic > 95])
    assert early.std() / early.mean() == pytest.approx(0.01, abs=0.004)
    assert late.std() / late.mean() == pytest.approx(0.05, abs=0.01)


@pytest.mark.parametrize("placement", ["pelvis", "foot"])
def test_run_walk_transitions_stay_physical(placement: str, tmp_path: Path) -> None:
    p = replace(SimParams(duration_s=60.0), placement=placement,  # type: ignore[arg-type]
                segments=parse_segments("20:run:3.4,20:walk:1.3,20:run:3.0"))
    res = simulate(p, seed=3)
    assert np.isfinite(res.samples.acc_mps2).all()
    assert res.samples.gyr_dps is not None
    assert np.isfinite(res.samples.gyr_dps).all()
    modes = [t.mode for t in res.truth]
    assert "walk" in modes
    assert modes[0] == "run"
    assert modes[-1] == "run"
    # the recording passes the format's own validation
    from sensord.sources.recording import write_recording

    write_recording(tmp_path / "r.csv", res.samples, res.metadata)
    assert len(read_recording(tmp_path / "r.csv").samples) == len(res.samples)


def test_truth_as_engine_step() -> None:
    t = simulate(replace(QUIET, duration_s=5.0), seed=0).truth[2]
    st = t.as_step("pelvis", 2)
    assert (st.t_ic, st.t_fc, st.gct_ms, st.side) == (t.t_ic, t.t_fc, t.gct_ms, t.side)
    assert st.step_index == 2


def test_truth_jsonl_round_trip(tmp_path: Path) -> None:
    tr = simulate(replace(QUIET, duration_s=10.0), seed=0).truth
    path = tmp_path / "t.jsonl"
    sim.write_truth(path, tr)
    back = read_truth(path)
    assert len(back) == len(tr)
    assert back[3].t_ic == pytest.approx(tr[3].t_ic, abs=1e-6)
    assert back[3].side == tr[3].side


# ---- sensor effects ------------------------------------------------------------------


def test_mounting_rotation_preserves_norms() -> None:
    base = simulate(QUIET, seed=3).samples
    for mount in ("random", "30,-60,120"):
        rot = simulate(replace(QUIET, mount=mount), seed=3).samples
        assert np.allclose(np.linalg.norm(rot.acc_mps2, axis=1),
                           np.linalg.norm(base.acc_mps2, axis=1), atol=1e-9)
        assert rot.gyr_dps is not None
        assert base.gyr_dps is not None
        assert np.allclose(np.linalg.norm(rot.gyr_dps, axis=1),
                           np.linalg.norm(base.gyr_dps, axis=1), atol=1e-9)
        assert not np.allclose(rot.acc_mps2, base.acc_mps2)


def test_mount_text_convention() -> None:
    # f_sensor = R_mountᵀ f_body with R_mount = Rx(90°): gravity (0, 0, g) reads (0, g, 0)
    r = sim._mount_matrix("90,0,0", None)
    assert np.allclose(np.array([0.0, 0.0, G]) @ r, [0.0, G, 0.0], atol=1e-12)


def test_jitter_keeps_time_strictly_increasing() -> None:
    p = replace(QUIET, rate_hz=100.0, jitter_ms=2.5)
    t = simulate(p, seed=1).samples.t_s
    d = np.diff(t)
    assert d.min() > 0.0
    assert d.std() > 1e-4  # jitter is really there


def test_dropouts_produce_gaps_and_flag_truth() -> None:
    p = replace(QUIET, duration_s=120.0, dropout_rate=0.05, dropout_s=1.0)
    res = simulate(p, seed=2)
    d = np.diff(res.samples.t_s)
    gaps = d[d > 0.5]
    assert gaps.size >= 1
    assert np.allclose(gaps, 1.0, atol=0.02)
    assert any(not t.observed for t in res.truth)
    assert len(res.samples) < 120 * 200 + 1


def test_accelerometer_only_has_no_gyro() -> None:
    res = simulate(replace(QUIET, gyro=False, duration_s=5.0), seed=0)
    assert res.samples.gyr_dps is None
    assert res.metadata["gyro"] == "no"


def test_noise_and_bias() -> None:
    p = replace(QUIET, duration_s=5.0)
    a = simulate(p, seed=0).samples.acc_mps2
    b = simulate(replace(p, acc_noise_mps2=0.2, acc_bias_mps2=0.5), seed=0).samples.acc_mps2
    diff = b - a
    assert np.linalg.norm(diff.mean(axis=0)) == pytest.approx(0.5, abs=0.02)
    assert diff.std(axis=0) == pytest.approx([0.2] * 3, abs=0.02)


# ---- determinism and streaming -------------------------------------------------------


def test_deterministic_per_seed() -> None:
    p = replace(SimParams(duration_s=30.0), jitter_ms=1.0, dropout_rate=0.1)
    a, b = simulate(p, seed=9), simulate(p, seed=9)
    c = simulate(p, seed=10)
    assert np.array_equal(a.samples.t_s, b.samples.t_s)
    assert np.array_equal(a.samples.acc_mps2, b.samples.acc_mps2)
    assert a.truth == b.truth
    assert not np.array_equal(a.samples.acc_mps2[:100], c.samples.acc_mps2[:100])


@pytest.mark.parametrize("placement", ["pelvis", "foot"])
def test_blocks_equal_whole_run(placement: str) -> None:
    p = replace(SimParams(duration_s=40.0), placement=placement, jitter_ms=1.0,  # type: ignore[arg-type]
                dropout_rate=0.05)
    whole = simulate(p, seed=4)
    parts = list(iter_simulated_blocks(p, seed=4, block_s=0.73))
    joined = SampleBlock.concat([b for b, _ in parts])
    assert np.array_equal(joined.t_s, whole.samples.t_s)
    assert np.allclose(joined.acc_mps2, whole.samples.acc_mps2, atol=1e-9)
    assert [t for _, tr in parts for t in tr] == whole.truth


def test_generator_memory_is_bounded() -> None:
    import tracemalloc

    gen = iter_simulated_blocks(SimParams(duration_s=6 * 3600.0, placement="foot"), seed=0,
                                block_s=5.0)
    first = next(gen)
    assert len(first[0]) == 1000
    tracemalloc.start()
    try:
        n = 0
        for block, _ in gen:
            n += len(block)
            if n > 40_000:  # 200 s of a 6 h run
                break
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # all 6 h of samples would be ~240 MB; streaming stays within a few MB
    assert peak < 8_000_000


# ---- parameters and CLI --------------------------------------------------------------


def test_bad_params_raise_input_error_naming_the_flag() -> None:
    with pytest.raises(InputError, match="--rate-hz"):
        SimParams(rate_hz=20.0)
    with pytest.raises(InputError, match="--gct-ms"):
        SimParams(gct_ms=380.0, cadence_spm=190.0)
    with pytest.raises(InputError, match="--mount"):
        SimParams(mount="sideways")
    with pytest.raises(InputError, match="--segments"):
        parse_segments("60:swim:3")


def test_cli_round_trip(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "run.csv"
    rc = main(["simulate", "--out", str(out), "--duration-s", "20", "--placement", "foot",
               "--sensor-side", "right", "--seed", "7", "--rate-hz", "100",
               "--mount", "random"])
    assert rc == 0
    assert "simulated" in capsys.readouterr().out
    rec = read_recording(out)
    assert rec.metadata["placement"] == "foot"
    assert rec.metadata["sensor_side"] == "right"
    assert rec.metadata["seed"] == "7"
    assert rec.metadata["rate_hz"] == "100"
    assert rec.rate_hz == pytest.approx(100.0, rel=1e-3)
    res = simulate(SimParams(duration_s=20.0, placement="foot", sensor_side="right",
                             rate_hz=100.0, mount="random"), seed=7)
    assert np.allclose(rec.samples.acc_mps2, res.samples.acc_mps2, atol=1e-5)
    lines = (tmp_path / "run.truth.jsonl").read_text().splitlines()
    assert len(lines) == len(res.truth)
    assert all(json.loads(x)["side"] == "right" for x in lines)


def test_cli_help_lists_the_flags(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as e:
        main(["simulate", "--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    for flag in ("--out", "--truth", "--asymmetry-pct", "--fatigue-cadence-pct", "--mount",
                 "--segments", "--no-gyro", "--foot-strike"):
        assert flag in out


def test_cli_accelerometer_only_and_truth_path(tmp_path: Path) -> None:
    out, truth = tmp_path / "a.csv", tmp_path / "x" / "t.jsonl"
    truth.parent.mkdir()
    assert main(["simulate", "--out", str(out), "--truth", str(truth), "--duration-s", "5",
                 "--no-gyro", "--segments", "3:run:3.0,2:walk:1.3", "--fatigue", "typical",
                 "--fatigue-drop-deg", "4"]) == 0
    rec = read_recording(out)
    assert rec.samples.gyr_dps is None
    assert rec.duration_s == pytest.approx(5.0, abs=0.01)
    assert truth.exists()


@pytest.mark.parametrize(("args", "flag"), [
    (["--rate-hz", "5000"], "--rate-hz"),
    (["--speed-mps", "0.2"], "--speed-mps"),
    (["--jitter-ms", "4"], "--jitter-ms"),
    (["--placement", "wrist"], "--placement"),
    (["--segments", "10:run"], "--segments"),
    (["--fatigue-gct-pct", "5"], "--fatigue"),
    (["--mount", "1,2"], "--mount"),
])
def test_cli_bad_flag_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                              args: list[str], flag: str) -> None:
    rc = main(["simulate", "--out", str(tmp_path / "r.csv"), *args])
    assert rc == 2
    err = capsys.readouterr().err
    assert flag in err
    assert len(err.strip().splitlines()) == 1
    assert not (tmp_path / "r.csv").exists()
