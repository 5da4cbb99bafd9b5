"""Evaluation of the coaching detectors over a bank of simulated runs.

Every run is seeded and reproducible. Runner characteristics (speed, cadence, contact
time, pelvic drop) are drawn per seed. The pipeline is the product's:

    simulator IMU samples -> gait engine (sensord.gait.engine.analyze) -> detectors

(``--source engine``, the default). Fallbacks, clearly labelled in the output:
``--source truth`` feeds the simulator's per-step ground truth with engine-like noise;
``--source synthetic`` uses :mod:`sensord.coaching.synthetic` (no simulator needed).

Two families of runs:

* **fatigue** — a fatigue onset of known time and size (linear ramp, ``ramp_s``):
  detection rate (a raised alert of the target kind after the onset), median and max
  delay from onset to the alert;
* **clean** — no fatigue, but pace changes, hills, walk breaks, sensor noise and
  dropouts: false alarms per hour of running after the baseline is established
  (degradation detectors; the absolute cadence-band alert is counted separately, since
  a runner slowing below the band *should* hear it).

Usage::

    python benchmarks/eval_coaching.py             # full bank (a few minutes, 2 cores)
    python benchmarks/eval_coaching.py --quick     # 2 seeds per scenario
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sensord.coaching.detectors import run_offline
from sensord.coaching.params import CoachParams
from sensord.coaching.synthetic import SynthFatigue, SynthRun, synth_steps
from sensord.model import Alert, Step

DEGRADATION_KINDS = (
    "cadence_low", "gct_rising", "pelvic_drop_rising", "gct_balance_drift",
    "variability_rising", "vertical_oscillation_rising", "impact_rising",
)
BAND_KIND = "cadence_below_band"


@dataclass(frozen=True)
class Scenario:
    """One kind of run in the bank."""

    name: str
    family: str  # "fatigue" | "clean"
    duration_s: float
    targets: tuple[str, ...] = ()
    onset_s: float | None = None
    ramp_s: float = 60.0
    fatigue: dict[str, float] = field(default_factory=dict)
    # run plan as (duration_s, mode, speed_factor, grade_pct)
    plan: tuple[tuple[float, str, float, float], ...] = ()
    noisy: bool = False


def scenarios(duration_scale: float = 1.0) -> list[Scenario]:
    """The bank. ``duration_scale`` shortens everything (the small test bank)."""
    d = duration_scale
    on = 900.0 * d
    fat_len = 1500.0 * d
    clean_len = 2400.0 * d
    return [
        Scenario("cadence -5%", "fatigue", fat_len, ("cadence_low",), on, 60.0,
                 {"cadence_pct": -5.0}),
        Scenario("pelvic drop +2 deg", "fatigue", fat_len, ("pelvic_drop_rising",), on, 60.0,
                 {"pelvic_drop_deg": 2.0}),
        Scenario("GCT +5%", "fatigue", fat_len, ("gct_rising",), on, 60.0, {"gct_pct": 5.0}),
        Scenario("cadence -3%", "fatigue", fat_len, ("cadence_low",), on, 60.0,
                 {"cadence_pct": -3.0}),
        Scenario("pelvic drop +1 deg", "fatigue", fat_len, ("pelvic_drop_rising",), on, 60.0,
                 {"pelvic_drop_deg": 1.0}),
        Scenario("L/R asymmetry 6%", "fatigue", fat_len, ("gct_balance_drift",), on, 60.0,
                 {"asymmetry_pct": 6.0}),
        Scenario("typical (5 min ramp)", "fatigue", fat_len,
                 DEGRADATION_KINDS, on, 300.0,
                 {"cadence_pct": -5.0, "gct_pct": 10.0, "pelvic_drop_deg": 3.0,
                  "variability_cv_pct": 2.0, "vertical_oscillation_cm": 1.0}),
        Scenario("steady", "clean", clean_len),
        Scenario("pace changes", "clean", clean_len, plan=(
            (600 * d, "run", 1.0, 0.0), (300 * d, "run", 0.9, 0.0), (300 * d, "run", 1.1, 0.0),
            (300 * d, "run", 1.0, 0.0), (300 * d, "run", 0.85, 0.0), (600 * d, "run", 1.0, 0.0))),
        Scenario("hills", "clean", clean_len, plan=(
            (600 * d, "run", 1.0, 0.0), (180 * d, "run", 0.95, 5.0), (180 * d, "run", 1.05, -5.0),
            (300 * d, "run", 1.0, 0.0), (240 * d, "run", 0.97, 3.0), (240 * d, "run", 1.03, -3.0),
            (660 * d, "run", 1.0, 0.0))),
        Scenario("walk breaks", "clean", clean_len, plan=(
            (600 * d, "run", 1.0, 0.0), (60 * d, "walk", 1.0, 0.0), (420 * d, "run", 1.0, 0.0),
            (90 * d, "walk", 1.0, 0.0), (420 * d, "run", 1.0, 0.0), (60 * d, "walk", 1.0, 0.0),
            (750 * d, "run", 1.0, 0.0))),
        Scenario("noise + dropouts", "clean", clean_len, noisy=True),
    ]


@dataclass(frozen=True)
class RunResult:
    scenario: str
    family: str
    seed: int
    source: str
    detected: bool
    delay_s: float | None
    false_alarms: int
    band_alerts: int
    hours: float
    baseline_t_s: float | None
    kinds: tuple[str, ...]


def _runner(seed: int) -> dict[str, float]:
    rng = np.random.default_rng(10_000 + seed)
    return {
        "speed_mps": float(rng.uniform(2.8, 3.6)),
        "cadence_spm": float(rng.uniform(172.0, 182.0)),
        "gct_ms": float(rng.uniform(220.0, 260.0)),
        "pelvic_drop_deg": float(rng.uniform(4.0, 7.0)),
    }


def _sim_steps(sc: Scenario, seed: int, source: str) -> list[Step]:
    from sensord.sources.simulator import FatigueProfile, Segment, SimParams, simulate

    r = _runner(seed)
    fat = FatigueProfile(onset_s=sc.onset_s, ramp_s=sc.ramp_s, **sc.fatigue) \
        if sc.onset_s is not None else FatigueProfile()
    segs = tuple(
        Segment(dur, mode, r["speed_mps"] * f if mode == "run" else 1.4, g)  # type: ignore[arg-type]
        for dur, mode, f, g in sc.plan
    )
    noise: dict[str, Any] = {}
    if sc.noisy:
        noise = {"acc_noise_mps2": 0.3, "gyro_noise_dps": 3.0, "dropout_rate": 0.01,
                 "dropout_s": 1.5, "jitter_ms": 1.0}
    sp = SimParams(duration_s=sc.duration_s, speed_mps=r["speed_mps"],
                   cadence_spm=r["cadence_spm"], gct_ms=r["gct_ms"],
                   pelvic_drop_deg=r["pelvic_drop_deg"], rate_hz=100.0, segments=segs,
                   fatigue=fat, **noise)
    res = simulate(sp, seed)
    if source == "engine":
        from sensord.gait.engine import EngineParams, analyze

        return [e for e in analyze(EngineParams(placement="pelvis"), res.samples)
                if isinstance(e, Step)]
    return _truth_to_steps(res.truth, seed)


def _truth_to_steps(truth: Sequence[Any], seed: int) -> list[Step]:
    """Ground-truth steps with engine-like noise (fallback; labelled 'truth+noise')."""
    rng = np.random.default_rng(seed + 777)
    out: list[Step] = []
    last_ic: dict[str, float] = {}
    prev_fc: float | None = None
    gl, gr = 1.0, 1.0
    prev_ic: float | None = None
    for i, s in enumerate(truth):
        if not s.observed:
            prev_fc, prev_ic = None, None
            last_ic.clear()
            continue
        gct = s.gct_ms * (1 + 0.04 * rng.normal())
        if s.side == "left":
            gl = 0.8 * gl + 0.2 * gct
        else:
            gr = 0.8 * gr + 0.2 * gct
        st = s.t_ic - prev_ic if prev_ic is not None else None
        out.append(Step(
            t_ic=s.t_ic, t_fc=s.t_ic + gct / 1000, gct_ms=gct,
            cadence_spm=60.0 / st if st else None, side=s.side,
            pelvic_drop_deg=s.pelvic_drop_deg + 1.2 * rng.normal(), step_index=i,
            step_time_s=st,
            stride_time_s=s.t_ic - last_ic[s.side] if s.side in last_ic else None,
            gct_balance_pct=100 * gl / (gl + gr) if i > 4 else None,
            vertical_oscillation_cm=s.vertical_oscillation_cm * (1 + 0.05 * rng.normal()),
            impact_g=s.impact_g * (1 + 0.08 * rng.normal()),
            braking_g=s.braking_g * (1 + 0.1 * rng.normal()),
            flight_ms=(s.t_ic - prev_fc) * 1000 if prev_fc is not None else None,
        ))
        last_ic[s.side] = s.t_ic
        prev_fc, prev_ic = s.t_ic + gct / 1000, s.t_ic
    return out


def _synthetic_steps(sc: Scenario, seed: int) -> list[Step]:
    r = _runner(seed)
    fat = None
    if sc.onset_s is not None:
        f = sc.fatigue
        fat = SynthFatigue(sc.onset_s, sc.ramp_s, cadence_pct=f.get("cadence_pct", 0.0),
                           gct_pct=f.get("gct_pct", 0.0),
                           pelvic_drop_deg=f.get("pelvic_drop_deg", 0.0),
                           step_cv_pct=f.get("variability_cv_pct", 0.0),
                           balance_pct=f.get("asymmetry_pct", 0.0) / 2.0,
                           vo_pct=12.0 * f.get("vertical_oscillation_cm", 0.0))
    t = 0.0
    pace: list[tuple[float, float]] = []
    walks: list[tuple[float, float]] = []
    for dur, mode, fac, grade in sc.plan:
        if mode == "walk":
            walks.append((t, t + dur))
        else:
            pace.append((t, fac * (1 - 0.01 * grade)))
        t += dur
    gaps: tuple[tuple[float, float], ...] = ()
    if sc.noisy:
        rng = np.random.default_rng(seed)
        starts = np.sort(rng.uniform(0, sc.duration_s, size=int(sc.duration_s / 100)))
        gaps = tuple((float(a), float(a) + 1.5) for a in starts)
    run = SynthRun(duration_s=sc.duration_s, cadence_spm=r["cadence_spm"], gct_ms=r["gct_ms"],
                   pelvic_drop_deg=r["pelvic_drop_deg"], noise=1.5 if sc.noisy else 1.0,
                   pace=tuple(pace), walks=tuple(walks), gaps=gaps, fatigue=fat)
    return synth_steps(run, seed)


def steps_for(sc: Scenario, seed: int, source: str) -> list[Step]:
    """The per-step stream of one bank run from the chosen source."""
    if source == "synthetic":
        return _synthetic_steps(sc, seed)
    return _sim_steps(sc, seed, source)


def evaluate_run(sc: Scenario, seed: int, source: str,
                 params: CoachParams | None = None) -> RunResult:
    """Detectors over one bank run; detection / delay / false alarms."""
    p = params or CoachParams()
    steps = steps_for(sc, seed, source)
    state, events = run_offline(p, steps)
    raised = [e for e in events if isinstance(e, Alert) and e.state == "raised"]
    deg = [a for a in raised if a.kind in DEGRADATION_KINDS]
    band = [a for a in raised if a.kind == BAND_KIND]
    end = steps[-1].t_ic if steps else 0.0
    base_t = state.baseline_t_s
    detected, delay = False, None
    if sc.family == "fatigue":
        assert sc.onset_s is not None
        hits = [a for a in deg if a.kind in sc.targets and a.t_s >= sc.onset_s]
        if hits:
            detected, delay = True, hits[0].t_s - sc.onset_s
        false = [a for a in deg if a.t_s < sc.onset_s]
        hours = max(0.0, sc.onset_s - (base_t or sc.onset_s)) / 3600.0
    else:
        false = deg
        hours = max(0.0, end - (base_t or end)) / 3600.0
    return RunResult(sc.name, sc.family, seed, source, detected, delay, len(false),
                     len(band), hours, base_t, tuple(a.kind for a in raised))


def _job(args: tuple[Scenario, int, str, CoachParams | None]) -> RunResult:
    return evaluate_run(*args)


def run_bank(seeds: Sequence[int], source: str, jobs: int = 2,
             duration_scale: float = 1.0,
             log: Callable[[str], None] | None = None,
             params: CoachParams | None = None, only: str | None = None) -> list[RunResult]:
    work = [(sc, s, source, params) for sc in scenarios(duration_scale) for s in seeds
            if only is None or only in sc.name]
    if jobs <= 1:
        return [_job(w) for w in work]
    with ProcessPoolExecutor(max_workers=jobs) as ex:
        out = []
        for r in ex.map(_job, work):
            if log:
                log(f"  {r.scenario:22s} seed {r.seed:3d}: "
                    f"{'detected' if r.detected else '-':8s} "
                    f"{'' if r.delay_s is None else f'{r.delay_s:5.0f} s'} "
                    f"FA {r.false_alarms} {','.join(r.kinds)}")
            out.append(r)
        return out


def table(results: Sequence[RunResult]) -> str:
    """Per-scenario table plus the totals."""
    lines = [
        f"{'scenario':24s} {'runs':>4s} {'detected':>9s} {'med delay':>10s} "
        f"{'max delay':>10s} {'FA':>4s} {'FA/h':>6s} {'band':>5s} {'hours':>6s}",
    ]
    names: list[str] = []
    for r in results:
        if r.scenario not in names:
            names.append(r.scenario)
    for name in names:
        rs = [r for r in results if r.scenario == name]
        hours = sum(r.hours for r in rs)
        fa = sum(r.false_alarms for r in rs)
        band = sum(r.band_alerts for r in rs)
        if rs[0].family == "fatigue":
            det = sum(r.detected for r in rs)
            delays = [r.delay_s for r in rs if r.delay_s is not None]
            med = f"{statistics.median(delays):8.0f} s" if delays else f"{'-':>10s}"
            mx = f"{max(delays):8.0f} s" if delays else f"{'-':>10s}"
            dets = f"{det}/{len(rs)}"
        else:
            dets, med, mx = "-", f"{'-':>10s}", f"{'-':>10s}"
        rate = fa / hours if hours > 0 else math.nan
        lines.append(f"{name:24s} {len(rs):4d} {dets:>9s} {med:>10s} {mx:>10s} {fa:4d} "
                     f"{rate:6.2f} {band:5d} {hours:6.2f}")
    clean = [r for r in results if r.family == "clean"]
    steady_h = sum(r.hours for r in results)
    fa_all = sum(r.false_alarms for r in results)
    lines.append(
        f"overall: false alarms {fa_all} in {steady_h:.1f} h of running without fatigue "
        f"(clean runs + pre-onset) = {fa_all / steady_h if steady_h else math.nan:.3f}/h; "
        f"clean runs only {sum(r.false_alarms for r in clean)} in "
        f"{sum(r.hours for r in clean):.1f} h"
    )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--source", choices=("engine", "truth", "synthetic"), default="engine")
    ap.add_argument("--seeds", type=int, default=6, help="seeds per scenario (default 6)")
    ap.add_argument("--quick", action="store_true", help="2 seeds per scenario")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--pace-model", choices=("duty_factor", "none"), default="duty_factor",
                    help="CoachParams.pace_model (none = raw values against the baseline)")
    ap.add_argument("--only", help="run only scenarios whose name contains this text")
    ap.add_argument("-v", "--verbose", action="store_true")
    args = ap.parse_args(argv)
    n = 2 if args.quick else args.seeds
    label = {"engine": "simulator IMU -> gait engine -> detectors",
             "truth": "FALLBACK: simulator truth steps + engine-like noise -> detectors",
             "synthetic": "FALLBACK: synthetic step generator -> detectors"}[args.source]
    t0 = time.time()
    params = CoachParams(pace_model=args.pace_model)
    print(f"coaching evaluation: {label}; seeds 1..{n}; CoachParams defaults, "
          f"pace_model={args.pace_model}")
    res = run_bank(range(1, n + 1), args.source, args.jobs,
                   log=print if args.verbose else None, params=params, only=args.only)
    print(table(res))
    print(f"({time.time() - t0:.0f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
