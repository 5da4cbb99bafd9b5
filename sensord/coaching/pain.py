"""Pain reports: parsing a runner's 0-10 score.

The score is the 11-point numeric rating scale (NRS, 0 = no pain, 10 = worst
imaginable; Hawker et al. 2011, *Arthritis Care Res* 63(S11):S240-S252). The usual
advice for running with low-back, hip or hamstring pain is to stop when it reaches 3/10
(the "pain-monitoring model", Silbernagel et al. 2007, *Am J Sports Med* 35(6):897-906).
"""

from __future__ import annotations

import math
import re

from sensord.errors import InputError
from sensord.model import PainReport

_PAIN_RE = re.compile(
    r"^\s*(?:pain\s*[:=]?\s*)?(?P<score>[+-]?\d+(?:\.\d+)?)\s*(?:/\s*10)?"
    r"(?:\s*[,;]?\s*(?P<location>[A-Za-z][\w \-]*?))?\s*$",
    re.IGNORECASE,
)


def parse_pain(
    value: str | int | float, t_s: float = 0.0, location: str | None = None
) -> PainReport:
    """A :class:`~sensord.model.PainReport` from ``"4"``, ``"4/10"``, ``"4/10 left hip"`` or 4.

    Parameters
    ----------
    value
        The score, as an integer 0-10 or text (optionally ``/10`` and a location).
    t_s
        Run time of the report, seconds.
    location
        Where it hurts; overrides a location given in the text.

    Raises
    ------
    InputError
        Malformed text, a non-integer score, or a score outside 0-10; the message says
        what was given and what is accepted.
    """
    hint = "give a whole number from 0 (no pain) to 10 (worst), e.g. 3 or '3/10 left hip'"
    text_loc: str | None = None
    if isinstance(value, bool):
        raise InputError(f"pain score {value!r} is not a number: {hint}")
    if isinstance(value, int):
        score_f = float(value)
    elif isinstance(value, float):
        score_f = value
    elif isinstance(value, str):
        m = _PAIN_RE.match(value)
        if m is None:
            raise InputError(f"pain score {value!r} is not understood: {hint}")
        score_f = float(m.group("score"))
        text_loc = m.group("location")
    else:
        raise InputError(f"pain score of type {type(value).__name__} is not understood: {hint}")
    if not math.isfinite(score_f):
        raise InputError(f"pain score {value!r} is not a finite number: {hint}")
    if score_f != int(score_f):
        raise InputError(f"pain score {value!r} is not a whole number: {hint}")
    score = int(score_f)
    if not 0 <= score <= 10:
        raise InputError(f"pain score {score} is outside 0-10: {hint}")
    if not math.isfinite(t_s):
        raise InputError(f"pain report time {t_s!r} is not finite")
    loc = location if location is not None else (text_loc.strip() if text_loc else None)
    return PainReport(t_s=float(t_s), score=score, location=loc or None)
