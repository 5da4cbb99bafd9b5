"""Physically grounded runner simulator: IMU samples plus exact per-step ground truth.

The simulator is a *test tool* for the gait engine and the coaching detectors. Real
recordings are the judge; the simulator's job is to be physically consistent (momentum
balance, gravity, rigid-body kinematics) and to know the exact truth of every step.

Model (world frame ``x`` forward, ``y`` left, ``z`` up; a sensor reports specific force
``f = a - g_vec`` in m/s², i.e. ``+9.81`` on ``z`` at rest, and angular rate in deg/s, both
in the *sensor* frame):

Centre of mass (running)
    Spring-mass (SLIP-like) bouncing: each step is a stance of duration ``GCT`` followed
    by a ballistic flight. The vertical ground reaction force per unit mass during stance
    is ``f_z(s) = I sin²(πs/τ)[s<τ] + P sin(πs/T_c) + Q sin(2πs/T_c) + R h₃(s)``
    (an optional heel-strike transient of amplitude ``I`` and duration ``τ`` = 30 ms, a
    half-sine, a small skew term and a symmetric zero-impulse shape term
    ``h₃ = sin⁴ - (3/4) sin² = (cos 4x - cos 2x) / 8`` that is flat at the contacts);
    it is exactly zero in flight. Per step, ``P`` and ``Q``
    solve the two linear conditions that make the motion periodic without drift:
    the impulse turns the landing velocity into the take-off velocity ``g T_f / 2``
    (momentum balance, so the mean vertical specific force over a step is ``g``), and
    the centre of mass leaves the ground at the height it landed (``|Q| <= P/2`` keeps
    the force non-negative; where that binds, e.g. at 10 % step-time CV with extreme
    contact times, the leftover height is undone over the next steps). ``R`` sets any
    extra vertical oscillation (fatigue), capped where the force would turn negative.
    For the symmetric case this reduces to the classic ``P = g (π/2) T_step / GCT``
    [1]_ [2]_. Anterior-posterior: braking then propulsion,
    ``-B sin(2πs/T_c)`` (zero net impulse at constant speed, plus a half-sine net
    impulse where the speed changes); mediolateral: a half-sine impulse towards the
    midline, alternating sign per side.

Centre of mass (walking)
    Inverted-pendulum gait without flight: vertical specific force ``g + A_z cos(2π(u -
    0.1))`` (``u`` = phase of the step from initial contact, rising through IC, lowest
    centre of mass just after IC in double support), anterior-posterior a von Mises
    derivative pulse that peaks just before IC and brakes after it [3]_. Stance is 60 %
    of the stride (double support). Switching from running to walking leaves a small
    vertical-velocity mismatch at that one contact (the walking model is periodic on its
    own); walking to running is continuous.

Physiology
    Cadence scales as ``v^0.2`` and contact time as ``v^-0.6`` around the reference
    speed [5]_; uphill raises cadence (+0.3 %/%) and contact time (+0.8 %/%) and lowers
    the impact transient and braking (-2 %/%), downhill the opposite; pace changes ramp
    at up to 0.5 m/s². Fatigue ramps linearly from ``onset_s`` over ``ramp_s``.

Pelvis (sacrum)
    ``R_pelvis = Rz(yaw) Ry(tilt) Rx(obliquity)``. Obliquity: from each initial contact
    the swing side drops, peaking at 40 % of stance at ``pelvic_drop_deg`` (positive
    rotation about +x for a left stance, negative for a right stance) and returning by
    the next contact [4]_. Yaw ``±yaw_deg``: the stance side comes forward early in
    stance (yaw rate about +z negative early in a left stance), then the swing side
    comes forward through late stance. Tilt: a small oscillation at step frequency.
    The heel-strike transient shrinks for mid- and forefoot strikers.
    Sacral specific force ``= R_pelvisᵀ f_world`` (plus, optionally, the lever-arm terms
    of a sensor behind the pelvis centre); gyro = pelvis angular velocity in the pelvis
    frame.

Foot (shoe)
    Rigid foot rocking about the heel (heel strike, dorsiflexed; or about the toe for a
    forefoot strike, plantarflexed), foot-flat (stationary),
    rocking about the toe (heel-off to toe-off), then a free swing whose sensor path is
    a C²-continuous quintic Hermite curve plus a mid-swing lift, landing with a
    downward velocity that a critically damped shoe compression absorbs (the sharp
    impact transient). Acceleration and angular rate come from central differences of
    that exact trajectory (h = 0.25 ms), so position, velocity and acceleration agree.

The sensor frame is ``R_mountᵀ`` times the body (pelvis or foot) frame.

References
----------
.. [1] Blickhan R. The spring-mass model for running and hopping. J Biomech 1989;
   22:1217-1227.
.. [2] Cavagna GA, Heglund NC, Taylor CR. Mechanical work in terrestrial locomotion.
   Am J Physiol 1977;233:R243-R261.
.. [3] Zijlstra W, Hof AL. Assessment of spatio-temporal gait parameters from trunk
   accelerations during human walking. Gait Posture 2003;18:1-10.
.. [4] Schache AG et al. Lumbo-pelvic-hip complex in running: three-dimensional
   kinematics. Clin Biomech 1999;14:623-634; Novacheck TF. The biomechanics of running.
   Gait Posture 1998;7:77-95.
.. [5] Heiderscheit BC et al. Effects of step rate manipulation on joint mechanics
   during running. Med Sci Sports Exerc 2011;43:296-302 (cadence / contact time vs speed).
"""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Iterator
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Literal, get_args

import numpy as np

from sensord.errors import InputError
from sensord.model import GRAVITY_MPS2, FloatArray, Placement, SampleBlock, Side, Step

Mode = Literal["run", "walk"]
MODES: tuple[str, ...] = get_args(Mode)
FootStrike = Literal["rear", "mid", "fore"]
FOOT_STRIKES: tuple[str, ...] = get_args(FootStrike)
#: Heel-strike transient at the pelvis relative to a rearfoot strike.
_STRIKE_IMPACT = {"rear": 1.0, "mid": 0.6, "fore": 0.3}

SIMULATOR_VERSION = "1"

G = GRAVITY_MPS2
#: Heel-strike transient duration at the pelvis, s.
IMPACT_TAU_S = 0.030
#: ``TruthStep.impact_g`` is the peak vertical specific force in this window after IC, s.
IMPACT_WINDOW_S = 0.030
#: Reference walking speed for the walking model, m/s.
WALK_REF_SPEED_MPS = 1.4
#: Maximum forward acceleration when the pace changes, m/s².
MAX_ACCEL_MPS2 = 0.5
#: Steps are planned this far before t = 0 (so t = 0 falls mid-gait) and ahead of a block.
_LOOKAHEAD_S = 4.0
_NOISE_CHUNK = 8192
#: Central-difference half step for the foot trajectory, s.
_FD_H_S = 0.00025
_DEFAULT_IMPACT_G = 0.6


# --------------------------------------------------------------------------------------
# Parameters
# --------------------------------------------------------------------------------------


def _check(value: float, lo: float, hi: float, flag: str, unit: str = "") -> None:
    if not (math.isfinite(value) and lo <= value <= hi):
        raise InputError(
            f"{flag}: {value!r} is out of range; give a value from {lo:g} to {hi:g}{unit}"
        )


@dataclass(frozen=True, slots=True)
class Segment:
    """One part of a segment plan: ``duration_s`` of ``mode`` at ``speed_mps`` on a grade.

    ``grade_pct`` > 0 is uphill: cadence and contact time rise a little, impact and
    braking fall; downhill the opposite [5]_.
    """

    duration_s: float
    mode: Mode = "run"
    speed_mps: float = 3.2
    grade_pct: float = 0.0

    def __post_init__(self) -> None:
        _check(self.duration_s, 0.1, 86400.0, "--segments duration", " s")
        if self.mode not in MODES:
            raise InputError(f"--segments: mode {self.mode!r} is unknown; use run or walk")
        lo, hi = (1.5, 7.0) if self.mode == "run" else (0.5, 2.2)
        _check(self.speed_mps, lo, hi, f"--segments speed ({self.mode})", " m/s")
        _check(self.grade_pct, -15.0, 15.0, "--segments grade", " %")


