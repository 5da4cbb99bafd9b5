"""A small synthetic per-step generator for tests and the evaluation fallback.

This is NOT the IMU simulator (:mod:`sensord.sources.simulator`): it writes
:class:`~sensord.model.Step` records directly, with engine-like per-step noise, so the
coaching detectors can be exercised without the gait engine. Pace effects follow the
published speed dependences used by the detectors' pace model (cadence ~ v^0.28,
GCT ~ v^-0.75; Cavanagh & Kram 1989, *Med Sci Sports Exerc* 21(4):467-479; Weyand et al.
2000, *J Appl Physiol* 89:1991-1999), so a pace change moves cadence and GCT together.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from sensord.model import Side, Step


@dataclass(frozen=True, slots=True)
class SynthFatigue:
    """A fatigue change: linear ramp from ``onset_s`` over ``ramp_s`` to full size
    (and back to none at ``recover_s``, if given)."""

    onset_s: float
    ramp_s: float = 60.0
    cadence_pct: float = 0.0
    gct_pct: float = 0.0
    pelvic_drop_deg: float = 0.0
    pelvic_side: Side | None = None
    vo_pct: float = 0.0
    impact_pct: float = 0.0
    step_cv_pct: float = 0.0
    balance_pct: float = 0.0
    recover_s: float | None = None


@dataclass(frozen=True, slots=True)
class SynthRun:
    """A synthetic run.

    ``pace`` is a tuple of ``(t_start_s, speed_factor)`` breakpoints (step changes, a
    factor of 1.0 is the runner's usual pace), ``walks`` and ``gaps`` are
    ``(t_start_s, t_end_s)`` intervals.
    """

    duration_s: float = 1800.0
    cadence_spm: float = 176.0
    gct_ms: float = 240.0
    pelvic_drop_deg: float = 5.0
    vo_cm: float = 8.0
    impact_g: float = 2.6
    braking_g: float = 0.55
    step_cv_pct: float = 2.0
    noise: float = 1.0
    pace: tuple[tuple[float, float], ...] = ()
    walks: tuple[tuple[float, float], ...] = ()
    gaps: tuple[tuple[float, float], ...] = ()
    fatigue: SynthFatigue | None = None
    first_strides_extra_pct: float = 0.0


def _in(t: float, spans: tuple[tuple[float, float], ...]) -> bool:
    return any(a <= t < b for a, b in spans)


def synth_steps(run: SynthRun, seed: int) -> list[Step]:
    """Steps of a synthetic run (deterministic for a seed)."""
    rng = np.random.default_rng(seed)
    t = 0.0
    out: list[Step] = []
    side: Side = "left"
    last_same: dict[str, float] = {}
    prev_fc: float | None = None
    bal_l, bal_r = 1.0, 1.0
    i = 0
    drift = 0.0
    while t < run.duration_s:
        v = 1.0
        for t_b, f in run.pace:
            if t >= t_b:
                v = f
        frac = 0.0
        fat = run.fatigue
        if fat is not None and t >= fat.onset_s:
            frac = min(1.0, (t - fat.onset_s) / fat.ramp_s) if fat.ramp_s > 0 else 1.0
            if fat.recover_s is not None and t >= fat.recover_s:
                frac = 0.0
        walking = _in(t, run.walks)
        drift = 0.98 * drift + 0.2 * rng.normal() * run.noise  # slow pace wander, %
        vv = v * (1.0 + drift / 100.0)
        if walking:
            cad = 115.0 * (1 + 0.01 * rng.normal())
            gct = 650.0 * (1 + 0.02 * rng.normal())
        else:
            cad = run.cadence_spm * vv**0.28 * (1 + frac * (fat.cadence_pct if fat else 0) / 100)
            gct = run.gct_ms * vv**-0.75 * (1 + frac * (fat.gct_pct if fat else 0) / 100)
        cv = run.step_cv_pct + frac * (fat.step_cv_pct if fat else 0.0)
        step_time = 60.0 / cad * (1 + cv / 100.0 * rng.normal())
        t += step_time
        if _in(t, run.gaps):
            prev_fc = None
            last_same.clear()
            side = "right" if side == "left" else "left"
            continue
        n = run.noise
        gct_i = gct * (1 + 0.04 * n * rng.normal())
        if walking:
            flight = -0.2 * gct_i + 10 * n * rng.normal()
            drop = 3.0 + 1.0 * n * rng.normal()
            vo = 3.5 + 0.5 * n * rng.normal()
            imp = 1.4 + 0.1 * n * rng.normal()
            brk = 0.25 + 0.05 * n * rng.normal()
        else:
            flight = step_time * 1000.0 - gct_i
            extra = 1.0
            if i < 20 and run.first_strides_extra_pct:
                extra = 1 + run.first_strides_extra_pct / 100.0
            dd = 0.0
            if fat is not None and (fat.pelvic_side in (None, side)):
                dd = frac * fat.pelvic_drop_deg
            drop = run.pelvic_drop_deg + dd + 1.2 * n * rng.normal()
            vo = run.vo_cm * vv**-0.1 * (1 + frac * (fat.vo_pct if fat else 0) / 100) * (
                1 + 0.05 * n * rng.normal())
            imp = run.impact_g * vv**0.5 * extra * (
                1 + frac * (fat.impact_pct if fat else 0) / 100) * (1 + 0.08 * n * rng.normal())
            brk = run.braking_g * vv**0.5 * extra * (1 + 0.1 * n * rng.normal())
        if side == "left":
            bal_l = 0.8 * bal_l + 0.2 * gct_i * (1 + frac * (fat.balance_pct if fat else 0) / 50)
        else:
            bal_r = 0.8 * bal_r + 0.2 * gct_i
        stride = t - last_same[side] if side in last_same else None
        last_same[side] = t
        out.append(Step(
            t_ic=t,
            t_fc=t + gct_i / 1000.0,
            gct_ms=gct_i,
            cadence_spm=60.0 / step_time,
            side=side,
            pelvic_drop_deg=drop,
            step_index=i,
            step_time_s=step_time,
            stride_time_s=stride,
            gct_balance_pct=100.0 * bal_l / (bal_l + bal_r) if i > 4 else None,
            vertical_oscillation_cm=vo,
            impact_g=imp,
            braking_g=brk,
            flight_ms=flight if prev_fc is not None else None,
        ))
        prev_fc = t + gct_i / 1000.0
        side = "right" if side == "left" else "left"
        i += 1
        if math.isnan(t):  # pragma: no cover - defensive
            break
    return out
