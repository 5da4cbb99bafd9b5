"""Mounting-agnostic body axes from the motion itself.

- **Vertical** comes from gravity: a slow exponential average of the specific force
  (Moe-Nilssen 1998: the mean trunk acceleration over a few strides is gravity).
- **Forward** comes from the step pattern (pelvis): the anteroposterior acceleration
  repeats every step, while the mediolateral one alternates sign from left to right
  step. Summing the horizontal acceleration of two consecutive steps (aligned at
  initial contact) keeps the AP pattern and cancels the ML one; their difference does
  the opposite. The forward axis is the horizontal direction that maximises
  ``var(sum) - var(diff)``. Its sign comes from braking: after initial contact the
  body decelerates (Zijlstra & Hof 2003), so the forward acceleration in the first part
  of a step is below its step mean.

References
----------
Moe-Nilssen R. (1998) A new method for evaluating motor control in gait under real-life
environmental conditions. Clin Biomech 13:320-327.
Zijlstra W., Hof A.L. (2003) Assessment of spatio-temporal gait parameters from trunk
accelerations during human walking. Gait Posture 18:1-10.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy.signal import lfilter

from sensord.model import FloatArray


@dataclass(frozen=True, slots=True, eq=False)
class GravityState:
    """Exponential-average state (``lfilter`` ``zi``) of the specific force, or None."""

    zi: FloatArray | None = None


def track_gravity(tau_s: float, rate_hz: float, state: GravityState,
                  acc: FloatArray) -> tuple[GravityState, FloatArray]:
    """Unit 'up' vector per sample (``(n, 3)``), from an exponential average of ``acc``.

    The first sample of a stream initialises the average.
    """
    alpha = min(1.0, 1.0 / (tau_s * rate_hz))
    zi = state.zi
    if zi is None:
        zi = (1.0 - alpha) * acc[0]
    g, zf = lfilter([alpha], [1.0, alpha - 1.0], acc, axis=0, zi=zi[None, :])
    norm = np.linalg.norm(g, axis=1, keepdims=True)
    up = g / np.maximum(norm, 1e-9)
    return GravityState(zf[0]), up


PATTERN_POINTS = 24


@dataclass(frozen=True, slots=True, eq=False)
class ForwardState:
    """Running second moments of step-pair sums (AP) and differences (ML).

    Attributes
    ----------
    prev_pattern
        The previous step's horizontal acceleration, resampled to
        ``PATTERN_POINTS`` points, ``(PATTERN_POINTS, 3)``.
    c_sum, c_diff
        Exponentially weighted ``3 x 3`` second moments of pattern sums/differences.
    braking
        Exponentially weighted mean of (early-step minus whole-step) horizontal
        acceleration, ``(3,)``: points backwards on average.
    steps
        Number of patterns folded in.
    """

    prev_pattern: FloatArray | None = None
    c_sum: FloatArray | None = None
    c_diff: FloatArray | None = None
    braking: FloatArray | None = None
    steps: int = 0


def step_pattern(h: FloatArray) -> FloatArray:
    """Resample one step of horizontal acceleration ``(m, 3)`` to fixed points."""
    m = h.shape[0]
    x = np.linspace(0.0, m - 1.0, PATTERN_POINTS)
    return np.column_stack([np.interp(x, np.arange(m), h[:, c]) for c in range(3)])


def update_forward(state: ForwardState, pattern: FloatArray,
                   memory_steps: float = 40.0) -> ForwardState:
    """Fold one step's horizontal-acceleration pattern into the forward-axis estimate."""
    w = 1.0 / min(memory_steps, state.steps + 1.0)
    centred = pattern - pattern.mean(axis=0)
    early = centred[: PATTERN_POINTS // 4].mean(axis=0)
    braking = early if state.braking is None else (1 - w) * state.braking + w * early
    c_sum, c_diff = state.c_sum, state.c_diff
    if state.prev_pattern is not None:
        prev = state.prev_pattern - state.prev_pattern.mean(axis=0)
        s = centred + prev
        d = centred - prev
        cs, cd = s.T @ s, d.T @ d
        c_sum = cs if c_sum is None else (1 - w) * c_sum + w * cs
        c_diff = cd if c_diff is None else (1 - w) * c_diff + w * cd
    return ForwardState(pattern, c_sum, c_diff, braking, state.steps + 1)


MIN_FORWARD_STEPS = 4


def forward_axes(c_net: FloatArray, braking: FloatArray,
                 up: FloatArray) -> tuple[FloatArray, npt.NDArray[np.bool_]]:
    """Forward unit vectors for a batch, from ``c_sum - c_diff`` ``(n, 3, 3)``, the braking
    means ``(n, 3)`` and the up vectors ``(n, 3)``; and which of them are identifiable."""
    n = up.shape[0]
    p = np.eye(3)[None, :, :] - up[:, :, None] * up[:, None, :]
    m = p @ c_net @ p
    _, vecs = np.linalg.eigh(m)
    f = vecs[:, :, -1]  # eigenvector of the largest eigenvalue
    f = f - up * np.einsum("ni,ni->n", f, up)[:, None]
    norm = np.linalg.norm(f, axis=1)
    ok = norm > 1e-6
    f = f / np.where(ok, norm, 1.0)[:, None]
    flip = np.einsum("ni,ni->n", f, braking) > 0.0  # early-step acceleration points back
    f = np.where(flip[:, None], -f, f)
    return np.where(ok[:, None], f, 0.0).reshape(n, 3), ok
