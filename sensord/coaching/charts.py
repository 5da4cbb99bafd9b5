"""Sequential change detection primitives: one-sided CUSUM and EWMA.

The detectors standardise each block mean against the runner's baseline,
``z = direction * (x - baseline) / sigma``, so "bad" is always positive, and run Page's
one-sided CUSUM on ``z``::

    S_0 = 0,   S_n = max(0, S_{n-1} + z_n - k),   signal when S_n > h.

The change point is estimated, as Page suggested, by the last time ``S`` left zero.

References
----------
Page, E. S. (1954). Continuous inspection schemes. *Biometrika* 41(1/2), 100-115.
Roberts, S. W. (1959). Control chart tests based on geometric moving averages.
*Technometrics* 1(3), 239-250.
Siegmund, D. (1985). *Sequential Analysis*, Springer, eq. (2.57) (ARL approximation).
Lucas, J. M. & Crosier, R. B. (1982). Fast initial response for CUSUM quality-control
schemes. *Technometrics* 24(3), 199-205 (ARL tables used to check the approximation).
Lucas, J. M. & Saccucci, M. S. (1990). Exponentially weighted moving average control
schemes: properties and enhancements. *Technometrics* 32(1), 1-12.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Cusum:
    """State of a one-sided upper CUSUM.

    Attributes
    ----------
    s
        The statistic (standard units), never negative.
    start_s
        Start time of the block at which ``s`` last left zero (the change-point
        estimate), or ``None`` while ``s == 0``.
    """

    s: float = 0.0
    start_s: float | None = None


def cusum_update(c: Cusum, z: float, k: float, t_s: float) -> Cusum:
    """One observation ``z`` (standard units, bad = positive) at block start ``t_s``."""
    s = max(0.0, c.s + z - k)
    if s <= 0.0:
        return Cusum(0.0, None)
    return Cusum(s, c.start_s if c.start_s is not None else t_s)


def cusum_arl(k: float, h: float, shift: float = 0.0) -> float:
    """Siegmund's approximation of the average run length of a one-sided CUSUM.

    Parameters
    ----------
    k, h
        Reference value and decision interval, standard units.
    shift
        Mean of the i.i.d. N(shift, 1) observations; 0 gives the in-control ARL.

    Returns
    -------
    float
        Expected number of observations until ``S > h``. Within a few percent of the
        Markov-chain values tabled by Lucas & Crosier (1982): ``k=0.5, h=4`` -> 336,
        ``h=5`` -> 930 (one-sided).
    """
    delta = shift - k
    b = h + 1.166
    if abs(delta) < 1e-9:
        return b * b
    return (math.exp(-2.0 * delta * b) + 2.0 * delta * b - 1.0) / (2.0 * delta * delta)


def ewma_update(prev: float | None, x: float, lam: float) -> float:
    """Roberts' exponentially weighted moving average ``lam * x + (1 - lam) * prev``."""
    return x if prev is None else lam * x + (1.0 - lam) * prev
