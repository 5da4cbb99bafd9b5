"""parse_pain: accepted forms and clear errors."""

from __future__ import annotations

import pytest

from sensord.coaching.pain import parse_pain
from sensord.errors import InputError


@pytest.mark.parametrize(
    ("value", "score", "location"),
    [(4, 4, None), ("4", 4, None), ("4/10", 4, None), (" 0 ", 0, None), (10, 10, None),
     ("3/10 left hip", 3, "left hip"), ("pain: 5", 5, None), (7.0, 7, None)],
)
def test_accepted(value: str | int | float, score: int, location: str | None) -> None:
    r = parse_pain(value, t_s=12.5)
    assert r.score == score
    assert r.location == location
    assert r.t_s == 12.5


@pytest.mark.parametrize(
    ("value", "reason"),
    [(11, "outside 0-10"), (-1, "outside 0-10"), ("12/10", "outside 0-10"),
     ("3.5", "whole number"), (2.5, "whole number"), ("three", "not understood"),
     ("", "not understood"), (True, "not a number"), (float("nan"), "finite")],
)
def test_refused(value: str | int | float, reason: str) -> None:
    with pytest.raises(InputError, match=reason):
        parse_pain(value)


def test_location_argument_overrides_text() -> None:
    assert parse_pain("2 knee", location="hamstring").location == "hamstring"
