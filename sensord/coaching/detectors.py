"""Streaming form-degradation detectors: per-step metrics in, alerts and summaries out.

Same shape as the gait engine::

    state = init_state()
    state, events = step(params, state, steps, pain)   # any chunking, same events
    state, events = finish(params, state)              # end of stream

``events`` are :class:`~sensord.model.Alert` and :class:`~sensord.model.FormSummary`.
Offline analysis is the fold :func:`run_offline`. All decisions are driven by the step
times, never by the chunking, so the output does not depend on how the stream is split
(``tests/test_coaching_detectors.py`` checks this with hypothesis). The state is bounded:
the current block, a few seconds of recent steps, the baseline buffer (its window is
bounded) and fixed-size pain and bout histories, so a 6-hour run uses the same memory as
a 10 k.

Method
------
1. **Blocks.** Running steps are grouped into blocks of ``block_s`` seconds on the
   absolute run clock; each block gives medians (robust to a bad step at a gap) of
   cadence, GCT, pelvic drop per stance side, L/R GCT balance, vertical oscillation and
   impact, a robust stride-time coefficient of variation (1.4826 MAD / median), and the
   pace proxy ``q = 100 ln(GCT / step time)`` (duty factor).
2. **Baseline.** After ``warmup_s`` of run time, the blocks of the next
   ``baseline_window_s`` (running only, extended if the runner walks) give, per metric,
   a robust level (median) and scale (1.4826 x MAD, floored), after removing the pace
   effect ``e * (q - median q)``. Cadence, GCT, oscillation and impact are modelled in
   log units (percent), pelvic drop, balance and variability in their own units.
3. **Charts.** Each later block gives a standardised residual
   ``z = min(direction * (x - level), direction * (x - level - e (q - q0))) / scale``
   (bad is positive; the pace term may explain a change away but never create one) fed to a
   one-sided CUSUM (Page 1954) with reference ``k`` and decision interval ``h``; an
   alert is raised when ``S > h``, with ``began_at_s`` at the last time ``S`` left zero.
   A Roberts (1959) EWMA of ``z`` (``ewma_lambda``) gives the "current" value and the
   hysteresis: the alert clears when the EWMA stays below ``clear_z`` for
   ``clear_hold_s``; then the detector is quiet for ``cooldown_s``. Nothing is raised
   before ``grace_s`` after the baseline, nor in the first ``resume_grace_s`` of a
   running bout.
4. **Cadence band.** A separate CUSUM on ``(cadence_min_spm - cadence) / band_scale_spm``
   after the warm-up raises an info alert when the runner sits under the target band.

References
----------
Page, E. S. (1954). Continuous inspection schemes. *Biometrika* 41, 100-115.
Roberts, S. W. (1959). Control chart tests based on geometric moving averages.
*Technometrics* 1, 239-250.
Lucas, J. M. & Saccucci, M. S. (1990). EWMA control schemes. *Technometrics* 32, 1-12.
Rousseeuw, P. J. & Croux, C. (1993). Alternatives to the median absolute deviation.
*JASA* 88, 1273-1283 (1.4826 x MAD as a robust sigma).
Heiderscheit, B. C. et al. (2011). Effects of step rate manipulation on joint mechanics
during running. *Med Sci Sports Exerc* 43(2), 296-302.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from statistics import median

from sensord.coaching.activity import (
    Activity,
    ActivityState,
    Bout,
    activity_update,
    classify_step,
    close_bout,
    merge_bouts,
)
from sensord.coaching.charts import Cusum, cusum_update, ewma_update
from sensord.coaching.params import CoachParams
from sensord.model import GRAVITY_MPS2, Alert, FormSummary, PainReport, Severity, Side, Step

Event = Alert | FormSummary

# --------------------------------------------------------------------------------------
# Chart table


@dataclass(frozen=True, slots=True)
class ChartSpec:
    """One control chart: which block metric, which direction is bad, how to talk."""

    kind: str
    metric: str
    direction: int
    log: bool
    side: Side | None
    label: str
    weight: float
    adaptive: bool = False


CHARTS: tuple[ChartSpec, ...] = (
    ChartSpec("cadence_low", "cadence_spm", -1, True, None, "Cadence", 0.2),
    ChartSpec("gct_rising", "gct_ms", +1, True, None, "Ground contact", 0.1),
    ChartSpec("pelvic_drop_rising", "pelvic_drop_left_deg", +1, False, "left", "Hip drop", 0.1),
    ChartSpec("pelvic_drop_rising", "pelvic_drop_right_deg", +1, False, "right", "Hip drop",
              0.1),
    ChartSpec("gct_balance_drift", "gct_balance_pct", +1, False, "left", "Balance", 0.05,
              adaptive=True),
    ChartSpec("gct_balance_drift", "gct_balance_pct", -1, False, "right", "Balance", 0.05,
              adaptive=True),
    ChartSpec("variability_rising", "stride_time_cv_pct", +1, False, None, "Rhythm", 0.15),
    ChartSpec("vertical_oscillation_rising", "vertical_oscillation_cm", +1, True, None,
              "Bounce", 0.1),
    ChartSpec("impact_rising", "impact_g", +1, True, None, "Impact", 0.15),
)

BLOCK_METRICS: tuple[str, ...] = (
    "cadence_spm", "gct_ms", "pelvic_drop_left_deg", "pelvic_drop_right_deg",
    "gct_balance_pct", "stride_time_cv_pct", "vertical_oscillation_cm", "impact_g",
)


def _floor(p: CoachParams, metric: str) -> float:
    return {
        "cadence_spm": p.cadence_floor_pct,
        "gct_ms": p.gct_floor_pct,
        "pelvic_drop_left_deg": p.pelvic_drop_floor_deg,
        "pelvic_drop_right_deg": p.pelvic_drop_floor_deg,
        "gct_balance_pct": p.balance_floor_pct,
        "stride_time_cv_pct": p.variability_floor_pct,
        "vertical_oscillation_cm": p.vo_floor_pct,
        "impact_g": p.impact_floor_pct,
    }[metric]


def _elasticity(p: CoachParams, metric: str) -> float:
    if p.pace_model == "none":
        return 0.0
    return {
        "cadence_spm": p.pace_elasticity_cadence,
        "gct_ms": p.pace_elasticity_gct,
        "vertical_oscillation_cm": p.pace_elasticity_vo,
        "impact_g": p.pace_elasticity_impact,
    }.get(metric, 0.0)


# --------------------------------------------------------------------------------------
# State


@dataclass(frozen=True, slots=True)
class BlockValues:
    """Means of one block of running steps; ``q`` is the pace proxy (or ``None``)."""

    t_start_s: float
    t_end_s: float
    n: int
    q: float | None
    values: tuple[float | None, ...]  # aligned with BLOCK_METRICS
    vo_sm: float | None = None  # 100 ln(spring-mass vertical oscillation, cm)

    def get(self, metric: str) -> float | None:
        return self.values[BLOCK_METRICS.index(metric)]


@dataclass(frozen=True, slots=True)
class ChartBaseline:
    """Per-chart baseline: level (transformed units), scale, reference pace proxy."""

    level: float
    scale: float
    q0: float
    vo_sm0: float | None = None


@dataclass(frozen=True, slots=True)
class ChartState:
    """Per-chart running state (CUSUM, EWMA, alert hysteresis)."""

    cusum: Cusum = field(default_factory=Cusum)
    ewma_z: float | None = None
    ewma_x: float | None = None
    raised: bool = False
    clear_since_s: float | None = None
    cooldown_until_s: float = -math.inf
    prev_y: float | None = None
    spread_var: float | None = None


@dataclass(frozen=True, slots=True)
class State:
    """Everything the detectors carry between calls (bounded)."""

    t0_s: float | None = None
    last_t_s: float | None = None
    activity: ActivityState = field(default_factory=ActivityState)
    run_bout_start_s: float | None = None
    block_idx: int | None = None
    block_steps: tuple[Step, ...] = ()
    recent: tuple[Step, ...] = ()
    summary_slot: int | None = None
    baseline_buf: tuple[BlockValues, ...] = ()
    baseline: tuple[ChartBaseline | None, ...] | None = None
    baseline_t_s: float | None = None
    charts: tuple[ChartState, ...] = field(
        default_factory=lambda: tuple(ChartState() for _ in CHARTS)
    )
    band: ChartState = field(default_factory=ChartState)
    first: tuple[tuple[float | None, float | None], ...] = ()
    settled: tuple[tuple[float | None, float | None], ...] = ()
    run_start_done: bool = False
    pain: tuple[PainReport, ...] = ()
    pain_raised: bool = False
    bouts: tuple[Bout, ...] = ()


def init_state() -> State:
    """A fresh state for a new run."""
    return State()


# --------------------------------------------------------------------------------------
# Helpers


def _median(xs: Iterable[float | None]) -> float | None:
    vals = [x for x in xs if x is not None and math.isfinite(x)]
    return median(vals) if vals else None


def _robust_cv_pct(xs: Iterable[float | None]) -> float | None:
    """``100 x 1.4826 MAD / median``: a coefficient of variation that one bad stride
    (a missed or doubled detection at a gap) cannot blow up."""
    vals = [x for x in xs if x is not None and math.isfinite(x) and x > 0]
    if len(vals) < 4:
        return None
    m = median(vals)
    return 100.0 * 1.4826 * median(abs(v - m) for v in vals) / m


def _cv_pct(xs: Iterable[float | None]) -> float | None:
    vals = [x for x in xs if x is not None and math.isfinite(x) and x > 0]
    if len(vals) < 4:
        return None
    m = sum(vals) / len(vals)
    var = sum((v - m) ** 2 for v in vals) / (len(vals) - 1)
    return 100.0 * math.sqrt(var) / m


def _block_values(t_start: float, steps: Sequence[Step]) -> BlockValues:
    left = [s.pelvic_drop_deg for s in steps if s.side == "left"]
    right = [s.pelvic_drop_deg for s in steps if s.side == "right"]
    values: tuple[float | None, ...] = (
        _median(s.cadence_spm for s in steps),
        _median(s.gct_ms for s in steps),
        _median(left),
        _median(right),
        _median(s.gct_balance_pct for s in steps),
        _robust_cv_pct(s.stride_time_s for s in steps),
        _median(s.vertical_oscillation_cm for s in steps),
        _median(s.impact_g for s in steps),
    )
    gct = _median(s.gct_ms for s in steps)
    st = _median(_step_time_s(s) for s in steps)
    q = 100.0 * math.log(gct / (st * 1000.0)) if gct and st and gct > 0 and st > 0 else None
    vo_sm = None
    if gct is not None and st is not None:
        vo = spring_mass_vo_cm(st, gct / 1000.0)
        vo_sm = 100.0 * math.log(vo) if vo is not None and vo > 0 else None
    return BlockValues(t_start, steps[-1].t_ic, len(steps), q, values, vo_sm)


def spring_mass_vo_cm(step_time_s: float, gct_s: float) -> float | None:
    """Peak-to-peak vertical oscillation of the spring-mass model, cm.

    With a sinusoidal stance force (Morin et al. 2005) the centre of mass sinks
    ``g T tc / (2 pi) - g tc^2 / 8`` during stance and rises ``g tf^2 / 8`` in flight
    (``T`` step time, ``tc`` contact, ``tf = T - tc`` flight). ``None`` without flight.

    References
    ----------
    Morin, J.-B. et al. (2005). A simple method for measuring stiffness during running.
    *J Appl Biomech* 21(2), 167-180.
    """
    tf = step_time_s - gct_s
    if tf <= 0.0 or gct_s <= 0.0:
        return None
    g = GRAVITY_MPS2
    sink = g * step_time_s * gct_s / (2.0 * math.pi) - g * gct_s * gct_s / 8.0
    return 100.0 * (sink + g * tf * tf / 8.0)



def _step_time_s(s: Step) -> float | None:
    """Step time; a foot sensor gives none, so ``60 / cadence`` stands in."""
    if s.step_time_s is not None:
        return s.step_time_s
    if s.cadence_spm is not None and s.cadence_spm > 0:
        return 60.0 / s.cadence_spm
    return None


def _step_count(steps: Sequence[Step]) -> int:
    """Steps a block stands for: one contact of a foot sensor is two steps."""
    return sum(2 if s.placement == "foot" else 1 for s in steps)


def _transform(spec: ChartSpec, x: float) -> float | None:
    if spec.log:
        return 100.0 * math.log(x) if x > 0 else None
    return x


def _untransform(spec: ChartSpec, y: float) -> float:
    return math.exp(y / 100.0) if spec.log else y


def _fit_baseline(
    p: CoachParams, blocks: Sequence[BlockValues]
) -> tuple[ChartBaseline | None, ...]:
    qs = [b.q for b in blocks if b.q is not None]
    q0 = median(qs) if qs else 0.0
    vs = [b.vo_sm for b in blocks if b.vo_sm is not None]
    vo_sm0 = median(vs) if vs else None
    out: list[ChartBaseline | None] = []
    for spec in CHARTS:
        ref = ChartBaseline(0.0, 1.0, q0, vo_sm0)
        res: list[float] = []
        for b in blocks:
            x = b.get(spec.metric)
            y = _transform(spec, x) if x is not None else None
            if y is None:
                continue
            res.append(y - _pace_term(p, spec, b, ref))
        if len(res) < max(3, p.min_baseline_blocks // 2):
            out.append(None)
            continue
        level = median(res)
        mad = median(abs(r - level) for r in res)
        scale = max(1.4826 * mad, _floor(p, spec.metric))
        out.append(ChartBaseline(level, scale, q0, vo_sm0))
    return tuple(out)


def _pace_term(p: CoachParams, spec: ChartSpec, b: BlockValues, base: ChartBaseline) -> float:
    """The change of a chart's value that pace (or grade) explains, transformed units."""
    if p.pace_model == "none":
        return 0.0
    if spec.metric == "vertical_oscillation_cm":
        if b.vo_sm is None or base.vo_sm0 is None:
            return 0.0
        return b.vo_sm - base.vo_sm0
    q = b.q if b.q is not None else base.q0
    return _elasticity(p, spec.metric) * (q - base.q0)


