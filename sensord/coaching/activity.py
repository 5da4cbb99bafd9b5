"""Walk/run/still segmentation of the per-step stream into bouts.

Running has a flight phase (both feet off the ground: positive flight time, contact
shorter than the step), walking has double support (negative flight time, contact
longer than the step); a gap in steps longer than ``still_after_s`` is "still".
Where flight time is unknown the step cadence decides (running >= 140 spm by default;
walking is usually 90-130 spm). A switch needs ``activity_switch_steps`` consecutive
steps of the other activity (hysteresis), and the new bout starts at the first of them.

References
----------
Novacheck, T. F. (1998). The biomechanics of running. *Gait & Posture* 7(1), 77-95
(walking: double support; running: flight phase).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

from sensord.coaching.params import CoachParams
from sensord.model import Step

Activity = Literal["run", "walk", "still"]


@dataclass(frozen=True, slots=True)
class Bout:
    """A contiguous stretch of one activity, run time in seconds."""

    activity: Activity
    start_s: float
    end_s: float
    steps: int

    @property
    def duration_s(self) -> float:
        return self.end_s - self.start_s


@dataclass(frozen=True, slots=True)
class ActivityState:
    """Streaming segmentation state (bounded: the current bout and one candidate)."""

    label: Activity | None = None
    bout_start_s: float = 0.0
    bout_steps: int = 0
    last_t_s: float | None = None
    cand: Activity | None = None
    cand_count: int = 0
    cand_start_s: float = 0.0


def classify_step(params: CoachParams, s: Step) -> Literal["run", "walk"] | None:
    """``"run"`` / ``"walk"`` from one step's flight time (or contact vs step time,
    or cadence), ``None`` when the step carries none of them."""
    flight = s.flight_ms
    if flight is None and s.gct_ms is not None and s.step_time_s is not None:
        flight = s.step_time_s * 1000.0 - s.gct_ms
    if flight is not None:
        return "run" if flight > params.run_min_flight_ms else "walk"
    if s.cadence_spm is not None:
        return "run" if s.cadence_spm >= params.run_min_cadence_spm else "walk"
    return None


def activity_update(
    params: CoachParams, st: ActivityState, s: Step
) -> tuple[ActivityState, list[Bout]]:
    """Feed one step; returns the new state and the bouts it completed."""
    t = s.t_ic
    done: list[Bout] = []
    label = st.label
    bout_start, bout_steps = st.bout_start_s, st.bout_steps
    cand, cand_count, cand_start = st.cand, st.cand_count, st.cand_start_s
    cls = classify_step(params, s)
    if st.last_t_s is not None and t - st.last_t_s > params.still_after_s:
        if label is not None:
            done.append(Bout(label, bout_start, st.last_t_s, bout_steps))
        done.append(Bout("still", st.last_t_s, t, 0))
        label = None
    if label is None:
        # an unclassifiable first step (no flight, step time or cadence yet) starts a
        # walk bout: a run is then entered after `activity_switch_steps` running steps
        return ActivityState(cls or "walk", t, 1, t, None, 0, t), done
    if cls is None or cls == label:
        return ActivityState(label, bout_start, bout_steps + 1, t, None, 0, t), done
    if cand == cls:
        cand_count += 1
    else:
        cand, cand_count, cand_start = cls, 1, t
    if cand_count >= params.activity_switch_steps:
        done.append(Bout(label, bout_start, cand_start, bout_steps))
        return ActivityState(cls, cand_start, cand_count, t, None, 0, t), done
    return ActivityState(label, bout_start, bout_steps + 1, t, cand, cand_count, cand_start), done


def close_bout(st: ActivityState) -> list[Bout]:
    """The open bout at the end of a recording (empty if none)."""
    if st.label is None or st.last_t_s is None:
        return []
    return [Bout(st.label, st.bout_start_s, st.last_t_s, st.bout_steps)]


def segment(params: CoachParams, steps: Iterable[Step]) -> list[Bout]:
    """Offline segmentation of a whole step stream into bouts (a fold of
    :func:`activity_update`)."""
    st = ActivityState()
    out: list[Bout] = []
    for s in steps:
        st, done = activity_update(params, st, s)
        out.extend(done)
    out.extend(close_bout(st))
    return merge_bouts(out)


def merge_bouts(bouts: Sequence[Bout]) -> list[Bout]:
    """Join consecutive bouts of the same activity (e.g. run / gap / run stays split
    by the "still" bout, but two adjacent run bouts merge)."""
    out: list[Bout] = []
    for b in bouts:
        if b.end_s <= b.start_s and b.steps == 0:
            continue
        if out and out[-1].activity == b.activity:
            p = out[-1]
            out[-1] = Bout(p.activity, p.start_s, max(p.end_s, b.end_s), p.steps + b.steps)
        else:
            out.append(b)
    return out
