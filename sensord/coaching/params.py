"""Parameters of the coaching detectors (plain frozen values, validated).

Every threshold the detectors use lives in :class:`CoachParams`; a runner's TOML file
(:mod:`sensord.coaching.config`) maps onto it one key per field. ``validate`` names the
field and the reason for any impossible value, so the config loader can report
``file: key: reason``.

References
----------
Page, E. S. (1954). Continuous inspection schemes. *Biometrika* 41(1/2), 100-115.
Roberts, S. W. (1959). Control chart tests based on geometric moving averages.
*Technometrics* 1(3), 239-250.
Siegmund, D. (1985). *Sequential Analysis: Tests and Confidence Intervals*. Springer.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import Literal

PaceModel = Literal["duty_factor", "none"]
PACE_MODELS: tuple[str, ...] = ("duty_factor", "none")

#: sensitivity preset -> CUSUM decision interval h (reference value k = 1 sigma)
SENSITIVITY_H: tuple[tuple[str, float], ...] = (("low", 6.5), ("normal", 5.0), ("high", 4.0))


@dataclass(frozen=True, slots=True)
class CoachParams:
    """Tunable values of the coaching detectors.

    Attributes
    ----------
    cadence_min_spm, cadence_max_spm
        The runner's target cadence band (default 170-180 steps/min).
    warmup_s
        Run time (from the first step) ignored before the personal baseline is learned.
    baseline_window_s
        Length of the baseline window after the warm-up. If the runner walks in it, the
        window is extended until ``min_baseline_blocks`` running blocks are collected
        (up to four times its length).
    min_baseline_blocks
        Running blocks needed for a baseline.
    block_s
        Length of the time blocks (on the absolute run clock) whose means feed the
        control charts.
    min_block_steps
        Running steps a block needs to be used.
    cusum_k
        CUSUM reference value, in standard units of the block residual.
    cusum_h
        CUSUM decision interval, in standard units (in-control ARL: see
        :func:`sensord.coaching.charts.cusum_arl`).
    ewma_lambda
        Smoothing constant of the EWMA that gives "current" values and drives clearing.
    grace_s
        No degradation alert until this long after the baseline is established.
    resume_grace_s
        Blocks in the first seconds of a running bout (after a walk, a stop or a gap)
        are not fed to the charts.
    clear_z
        Hysteresis: a raised alert clears when the EWMA of the standardised residual
        (bad direction) stays below this for ``clear_hold_s``.
    clear_hold_s
        See ``clear_z``.
    cooldown_s
        After a clear, the same detector cannot raise again for this long.
    pace_model
        ``"duty_factor"``: changes of cadence, GCT, vertical oscillation and impact that
        the pace proxy ``q = 100 ln(GCT / step time)`` predicts (elasticities below) are
        not counted as degradation (one-sided: the proxy never *adds* to a residual);
        ``"none"``: raw values against the baseline.
    pace_elasticity_cadence, pace_elasticity_gct, pace_elasticity_vo, pace_elasticity_impact
        d(100 ln metric) / dq from published speed dependences (cadence ~ v^0.28,
        GCT ~ v^-0.75, so q ~ -47 ln v; impact ~ v^0.5; oscillation ~ v^-0.1): -0.6,
        +1.6, +0.2, -1.0. See docs/coaching.md.
    cadence_floor_pct, gct_floor_pct, vo_floor_pct, impact_floor_pct
        Lower bounds of the residual scale (sigma) in percent, so a very steady
        baseline does not make trivial drifts alarm.
    pelvic_drop_floor_deg, balance_floor_pct, variability_floor_pct
        Lower bounds of the residual scale in metric units.
    band_scale_spm
        Scale of the cadence-below-band chart (spm per standard unit).
    summary_every_s
        A :class:`~sensord.model.FormSummary` per this many seconds of run time.
    summary_window_s
        The summary's rolling window.
    still_after_s
        No step for this long means the runner stopped ("still").
    run_min_cadence_spm
        Cadence at or above which a step without flight-time information counts as
        running.
    run_min_flight_ms
        Flight time above which a step is running (walking has double support:
        negative flight).
    activity_switch_steps
        Consecutive steps of the other activity needed to switch (hysteresis).
    first_strides
        Running steps of the run-start check.
    settle_from_s, settle_window_s
        Where the "settled" reference of the run-start check is taken (run time).
    first_strides_ratio
        First-stride impact or braking at least this many times the settled value (or
        cadence at most ``2 - ratio`` times it) -> "first strides long".
    pain_stop_score
        A pain report at or above this score raises a critical ``pain_stop`` alert.
    max_pain_reports, max_bouts
        Bounds of the pain and bout history kept in the state.
    """

    cadence_min_spm: float = 170.0
    cadence_max_spm: float = 180.0
    warmup_s: float = 300.0
    baseline_window_s: float = 180.0
    min_baseline_blocks: int = 12
    block_s: float = 5.0
    min_block_steps: int = 8
    cusum_k: float = 1.0
    cusum_h: float = 5.0
    ewma_lambda: float = 0.3
    grace_s: float = 30.0
    resume_grace_s: float = 20.0
    clear_z: float = 1.0
    clear_hold_s: float = 30.0
    cooldown_s: float = 120.0
    pace_model: PaceModel = "duty_factor"
    pace_elasticity_cadence: float = -0.6
    pace_elasticity_gct: float = 1.6
    pace_elasticity_vo: float = 0.2
    pace_elasticity_impact: float = -1.0
    cadence_floor_pct: float = 1.5
    gct_floor_pct: float = 2.0
    vo_floor_pct: float = 4.0
    impact_floor_pct: float = 4.0
    pelvic_drop_floor_deg: float = 0.6
    balance_floor_pct: float = 0.8
    variability_floor_pct: float = 0.8
    band_scale_spm: float = 2.0
    summary_every_s: float = 5.0
    summary_window_s: float = 10.0
    still_after_s: float = 2.5
    run_min_cadence_spm: float = 140.0
    run_min_flight_ms: float = 0.0
    activity_switch_steps: int = 4
    first_strides: int = 20
    settle_from_s: float = 60.0
    settle_window_s: float = 60.0
    first_strides_ratio: float = 1.15
    pain_stop_score: int = 3
    max_pain_reports: int = 64
    max_bouts: int = 512

    def __post_init__(self) -> None:
        problems = self.problems()
        if problems:
            key, reason = problems[0]
            raise ValueError(f"{key}: {reason}")

    def problems(self) -> list[tuple[str, str]]:
        """``(field, reason)`` for every impossible value (empty when valid)."""
        out: list[tuple[str, str]] = []
        for f in fields(self):
            v = getattr(self, f.name)
            numeric = isinstance(v, float | int) and not isinstance(v, bool)
            if numeric and not math.isfinite(float(v)):
                out.append((f.name, f"must be a finite number, got {v!r}"))
        if out:
            return out
        positive = (
            "block_s", "cusum_h", "clear_hold_s", "summary_every_s", "summary_window_s",
            "still_after_s", "baseline_window_s", "band_scale_spm", "cadence_floor_pct",
            "gct_floor_pct", "vo_floor_pct", "impact_floor_pct", "pelvic_drop_floor_deg",
            "balance_floor_pct", "variability_floor_pct", "settle_window_s",
        )
        for name in positive:
            if getattr(self, name) <= 0:
                out.append((name, f"must be > 0, got {getattr(self, name)!r}"))
        non_negative = (
            "warmup_s", "grace_s", "resume_grace_s", "cooldown_s", "cusum_k", "clear_z",
            "settle_from_s",
        )
        for name in non_negative:
            if getattr(self, name) < 0:
                out.append((name, f"must be >= 0, got {getattr(self, name)!r}"))
        at_least_one = (
            "min_baseline_blocks", "min_block_steps", "activity_switch_steps",
            "first_strides", "max_pain_reports", "max_bouts",
        )
        for name in at_least_one:
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                out.append((name, f"must be an integer >= 1, got {v!r}"))
        if not 0 < self.cadence_min_spm < 300:
            out.append(("cadence_min_spm", f"must be in (0, 300), got {self.cadence_min_spm}"))
        if not 0 < self.cadence_max_spm < 300:
            out.append(("cadence_max_spm", f"must be in (0, 300), got {self.cadence_max_spm}"))
        if self.cadence_min_spm > self.cadence_max_spm:
            out.append((
                "cadence_min_spm",
                f"cadence band min {self.cadence_min_spm} is above max {self.cadence_max_spm}",
            ))
        if not 0 < self.ewma_lambda <= 1:
            out.append(("ewma_lambda", f"must be in (0, 1], got {self.ewma_lambda}"))
        if self.pace_model not in PACE_MODELS:
            out.append(("pace_model", f"must be one of {PACE_MODELS}, got {self.pace_model!r}"))
        ps = self.pain_stop_score
        if isinstance(ps, bool) or not isinstance(ps, int) or not 0 <= ps <= 10:
            out.append(("pain_stop_score", f"must be an integer 0-10, got {ps!r}"))
        if self.first_strides_ratio <= 1.0:
            out.append(("first_strides_ratio", f"must be > 1, got {self.first_strides_ratio}"))
        return out


def sensitivity_h(name: str) -> float:
    """CUSUM ``h`` of a sensitivity preset (``low``, ``normal``, ``high``)."""
    for key, h in SENSITIVITY_H:
        if key == name:
            return h
    raise ValueError(f"unknown sensitivity {name!r}; use one of low, normal, high")
