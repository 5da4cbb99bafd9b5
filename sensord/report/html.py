"""The self-contained HTML run report: inline CSS and SVG, no script, no network.

Sections: key numbers, form score, every metric over time (alerts and pain marked,
the runner's baseline dashed, the cadence target band shaded), early vs late, left/right
balance, activity and return-to-run compliance, alerts, pain reports, sensor health.
"""

from __future__ import annotations

import datetime as dt
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from html import escape

from sensord.report.data import ActivityBout, RunData
from sensord.report.svg import PALETTE, Band, Marker, Series, bar_chart, line_chart, timeline

SEVERITY_COLOUR = {"info": "#1f77b4", "warning": "#ff7f0e", "critical": "#d62728"}
ACTIVITY_COLOUR = {"run": "#2ca02c", "walk": "#ffbf00", "still": "#bbbbbb"}


@dataclass(frozen=True, slots=True)
class Metric:
    """A per-step metric the report plots."""

    key: str
    label: str
    unit: str
    higher_is_worse: bool | None  # None: neither direction is "worse" (balance)


METRICS: tuple[Metric, ...] = (
    Metric("cadence_spm", "Cadence", "steps/min", False),
    Metric("gct_ms", "Ground contact time", "ms", True),
    Metric("pelvic_drop_deg", "Pelvic drop", "°", True),
    Metric("gct_balance_pct", "GCT balance (left share)", "%", None),
    Metric("vertical_oscillation_cm", "Vertical oscillation", "cm", True),
    Metric("impact_g", "Impact", "g", True),
    Metric("braking_g", "Braking", "g", True),
    Metric("step_time_s", "Step time", "s", None),
)


@dataclass(frozen=True, slots=True)
class Window:
    """A run-time window ``[start_s, end_s)`` with a name."""

    name: str
    start_s: float
    end_s: float


def windows(data: RunData) -> tuple[Window, Window]:
    """The baseline ("early") window and the last stretch ("late") of the run: after the
    coaching warm-up, as long as the coaching baseline window."""
    if not data.steps:
        return Window("early", 0, 0), Window("late", 0, 0)
    t0, t1 = data.steps[0].t_ic, data.steps[-1].t_ic
    dur = t1 - t0
    warmup, base = data.coach.warmup_s, data.coach.baseline_window_s
    if dur >= warmup + 2 * base:
        early = Window("early (baseline)", t0 + warmup, t0 + warmup + base)
        late = Window("late", t1 - base, t1 + 1e-9)
    else:
        early = Window("early (first third)", t0, t0 + dur / 3)
        late = Window("late (last third)", t1 - dur / 3, t1 + 1e-9)
    return early, late


def not_running(data: RunData) -> list[tuple[float, float]]:
    """Walk / still bouts, as ``(start, end)`` (excluded from the running metrics)."""
    return [(b.start_s, b.end_s) for b in data.bouts if b.activity != "run"]


def _running(data: RunData, t: float, breaks: Sequence[tuple[float, float]]) -> bool:
    return not any(a <= t < b for a, b in breaks)


def _values(data: RunData, key: str, w: Window, side: str | None = None) -> list[float]:
    out = []
    breaks = not_running(data)
    for s in data.steps:
        if (w.start_s <= s.t_ic < w.end_s and (side is None or s.side == side)
                and _running(data, s.t_ic, breaks)):
            v = getattr(s, key)
            if v is not None:
                out.append(float(v))
    return out


def _median(xs: Sequence[float]) -> float | None:
    return statistics.median(xs) if xs else None