def parse_segments(text: str) -> tuple[Segment, ...]:
    """Parse ``"DURATION_S:MODE:SPEED_MPS[:GRADE_PCT],..."`` into segments.

    Example: ``"600:run:3.2,60:walk:1.4,300:run:3.0:+5"``.
    """
    out: list[Segment] = []
    for i, part in enumerate(p.strip() for p in text.split(",")):
        if not part:
            continue
        bits = part.split(":")
        if len(bits) not in (3, 4):
            raise InputError(
                f"--segments item {i + 1} {part!r}: expected DURATION_S:MODE:SPEED_MPS"
                "[:GRADE_PCT], e.g. 600:run:3.2 or 300:run:3.0:+5"
            )
        try:
            dur, speed = float(bits[0]), float(bits[2])
            grade = float(bits[3]) if len(bits) == 4 else 0.0
        except ValueError:
            raise InputError(
                f"--segments item {i + 1} {part!r}: duration, speed and grade must be numbers"
            ) from None
        mode = bits[1].strip().lower()
        if mode not in MODES:
            raise InputError(f"--segments item {i + 1} {part!r}: mode must be run or walk")
        out.append(Segment(dur, mode, speed, grade))  # type: ignore[arg-type]
    if not out:
        raise InputError("--segments: empty plan; give e.g. 600:run:3.2,60:walk:1.4")
    return tuple(out)


@dataclass(frozen=True, slots=True)
class FatigueProfile:
    """How form degrades: no change before ``onset_s``, a linear ramp over ``ramp_s``.

    The remaining fields are the *final* deltas reached at ``onset_s + ramp_s``.
    ``vertical_oscillation_cm`` is extra oscillation on top of what the cadence and
    contact-time changes already imply (it reshapes the stance force).
    """

    onset_s: float | None = None
    ramp_s: float = 600.0
    cadence_pct: float = 0.0
    gct_pct: float = 0.0
    pelvic_drop_deg: float = 0.0
    asymmetry_pct: float = 0.0
    variability_cv_pct: float = 0.0
    vertical_oscillation_cm: float = 0.0
    impact_g: float = 0.0

    def __post_init__(self) -> None:
        if self.onset_s is not None:
            _check(self.onset_s, 0.0, 86400.0, "--fatigue-onset-s", " s")
        _check(self.ramp_s, 1.0, 86400.0, "--fatigue-ramp-s", " s")
        _check(self.cadence_pct, -20.0, 20.0, "--fatigue-cadence-pct", " %")
        _check(self.gct_pct, -20.0, 40.0, "--fatigue-gct-pct", " %")
        _check(self.pelvic_drop_deg, -5.0, 10.0, "--fatigue-drop-deg", " deg")
        _check(self.asymmetry_pct, -30.0, 30.0, "--fatigue-asymmetry-pct", " %")
        _check(self.variability_cv_pct, 0.0, 10.0, "--fatigue-variability-cv-pct", " %")
        _check(self.vertical_oscillation_cm, -2.0, 2.0, "--fatigue-vo-cm", " cm")
        _check(self.impact_g, -1.0, 3.0, "--fatigue-impact-g", " g")

    def level(self, t_s: float) -> float:
        """Fatigue level 0..1 at run time ``t_s``."""
        if self.onset_s is None:
            return 0.0
        return float(min(1.0, max(0.0, (t_s - self.onset_s) / self.ramp_s)))

    @staticmethod
    def typical(duration_s: float) -> FatigueProfile:
        """A typical late-run degradation: onset at 50 %, full at 85 % of the run."""
        return FatigueProfile(
            onset_s=0.5 * duration_s, ramp_s=max(1.0, 0.35 * duration_s), cadence_pct=-5.0,
            gct_pct=10.0, pelvic_drop_deg=3.0, asymmetry_pct=6.0, variability_cv_pct=2.0,
            vertical_oscillation_cm=1.0, impact_g=0.3,
        )


@dataclass(frozen=True, slots=True)
class SimParams:
    """Everything the simulator is told (all also CLI flags, ``_`` -> ``-``).

    ``speed_mps``, ``cadence_spm`` and ``gct_ms`` describe the runner at that reference
    speed; other speeds follow ``cadence ∝ v^0.2`` and ``GCT ∝ v^-0.6`` so that pace
    changes are not mistaken for fatigue. ``asymmetry_pct`` makes the left GCT and drop
    ``asymmetry_pct/2`` % larger and the right ones as much smaller. ``mount`` is
    ``"none"``, ``"random"`` (uniform rotation from the seed) or ``"rx,ry,rz"`` degrees
    (sensor frame = ``R_mountᵀ`` body frame, ``R_mount = Rz Ry Rx``).
    ``dropout_rate`` is the probability per second that a dropout of ``dropout_s``
    starts (those samples are missing). ``lever_arm_cm`` (pelvis) puts the sensor that
    far behind the pelvis centre, adding rotational (tangential and centripetal)
    acceleration; 0 (the default) measures the centre of mass itself.
    ``duration_s`` wins over a segment plan: a shorter run truncates the plan, a longer
    one continues its last segment.
    """

    duration_s: float = 600.0
    placement: Placement = "pelvis"
    sensor_side: Side = "left"
    speed_mps: float = 3.2
    cadence_spm: float = 170.0
    gct_ms: float = 240.0
    pelvic_drop_deg: float = 5.0
    asymmetry_pct: float = 0.0
    variability_cv_pct: float = 2.0
    impact_g: float = _DEFAULT_IMPACT_G
    yaw_deg: float = 6.0
    tilt_deg: float = 2.0
    lever_arm_cm: float = 0.0
    foot_strike: FootStrike = "rear"
    walk_cadence_spm: float = 110.0
    acc_noise_mps2: float = 0.05
    gyro_noise_dps: float = 0.5
    acc_bias_mps2: float = 0.0
    gyro_bias_dps: float = 0.0
    mount: str = "none"
    rate_hz: float = 200.0
    jitter_ms: float = 0.0
    dropout_rate: float = 0.0
    dropout_s: float = 0.5
    segments: tuple[Segment, ...] = ()
    gyro: bool = True
    fatigue: FatigueProfile = field(default_factory=FatigueProfile)

    def __post_init__(self) -> None:
        _check(self.duration_s, 1.0, 86400.0, "--duration-s", " s")
        if self.placement not in ("pelvis", "foot"):
            raise InputError(f"--placement: {self.placement!r} is unknown; use pelvis or foot")
        if self.sensor_side not in ("left", "right"):
            raise InputError(f"--sensor-side: {self.sensor_side!r} is unknown; use left or right")
        _check(self.speed_mps, 1.5, 7.0, "--speed-mps", " m/s")
        _check(self.cadence_spm, 130.0, 230.0, "--cadence-spm", " steps/min")
        _check(self.gct_ms, 120.0, 400.0, "--gct-ms", " ms")
        if self.gct_ms / 1000.0 > 0.85 * 60.0 / self.cadence_spm:
            raise InputError(
                f"--gct-ms: {self.gct_ms:g} ms leaves no flight at {self.cadence_spm:g} "
                f"steps/min; give at most {0.85 * 60000.0 / self.cadence_spm:.0f} ms"
            )
        _check(self.pelvic_drop_deg, 0.0, 15.0, "--pelvic-drop-deg", " deg")
        _check(self.asymmetry_pct, -30.0, 30.0, "--asymmetry-pct", " %")
        _check(self.variability_cv_pct, 0.0, 10.0, "--variability-cv-pct", " %")
        _check(self.impact_g, 0.0, 3.0, "--impact-g", " g")
        _check(self.yaw_deg, 0.0, 15.0, "--yaw-deg", " deg")
        _check(self.tilt_deg, 0.0, 10.0, "--tilt-deg", " deg")
        _check(self.lever_arm_cm, 0.0, 25.0, "--lever-arm-cm", " cm")
        if self.foot_strike not in FOOT_STRIKES:
            raise InputError(f"--foot-strike: {self.foot_strike!r} is unknown; "
                             "use rear, mid or fore")
        _check(self.walk_cadence_spm, 80.0, 140.0, "--walk-cadence-spm", " steps/min")
        _check(self.acc_noise_mps2, 0.0, 5.0, "--acc-noise-mps2", " m/s²")
        _check(self.gyro_noise_dps, 0.0, 50.0, "--gyro-noise-dps", " deg/s")
        _check(self.acc_bias_mps2, 0.0, 5.0, "--acc-bias-mps2", " m/s²")
        _check(self.gyro_bias_dps, 0.0, 50.0, "--gyro-bias-dps", " deg/s")
        _check(self.rate_hz, 50.0, 1000.0, "--rate-hz", " Hz")
        _check(self.jitter_ms, 0.0, 250.0 / self.rate_hz, "--jitter-ms",
               f" ms (a quarter of the sample period at {self.rate_hz:g} Hz)")
        _check(self.dropout_rate, 0.0, 1.0, "--dropout-rate", " per second")
        _check(self.dropout_s, 0.0, 60.0, "--dropout-s", " s")
        _mount_matrix(self.mount, None)  # validates the text

    @property
    def plan(self) -> tuple[Segment, ...]:
        """The segment plan (a single run segment when none was given)."""
        if self.segments:
            return self.segments
        return (Segment(self.duration_s, "run", self.speed_mps, 0.0),)


