"""Inline SVG charts for the HTML report (no JavaScript, no external assets).

Each chart is a ``<figure class="plot" data-plot="NAME">`` holding one ``<svg>``; hover
titles (``<title>``) give exact values. All text is XML-escaped.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf")


@dataclass(frozen=True, slots=True)
class Series:
    """A line: ``(x, y)`` points (``y`` may be ``None`` for a break)."""

    name: str
    points: tuple[tuple[float, float | None], ...]
    colour: str = PALETTE[0]
    dashed: bool = False


@dataclass(frozen=True, slots=True)
class Marker:
    """A vertical event line at ``x`` (an alert, a pain report)."""

    x: float
    label: str
    colour: str = "#d62728"


@dataclass(frozen=True, slots=True)
class Band:
    """A shaded horizontal band between ``lo`` and ``hi`` (e.g. the cadence target)."""

    lo: float
    hi: float
    label: str
    colour: str = "#2ca02c"


def nice_ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    """About ``n`` round tick values covering ``[lo, hi]``."""
    if not (math.isfinite(lo) and math.isfinite(hi)) or hi <= lo:
        return [lo]
    raw = (hi - lo) / max(1, n)
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    start = math.ceil(lo / step) * step
    out = []
    v = start
    while v <= hi + 1e-9 * step:
        out.append(round(v, 10))
        v += step
    return out


def time_ticks(x_max: float, n: int = 8) -> list[float]:
    """Tick positions in whole minutes (or 10/30 s for short runs) up to ``x_max``."""
    step = next((c for c in (10, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200)
                 if x_max / c <= n), 14400)
    return [float(k * step) for k in range(int(x_max // step) + 1)]


def _decimals(ticks: Sequence[float]) -> int:
    """Decimals that tell adjacent ticks apart."""
    if len(ticks) < 2:
        return 1
    step = abs(ticks[1] - ticks[0])
    return max(0, min(4, -math.floor(math.log10(step) + 1e-9))) if step > 0 else 1


def _fmt(v: float) -> str:
    return f"{v:.0f}" if abs(v) >= 100 or v == int(v) else f"{v:.1f}"


def _fmt_time(s: float) -> str:
    return f"{int(s // 60)}:{int(s % 60):02d}"


def _figure(name: str, title: str, body: str, w: int, h: int, caption: str = "") -> str:
    cap = f"<figcaption>{escape(caption)}</figcaption>" if caption else ""
    return (f'<figure class="plot" data-plot="{escape(name)}">'
            f"<h3>{escape(title)}</h3>"
            f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {w} {h}" width="100%" '
            f'role="img" aria-label="{escape(title)}">{body}</svg>{cap}</figure>')


def line_chart(name: str, title: str, series: Sequence[Series], *, unit: str = "",
               x_max: float | None = None, band: Band | None = None,
               baseline: float | None = None, markers: Sequence[Marker] = (),
               shade: Sequence[tuple[float, float]] = (),
               caption: str = "", width: int = 900, height: int = 260) -> str:
    """A time chart: x is run time in seconds (labelled m:ss); ``shade`` greys out
    stretches (walking) of the run."""
    ml, mr, mt, mb = 56, 16, 14, 36
    pw, ph = width - ml - mr, height - mt - mb
    ys = [y for s in series for _, y in s.points if y is not None]
    xs = [x for s in series for x, _ in s.points]
    if band is not None:
        ys += [band.lo, band.hi]
    if baseline is not None:
        ys.append(baseline)
    if not ys or not xs:
        return _figure(name, title, f'<text x="{width / 2}" y="{height / 2}" '
                       'text-anchor="middle" class="empty">no data</text>', width, height,
                       caption)
    y_lo, y_hi = min(ys), max(ys)
    pad = (y_hi - y_lo) * 0.08 or max(1.0, abs(y_hi) * 0.05)
    y_lo, y_hi = y_lo - pad, y_hi + pad
    x_lo, x_hi = 0.0, max(x_max or 0.0, max(xs), 1.0)

    def px(x: float) -> float:
        return ml + (x - x_lo) / (x_hi - x_lo) * pw

    def py(y: float) -> float:
        return mt + (y_hi - y) / (y_hi - y_lo) * ph

    parts = [f'<rect x="{ml}" y="{mt}" width="{pw}" height="{ph}" class="frame"/>']
    if band is not None:
        parts.append(f'<rect x="{ml}" y="{py(band.hi):.1f}" width="{pw}" '
                     f'height="{py(band.lo) - py(band.hi):.1f}" fill="{band.colour}" '
                     f'fill-opacity="0.12" class="band"><title>{escape(band.label)}</title></rect>')
    for a, b in shade:
        xa, xb = px(max(a, x_lo)), px(min(b, x_hi))
        if xb > xa:
            parts.append(f'<rect x="{xa:.1f}" y="{mt}" width="{xb - xa:.1f}" height="{ph}" '
                         f'class="shade"><title>walking / standing {_fmt_time(a)}–'
                         f"{_fmt_time(b)}</title></rect>")
    y_ticks = nice_ticks(y_lo, y_hi)
    nd = _decimals(y_ticks)
    for t in y_ticks:
        parts.append(f'<line x1="{ml}" x2="{ml + pw}" y1="{py(t):.1f}" y2="{py(t):.1f}" '
                     f'class="grid"/><text x="{ml - 6}" y="{py(t) + 4:.1f}" '
                     f'text-anchor="end" class="tick">{t:.{nd}f}</text>')
    for t in time_ticks(x_hi):
        parts.append(f'<text x="{px(t):.1f}" y="{mt + ph + 16}" text-anchor="middle" '
                     f'class="tick">{_fmt_time(t)}</text>')
    parts.append(f'<text x="{ml + pw / 2}" y="{height - 4}" text-anchor="middle" '
                 'class="axis">run time (min:s)</text>')
    if unit:
        parts.append(f'<text x="12" y="{mt + ph / 2}" text-anchor="middle" class="axis" '
                     f'transform="rotate(-90 12 {mt + ph / 2})">{escape(unit)}</text>')
    if baseline is not None:
        parts.append(f'<line x1="{ml}" x2="{ml + pw}" y1="{py(baseline):.1f}" '
                     f'y2="{py(baseline):.1f}" class="baseline"><title>baseline '
                     f"{_fmt(baseline)} {escape(unit)}</title></line>")
    for m in markers:
        x = px(min(max(m.x, x_lo), x_hi))
        parts.append(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{mt}" y2="{mt + ph}" '
                     f'stroke="{m.colour}" class="marker"><title>{escape(m.label)} at '
                     f"{_fmt_time(m.x)}</title></line>")
    for s in series:
        segs: list[list[str]] = [[]]
        for x, y in s.points:
            if y is None:
                if segs[-1]:
                    segs.append([])
                continue
            segs[-1].append(f"{px(x):.1f},{py(y):.1f}")
        dash = ' stroke-dasharray="5 4"' if s.dashed else ""
        for seg in segs:
            if len(seg) == 1:
                x_s, y_s = seg[0].split(",")
                parts.append(f'<circle cx="{x_s}" cy="{y_s}" r="2.5" fill="{s.colour}"/>')
            elif seg:
                parts.append(f'<polyline points="{" ".join(seg)}" fill="none" '
                             f'stroke="{s.colour}" stroke-width="1.8"{dash} class="series">'
                             f"<title>{escape(s.name)}</title></polyline>")
    legend_x = ml + 8
    for s in series:
        parts.append(f'<rect x="{legend_x}" y="{mt + 6}" width="12" height="3" '
                     f'fill="{s.colour}"/><text x="{legend_x + 16}" y="{mt + 11}" '
                     f'class="legend">{escape(s.name)}</text>')
        legend_x += 24 + 7 * len(s.name)
    return _figure(name, title, "".join(parts), width, height, caption)


def bar_chart(name: str, title: str, groups: Sequence[str],
              series: Sequence[tuple[str, str, Sequence[float | None]]], *,
              caption: str = "", width: int = 900, height: int = 240,
              value_fmt: str = "{:.1f}") -> str:
    """Grouped horizontal comparison: for each group, one bar per series.

    Values of a group are scaled to the group's largest, so metrics of different units
    share one chart; the exact value is printed on each bar.
    """
    ml, mr, mt, mb = 170, 70, 24, 10
    n_s = max(1, len(series))
    row_h = (height - mt - mb) / max(1, len(groups))
    bar_h = min(16.0, (row_h - 6) / n_s)
    pw = width - ml - mr
    parts = []
    lx = ml
    for sname, colour, _ in series:
        parts.append(f'<rect x="{lx}" y="4" width="12" height="10" fill="{colour}"/>'
                     f'<text x="{lx + 16}" y="13" class="legend">{escape(sname)}</text>')
        lx += 30 + 7 * len(sname)
    for gi, g in enumerate(groups):
        vals = [s[2][gi] for s in series]
        top = max((abs(v) for v in vals if v is not None), default=0.0) or 1.0
        y0 = mt + gi * row_h
        parts.append(f'<text x="{ml - 8}" y="{y0 + row_h / 2 + 4:.1f}" text-anchor="end" '
                     f'class="tick">{escape(g)}</text>')
        for si, (sname, colour, _) in enumerate(series):
            v = vals[si]
            y = y0 + 3 + si * bar_h
            if v is None:
                parts.append(f'<text x="{ml + 4}" y="{y + bar_h - 3:.1f}" class="tick">n/a</text>')
                continue
            w = pw * abs(v) / top
            parts.append(f'<rect x="{ml}" y="{y:.1f}" width="{w:.1f}" height="{bar_h - 2:.1f}" '
                         f'fill="{colour}" class="bar"><title>{escape(g)} {escape(sname)}: '
                         f"{value_fmt.format(v)}</title></rect>"
                         f'<text x="{ml + w + 4:.1f}" y="{y + bar_h - 4:.1f}" class="tick">'
                         f"{value_fmt.format(v)}</text>")
    return _figure(name, title, "".join(parts), width, height, caption)


def timeline(name: str, title: str, spans: Sequence[tuple[str, float, float]],
             colours: dict[str, str], x_max: float, markers: Sequence[Marker] = (),
             caption: str = "", width: int = 900, height: int = 70) -> str:
    """Labelled spans on the run-time axis (walk/run bouts, planned intervals)."""
    ml, mr = 56, 16
    pw = width - ml - mr
    x_max = max(x_max, 1.0)

    def px(x: float) -> float:
        return ml + max(0.0, min(x, x_max)) / x_max * pw

    parts = [f'<rect x="{ml}" y="8" width="{pw}" height="30" class="frame"/>']
    for label, a, b in spans:
        parts.append(f'<rect x="{px(a):.1f}" y="8" width="{max(0.5, px(b) - px(a)):.1f}" '
                     f'height="30" fill="{colours.get(label, "#999")}" class="span">'
                     f"<title>{escape(label)} {_fmt_time(a)}–{_fmt_time(b)}</title></rect>")
    for m in markers:
        parts.append(f'<line x1="{px(m.x):.1f}" x2="{px(m.x):.1f}" y1="4" y2="42" '
                     f'stroke="{m.colour}" class="marker"><title>{escape(m.label)}</title></line>')
    for t in time_ticks(x_max):
        parts.append(f'<text x="{px(t):.1f}" y="56" text-anchor="middle" class="tick">'
                     f"{_fmt_time(t)}</text>")
    lx = ml
    for label, colour in colours.items():
        parts.append(f'<rect x="{lx}" y="60" width="10" height="8" fill="{colour}"/>'
                     f'<text x="{lx + 14}" y="68" class="legend">{escape(label)}</text>')
        lx += 24 + 7 * len(label)
    return _figure(name, title, "".join(parts), width, height + 10, caption)