def _fmt(metric: str, v: float | None) -> str:
    if v is None:
        return "?"
    if metric in ("cadence_spm", "gct_ms"):
        return f"{v:.0f}"
    if metric == "impact_g":
        return f"{v:.1f} g"
    if metric == "vertical_oscillation_cm":
        return f"{v:.1f} cm"
    if metric.startswith("pelvic_drop"):
        return f"{v:.1f}°"
    return f"{v:.1f}%"


def _raise_message(spec: ChartSpec, p: CoachParams, base: float, cur: float) -> str:
    pct = 100.0 * abs(cur - base) / base if base else 0.0
    b, c = _fmt(spec.metric, base), _fmt(spec.metric, cur)
    if spec.kind == "cadence_low":
        msg = f"Cadence {c}, {pct:.0f}% under your early-run {b}: shorten your stride"
        if cur < p.cadence_min_spm:
            msg += f" (aim {p.cadence_min_spm:.0f}-{p.cadence_max_spm:.0f})"
        return msg
    if spec.kind == "gct_rising":
        return (f"Ground contact {c} ms, {pct:.0f}% longer than your early-run {b}: "
                "quick, light feet")
    if spec.kind == "pelvic_drop_rising":
        return (f"Hip dropping on {spec.side} stance, {c} vs {b} early: glutes tiring, "
                "run tall or take a walk break")
    if spec.kind == "gct_balance_drift":
        return (f"Leaning on your {spec.side} leg: {c} left contact vs {b} early; "
                "ease off if something hurts")
    if spec.kind == "variability_rising":
        return f"Stride rhythm uneven ({c} vs {b} early): core tiring, run tall and ease off"
    if spec.kind == "vertical_oscillation_rising":
        return f"Bouncing more, {c} vs {b} early: run lower and lighter"
    return f"Landing harder, {c} vs {b} early: softer, shorter steps"


