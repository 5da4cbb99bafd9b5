"""CUSUM run lengths: Siegmund's approximation vs tables and vs simulation."""

from __future__ import annotations

import numpy as np
import pytest

from sensord.coaching.charts import Cusum, cusum_arl, cusum_update, ewma_update


@pytest.mark.parametrize(("h", "table"), [(4.0, 336.0), (5.0, 930.0)])
def test_siegmund_matches_lucas_crosier_tables(h: float, table: float) -> None:
    # one-sided CUSUM, k = 0.5 (Lucas & Crosier 1982, Table 1, doubled two-sided values)
    assert cusum_arl(0.5, h) == pytest.approx(table, rel=0.03)


def test_arl_matches_monte_carlo_small_h() -> None:
    rng = np.random.default_rng(0)
    k, h = 1.0, 2.0
    lengths = []
    for _ in range(400):
        c, n = Cusum(), 0
        while c.s <= h:
            n += 1
            c = cusum_update(c, float(rng.normal()), k, float(n))
        lengths.append(n)
    assert np.mean(lengths) == pytest.approx(cusum_arl(k, h), rel=0.2)


def test_default_chart_in_control_arl_is_long_and_detects_fast() -> None:
    assert cusum_arl(1.0, 5.0) > 100_000  # blocks: > 130 h at 5-s blocks
    assert cusum_arl(1.0, 5.0, shift=3.0) < 3.0


def test_change_point_is_where_s_left_zero() -> None:
    c = Cusum()
    for t, z in enumerate([0.0, -1.0, 3.0, 3.0, 3.0]):
        c = cusum_update(c, z, 1.0, float(t))
    assert c.start_s == 2.0
    assert c.s == pytest.approx(6.0)


def test_ewma() -> None:
    assert ewma_update(None, 2.0, 0.3) == 2.0
    assert ewma_update(2.0, 4.0, 0.5) == 3.0
