"""``sensord simulate``: write a simulated run (CSV recording) and its per-step truth.

Example::

    sensord simulate --out run.csv --duration-s 1800 --placement pelvis \\
        --segments 600:run:3.2,60:walk:1.4,1140:run:3.4 --fatigue typical --seed 7

writes ``run.csv`` (the sensord recording format, with ``# placement=...``,
``# seed=...``, ``# rate_hz=...`` metadata) and ``run.truth.jsonl`` (one
:class:`sensord.sources.simulator.TruthStep` per line).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from sensord.errors import InputError

HELP = "write a simulated run and its ground truth"

_FATIGUE_FLAGS: tuple[tuple[str, str, str], ...] = (
    ("--fatigue-cadence-pct", "cadence_pct", "final cadence change, %"),
    ("--fatigue-gct-pct", "gct_pct", "final ground-contact-time change, %"),
    ("--fatigue-drop-deg", "pelvic_drop_deg", "final pelvic drop change, deg"),
    ("--fatigue-asymmetry-pct", "asymmetry_pct", "final extra L/R asymmetry, %"),
    ("--fatigue-variability-cv-pct", "variability_cv_pct", "final extra step-time CV, %"),
    ("--fatigue-vo-cm", "vertical_oscillation_cm", "final extra vertical oscillation, cm"),
    ("--fatigue-impact-g", "impact_g", "final extra heel-strike transient, g"),
)

#: (flag, SimParams field, help); all floats.
_FLOAT_FLAGS: tuple[tuple[str, str, str], ...] = (
    ("--duration-s", "duration_s", "run length, s (1-86400; default 600)"),
    ("--speed-mps", "speed_mps", "reference running speed, m/s (1.5-7; default 3.2)"),
    ("--cadence-spm", "cadence_spm", "cadence at the reference speed (130-230; default 170)"),
    ("--gct-ms", "gct_ms", "ground contact time at the reference speed, ms (120-400; 240)"),
    ("--pelvic-drop-deg", "pelvic_drop_deg", "peak pelvic drop per stance, deg (0-15; 5)"),
    ("--asymmetry-pct", "asymmetry_pct", "L/R difference in GCT and drop, % (-30..30; 0)"),
    ("--variability-cv-pct", "variability_cv_pct", "step-to-step CV, % (0-10; 2)"),
    ("--impact-g", "impact_g", "heel-strike transient at the pelvis, g (0-3; 0.6)"),
    ("--yaw-deg", "yaw_deg", "pelvis transverse rotation amplitude, deg (0-15; 6)"),
    ("--tilt-deg", "tilt_deg", "pelvis sagittal tilt oscillation, deg (0-10; 2)"),
    ("--lever-arm-cm", "lever_arm_cm", "pelvis: sensor this far behind the pelvis centre, "
                                       "adds rotational acceleration, cm (0-25; 0)"),
    ("--walk-cadence-spm", "walk_cadence_spm", "walking cadence at 1.4 m/s (80-140; 110)"),
    ("--acc-noise-mps2", "acc_noise_mps2", "accelerometer white noise std, m/s² (0-5; 0.05)"),
    ("--gyro-noise-dps", "gyro_noise_dps", "gyroscope white noise std, deg/s (0-50; 0.5)"),
    ("--acc-bias-mps2", "acc_bias_mps2", "constant accelerometer bias magnitude, m/s² (0-5)"),
    ("--gyro-bias-dps", "gyro_bias_dps", "constant gyroscope bias magnitude, deg/s (0-50)"),
    ("--rate-hz", "rate_hz", "sample rate, Hz (50-1000; default 200)"),
    ("--jitter-ms", "jitter_ms", "timestamp jitter std, ms (0 to a quarter period; 0)"),
    ("--dropout-rate", "dropout_rate", "probability per second that a dropout starts (0-1)"),
    ("--dropout-s", "dropout_s", "length of each dropout, s (0-60; default 0.5)"),
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", required=True, help="recording CSV to write")
    parser.add_argument("--truth", default=None,
                        help="truth JSON Lines to write (default: <out stem>.truth.jsonl)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--placement", default="pelvis", help="pelvis (default) or foot")
    parser.add_argument("--sensor-side", default="left",
                        help="foot placement: left (default) or right shoe")
    for flag, _, help_ in _FLOAT_FLAGS:
        parser.add_argument(flag, type=float, default=None, help=help_.replace("%", "%%"))
    parser.add_argument("--foot-strike", default="rear",
                        help="rear (default), mid or fore: landing pitch and impact transient")
    parser.add_argument("--mount", default="none",
                        help="sensor mounting rotation: none, random or 'rx,ry,rz' degrees")
    parser.add_argument("--segments", default=None,
                        help="plan DURATION_S:MODE:SPEED_MPS[:GRADE_PCT],... e.g. "
                             "600:run:3.2,60:walk:1.4,300:run:3.0:+5 (overrides --duration-s)")
    parser.add_argument("--no-gyro", action="store_true",
                        help="accelerometer-only recording (no gx, gy, gz)")
    parser.add_argument("--fatigue", default=None,
                        help="'typical' for a preset late-run degradation (onset at 50 %%)")
    parser.add_argument("--fatigue-onset-s", type=float, default=None,
                        help="when form starts to degrade, s (default: no fatigue)")
    parser.add_argument("--fatigue-ramp-s", type=float, default=None,
                        help="how long the degradation takes to reach its final deltas, s")
    for flag, _, help_ in _FATIGUE_FLAGS:
        parser.add_argument(flag, type=float, default=None, help=help_.replace("%", "%%"))


def _params(args: argparse.Namespace) -> object:
    from sensord.sources.simulator import FatigueProfile, SimParams, parse_segments

    kw: dict[str, object] = {}
    for flag, name, _ in _FLOAT_FLAGS:
        v = getattr(args, flag[2:].replace("-", "_"))
        if v is not None:
            kw[name] = float(v)
    segments = parse_segments(args.segments) if args.segments else ()
    if segments:
        kw["segments"] = segments
        kw["duration_s"] = float(sum(s.duration_s for s in segments))
    duration_s = float(kw.get("duration_s", 600.0))  # type: ignore[arg-type]
    if args.fatigue is not None and args.fatigue != "typical":
        raise InputError(f"--fatigue: {args.fatigue!r} is unknown; the only preset is 'typical'"
                         " (or give --fatigue-onset-s and the --fatigue-* deltas)")
    fat = FatigueProfile.typical(duration_s) if args.fatigue == "typical" else FatigueProfile()
    fkw: dict[str, object] = {}
    if args.fatigue_onset_s is not None:
        fkw["onset_s"] = float(args.fatigue_onset_s)
    if args.fatigue_ramp_s is not None:
        fkw["ramp_s"] = float(args.fatigue_ramp_s)
    for flag, name, _ in _FATIGUE_FLAGS:
        v = getattr(args, flag[2:].replace("-", "_"))
        if v is not None:
            fkw[name] = float(v)
    if fkw:
        if fat.onset_s is None and "onset_s" not in fkw:
            raise InputError("--fatigue-*: give --fatigue-onset-s (when fatigue starts, s) "
                             "or --fatigue typical")
        base = {f: getattr(fat, f) for f in FatigueProfile.__dataclass_fields__}
        base.update(fkw)
        fat = FatigueProfile(**base)
    return SimParams(
        placement=args.placement, sensor_side=args.sensor_side, mount=args.mount,
        foot_strike=args.foot_strike,
        gyro=not args.no_gyro, fatigue=fat, **kw,  # type: ignore[arg-type]
    )


def run(args: argparse.Namespace) -> int:
    from sensord.sources.recording import write_recording
    from sensord.sources.simulator import SimParams, simulate, write_truth

    params = _params(args)
    assert isinstance(params, SimParams)
    if args.seed < 0:
        raise InputError(f"--seed: {args.seed} is negative; give an integer >= 0")
    out = Path(args.out)
    truth_path = Path(args.truth) if args.truth else out.with_name(out.stem + ".truth.jsonl")
    if out.resolve() == truth_path.resolve():
        raise InputError(f"--truth {truth_path}: is the recording's path too; give another file")
    for p in (out, truth_path):
        if not p.parent.exists():
            raise InputError(f"{p}: directory {p.parent} does not exist; create it first")
    res = simulate(params, args.seed)
    try:
        write_recording(out, res.samples, res.metadata)
        write_truth(truth_path, res.truth)
    except OSError as e:
        raise InputError(f"cannot write output ({e.strerror}: {e.filename}); "
                         "check the path and permissions") from None
    n_obs = sum(1 for t in res.truth if t.observed)
    what = "steps" if params.placement == "pelvis" else f"{params.sensor_side} foot contacts"
    print(f"simulated {params.duration_s:g} s {params.placement} at {params.rate_hz:g} Hz: "
          f"{len(res.samples)} samples -> {out}; {len(res.truth)} {what} "
          f"({n_obs} fully observed) -> {truth_path}")
    return 0
