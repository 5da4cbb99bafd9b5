"""``sensord report``: a self-contained HTML report of one run.

:func:`build_report` turns a :class:`~sensord.report.data.RunData` (from a recording,
InfluxDB or events in memory) and an optional return-to-run plan into one HTML page with
inline SVG plots: no scripts, no network, safe to e-mail or open offline.
"""

from __future__ import annotations

import datetime as dt

from sensord.errors import InputError
from sensord.report.data import RunData
from sensord.report.html import render


def build_report(data: RunData, plan_text: str | None = None,
                 generated_at: dt.datetime | None = None) -> str:
    """The HTML report; ``plan_text`` (e.g. ``"1 min run / 2 min walk x 8"``) adds the
    return-to-run compliance table.

    Raises
    ------
    InputError
        The plan cannot be parsed.
    """
    if plan_text is None:
        return render(data, generated_at=generated_at)
    from sensord.coaching.activity import Bout
    from sensord.coaching.protocol import compliance, parse_plan

    try:
        plan = parse_plan(plan_text)
    except ValueError as e:
        raise InputError(f"--plan: {e}") from None
    bouts = [Bout(b.activity, b.start_s, b.end_s, 0)  # type: ignore[arg-type]
             for b in data.bouts]
    rep = compliance(plan, bouts)
    rows = [[str(r.index + 1), r.activity, f"{r.planned_s:.0f} s", f"{r.actual_s:.0f} s",
             "–" if r.start_s is None else f"{int(r.start_s // 60)}:{int(r.start_s % 60):02d}",
             f"{r.compliance_pct:.0f} %"] for r in rep.intervals]
    start = next((r.start_s for r in rep.intervals if r.start_s is not None), 0.0)
    planned = []
    t = start
    for iv in plan.intervals:
        planned.append((iv.activity, t, t + iv.duration_s))
        t += iv.duration_s
    summary = (f"Plan {plan_text!r}: overall compliance {rep.overall_pct:.0f} % — ran "
               f"{rep.actual_run_s:.0f} s of {rep.planned_run_s:.0f} s prescribed"
               f"{f', {rep.extra_bouts} extra bouts' if rep.extra_bouts else ''}.")
    return render(data, plan_rows=rows, plan_summary=summary, planned=planned,
                  generated_at=generated_at)


__all__ = ["RunData", "build_report"]
