"""Return-to-run interval plans and their compliance report.

A plan is written the way physiotherapists prescribe it, e.g.::

    "1 min run / 3 min walk x 6"
    "5 min walk + 1 min run / 2 min walk x 8 + 5 min walk"
    "90s run, 90s walk x4"

or in the structured TOML form (see ``configs/runner.example.toml``)::

    [protocol]
    repeat = 6
    [[protocol.intervals]]
    activity = "run"
    duration_s = 60
    [[protocol.intervals]]
    activity = "walk"
    duration_s = 180

Compliance compares the planned intervals with the walk/run bouts the detectors found
(:func:`sensord.coaching.detectors.bouts`): bouts shorter than ``min_bout_s`` are merged
into their neighbours, "still" counts as walking, and planned intervals are matched in
order to the actual bouts of the same activity. Per interval, compliance is
``100 * (1 - |actual - planned| / planned)`` (floored at 0): running longer than
prescribed is as much a deviation as running less. Overall compliance is the
duration-weighted mean.

References
----------
Warden, S. J. et al. (2014). Management and prevention of bone stress injuries in
long-distance runners. *JOSPT* 44(10), 749-765 (walk/run return-to-run progressions).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from sensord.coaching.activity import Bout

PlanActivity = Literal["run", "walk"]

_UNITS_S = {
    "s": 1.0, "sec": 1.0, "secs": 1.0, "second": 1.0, "seconds": 1.0,
    "m": 60.0, "min": 60.0, "mins": 60.0, "minute": 60.0, "minutes": 60.0,
    "h": 3600.0, "hr": 3600.0, "hour": 3600.0, "hours": 3600.0,
}
_ITEM_RE = re.compile(
    r"^\s*(?:(?P<act1>run|walk|jog)\s+)?(?P<num>\d+(?:\.\d+)?)\s*(?P<unit>[a-z]+)"
    r"(?:\s+(?P<act2>run|walk|jog))?\s*$",
    re.IGNORECASE,
)
_REPEAT_RE = re.compile(r"^(?P<body>.*?)\s*[x×*]\s*(?P<n>\d+)\s*$", re.IGNORECASE)
# Bounds of a plan: repeats of one group, and the length of one interval (24 h).
MAX_REPEAT = 100
MAX_INTERVAL_S = 24 * 3600.0


@dataclass(frozen=True, slots=True)
class PlannedInterval:
    activity: PlanActivity
    duration_s: float


@dataclass(frozen=True, slots=True)
class IntervalPlan:
    """An expanded plan: every interval in order."""

    intervals: tuple[PlannedInterval, ...]
    text: str = ""

    @property
    def total_s(self) -> float:
        return sum(i.duration_s for i in self.intervals)


def _parse_item(item: str, whole: str) -> PlannedInterval:
    m = _ITEM_RE.match(item)
    if m is None:
        raise ValueError(
            f"cannot read {item.strip()!r} in plan {whole!r}: write intervals like "
            "'1 min run / 3 min walk x 6'"
        )
    act = (m.group("act1") or m.group("act2") or "").lower()
    if not act:
        raise ValueError(f"interval {item.strip()!r} in plan {whole!r} says neither run nor walk")
    unit = m.group("unit").lower()
    if unit not in _UNITS_S:
        raise ValueError(f"unknown time unit {unit!r} in plan {whole!r}: use s, min or h")
    dur = float(m.group("num")) * _UNITS_S[unit]
    if dur <= 0:
        raise ValueError(f"interval {item.strip()!r} in plan {whole!r} has no duration")
    if dur > MAX_INTERVAL_S:
        raise ValueError(f"interval {item.strip()!r} in plan {whole!r} is longer than 24 h, "
                         "the limit for one interval; e.g. '1 min run / 3 min walk x 6'")
    return PlannedInterval("run" if act in ("run", "jog") else "walk", dur)


def parse_plan(text: str) -> IntervalPlan:
    """Parse a plan string such as ``"1 min run / 3 min walk x 6"``.

    Groups are joined by ``+``; inside a group, intervals are separated by ``/`` or
    ``,`` and the group may end in ``x N`` (parentheses optional). ``N`` is at most
    :data:`MAX_REPEAT` (100) and an interval lasts at most :data:`MAX_INTERVAL_S` (24 h).

    Raises
    ------
    ValueError
        With the offending piece and an example of the accepted form.
    """
    if not text or not text.strip():
        raise ValueError("empty plan: write intervals like '1 min run / 3 min walk x 6'")
    out: list[PlannedInterval] = []
    for group in text.split("+"):
        g = group.strip()
        n = 1
        m = _REPEAT_RE.match(g)
        if m is not None:
            g, digits = m.group("body").strip(), m.group("n").lstrip("0") or "0"
            # (a huge count is out of bounds without int() of its digits)
            n = int(digits) if len(digits) <= len(str(MAX_REPEAT)) else MAX_REPEAT + 1
            if not 1 <= n <= MAX_REPEAT:
                raise ValueError(f"repeat count {m.group('n')} in plan {text!r} must be at "
                                 f"least 1 and at most {MAX_REPEAT}")
        g = g.strip().removeprefix("(").removesuffix(")")
        items = [_parse_item(i, text) for i in re.split(r"[/,]", g) if i.strip()]
        if not items:
            raise ValueError(f"empty group {group.strip()!r} in plan {text!r}")
        out.extend(items * n)
    return IntervalPlan(tuple(out), text.strip())


def plan_from_mapping(d: Mapping[str, Any]) -> IntervalPlan:
    """The structured TOML form (``repeat`` + ``[[intervals]]``) or ``plan = "..."``, with
    the bounds of :func:`parse_plan`.

    Raises
    ------
    ValueError
        Naming the key (``intervals[2].duration_s``) and the reason.
    """
    allowed = {"plan", "repeat", "intervals"}
    unknown = sorted(set(d) - allowed)
    if unknown:
        raise ValueError(f"{unknown[0]}: unknown key (allowed: {', '.join(sorted(allowed))})")
    if "plan" in d:
        if "intervals" in d or "repeat" in d:
            raise ValueError("plan: give either plan = \"...\" or [[protocol.intervals]], not both")
        if not isinstance(d["plan"], str):
            raise ValueError("plan: must be a string like '1 min run / 3 min walk x 6'")
        return parse_plan(d["plan"])
    ivs = d.get("intervals")
    if not isinstance(ivs, list) or not ivs:
        raise ValueError("intervals: give at least one [[protocol.intervals]] table")
    repeat = d.get("repeat", 1)
    if isinstance(repeat, bool) or not isinstance(repeat, int) or not 1 <= repeat <= MAX_REPEAT:
        raise ValueError(f"repeat: must be an integer from 1 to {MAX_REPEAT}, got {repeat!r}")
    items: list[PlannedInterval] = []
    for i, iv in enumerate(ivs):
        if not isinstance(iv, Mapping):
            raise ValueError(f"intervals[{i}]: must be a table with activity and duration_s")
        extra = sorted(set(iv) - {"activity", "duration_s"})
        if extra:
            raise ValueError(f"intervals[{i}].{extra[0]}: unknown key (use activity, duration_s)")
        act = iv.get("activity")
        if act not in ("run", "walk"):
            raise ValueError(f"intervals[{i}].activity: must be \"run\" or \"walk\", got {act!r}")
        dur = iv.get("duration_s")
        if (isinstance(dur, bool) or not isinstance(dur, int | float)
                or not 0 < dur <= MAX_INTERVAL_S):
            raise ValueError(f"intervals[{i}].duration_s: must be a number of seconds > 0 "
                             f"and <= {MAX_INTERVAL_S:.0f} (24 h), got {dur!r}")
        items.append(PlannedInterval(act, float(dur)))
    # the same plan in the text form parse_plan reads (for reports)
    text = " / ".join(f"{iv.duration_s:g} s {iv.activity}" for iv in items)
    return IntervalPlan(tuple(items * repeat), f"({text}) x {repeat}" if repeat > 1 else text)


@dataclass(frozen=True, slots=True)
class IntervalResult:
    index: int
    activity: PlanActivity
    planned_s: float
    actual_s: float
    start_s: float | None
    compliance_pct: float


@dataclass(frozen=True, slots=True)
class ComplianceReport:
    intervals: tuple[IntervalResult, ...]
    overall_pct: float
    planned_run_s: float
    actual_run_s: float
    extra_bouts: int

    def format(self) -> str:
        """A plain-text table."""
        lines = ["  #  activity  planned_s  actual_s  compliance"]
        for r in self.intervals:
            lines.append(
                f"{r.index + 1:3d}  {r.activity:8s}  {r.planned_s:9.0f}  {r.actual_s:8.0f}"
                f"  {r.compliance_pct:9.0f}%"
            )
        lines.append(
            f"overall {self.overall_pct:.0f}%  run planned {self.planned_run_s:.0f} s, "
            f"actual {self.actual_run_s:.0f} s, extra bouts {self.extra_bouts}"
        )
        return "\n".join(lines)


def _simplify(bouts: Sequence[Bout], min_bout_s: float) -> list[tuple[PlanActivity, float, float]]:
    seq: list[tuple[PlanActivity, float, float]] = []
    for b in bouts:
        act: PlanActivity = "run" if b.activity == "run" else "walk"
        seq.append((act, b.start_s, b.end_s))
    changed = True
    while changed:  # absorb short bouts into the neighbours, then merge equal neighbours
        changed = False
        merged: list[tuple[PlanActivity, float, float]] = []
        for a, s, e in seq:
            if merged and merged[-1][0] == a:
                merged[-1] = (a, merged[-1][1], e)
            else:
                merged.append((a, s, e))
        for i, (_a, s, e) in enumerate(merged):
            if e - s < min_bout_s and 0 < i < len(merged) - 1:
                prev = merged[i - 1]
                merged[i - 1] = (prev[0], prev[1], e)
                del merged[i]
                changed = True
                break
        seq = merged
    return seq


def compliance(
    plan: IntervalPlan, bouts: Sequence[Bout], min_bout_s: float = 10.0
) -> ComplianceReport:
    """Planned vs actual durations of every interval of ``plan``."""
    seq = _simplify(bouts, min_bout_s)
    first = plan.intervals[0].activity if plan.intervals else "run"
    while seq and seq[0][0] != first:
        seq.pop(0)
    j = 0
    res: list[IntervalResult] = []
    for k, iv in enumerate(plan.intervals):
        if j < len(seq) and seq[j][0] == iv.activity:
            _a, s, e = seq[j]
            actual, start = e - s, s
            j += 1
        else:
            actual, start = 0.0, None
        pct = max(0.0, 100.0 * (1.0 - abs(actual - iv.duration_s) / iv.duration_s))
        res.append(IntervalResult(k, iv.activity, iv.duration_s, actual, start, pct))
    total = sum(r.planned_s for r in res)
    overall = sum(r.compliance_pct * r.planned_s for r in res) / total if total else 0.0
    return ComplianceReport(
        tuple(res),
        overall,
        sum(r.planned_s for r in res if r.activity == "run"),
        sum(r.actual_s for r in res if r.activity == "run"),
        len(seq) - j,
    )