def _severity(spec: ChartSpec) -> Severity:
    return "info" if spec.kind == "gct_balance_drift" else "warning"


# --------------------------------------------------------------------------------------
# The step function


class _Run:
    """Mutable working copy of :class:`State` for one call (never escapes ``step``)."""

    def __init__(self, p: CoachParams, s: State) -> None:
        self.p = p
        self.t0 = s.t0_s
        self.last_t = s.last_t_s
        self.act = s.activity
        self.run_bout_start = s.run_bout_start_s
        self.block_idx = s.block_idx
        self.block_steps = list(s.block_steps)
        self.recent = list(s.recent)
        self.summary_slot = s.summary_slot
        self.baseline_buf = list(s.baseline_buf)
        self.baseline = s.baseline
        self.baseline_t = s.baseline_t_s
        self.charts = list(s.charts)
        self.band = s.band
        self.first = list(s.first)
        self.settled = list(s.settled)
        self.run_start_done = s.run_start_done
        self.pain = list(s.pain)
        self.pain_raised = s.pain_raised
        self.bouts = list(s.bouts)
        self.out: list[Event] = []

    def freeze(self) -> State:
        return State(
            self.t0, self.last_t, self.act, self.run_bout_start, self.block_idx,
            tuple(self.block_steps), tuple(self.recent), self.summary_slot,
            tuple(self.baseline_buf), self.baseline, self.baseline_t, tuple(self.charts),
            self.band, tuple(self.first), tuple(self.settled), self.run_start_done,
            tuple(self.pain[-self.p.max_pain_reports:]), self.pain_raised,
            tuple(self.bouts[-self.p.max_bouts:]),
        )

    # ---- pain ---------------------------------------------------------------------

    def on_pain(self, r: PainReport) -> None:
        p = self.p
        self.pain.append(r)
        if len(self.pain) > p.max_pain_reports:
            del self.pain[0]
        where = f" ({r.location})" if r.location else ""
        if r.score >= p.pain_stop_score:
            self.pain_raised = True
            self.out.append(Alert(
                "pain_stop", "critical", "pain_score", float(p.pain_stop_score),
                float(r.score), r.t_s, r.t_s, "raised",
                f"Pain {r.score}/10{where}: stop running and walk home",
            ))
        elif self.pain_raised:
            self.pain_raised = False
            self.out.append(Alert(
                "pain_stop", "info", "pain_score", float(p.pain_stop_score), float(r.score),
                r.t_s, r.t_s, "cleared",
                f"Pain {r.score}/10{where}: keep it easy; next time build back with "
                "walk/run intervals",
            ))

    # ---- steps --------------------------------------------------------------------

    def on_step(self, s: Step) -> None:
        p = self.p
        t = s.t_ic
        if self.t0 is None:
            self.t0 = t
        self.maybe_summary(t)
        prev_label = self.act.label
        self.act, done = activity_update(p, self.act, s)
        for b in done:
            self.bouts.append(b)
        if len(self.bouts) > p.max_bouts:
            del self.bouts[: len(self.bouts) - p.max_bouts]
        if self.act.label == "run" and (prev_label != "run" or done):
            self.run_bout_start = self.act.bout_start_s
        running = self.act.label == "run" and classify_step(p, s) != "walk"
        idx = math.floor(t / p.block_s)
        if self.block_idx is not None and idx != self.block_idx:
            self.close_block()
        self.block_idx = idx
        if running:
            self.block_steps.append(s)
            self.run_start(s)
        self.recent.append(s)
        self.last_t = t

    def run_start(self, s: Step) -> None:
        p = self.p
        assert self.t0 is not None
        if self.run_start_done:
            return
        rel = s.t_ic - self.t0
        if len(self.first) < p.first_strides:
            self.first.append((s.impact_g, s.braking_g))
        elif p.settle_from_s <= rel < p.settle_from_s + p.settle_window_s:
            if len(self.settled) < 2000:
                self.settled.append((s.impact_g, s.braking_g))
        elif rel >= p.settle_from_s + p.settle_window_s:
            self.run_start_done = True
            self.first_strides_check(s.t_ic)

    def first_strides_check(self, t: float) -> None:
        """Overstriding lands harder *and* brakes more: both medians of the first
        strides must exceed ``first_strides_ratio`` x their settled medians (one metric
        alone is too easily moved by a sensor or filter settling at the start)."""
        p = self.p
        assert self.t0 is not None
        ratios: list[tuple[float, str, float, float]] = []
        for i, name in ((0, "impact_g"), (1, "braking_g")):
            f = [x for x in (v[i] for v in self.first) if x is not None]
            g = [x for x in (v[i] for v in self.settled) if x is not None]
            if len(f) < max(3, p.first_strides // 2) or len(g) < 10:
                continue
            fm, gm = median(f), median(g)
            if gm > 0:
                ratios.append((fm / gm, name, gm, fm))
        self.first, self.settled = [], []
        if not ratios or min(r[0] for r in ratios) < p.first_strides_ratio:
            return
        ratio, name, base, cur = max(ratios)
        what = " and ".join("impact" if r[1] == "impact_g" else "braking" for r in ratios)
        self.out.append(Alert(
            "first_strides_long", "info", name, base, cur, self.t0, t, "raised",
            f"First strides long ({what} up to {100 * (ratio - 1):.0f}% above your settled "
            "running): shorten them next start",
        ))

    # ---- blocks -------------------------------------------------------------------

    def close_block(self) -> None:
        p = self.p
        steps, idx = self.block_steps, self.block_idx
        self.block_steps = []
        if idx is None or _step_count(steps) < p.min_block_steps or self.t0 is None:
            return
        b = _block_values(idx * p.block_s, steps)
        rel = b.t_start_s - self.t0
        if rel < p.warmup_s:
            return
        resuming = self.run_bout_start is not None and b.t_start_s < (
            self.run_bout_start + p.resume_grace_s
        )
        if resuming:
            return
        self.band_chart(b)
        if self.baseline is None:
            self.baseline_buf.append(b)
            long_enough = rel >= p.warmup_s + p.baseline_window_s
            cap = max(p.min_baseline_blocks, math.ceil(4 * p.baseline_window_s / p.block_s))
            if (long_enough and len(self.baseline_buf) >= p.min_baseline_blocks) or len(
                self.baseline_buf
            ) >= cap:
                self.baseline = _fit_baseline(p, self.baseline_buf)
                self.baseline_t = b.t_end_s
                self.baseline_buf = []
            return
        assert self.baseline_t is not None
        armed = b.t_start_s >= self.baseline_t + p.grace_s
        for i, spec in enumerate(CHARTS):
            base = self.baseline[i]
            x = b.get(spec.metric)
            y = _transform(spec, x) if x is not None else None
            if base is None or x is None or y is None:
                continue
            # the pace proxy may explain a change away, never create one (one-sided)
            c = self.charts[i]
            spread_var = c.spread_var
            if c.prev_y is not None:  # successive differences: blind to level shifts
                spread_var = ewma_update(spread_var, 0.5 * (y - c.prev_y) ** 2, 0.1)
            scale = base.scale
            if spec.adaptive and spread_var is not None:
                scale = max(scale, math.sqrt(spread_var))
            # the pace proxy may explain a change away, never create one (one-sided)
            z_raw = spec.direction * (y - base.level) / scale
            z_pace = spec.direction * (y - base.level - _pace_term(p, spec, b, base)) / scale
            z = min(z_raw, z_pace)
            self.charts[i] = replace(
                self.update_chart(c, z, x, b, armed, spec, _untransform(spec, base.level)),
                prev_y=y, spread_var=spread_var,
            )

    def band_chart(self, b: BlockValues) -> None:
        p = self.p
        x = b.get("cadence_spm")
        if x is None:
            return
        z = (p.cadence_min_spm - x) / p.band_scale_spm
        spec = ChartSpec("cadence_below_band", "cadence_spm", -1, False, None, "Cadence", 0.0)
        self.band = self.update_chart(self.band, z, x, b, True, spec, p.cadence_min_spm)

    def update_chart(
        self, c: ChartState, z: float, x: float, b: BlockValues, armed: bool,
        spec: ChartSpec, base_disp: float,
    ) -> ChartState:
        p = self.p
        t = b.t_end_s
        ewma_z = ewma_update(c.ewma_z, z, p.ewma_lambda)
        ewma_x = ewma_update(c.ewma_x, x, p.ewma_lambda)
        if t < c.cooldown_until_s:
            return replace(c, cusum=Cusum(), ewma_z=ewma_z, ewma_x=ewma_x)
        cus = cusum_update(c.cusum, z, p.cusum_k, b.t_start_s)
        if not c.raised:
            if armed and cus.s > p.cusum_h:
                began = cus.start_s if cus.start_s is not None else b.t_start_s
                self.out.append(self.make_alert(spec, base_disp, ewma_x, began, t, "raised"))
                return ChartState(cus, ewma_z, ewma_x, True, None, c.cooldown_until_s)
            return ChartState(cus, ewma_z, ewma_x, False, None, c.cooldown_until_s)
        if ewma_z < p.clear_z:
            since = c.clear_since_s if c.clear_since_s is not None else t
            if t - since >= p.clear_hold_s:
                self.out.append(self.make_alert(spec, base_disp, ewma_x, since, t, "cleared"))
                return ChartState(Cusum(), ewma_z, ewma_x, False, None, t + p.cooldown_s)
            return ChartState(cus, ewma_z, ewma_x, True, since, c.cooldown_until_s)
        return ChartState(cus, ewma_z, ewma_x, True, None, c.cooldown_until_s)

    def make_alert(
        self, spec: ChartSpec, base: float, cur: float, began: float, t: float, state: str
    ) -> Alert:
        p = self.p
        if spec.kind == "cadence_below_band":
            sev: Severity = "info"
            if state == "raised":
                msg = (f"Cadence {cur:.0f}, under your {p.cadence_min_spm:g}-"
                       f"{p.cadence_max_spm:g} target: quicker, shorter steps")
            elif cur >= p.cadence_min_spm:
                msg = f"Cadence {cur:.0f}, back in your target band: good"
            else:  # (the chart clears near the band, allowing for noise)
                msg = (f"Cadence {cur:.0f}, close to your {p.cadence_min_spm:g}-"
                       f"{p.cadence_max_spm:g} target again: keep the steps quick")
        else:
            sev = _severity(spec)
            if state == "raised":
                msg = _raise_message(spec, p, base, cur)
            else:
                side = f" ({spec.side})" if spec.side else ""
                # (a chart clears on the pace-adjusted value when pace explains the
                # rest: say so rather than claim the raw value is back)
                usual = "range for this pace" if p.pace_model != "none" else "level"
                msg = f"{spec.label}{side} back within your early-run {usual}: good"
                sev = "info"
        return Alert(spec.kind, sev, spec.metric, base, cur, began, t,
                     "raised" if state == "raised" else "cleared", msg, spec.side)

    # ---- summaries ----------------------------------------------------------------

    def maybe_summary(self, t: float) -> None:
        p = self.p
        slot = math.floor(t / p.summary_every_s)
        if self.summary_slot is None:
            self.summary_slot = slot
            return
        if slot == self.summary_slot:
            return
        boundary = (self.summary_slot + 1) * p.summary_every_s
        self.summary_slot = slot
        self.recent = [s for s in self.recent if s.t_ic > boundary - p.summary_window_s]
        self.out.append(self.summary(boundary))

    def summary(self, t: float, ended: bool = False) -> FormSummary:
        p = self.p
        rec = self.recent
        gap = self.last_t is None or (not ended and t - self.last_t > p.still_after_s)
        still = gap or not rec
        activity: Activity | None = "still" if still else self.act.label
        score, factors = self.form_score()
        if still:
            return FormSummary(t_s=t, activity="still", steps=0, form_score=score,
                               form_factors=factors)
        step_times = [_step_time_s(s) for s in rec]
        bal = [s.gct_balance_pct for s in rec if s.gct_balance_pct is not None]
        return FormSummary(
            t_s=t,
            cadence_spm=_median(s.cadence_spm for s in rec),
            gct_ms=_median(s.gct_ms for s in rec),
            pelvic_drop_left_deg=_median(s.pelvic_drop_deg for s in rec if s.side == "left"),
            pelvic_drop_right_deg=_median(s.pelvic_drop_deg for s in rec if s.side == "right"),
            gct_balance_pct=bal[-1] if bal else None,
            vertical_oscillation_cm=_median(s.vertical_oscillation_cm for s in rec),
            impact_g=_median(s.impact_g for s in rec),
            braking_g=_median(s.braking_g for s in rec),
            step_time_cv_pct=_robust_cv_pct(step_times),
            form_score=score,
            activity=activity,
            steps=len(rec),
            form_factors=factors,
        )

    def form_score(self) -> tuple[float | None, str | None]:
        if self.baseline is None:
            return None, None
        penalties: dict[str, float] = {}
        for spec, c in zip(CHARTS, self.charts, strict=True):
            if c.ewma_z is None:
                continue
            pen = 100.0 * spec.weight * min(1.0, max(0.0, c.ewma_z) / 4.0)
            if spec.kind == "cadence_low" and self.band.ewma_z is not None:
                pen = max(pen, 100.0 * spec.weight * min(1.0, max(0.0, self.band.ewma_z) / 4))
            penalties[spec.metric] = penalties.get(spec.metric, 0.0) + pen
        score = max(0.0, 100.0 - sum(penalties.values()))
        names = [m for m, v in sorted(penalties.items(), key=lambda kv: -kv[1]) if v >= 2.0]
        return round(score, 1), (",".join(names) or None)


def step(
    params: CoachParams,
    state: State,
    steps: Sequence[Step],
    pain: Sequence[PainReport] = (),
) -> tuple[State, list[Event]]:
    """Feed a chunk of steps (and pain reports); returns the new state and the events.

    Parameters
    ----------
    params
        Detector parameters.
    state
        From :func:`init_state` or the previous call.
    steps
        The next steps, in time order (as the gait engine emits them).
    pain
        Pain reports received with this chunk. Each is handled in time order among the
        chunk's steps (before the first step later than it); the rest after the steps.

    Returns
    -------
    (State, list of Alert | FormSummary)
    """
    run = _Run(params, state)
    pending = sorted(pain, key=lambda r: r.t_s)
    j = 0
    for s in steps:
        while j < len(pending) and pending[j].t_s <= s.t_ic:
            run.on_pain(pending[j])
            j += 1
        run.on_step(s)
    for r in pending[j:]:
        run.on_pain(r)
    return run.freeze(), run.out


def finish(params: CoachParams, state: State) -> tuple[State, list[Event]]:
    """End of stream: close the open block (it may raise or clear an alert) and emit
    the summary of the last, partial, summary period."""
    run = _Run(params, state)
    if run.block_idx is not None:
        run.close_block()
        run.block_idx = None
    if run.summary_slot is not None and run.last_t is not None:
        boundary = (run.summary_slot + 1) * params.summary_every_s
        run.recent = [s for s in run.recent if s.t_ic > boundary - params.summary_window_s]
        run.out.append(run.summary(boundary, ended=True))
        run.summary_slot = None
    return run.freeze(), run.out


def run_offline(
    params: CoachParams, steps: Sequence[Step], pain: Sequence[PainReport] = ()
) -> tuple[State, list[Event]]:
    """The whole run at once: :func:`step` over all steps, then :func:`finish` (equal to
    any chunked fold followed by :func:`finish`)."""
    state, events = step(params, init_state(), steps, pain)
    state, tail = finish(params, state)
    return state, [*events, *tail]


def bouts(state: State) -> list[Bout]:
    """Walk/run/still bouts so far, including the open one (merged)."""
    return merge_bouts([*state.bouts, *close_bout(state.activity)])