def binned(data: RunData, key: str, bin_s: float,
           side: str | None = None) -> tuple[tuple[float, float | None], ...]:
    """Per-bin means of a step metric (``None`` where a bin has no value: a break)."""
    if not data.steps:
        return ()
    t0 = 0.0
    sums: dict[int, list[float]] = {}
    breaks = not_running(data)
    for s in data.steps:
        v = getattr(s, key)
        if v is None or (side is not None and s.side != side):
            continue
        if not _running(data, s.t_ic, breaks):
            continue
        sums.setdefault(int((s.t_ic - t0) // bin_s), []).append(float(v))
    if not sums:
        return ()
    last = max(sums)
    return tuple(((k + 0.5) * bin_s + t0,
                  statistics.fmean(sums[k]) if k in sums else None)
                 for k in range(min(sums), last + 1))


def _bin_s(data: RunData) -> float:
    return max(10.0, min(60.0, round(data.duration_s / 120.0 / 5.0) * 5.0 or 10.0))


#: Alert metrics that belong on a per-step metric's chart besides the metric itself.
ALERT_METRICS: dict[str, tuple[str, ...]] = {
    "pelvic_drop_deg": ("pelvic_drop_deg", "pelvic_drop_left_deg", "pelvic_drop_right_deg"),
    "step_time_s": ("step_time_s", "stride_time_s", "stride_time_cv_pct", "step_time_cv_pct"),
}


def _markers_for(data: RunData, metric: str | None) -> list[Marker]:
    wanted = ALERT_METRICS.get(metric, (metric,)) if metric is not None else None
    out = []
    for a in data.alerts:
        if a.state != "raised" or (wanted is not None and a.metric not in wanted):
            continue
        out.append(Marker(a.t_s, f"{a.kind} ({a.severity}): {a.message}",
                          SEVERITY_COLOUR.get(a.severity, "#d62728")))
    return out


def _pain_markers(data: RunData) -> list[Marker]:
    return [Marker(p.t_s, f"pain {p.score}/10" + (f" {p.location}" if p.location else ""),
                   "#9467bd") for p in data.pain]


def _fmt(v: float | None, unit: str = "", nd: int = 1) -> str:
    if v is None:
        return "–"
    return f"{v:.{nd}f}{(' ' + unit) if unit else ''}"


def _clock(s: float) -> str:
    return f"{int(s // 60)}:{int(s % 60):02d}"


def _table(head: Sequence[str], rows: Sequence[Sequence[str]], cls: str = "") -> str:
    th = "".join(f"<th>{escape(h)}</th>" for h in head)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in r) + "</tr>" for r in rows)
    return f'<table class="{cls}"><thead><tr>{th}</tr></thead><tbody>{body}</tbody></table>'


def _metric_charts(data: RunData, early: Window) -> list[str]:
    bin_s = _bin_s(data)
    x_max = data.steps[-1].t_ic if data.steps else 0.0
    charts = []
    for m in METRICS:
        if m.key == "step_time_s":
            continue
        base = _median(_values(data, m.key, early))
        if m.key == "pelvic_drop_deg":
            series = [Series(f"{side} stance", binned(data, m.key, bin_s, side), colour)
                      for side, colour in (("left", PALETTE[0]), ("right", PALETTE[1]))]
            series = [s for s in series if s.points]
        else:
            pts = binned(data, m.key, bin_s)
            series = [Series(m.label, pts, PALETTE[0])] if pts else []
        if not series:
            continue
        lo, hi = data.coach.cadence_min_spm, data.coach.cadence_max_spm
        band = (Band(lo, hi, f"target band {lo:.0f}–{hi:.0f} spm")
                if m.key == "cadence_spm" else None)
        if m.key == "gct_balance_pct":
            band = Band(48.0, 52.0, "balanced (48–52 %)")
        charts.append(line_chart(
            m.key, f"{m.label} ({m.unit})", series, unit=m.unit, x_max=x_max, band=band,
            baseline=base, markers=_markers_for(data, m.key), shade=not_running(data),
            caption=f"{bin_s:.0f}-second means of running steps (grey: walking or "
                    f"standing); dashed line: baseline {_fmt(base, m.unit)} ({early.name}); "
                    "vertical lines: alerts."))
    return charts