# --------------------------------------------------------------------------------------
# Results
# --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TruthStep:
    """Exact ground truth of one step (pelvis) or one contact of the instrumented foot.

    Attributes
    ----------
    t_ic, t_fc
        Initial and final contact (toe-off) of this stance, seconds.
    gct_ms
        ``(t_fc - t_ic) * 1000``.
    side
        Stance side.
    pelvic_drop_deg
        True peak frontal-plane pelvis rotation during this stance relative to the angle
        at IC, positive = swing side lower (also given for foot placement).
    cadence_spm
        ``60 / step_time_s``.
    step_time_s
        Time from the previous IC (either side) to this one, as in
        :class:`sensord.model.Step`.
    vertical_oscillation_cm
        Peak-to-peak vertical excursion of the centre of mass over this step.
    speed_mps, mode, fatigue
        Running speed, ``"run"``/``"walk"`` and fatigue level 0..1 at this step.
    impact_g
        Peak vertical (world z) specific force at the sensor in the first 30 ms of
        stance, g (pelvis: centre of mass; foot: the shoe).
    braking_g
        Peak forward deceleration at the sensor during the first half of stance, g.
    observed
        ``False`` when a dropout removed samples during this stance.
    """

    t_ic: float
    t_fc: float
    gct_ms: float
    side: Side
    pelvic_drop_deg: float
    cadence_spm: float
    step_time_s: float
    vertical_oscillation_cm: float
    speed_mps: float
    mode: Mode
    fatigue: float
    impact_g: float
    braking_g: float
    observed: bool = True

    def as_step(self, placement: Placement = "pelvis", step_index: int = 0) -> Step:
        """This truth as a :class:`sensord.model.Step` (the engine's output type)."""
        return Step(
            t_ic=self.t_ic, t_fc=self.t_fc, gct_ms=self.gct_ms, cadence_spm=self.cadence_spm,
            side=self.side, pelvic_drop_deg=self.pelvic_drop_deg, placement=placement,
            step_index=step_index, step_time_s=self.step_time_s,
            vertical_oscillation_cm=self.vertical_oscillation_cm, impact_g=self.impact_g,
            braking_g=self.braking_g,
        )

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for f in fields(self):
            v = getattr(self, f.name)
            out[f.name] = round(v, 6) if isinstance(v, float) else v
        return out


@dataclass(frozen=True, slots=True, eq=False)
class SimResult:
    """The simulated samples, the per-step truth and the recording metadata."""

    samples: SampleBlock
    truth: list[TruthStep]
    metadata: dict[str, str]


def write_truth(path: str | Path, truth: list[TruthStep]) -> None:
    """Write truth records as JSON Lines."""
    with open(path, "w", encoding="utf-8") as fh:
        for t in truth:
            fh.write(json.dumps(t.to_dict()) + "\n")


def read_truth(path: str | Path) -> list[TruthStep]:
    """Read a truth JSON Lines file written by :func:`write_truth`."""
    out: list[TruthStep] = []
    with open(path, encoding="utf-8") as fh:
        for i, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                out.append(TruthStep(**json.loads(line)))
            except (ValueError, TypeError) as e:
                raise InputError(f"{path}:{i}: not a truth record ({e}); "
                                 "pass a file written by sensord simulate") from None
    return out


# --------------------------------------------------------------------------------------
# Rotations
# --------------------------------------------------------------------------------------


def _rot_x(a: float) -> FloatArray:
    c, s = math.cos(a), math.sin(a)
    return np.array([[1.0, 0.0, 0.0], [0.0, c, -s], [0.0, s, c]])


def _rot_y(a: float) -> FloatArray:
    c, s = math.cos(a), math.sin(a)
    return np.array([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]])