def _form_chart(data: RunData) -> str:
    pts = tuple((s.t_s, s.form_score) for s in data.summaries)
    x_max = data.steps[-1].t_ic if data.steps else 0.0
    return line_chart("form_score", "Form score (100 = your own early-run form)",
                      [Series("form score", pts, PALETTE[2])] if pts else [], unit="score",
                      x_max=x_max, band=Band(75.0, 100.0, "good form (≥ 75)"),
                      markers=[*_markers_for(data, None), *_pain_markers(data)],
                      shade=not_running(data),
                      caption="Vertical lines: alerts raised (colour = severity) and pain "
                              "reports (purple).")


def early_late_rows(data: RunData) -> list[tuple[Metric, float | None, float | None]]:
    """Median of every metric in the early and late windows."""
    early, late = windows(data)
    return [(m, _median(_values(data, m.key, early)), _median(_values(data, m.key, late)))
            for m in METRICS]


def _change(m: Metric, a: float | None, b: float | None) -> str:
    if a is None or b is None or a == 0:
        return "–"
    pct = 100.0 * (b - a) / abs(a)
    worse = (m.higher_is_worse is True and pct > 3) or (m.higher_is_worse is False and pct < -3)
    cls = "worse" if worse else ""
    return f'<span class="{cls}">{pct:+.1f} %</span>'


def _early_late(data: RunData) -> str:
    early, late = windows(data)
    rows = early_late_rows(data)
    table = _table(
        ["metric", f"{early.name} {_clock(early.start_s)}–{_clock(early.end_s)}",
         f"{late.name} {_clock(late.start_s)}–{_clock(late.end_s)}", "change"],
        [[escape(m.label), _fmt(a, m.unit, 2 if m.unit in ('g', 's') else 1),
          _fmt(b, m.unit, 2 if m.unit in ('g', 's') else 1), _change(m, a, b)]
         for m, a, b in rows], "compare")
    shown = [(m, a, b) for m, a, b in rows if a is not None or b is not None]
    chart = bar_chart(
        "early_late", "Early vs late", [f"{m.label} ({m.unit})" for m, _, _ in shown],
        [(early.name, PALETTE[0], [a for _, a, _ in shown]),
         (late.name, PALETTE[1], [b for _, _, b in shown])],
        height=max(120, 34 * len(shown) + 30),
        caption="Medians per window; bars are scaled per metric.")
    return chart + table


def _balance(data: RunData) -> str:
    early, late = windows(data)
    groups, left, right = [], [], []
    for key, label in (("pelvic_drop_deg", "pelvic drop (°)"), ("gct_ms", "contact time (ms)"),
                       ("impact_g", "impact (g)")):
        for w in (early, late):
            lv = _median(_values(data, key, w, "left"))
            rv = _median(_values(data, key, w, "right"))
            if lv is None and rv is None:
                continue
            groups.append(f"{label} {w.name.split()[0]}")
            left.append(lv)
            right.append(rv)
    if not groups:
        return '<p class="note">No per-side values (side unknown for every step).</p>'
    return bar_chart("balance", "Left / right balance", groups,
                     [("left", PALETTE[0], left), ("right", PALETTE[1], right)],
                     height=max(120, 40 * len(groups) + 30),
                     caption="Medians per side in the early and late windows; a widening "
                             "gap late in the run is an asymmetry from fatigue.")


def _activity(data: RunData, plan_rows: Sequence[Sequence[str]] | None,
              plan_summary: str, planned: Sequence[tuple[str, float, float]]) -> str:
    x_max = data.steps[-1].t_ic if data.steps else 0.0
    spans = [(b.activity, b.start_s, b.end_s) for b in data.bouts]
    out = [timeline("activity", "Activity (detected walk / run)", spans, ACTIVITY_COLOUR,
                    x_max, markers=_pain_markers(data))]
    if planned:
        out.append(timeline("plan", "Return-to-run plan (prescribed)", list(planned),
                            ACTIVITY_COLOUR, max(x_max, planned[-1][2])))
    run_s = sum(b.end_s - b.start_s for b in data.bouts if b.activity == "run")
    walk_s = sum(b.end_s - b.start_s for b in data.bouts if b.activity != "run")
    out.append(f'<p>Running {_clock(run_s)} · walking/standing {_clock(walk_s)} · '
               f"{sum(1 for b in data.bouts if b.activity == 'run')} running bouts.</p>")
    if plan_rows is not None:
        out.append(f'<p class="compliance">{escape(plan_summary)}</p>')
        out.append(_table(["#", "activity", "planned", "actual", "started", "compliance"],
                          plan_rows, "plan"))
    else:
        out.append('<p class="note">No return-to-run plan given (use --plan, e.g. '
                   '"1 min run / 2 min walk x 8") — compliance not assessed.</p>')
    return "".join(out)


def _alerts(data: RunData) -> str:
    if not data.alerts:
        return '<p class="note">No alerts during this run.</p>'
    rows = [[_clock(a.t_s), f'<span class="sev {escape(a.severity)}">{escape(a.severity)}</span>',
             escape(a.kind), escape(a.state), escape(a.side or ""),
             _fmt(a.baseline, nd=2), _fmt(a.current, nd=2), _clock(a.began_at_s),
             escape(a.message)] for a in data.alerts]
    return _table(["at", "severity", "kind", "state", "side", "baseline", "current",
                   "began", "message"], rows, "alerts")


def _pain(data: RunData) -> str:
    if not data.pain:
        return '<p class="note">No pain reported.</p>'
    rows = [[_clock(p.t_s), f'<span class="{"worse" if p.score >= 3 else ""}">'
             f"{p.score}/10</span>", escape(p.location or "")] for p in data.pain]
    return _table(["at", "score", "location"], rows, "pain")


def _health(data: RunData) -> str:
    h = data.health
    if not h:
        return '<p class="note">No sensor health reports (recording or not recorded).</p>'
    up = 100.0 * sum(1 for x in h if x.connected) / len(h)
    bat = [x.battery_pct for x in h if x.battery_pct is not None]
    lat = [x.latency_ms for x in h if x.latency_ms is not None]
    rows = [[f"{up:.0f} %", _fmt(max(x.packet_loss_pct for x in h), "%"),
             str(max(x.reconnects for x in h)), str(max(x.gaps for x in h)),
             _fmt(_median(lat), "ms", 0), f"{bat[0]} → {bat[-1]} %" if bat else "–"]]
    return _table(["connected", "worst packet loss", "reconnects", "gaps",
                   "median latency", "battery"], rows, "health")


CSS = """
body{font:15px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0;color:#222;
background:#f6f7f9}main{max-width:960px;margin:0 auto;padding:16px 24px 48px}
h1{font-size:1.6em;margin:.4em 0 .1em}h2{margin-top:1.6em;border-bottom:2px solid #dde;
padding-bottom:4px}h3{font-size:1em;margin:.2em 0}.meta{color:#666}
.cards{display:flex;flex-wrap:wrap;gap:10px;margin:12px 0}.card{background:#fff;
border:1px solid #dde;border-radius:8px;padding:8px 14px;min-width:120px}
.card b{display:block;font-size:1.4em}.card span{color:#666;font-size:.85em}
figure.plot{background:#fff;border:1px solid #dde;border-radius:8px;margin:12px 0;
padding:10px}figcaption{color:#666;font-size:.85em}svg .frame{fill:none;stroke:#ccd}
svg .grid{stroke:#eef}svg .tick,svg .legend{font-size:11px;fill:#555}
svg .axis{font-size:11px;fill:#777}svg .baseline{stroke:#555;stroke-dasharray:6 4}
svg .shade{fill:#000;fill-opacity:.06}
svg .marker{stroke-width:1.5;stroke-opacity:.75}svg .empty{fill:#999}
table{border-collapse:collapse;background:#fff;width:100%;margin:8px 0;font-size:.9em}
th,td{border:1px solid #dde;padding:4px 8px;text-align:left}th{background:#eef1f6}
.worse{color:#c0392b;font-weight:600}.note{color:#777}.sev{padding:1px 6px;
border-radius:4px;color:#fff}.sev.info{background:#1f77b4}.sev.warning{background:#e67e22}
.sev.critical{background:#c0392b}footer{color:#999;font-size:.8em;margin-top:3em}
"""