def _rot_z(a: float) -> FloatArray:
    c, s = math.cos(a), math.sin(a)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def _mount_matrix(text: str, rng: np.random.Generator | None) -> FloatArray:
    """``R_mount`` for ``"none"``, ``"random"`` or ``"rx,ry,rz"`` (degrees, Rz Ry Rx)."""
    s = text.strip().lower()
    if s in ("none", ""):
        return np.eye(3)
    if s == "random":
        if rng is None:
            return np.eye(3)
        q = rng.normal(size=4)  # uniform on SO(3) (normalised Gaussian quaternion)
        w, x, y, z = q / np.linalg.norm(q)
        return np.array([
            [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
            [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
            [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
        ])
    parts = s.split(",")
    try:
        rx, ry, rz = (math.radians(float(p)) for p in parts)
        if not all(math.isfinite(v) for v in (rx, ry, rz)):
            raise ValueError
    except ValueError:
        raise InputError(
            f"--mount: {text!r} is not understood; use none, random or 'rx,ry,rz' in degrees"
        ) from None
    return _rot_z(rz) @ _rot_y(ry) @ _rot_x(rx)


def _euler_zyx_deg(r: FloatArray) -> tuple[float, float, float]:
    """``(rx, ry, rz)`` degrees with ``r = Rz Ry Rx``."""
    ry = math.asin(max(-1.0, min(1.0, -float(r[2, 0]))))
    rx = math.atan2(float(r[2, 1]), float(r[2, 2]))
    rz = math.atan2(float(r[1, 0]), float(r[0, 0]))
    return math.degrees(rx), math.degrees(ry), math.degrees(rz)


# --------------------------------------------------------------------------------------
# Step planning (sequential, one step at a time)
# --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Step:
    """One planned step: timing, mode and the force / kinematics coefficients."""

    t_ic: float
    T: float  # step time to the next IC, s
    Tc: float  # stance duration, s
    sigma: float  # +1 left stance, -1 right stance
    walk: bool
    speed: float
    fatigue: float
    grade: float
    # vertical force coefficients (run) / amplitude (walk), m/s²
    Ia: float  # heel-strike transient amplitude
    P: float
    Q: float
    R: float
    # anterior-posterior (run: braking amplitude B, net dv), mediolateral impulse J
    B: float
    dv: float
    J: float
    drop_rad: float
    yaw_rad: float
    tilt_rad: float
    v_land: float  # vertical velocity at IC, m/s
    x_ic: float  # distance travelled at IC, m
    T_prev: float  # time from the previous IC (either side) to this one, s


def _z_run(s: FloatArray, a: dict[str, Any]) -> FloatArray:
    """Centre-of-mass height over running steps relative to the height at IC, m.

    ``a`` holds the step coefficients (floats or arrays broadcastable against ``s``).
    Stance: the closed-form double integral of the force model; flight: ballistic.
    """
    Tc = a["Tc"]
    tau = np.minimum(IMPACT_TAU_S, Tc / 3.0)
    sc = np.minimum(s, Tc)
    x = np.pi * sc / Tc
    z1 = (Tc / np.pi) * (sc - (Tc / np.pi) * np.sin(x))
    z2 = (Tc / (2 * np.pi)) * (sc - (Tc / (2 * np.pi)) * np.sin(2 * x))
    zr = (Tc**2 / (8 * np.pi**2)) * ((1 - np.cos(4 * x)) / 16 - (1 - np.cos(2 * x)) / 4)
    scl = np.minimum(sc, tau)
    zi = np.where(sc < tau,
                  scl**2 / 4 + tau**2 / (8 * np.pi**2) * (np.cos(2 * np.pi * scl / tau) - 1),
                  tau**2 / 4 + tau / 2 * (sc - tau))
    z = (a["v_land"] * sc + a["Ia"] * zi + a["P"] * z1 + a["Q"] * z2 + a["R"] * zr
         - G * sc**2 / 2)
    # flight: ballistic from the take-off state (the stance expressions at s = Tc)
    v_to = a["v_land"] + a["Ia"] * tau / 2 + a["P"] * 2 * Tc / np.pi - G * Tc
    z1e = Tc**2 / np.pi
    z2e = Tc**2 / (2 * np.pi)
    zie = tau**2 / 4 + tau / 2 * (Tc - tau)
    z_to = (a["v_land"] * Tc + a["Ia"] * zie + a["P"] * z1e + a["Q"] * z2e
            - G * Tc**2 / 2)
    sf = np.maximum(s - Tc, 0.0)
    return np.asarray(np.where(s < Tc, z, z_to + v_to * sf - G * sf**2 / 2), dtype=np.float64)


def _solve_run(T: float, Tc: float, v_land: float, ia: float, vo_extra_m: float,
               z_to_target_m: float = 0.0) -> tuple[float, float, float, float]:
    """Half-sine, skew and shape amplitudes ``(P, Q, R)`` of one running stance.

    Conditions: take-off velocity ``g T_f / 2`` (apex at mid-flight: momentum balance)
    and take-off height ``z_to_target_m`` above the landing height (0 in steady running;
    the planner uses it to undo earlier drift). ``|Q| <= P/2`` keeps the force >= 0
    (the ground only pushes); where that binds, the height condition is given up for
    this step and the returned take-off height says by how much. ``R`` then adds
    ``vo_extra_m`` of oscillation.

    Returns
    -------
    P, Q, R, z_to
        Amplitudes (m/s²) and the resulting take-off height relative to landing (m).
    """
    Tf = T - Tc
    tau = min(IMPACT_TAU_S, Tc / 3.0)
    v_to = G * Tf / 2.0
    imp_i = ia * tau / 2.0
    P = (v_to - v_land + G * Tc - imp_i) * math.pi / (2.0 * Tc)
    # z_TO = v_land Tc + ∫0^Tc (Tc - s) f ds - g Tc²/2;
    # ∫ (Tc - s) I sin²(πs/τ) ds = I (Tc τ/2 - τ²/4), ∫ (Tc - s) sin(πs/Tc) ds = Tc²/π,
    # ∫ (Tc - s) sin(2πs/Tc) ds = Tc²/(2π)
    mom_i = ia * (Tc * tau / 2.0 - tau**2 / 4.0)
    z_wo_q = v_land * Tc + mom_i + P * Tc**2 / math.pi - G * Tc**2 / 2.0
    Q = (z_to_target_m - z_wo_q) * 2.0 * math.pi / Tc**2
    Q = min(max(Q, -0.5 * P), 0.5 * P)
    z_to = z_wo_q + Q * Tc**2 / (2.0 * math.pi)
    R = 0.0
    if vo_extra_m != 0.0:
        R = _solve_shape(T, Tc, v_land, ia, P, Q, vo_extra_m)
    return P, Q, R, z_to


def _solve_shape(T: float, Tc: float, v_land: float, ia: float, P: float, Q: float,
                 vo_extra_m: float) -> float:
    s = np.linspace(0.0, Tc, 257)
    base = {"Tc": Tc, "v_land": v_land, "Ia": ia, "P": P, "Q": Q, "R": 0.0}
    z0 = _z_run(s, base)
    unit = {"Tc": Tc, "v_land": 0.0, "Ia": 0.0, "P": 0.0, "Q": 0.0, "R": 1.0}
    zr = _z_run(s, unit) + G * s**2 / 2
    target = float(z0.min()) - vo_extra_m
    R = 0.0
    for _ in range(4):
        z = z0 + R * zr
        k = int(np.argmin(z))
        if abs(zr[k]) < 1e-12:
            break
        R += (target - float(z[k])) / float(zr[k])
    # the ground can only push: cap R where the stance force would turn negative
    x = np.pi * s / Tc
    tau = min(IMPACT_TAU_S, Tc / 3.0)
    f0 = (ia * np.where(s < tau, np.sin(np.pi * np.minimum(s, tau) / tau) ** 2, 0.0)
          + P * np.sin(x) + Q * np.sin(2 * x))
    h = (np.cos(4 * x) - np.cos(2 * x)) / 8.0
    lim = h < -1e-9 if R > 0 else h > 1e-9
    if lim.any():
        r_max = float(np.min(np.maximum(f0[lim], 0.0) / np.abs(h[lim])))
        R = math.copysign(min(abs(R), 0.98 * r_max), R)
    return float(R)


class _Planner:
    """Generates steps one at a time from the parameters and a seeded RNG."""

    def __init__(self, params: SimParams, rng: np.random.Generator) -> None:
        self.p = params
        self.rng = rng
        self.plan = params.plan
        ends = np.cumsum([s.duration_s for s in self.plan])
        self.seg_end_s = [float(e) for e in ends]
        seg0 = self.plan[0]
        self.speed = seg0.speed_mps
        self.walk = seg0.mode == "walk"
        t0 = self._step_time(0.0, seg0, self.speed, 0.0, 1.0, 0.0)
        self.t = -t0 * (1.5 + rng.uniform(0.0, 1.0))
        self.sigma = 1.0 if rng.uniform() < 0.5 else -1.0
        self.x = 0.0
        self.v_end: float | None = None
        self.t_prev = t0
        self.z = 0.0  # centre-of-mass height at the next IC relative to nominal, m

    def _segment(self, t: float) -> Segment:
        for seg, end in zip(self.plan, self.seg_end_s, strict=True):
            if t < end:
                return seg
        return self.plan[-1]

    def _step_time(self, t: float, seg: Segment, v: float, fat: float, cv_scale: float,
                   eps: float) -> float:
        p = self.p
        if seg.mode == "walk":
            cad = p.walk_cadence_spm * math.pow(v / WALK_REF_SPEED_MPS, 0.35)
        else:
            cad = p.cadence_spm * math.pow(v / p.speed_mps, 0.2) * (1.0 + 0.003 * seg.grade_pct)
            cad *= 1.0 + fat * p.fatigue.cadence_pct / 100.0
        return 60.0 / cad * (1.0 + cv_scale * eps)

    def next(self) -> _Step:
        p, rng = self.p, self.rng
        t = self.t
        seg = self._segment(max(t, 0.0))
        walk = seg.mode == "walk"
        fat = p.fatigue.level(t)
        fp = p.fatigue
        cv = (p.variability_cv_pct + fat * fp.variability_cv_pct) / 100.0
        e1, e2, e3 = np.clip(rng.normal(size=3), -3.0, 3.0)
        v = self.speed
        T = self._step_time(t, seg, v, fat, cv, float(e1))
        sigma = self.sigma
        asym = (p.asymmetry_pct + fat * fp.asymmetry_pct) / 200.0
        side_k = 1.0 + sigma * asym
        # speed after this step (limited acceleration towards the segment speed)
        dv = float(np.clip(seg.speed_mps - v, -MAX_ACCEL_MPS2 * T, MAX_ACCEL_MPS2 * T))
        grade = seg.grade_pct
        drop_deg = (p.pelvic_drop_deg + fat * fp.pelvic_drop_deg) * side_k * (1.0 + cv * float(e3))
        if walk:
            Tc = 1.2 * T * (1.0 + 0.5 * sigma * asym)
            Az = 0.25 * G * (v / WALK_REF_SPEED_MPS)
            drop_deg *= 0.6
            v_land = -(Az * T / (2 * math.pi)) * math.sin(2 * math.pi * 0.1)
            step = _Step(t, T, Tc, sigma, True, v, fat, grade, 0.0, Az, 0.0, 0.0,
                         0.2 * G * (v / WALK_REF_SPEED_MPS), dv, 0.1 * G, math.radians(drop_deg),
                         math.radians(0.7 * p.yaw_deg), math.radians(p.tilt_deg), v_land,
                         self.x, self.t_prev)
            self.v_end = v_land
            self.z = 0.0  # walking: the pendulum model is periodic about its own mean
        else:
            Tc = p.gct_ms / 1000.0 * (v / p.speed_mps) ** -0.6 * (1.0 + 0.008 * grade)
            Tc *= (1.0 + fat * fp.gct_pct / 100.0) * side_k * (1.0 + cv * float(e2))
            Tc = float(np.clip(Tc, 0.08, 0.85 * T))
            ia = max(0.0, (p.impact_g + fat * fp.impact_g) * G * (1.0 - 0.02 * grade))
            ia *= _STRIKE_IMPACT[p.foot_strike]
            B = max(0.0, (0.10 + 0.07 * v) * G * (1.0 - 0.02 * grade))
            Tf = T - Tc
            v_land = -G * Tf / 2.0 if self.v_end is None else self.v_end
            P, Q, R, z_to = _solve_run(T, Tc, v_land, ia, fat * fp.vertical_oscillation_cm / 100.0,
                                       -self.z)
            self.z += z_to  # the flight lands at the take-off height
            step = _Step(t, T, Tc, sigma, False, v, fat, grade, ia, P, Q, R, B, dv, 0.15,
                         math.radians(drop_deg), math.radians(p.yaw_deg),
                         math.radians(p.tilt_deg), v_land, self.x, self.t_prev)
            self.v_end = G * Tf / 2.0 - G * Tf  # landing velocity of the next step
        self.t = t + T
        self.t_prev = T
        self.x += (v + dv / 2.0) * T
        self.speed = v + dv
        self.sigma = -sigma
        return step


# --------------------------------------------------------------------------------------
# Vectorised signal evaluation
# --------------------------------------------------------------------------------------


_FIELDS = tuple(f.name for f in fields(_Step))


def _arrays(steps: list[_Step]) -> dict[str, FloatArray]:
    data = np.array([[float(getattr(s, k)) for k in _FIELDS] for s in steps], dtype=np.float64)
    return {k: data[:, i] for i, k in enumerate(_FIELDS)}


def _vm_norm(kappa: float) -> float:
    x = np.linspace(-math.pi, math.pi, 20001)
    return float(np.max(np.sin(x) * np.exp(kappa * (np.cos(x) - 1.0))))


_VM_KAPPA = 4.0
_VM_PEAK = _vm_norm(_VM_KAPPA)


def _com_force(s: FloatArray, a: dict[str, FloatArray]
               ) -> tuple[FloatArray, FloatArray, FloatArray]:
    """World-frame specific force of the centre of mass, ``(fx, fy, fz)``, m/s².

    ``s`` is the time since the step's IC; ``a`` the step coefficients broadcastable
    against ``s``.
    """
    T, Tc, walk = a["T"], a["Tc"], a["walk"] > 0.5
    u = s / T
    stance = s < Tc
    tau = np.minimum(IMPACT_TAU_S, Tc / 3.0)
    x = np.pi * np.minimum(s, Tc) / Tc
    half = np.sin(x)
    imp = np.where(s < tau, np.sin(np.pi * np.minimum(s, tau) / tau) ** 2, 0.0)
    fz_run = (a["Ia"] * imp + a["P"] * half + a["Q"] * np.sin(2 * x)
              + a["R"] * (np.cos(4 * x) - np.cos(2 * x)) / 8)
    fx_run = -a["B"] * np.sin(2 * x) + a["dv"] * np.pi / (2 * Tc) * half
    fy_run = -a["sigma"] * a["J"] * np.pi / (2 * Tc) * half
    w = 2 * np.pi * u
    fz_walk = G + a["P"] * np.cos(w - 2 * np.pi * 0.1)
    fx_walk = -a["B"] * np.sin(w) * np.exp(_VM_KAPPA * (np.cos(w) - 1.0)) / _VM_PEAK
    fx_walk = fx_walk + a["dv"] / T
    fy_walk = -a["sigma"] * a["J"] * np.sin(np.pi * u)
    return (np.where(walk, fx_walk, np.where(stance, fx_run, 0.0)),
            np.where(walk, fy_walk, np.where(stance, fy_run, 0.0)),
            np.where(walk, fz_walk, np.where(stance, fz_run, 0.0)))


def _pelvis_angles(s: FloatArray, a: dict[str, FloatArray]) -> tuple[FloatArray, ...]:
    """Obliquity, tilt, yaw (rad) and their rates (rad/s) of the pelvis."""
    T, Tc, walk, sig = a["T"], a["Tc"], a["walk"] > 0.5, a["sigma"]
    u = s / T
    sp = np.where(walk, 0.3 * T, 0.4 * Tc)
    rise = s <= sp
    b_rise = 0.5 * (1 - np.cos(np.pi * np.minimum(s, sp) / sp))
    db_rise = np.pi / (2 * sp) * np.sin(np.pi * np.minimum(s, sp) / sp)
    fall_len = T - sp
    v = np.clip((s - sp) / fall_len, 0.0, 1.0)
    b_fall = 0.5 * (1 + np.cos(np.pi * v))
    db_fall = -np.pi / (2 * fall_len) * np.sin(np.pi * v)
    roll = sig * a["drop_rad"] * np.where(rise, b_rise, b_fall)
    droll = sig * a["drop_rad"] * np.where(rise, db_rise, db_fall)
    u0 = np.where(walk, 0.0, 0.25)
    yaw = -sig * a["yaw_rad"] * np.cos(np.pi * (u - u0))
    dyaw = sig * a["yaw_rad"] * np.pi / T * np.sin(np.pi * (u - u0))
    tilt = a["tilt_rad"] * np.cos(2 * np.pi * (u - 0.55))
    dtilt = -a["tilt_rad"] * 2 * np.pi / T * np.sin(2 * np.pi * (u - 0.55))
    return roll, tilt, yaw, droll, dtilt, dyaw


def _rot_zyx(roll: FloatArray, pitch: FloatArray, yaw: FloatArray) -> FloatArray:
    """``Rz(yaw) Ry(pitch) Rx(roll)`` as ``(n, 3, 3)``."""
    cr, sr = np.cos(roll), np.sin(roll)
    cp, sp = np.cos(pitch), np.sin(pitch)
    cy, sy = np.cos(yaw), np.sin(yaw)
    r = np.empty((roll.shape[0], 3, 3))
    r[:, 0, 0] = cy * cp
    r[:, 0, 1] = cy * sp * sr - sy * cr
    r[:, 0, 2] = cy * sp * cr + sy * sr
    r[:, 1, 0] = sy * cp
    r[:, 1, 1] = sy * sp * sr + cy * cr
    r[:, 1, 2] = sy * sp * cr - cy * sr
    r[:, 2, 0] = -sp
    r[:, 2, 1] = cp * sr
    r[:, 2, 2] = cp * cr
    return r


def _pelvis_rates(s: FloatArray, g: dict[str, FloatArray],
                  angles: tuple[FloatArray, ...] | None = None) -> FloatArray:
    """Pelvis angular velocity in the pelvis frame, rad/s, ``(n, 3)`` (ZYX Euler rates)."""
    roll, pitch, _, droll, dpitch, dyaw = _pelvis_angles(s, g) if angles is None else angles
    w = np.empty((s.shape[0], 3))
    w[:, 0] = droll - dyaw * np.sin(pitch)
    w[:, 1] = dpitch * np.cos(roll) + dyaw * np.sin(roll) * np.cos(pitch)
    w[:, 2] = -dpitch * np.sin(roll) + dyaw * np.cos(roll) * np.cos(pitch)
    return w


def _pelvis_signals(t: FloatArray, a: dict[str, FloatArray], lever_arm_m: float = 0.0
                    ) -> tuple[FloatArray, FloatArray]:
    """Pelvis-frame specific force (m/s²) and angular rate (deg/s) at times ``t``.

    With ``lever_arm_m`` > 0 the sensor sits that far behind the pelvis centre (on the
    sacrum) and also feels the tangential and centripetal terms
    ``α × r + ω × (ω × r)`` (``α`` by central differences of ``ω``).
    """
    j = np.searchsorted(a["t_ic"], t, side="right") - 1
    if j.size and j.min() < 0:
        raise AssertionError("simulator: sample before the first planned step")
    g = {k: v[j] for k, v in a.items()}
    s = t - g["t_ic"]
    f_world = np.stack(_com_force(s, g), axis=1)
    angles = _pelvis_angles(s, g)
    r = _rot_zyx(angles[0], angles[1], angles[2])
    f_body = np.einsum("nji,nj->ni", r, f_world)
    w = _pelvis_rates(s, g, angles)
    if lever_arm_m > 0.0:
        h = 1e-4
        alpha = (_pelvis_rates(s + h, g) - _pelvis_rates(s - h, g)) / (2 * h)
        arm = np.array([-lever_arm_m, 0.0, 0.0])
        f_body = f_body + np.cross(alpha, arm) + np.cross(w, np.cross(w, arm))
    return f_body, np.degrees(w)


# ---- foot ----------------------------------------------------------------------------

_FOOT_LEN_M = 0.25
#: Sensor on the laces, relative to the heel contact point in the foot frame, m.
_SENSOR_FROM_HEEL_M = np.array([0.12, 0.0, 0.06])


@dataclass(frozen=True, slots=True)
class _FootStride:
    t_ic: float
    Tc: float
    t_next: float
    x_ic: float
    x_next: float
    walk: float
    th_land: float  # foot pitch at IC, rad (+ = toes down: forefoot strike)
    th_land_next: float
    th_to: float  # plantarflexion at toe-off, rad
    th_max: float  # peak plantarflexion in swing, rad
    h_sw: float  # mid-swing lift of the sensor, m
    vx_land: float
    vz_land: float  # landing velocity (negative), m/s
    vx_land_next: float
    vz_land_next: float
    tau_imp: float


def _foot_strides(steps: list[_Step], side_sigma: float, impact_scale: float,
                  strike: FootStrike = "rear") -> list[_FootStride]:
    """Strides of the instrumented foot (from one of its ICs to the next)."""
    own = [s for s in steps if s.sigma == side_sigma]

    def land(s: _Step) -> tuple[float, float, float, float]:
        if s.walk:
            return -math.radians(18.0), 0.2, -0.3 * impact_scale, 0.015
        dv = s.speed - 3.0
        th = {"rear": -math.radians(14.0 + 2.0 * dv), "mid": -math.radians(3.0),
              "fore": math.radians(10.0)}[strike]
        k = {"rear": 1.0, "mid": 0.85, "fore": 0.7}[strike]
        return th, 0.3 + 0.05 * dv, -(0.6 + 0.1 * dv) * impact_scale * k, 0.008

    out: list[_FootStride] = []
    for a, b in itertools.pairwise(own):
        th_l, vx, vz, tau = land(a)
        th_l_n, vx_n, vz_n, _ = land(b)
        if a.walk:
            th_to, th_max, h_sw = math.radians(35.0), math.radians(45.0), 0.10
        else:
            dv = a.speed - 3.0
            th_to = math.radians(35.0)
            th_max = math.radians(65.0 + 8.0 * dv)
            h_sw = float(np.clip(0.15 + 0.04 * dv, 0.08, 0.25))
        out.append(_FootStride(a.t_ic, a.Tc, b.t_ic, a.x_ic + 0.3, b.x_ic + 0.3, float(a.walk),
                               th_l, th_l_n, th_to, th_max, h_sw, vx, vz, vx_n, vz_n, tau))
    return out


_B_POW = (3, 4)
_B_MAX = (3 / 7) ** 3 * (4 / 7) ** 4


_TOE_M = np.array([_FOOT_LEN_M, 0.0, 0.0])


def _foot_stance(s: FloatArray, g: dict[str, FloatArray]
                 ) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Sensor x, z relative to the heel at IC and pitch during stance (``s < Tc``)."""
    Tc = g["Tc"]
    walk = g["walk"] > 0.5
    t_ff = np.where(walk, 0.15, 0.3) * Tc
    t_ho = np.where(walk, 0.55, 0.5) * Tc
    # landing rocker: about the heel (rear/mid strike) or the toe (forefoot strike)
    th_heel = g["th_land"] * 0.5 * (1 + np.cos(np.pi * np.clip(s / t_ff, 0.0, 1.0)))
    w_to = np.clip((s - t_ho) / (Tc - t_ho), 0.0, 1.0)
    th_toe = g["th_to"] * (2 * w_to**3 - w_to**4)  # smooth heel-off, zero θ'' at toe-off
    in_toe = (s >= t_ho) | ((s < t_ff) & (g["th_land"] > 0.0))
    th = np.where(s < t_ff, th_heel, np.where(s >= t_ho, th_toe, 0.0))
    # rigid foot: about the heel, flat, or about the toe (Ry(th) applied to the offset)
    vx = np.where(in_toe, _SENSOR_FROM_HEEL_M[0] - _FOOT_LEN_M, _SENSOR_FROM_HEEL_M[0])
    vz = _SENSOR_FROM_HEEL_M[2]
    c, sn = np.cos(th), np.sin(th)
    px = np.where(in_toe, _FOOT_LEN_M, 0.0) + c * vx + sn * vz
    pz = -sn * vx + c * vz
    # shoe compression after landing (critically damped)
    e = s * np.exp(-s / g["tau_imp"])
    return px + g["vx_land"] * e, pz + g["vz_land"] * e, th


def _foot_swing(s: FloatArray, g: dict[str, FloatArray]
                ) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Sensor x, z relative to the heel at IC and pitch during swing (``s >= Tc``)."""
    Tc = g["Tc"]
    walk = g["walk"] > 0.5
    d_ho = Tc - np.where(walk, 0.55, 0.5) * Tc
    # toe-off state (analytic), the swing's start
    th0 = g["th_to"]
    dth0 = 2.0 * g["th_to"] / d_ho
    c0, s0 = np.cos(th0), np.sin(th0)
    qx, qz = _SENSOR_FROM_HEEL_M[0] - _FOOT_LEN_M, _SENSOR_FROM_HEEL_M[2]
    p0x = _FOOT_LEN_M + c0 * qx + s0 * qz
    p0z = -s0 * qx + c0 * qz
    v0x = (-s0 * qx + c0 * qz) * dth0
    v0z = (-c0 * qx - s0 * qz) * dth0
    a0x = -(c0 * qx + s0 * qz) * dth0**2
    a0z = -(-s0 * qx + c0 * qz) * dth0**2
    # landing state of the next stride, relative to this stride's heel
    c1, s1 = np.cos(g["th_land_next"]), np.sin(g["th_land_next"])
    pivot = np.where(g["th_land_next"] > 0.0, _FOOT_LEN_M, 0.0)
    rx, rz = _SENSOR_FROM_HEEL_M[0] - pivot, _SENSOR_FROM_HEEL_M[2]
    p1x = g["x_next"] - g["x_ic"] + pivot + c1 * rx + s1 * rz
    p1z = -s1 * rx + c1 * rz
    Tw = g["t_next"] - g["t_ic"] - Tc
    w = np.clip((s - Tc) / Tw, 0.0, 1.0)
    w2, w3 = w * w, w * w * w
    w4, w5 = w3 * w, w3 * w2
    h00 = 1 - 10 * w3 + 15 * w4 - 6 * w5
    h10 = w - 6 * w3 + 8 * w4 - 3 * w5
    h20 = 0.5 * w2 - 1.5 * w3 + 1.5 * w4 - 0.5 * w5
    h01 = 10 * w3 - 15 * w4 + 6 * w5
    h11 = -4 * w3 + 7 * w4 - 3 * w5
    px = h00 * p0x + h10 * v0x * Tw + h20 * a0x * Tw**2 + h01 * p1x + h11 * g["vx_land_next"] * Tw
    pz = h00 * p0z + h10 * v0z * Tw + h20 * a0z * Tw**2 + h01 * p1z + h11 * g["vz_land_next"] * Tw
    pz = pz + g["h_sw"] * w3 * (1 - w) ** _B_POW[1] / _B_MAX
    # swing angle: Hermite to the peak, cosine ease to the landing angle, hold
    # reach the peak at wa, late enough that the cubic does not overshoot it
    wa = np.clip(1.5 * (g["th_max"] - th0) / (dth0 * Tw), 0.1, 0.4)
    wb = 0.9
    y = np.clip(w / wa, 0.0, 1.0)
    th_a = ((2 * y**3 - 3 * y**2 + 1) * th0 + (y**3 - 2 * y**2 + y) * dth0 * Tw * wa
            + (-2 * y**3 + 3 * y**2) * g["th_max"])
    y2 = np.clip((w - wa) / (wb - wa), 0.0, 1.0)
    th_b = g["th_max"] + (g["th_land_next"] - g["th_max"]) * 0.5 * (1 - np.cos(np.pi * y2))
    return px, pz, np.where(w < wa, th_a, th_b)


def _foot_pose(t: FloatArray, a: dict[str, FloatArray]
               ) -> tuple[FloatArray, FloatArray, FloatArray]:
    """World x, z of the sensor and foot pitch (rad, + = toes down) at times ``t``."""
    k = np.searchsorted(a["t_ic"], t, side="right") - 1
    if k.size and k.min() < 0:
        raise AssertionError("simulator: sample before the first planned foot stride")
    s = t - a["t_ic"][k]
    stance = s < a["Tc"][k]
    px, pz, th = np.empty_like(t), np.empty_like(t), np.empty_like(t)
    for mask, fn in ((stance, _foot_stance), (~stance, _foot_swing)):
        kk = k[mask]
        g = {name: v[kk] for name, v in a.items()}
        x, z, h = fn(s[mask], g)
        px[mask] = x + g["x_ic"]
        pz[mask] = z
        th[mask] = h
    return px, pz, th


def _foot_signals(t: FloatArray, a: dict[str, FloatArray]
                  ) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Foot-frame specific force (m/s²), angular rate (deg/s), world specific force."""
    h = _FD_H_S
    n = t.shape[0]
    tt = np.concatenate([t - h, t, t + h])
    px, pz, th = _foot_pose(tt, a)
    ax = (px[:n] - 2 * px[n:2 * n] + px[2 * n:]) / h**2
    az = (pz[:n] - 2 * pz[n:2 * n] + pz[2 * n:]) / h**2
    dth = (th[2 * n:] - th[:n]) / (2 * h)
    theta = th[n:2 * n]
    fzw = az + G
    c, s = np.cos(theta), np.sin(theta)
    f_body = np.empty((n, 3))
    # Ry(th)^T @ (ax, 0, fz)
    f_body[:, 0] = c * ax - s * fzw
    f_body[:, 1] = 0.0
    f_body[:, 2] = s * ax + c * fzw
    w = np.zeros((n, 3))
    w[:, 1] = np.degrees(dth)
    world = np.stack([ax, np.zeros(n), fzw], axis=1)
    return f_body, w, world


# --------------------------------------------------------------------------------------
# The simulator
# --------------------------------------------------------------------------------------


def _sub_rng(seed: int, *key: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=key))


_KEY_PLAN, _KEY_MOUNT, _KEY_BIAS, _KEY_DROPOUT, _KEY_NOISE, _KEY_JITTER = range(1, 7)


class _Simulator:
    """State of one simulated run; produces consecutive blocks."""

    def __init__(self, params: SimParams, seed: int) -> None:
        if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
            raise InputError(f"--seed: {seed!r} is not a non-negative integer; give e.g. 0")
        self.p = params
        self.seed = int(seed)
        self.planner = _Planner(params, _sub_rng(self.seed, _KEY_PLAN))
        self.steps: list[_Step] = []
        self.r_mount = _mount_matrix(params.mount, _sub_rng(self.seed, _KEY_MOUNT))
        brng = _sub_rng(self.seed, _KEY_BIAS)
        d = brng.normal(size=3)
        self.acc_bias = params.acc_bias_mps2 * d / np.linalg.norm(d)
        d = brng.normal(size=3)
        self.gyr_bias = params.gyro_bias_dps * d / np.linalg.norm(d)
        self.drop_rng = _sub_rng(self.seed, _KEY_DROPOUT)
        self.dropouts: list[tuple[float, float]] = []
        self.next_drop_t = self._draw_drop(0.0)
        self.n_total = math.floor(params.duration_s * params.rate_hz) + 1
        self.side_sigma = 1.0 if params.sensor_side == "left" else -1.0
        self._chunks: dict[tuple[int, int, int], FloatArray] = {}
        self._arr: dict[str, FloatArray] | None = None
        self._farr: dict[str, FloatArray] | None = None
        self._farr_n: tuple[int, float, float] = (0, 0.0, 0.0)
        self.impact_scale = (params.impact_g + 0.4) / (_DEFAULT_IMPACT_G + 0.4)

    def metadata(self) -> dict[str, str]:
        p = self.p
        rx, ry, rz = _euler_zyx_deg(self.r_mount)
        md = {
            "source": "sensord-simulate",
            "simulator_version": SIMULATOR_VERSION,
            "placement": p.placement,
        }
        if p.placement == "foot":
            md["sensor_side"] = p.sensor_side
        md.update({
            "seed": str(self.seed),
            "rate_hz": f"{p.rate_hz:g}",
            "duration_s": f"{p.duration_s:g}",
            "sim_mount_deg": ",".join(f"{v + 0.0:.3f}" for v in (rx, ry, rz)),
            "gyro": "yes" if p.gyro else "no",
        })
        return md

    # -- dropouts ----------------------------------------------------------------------
    def _draw_drop(self, after_s: float) -> float:
        if self.p.dropout_rate <= 0.0 or self.p.dropout_s <= 0.0:
            return math.inf
        return after_s + float(self.drop_rng.exponential(1.0 / self.p.dropout_rate))

    def _dropouts_until(self, t_end: float) -> None:
        while self.next_drop_t < t_end:
            start = self.next_drop_t
            self.dropouts.append((start, start + self.p.dropout_s))
            self.next_drop_t = self._draw_drop(start + self.p.dropout_s)

    # -- steps -------------------------------------------------------------------------
    def _steps_until(self, t_end: float) -> None:
        while not self.steps or self.steps[-1].t_ic < t_end:
            self.steps.append(self.planner.next())
            self._arr = None

    def _step_arrays(self) -> dict[str, FloatArray]:
        """Column arrays of the buffered steps (rebuilt only when the buffer changes)."""
        if self._arr is None:
            self._arr = _arrays(self.steps)
        return self._arr

    def _foot_arrays(self) -> dict[str, FloatArray]:
        if self._farr is None or self._farr_n != (len(self.steps), self.steps[0].t_ic,
                                                    self.steps[-1].t_ic):
            strides = _foot_strides(self.steps, self.side_sigma, self.impact_scale,
                                    self.p.foot_strike)
            self._farr = _arrays_foot(strides)
            self._farr_n = (len(self.steps), self.steps[0].t_ic, self.steps[-1].t_ic)
        return self._farr

    def _forget_before(self, t: float) -> None:
        # keep at least three strides of history for the foot model
        keep = 0
        while keep < len(self.steps) - 8 and self.steps[keep + 6].t_ic < t:
            keep += 1
        if keep:
            del self.steps[:keep]
            self._arr = None
        self.dropouts = [d for d in self.dropouts if d[1] >= t - 10.0]

    # -- samples -----------------------------------------------------------------------
    def _times(self, i0: int, i1: int) -> FloatArray:
        p = self.p
        idx = np.arange(i0, i1)
        t = idx / p.rate_hz
        if p.jitter_ms > 0.0:
            t = t + self._chunked_normal(i0, i1, 1, _KEY_JITTER)[:, 0] * p.jitter_ms / 1000.0
            lim = 0.45 / p.rate_hz
            t = np.maximum(np.clip(t, idx / p.rate_hz - lim, idx / p.rate_hz + lim), 0.0)
        return np.asarray(t, dtype=np.float64)

    def _chunked_normal(self, i0: int, i1: int, width: int, key: int) -> FloatArray:
        """Standard normals for sample indices ``[i0, i1)``, independent of blocking."""
        out = np.empty((i1 - i0, width))
        c0, c1 = i0 // _NOISE_CHUNK, (i1 - 1) // _NOISE_CHUNK
        for c in range(c0, c1 + 1):
            ck = (key, width, c)
            vals = self._chunks.get(ck)
            if vals is None:
                vals = _sub_rng(self.seed, key, width, c).normal(size=(_NOISE_CHUNK, width))
                if len(self._chunks) >= 4:  # bounded: only the current chunks are reused
                    del self._chunks[next(iter(self._chunks))]
                self._chunks[ck] = vals
            lo, hi = max(i0, c * _NOISE_CHUNK), min(i1, (c + 1) * _NOISE_CHUNK)
            out[lo - i0:hi - i0] = vals[lo - c * _NOISE_CHUNK:hi - c * _NOISE_CHUNK]
        return out

    def block(self, i0: int, i1: int) -> tuple[SampleBlock, list[TruthStep]]:
        """Samples with indices ``[i0, i1)`` and the truth of steps with IC in that span."""
        p = self.p
        t_lo, t_hi = i0 / p.rate_hz, i1 / p.rate_hz
        self._steps_until(t_hi + _LOOKAHEAD_S)
        self._dropouts_until(t_hi + 1.0)
        t = self._times(i0, i1)
        if p.placement == "pelvis":
            acc, gyr = _pelvis_signals(t, self._step_arrays(), p.lever_arm_cm / 100.0)
        else:
            acc, gyr, _ = _foot_signals(t, self._foot_arrays())
        acc = acc @ self.r_mount  # R_mount^T applied to each row
        gyr = gyr @ self.r_mount
        n = t.shape[0]
        if n:
            noise = self._chunked_normal(i0, i1, 6, _KEY_NOISE)
            acc = acc + self.acc_bias + p.acc_noise_mps2 * noise[:, :3]
            gyr = gyr + self.gyr_bias + p.gyro_noise_dps * noise[:, 3:]
        keep = np.ones(n, dtype=bool)
        for d0, d1 in self.dropouts:
            if d1 > t_lo and d0 < t_hi:
                keep &= ~((t >= d0) & (t < d1))
        samples = SampleBlock(np.ascontiguousarray(t[keep]), np.ascontiguousarray(acc[keep]),
                              np.ascontiguousarray(gyr[keep]) if p.gyro else None)
        truth = self._truth(t_lo, t_hi)
        self._forget_before(t_lo)
        return samples, truth

    def _truth(self, t_lo: float, t_hi: float) -> list[TruthStep]:
        p = self.p
        out: list[TruthStep] = []
        end = p.duration_s
        cand = [s for s in self.steps if t_lo <= s.t_ic < t_hi and s.t_ic >= 0.0
                and s.t_ic + s.Tc <= end]
        if p.placement == "foot":
            cand = [s for s in cand if s.sigma == self.side_sigma]
        if not cand:
            return out
        if p.placement == "foot":
            farr = self._foot_arrays()
        arr = _arrays(cand)
        vo_m = _vertical_oscillation_m(arr)
        if p.placement == "pelvis":
            imp, brk = _pelvis_peaks(arr)
        else:
            imp, brk = _foot_peaks(arr, farr)
        for i, st in enumerate(cand):
            t_fc = st.t_ic + st.Tc
            observed = not any(d0 < t_fc and d1 > st.t_ic for d0, d1 in self.dropouts)
            out.append(TruthStep(
                t_ic=st.t_ic, t_fc=t_fc, gct_ms=(t_fc - st.t_ic) * 1000.0,
                side="left" if st.sigma > 0 else "right",
                pelvic_drop_deg=math.degrees(st.drop_rad),
                cadence_spm=60.0 / st.T_prev, step_time_s=st.T_prev,
                vertical_oscillation_cm=float(vo_m[i]) * 100.0, speed_mps=st.speed,
                mode="walk" if st.walk else "run", fatigue=st.fatigue,
                impact_g=float(imp[i]), braking_g=float(brk[i]), observed=observed,
            ))
        return out


def _arrays_foot(strides: list[_FootStride]) -> dict[str, FloatArray]:
    names = [f.name for f in fields(_FootStride)]
    data = np.array([[float(getattr(s, k)) for k in names] for s in strides], dtype=np.float64)
    return {k: data[:, i] for i, k in enumerate(names)}


def _col(a: dict[str, FloatArray]) -> dict[str, FloatArray]:
    return {k: v[:, None] for k, v in a.items()}


def _vertical_oscillation_m(a: dict[str, FloatArray]) -> FloatArray:
    """Peak-to-peak centre-of-mass height over each step (closed form for walking).

    Running: the flight apex ``z_TO + v_TO²/(2g)`` in closed form, the stance minimum on
    a 129-point grid (error below 0.01 mm).
    """
    c = _col(a)
    Tc = a["Tc"]
    tau = np.minimum(IMPACT_TAU_S, Tc / 3.0)
    z = _z_run(np.linspace(0.0, 1.0, 129)[None, :] * c["Tc"], c)
    v_to = a["v_land"] + a["Ia"] * tau / 2 + a["P"] * 2 * Tc / np.pi - G * Tc
    z_to = z[:, -1]
    apex = z_to + np.maximum(v_to, 0.0) ** 2 / (2 * G)
    vo_run = np.maximum(apex, z.max(axis=1)) - z.min(axis=1)
    vo_walk = 2.0 * a["P"] * a["T"] ** 2 / (4.0 * math.pi**2)
    return np.asarray(np.where(a["walk"] > 0.5, vo_walk, vo_run), dtype=np.float64)


def _pelvis_peaks(a: dict[str, FloatArray]) -> tuple[FloatArray, FloatArray]:
    """Truth ``impact_g`` and ``braking_g`` of each step at the centre of mass."""
    c = _col(a)
    s = np.linspace(0.0, 1.0, 121)[None, :] * np.minimum(IMPACT_WINDOW_S, c["Tc"])
    _, _, fz = _com_force(s, c)
    s2 = np.linspace(0.0, 0.5, 61)[None, :] * c["Tc"]
    fx, _, _ = _com_force(s2, c)
    return fz.max(axis=1) / G, np.maximum(0.0, (-fx).max(axis=1)) / G


def _foot_peaks(a: dict[str, FloatArray], farr: dict[str, FloatArray]
                ) -> tuple[FloatArray, FloatArray]:
    """Truth ``impact_g`` and ``braking_g`` of each contact at the shoe.

    A 0.25 ms grid over the impact window, then 2 ms up to mid-stance.
    """
    n = a["t_ic"].shape[0]
    fine = np.linspace(0.0, 1.0, 121)[None, :] * np.minimum(IMPACT_WINDOW_S, a["Tc"][:, None])
    coarse = np.linspace(0.0, 1.0, 41)[None, :] * np.maximum(
        0.0, a["Tc"][:, None] / 2.0 - IMPACT_WINDOW_S) + IMPACT_WINDOW_S
    s = a["t_ic"][:, None] + np.concatenate([fine, coarse], axis=1)
    _, _, world = _foot_signals(s.ravel(), farr)
    fz = world[:, 2].reshape(n, -1)[:, :121]
    fx = world[:, 0].reshape(n, -1)
    return fz.max(axis=1) / G, np.maximum(0.0, (-fx).max(axis=1)) / G


def iter_simulated_blocks(params: SimParams, seed: int, block_s: float = 1.0
                          ) -> Iterator[tuple[SampleBlock, list[TruthStep]]]:
    """Consecutive simulated blocks of ``block_s`` seconds, in bounded memory.

    The concatenation of the blocks equals :func:`simulate` for the same parameters and
    seed, whatever ``block_s`` is (noise, jitter and dropouts are keyed by sample index
    and time, not by block). Each block's truth lists the steps whose IC is in it.
    """
    if not (math.isfinite(block_s) and 0.01 <= block_s <= 3600.0):
        raise InputError(f"block_s: {block_s!r} is out of range; give 0.01 to 3600 s")
    sim = _Simulator(params, seed)
    per = max(1, round(block_s * params.rate_hz))
    for i0 in range(0, sim.n_total, per):
        yield sim.block(i0, min(sim.n_total, i0 + per))


def simulated_metadata(params: SimParams, seed: int) -> dict[str, str]:
    """The recording metadata :func:`simulate` would attach."""
    return _Simulator(params, seed).metadata()


def simulate(params: SimParams, seed: int = 0) -> SimResult:
    """Simulate a whole run: samples, per-step truth and metadata (deterministic per seed)."""
    sim = _Simulator(params, seed)
    blocks: list[SampleBlock] = []
    truth: list[TruthStep] = []
    per = max(1, round(60.0 * params.rate_hz))
    for i0 in range(0, sim.n_total, per):
        b, tr = sim.block(i0, min(sim.n_total, i0 + per))
        blocks.append(b)
        truth.extend(tr)
    return SimResult(SampleBlock.concat(blocks), truth, sim.metadata())