def render(data: RunData, *, plan_rows: Sequence[Sequence[str]] | None = None,
           plan_summary: str = "", planned: Sequence[tuple[str, float, float]] = (),
           generated_at: dt.datetime | None = None,
           title_hook: Callable[[RunData], str] | None = None) -> str:
    """The report as one HTML document (UTF-8, no external resources)."""
    early, late = windows(data)
    info = data.info
    started = ""
    if data.started_at_ms is not None:
        started = dt.datetime.fromtimestamp(data.started_at_ms / 1000, dt.UTC).strftime(
            "%Y-%m-%d %H:%M UTC")
    scores = [s.form_score for s in data.summaries if s.form_score is not None]
    raised = [a for a in data.alerts if a.state == "raised"]
    cards = [
        ("duration", _clock(data.duration_s)),
        ("steps", str(len(data.steps))),
        ("median cadence", _fmt(_median([s.cadence_spm for s in data.steps
                                         if s.cadence_spm is not None]), "spm", 0)),
        ("final form score", _fmt(scores[-1] if scores else None, nd=0)),
        ("lowest form score", _fmt(min(scores) if scores else None, nd=0)),
        ("alerts raised", str(len(raised))),
        ("worst pain", f"{max(p.score for p in data.pain)}/10" if data.pain else "none"),
    ]
    title = title_hook(data) if title_hook else f"Run report · {info.runner_id} · {info.run_id}"
    gen = (generated_at or dt.datetime.now(dt.UTC)).strftime("%Y-%m-%d %H:%M UTC")
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width,initial-scale=1">',
        f"<title>{escape(title)}</title><style>{CSS}</style></head><body><main>",
        f"<h1>{escape(title)}</h1>",
        f'<p class="meta">runner <b>{escape(info.runner_id)}</b> · sensor '
        f"{escape(info.sensor_id)} ({escape(info.placement)}) · run {escape(info.run_id)}"
        f"{' · ' + escape(started) if started else ''} · source: {escape(data.source)}</p>",
        '<div class="cards">' + "".join(
            f'<div class="card"><span>{escape(k)}</span><b>{escape(v)}</b></div>'
            for k, v in cards) + "</div>",
        "<h2>Form over the run</h2>",
        _form_chart(data),
        "<h2>Metrics over time</h2>",
        f'<p class="note">Baseline = median of {escape(early.name)} '
        f"({_clock(early.start_s)}–{_clock(early.end_s)})"
        f"{', after the warm-up' if 'baseline' in early.name else ''}.</p>",
        *_metric_charts(data, early),
        "<h2>Early vs late</h2>",
        _early_late(data),
        "<h2>Left / right balance</h2>",
        _balance(data),
        "<h2>Activity and return-to-run compliance</h2>",
        _activity(data, plan_rows, plan_summary, planned),
        "<h2>Alerts</h2>",
        _alerts(data),
        "<h2>Pain reports</h2>",
        _pain(data),
        "<h2>Sensor health</h2>",
        _health(data),
        f"<footer>Generated by sensord on {gen}. Late window: {escape(late.name)}. "
        "This report is self-contained: no scripts, no network.</footer>",
        "</main></body></html>",
    ]
    return "\n".join(parts)


def bouts_timeline(bouts: Sequence[ActivityBout]) -> list[tuple[str, float, float]]:
    """Bouts as ``(activity, start, end)`` spans."""
    return [(b.activity, b.start_s, b.end_s) for b in bouts]
