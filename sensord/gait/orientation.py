"""Mounting-agnostic body axes from the motion itself.

- **Vertical** comes from gravity: the mean specific force over the last few seconds
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

from sensord.gait.filters import ema_fold
from sensord.model import FloatArray


@dataclass(frozen=True, slots=True, eq=False)
class GravityState:
    """Gravity tracker state.

    Attributes
    ----------
    next_index
        Absolute grid index of the next sample expected.
    partial
        Samples of the current, not yet complete bin, ``(m, 3)``.
    bins
        Means of the most recent complete bins, ``(b, 3)`` (at most one window).
    up
        'Up' after the last complete bin (``None`` before the first): what every sample
        of the current bin gets.
    """

    next_index: int = 0
    partial: FloatArray | None = None
    bins: FloatArray | None = None
    up: FloatArray | None = None


def track_gravity(window_s: float, bin_s: float, rate_hz: float, state: GravityState,
                  acc: FloatArray, start_index: int) -> tuple[GravityState, FloatArray]:
    """Unit 'up' vector per sample (``(n, 3)``, or ``(1, 3)`` when it is the same for
    all of them): the mean specific force over a window.

    Samples are averaged in bins of ``bin_s`` aligned to the absolute grid; 'up' at a
    sample is the mean of the last ``window_s`` of complete bins before the sample's own
    bin. Until a segment has a complete bin, it is the running mean of the sample's own
    (partial) bin. Every value is a fixed-order sum of the same samples however the
    stream is cut into blocks. A ``start_index`` that does not continue the previous
    block starts a new segment.
    """
    per_bin = max(1, round(bin_s * rate_hz))
    n_bins = max(1, round(window_s / bin_s))
    fresh = state.partial is None or state.next_index != start_index
    partial = np.empty((0, 3)) if fresh or state.partial is None else state.partial
    bins = np.empty((0, 3)) if fresh or state.bins is None else state.bins
    n = acc.shape[0]
    if state.up is not None and not fresh and partial.shape[0] + n < per_bin:
        # the usual live case: a few samples that complete no bin
        return GravityState(start_index + n, np.concatenate([partial, acc]), bins,
                            state.up), state.up[None, :]
    first = start_index - partial.shape[0]  # absolute index of x[0]
    x = np.concatenate([partial, acc]) if partial.shape[0] else acc
    offset = min((-first) % per_bin, x.shape[0])  # x[:offset]: the segment's head
    n_full = (x.shape[0] - offset) // per_bin
    full = x[offset: offset + n_full * per_bin].reshape(n_full, per_bin, 3)
    all_bins = np.concatenate([bins, full.sum(axis=1) / per_bin])
    # window means ending at each complete bin (up to n_bins bins)
    cs = np.concatenate([np.zeros((1, 3)), np.cumsum(all_bins, axis=0)])
    k = np.arange(1, all_bins.shape[0] + 1)
    lo = np.maximum(0, k - n_bins)
    means = (cs[k] - cs[lo]) / (k - lo)[:, None]
    # 'up' is constant within a bin: normalise per bin, then spread over its samples
    means /= np.maximum(np.linalg.norm(means, axis=1, keepdims=True), 1e-9)
    pos = np.arange(partial.shape[0], partial.shape[0] + n)  # positions in x
    own = np.floor_divide(pos - offset, per_bin)  # bin index among the new full bins
    prev_bin = np.where(pos < offset, -1, own + bins.shape[0] - 1)
    have = prev_bin >= 0
    up = np.take(means, np.maximum(prev_bin, 0), axis=0) if means.shape[0] else np.empty((n, 3))
    if n and not have[0]:
        # no complete bin before: running mean of the sample's own bin (or the head)
        for a, b in ((0, offset), (offset, min(offset + per_bin, x.shape[0]))):
            sel = ~have & (pos >= a) & (pos < b)
            if sel.any():
                run = np.cumsum(x[a:b], axis=0) / np.arange(1, b - a + 1)[:, None]
                run /= np.maximum(np.linalg.norm(run, axis=1, keepdims=True), 1e-9)
                up[sel] = run[pos[sel] - a]
    rest = x[offset + n_full * per_bin:] if x.shape[0] > offset else x
    return GravityState(start_index + n, rest.copy(), all_bins[-n_bins:].copy(),
                        means[-1].copy() if means.shape[0] else None), up


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


def update_forward(state: ForwardState, patterns: FloatArray, memory_steps: float = 40.0
                   ) -> tuple[ForwardState, FloatArray, FloatArray, npt.NDArray[np.int64]]:
    """Fold a batch of steps' horizontal-acceleration patterns ``(n, P, 3)`` in order.

    Returns the new state and, after each step, what :func:`moments` returns.
    """
    n = patterns.shape[0]
    if n == 0:
        return state, np.zeros((0, 3, 3)), np.zeros((0, 3)), np.zeros(0, dtype=np.int64)
    # (sums / counts: what .mean() computes, without its Python-level overhead)
    centred = patterns - patterns.sum(axis=1, keepdims=True) / PATTERN_POINTS
    early = centred[:, : PATTERN_POINTS // 4].sum(axis=1) / (PATTERN_POINTS // 4)
    prev = np.empty_like(centred)
    prev[1:] = centred[:-1]
    # (the very first step has no previous one: its pair gets weight 0 below)
    prev[0] = 0.0 if state.prev_pattern is None else \
        state.prev_pattern - state.prev_pattern.sum(axis=0) / PATTERN_POINTS
    s_, d_ = centred + prev, centred - prev
    folded = state.steps + np.arange(n)  # steps folded before each one
    w = 1.0 / np.minimum(memory_steps, folded + 1.0)
    # the pair moments start at the second step ever (the first has no previous step)
    w_pair = np.where(folded == 0, 0.0, np.where(folded == 1, 1.0, w))
    pairs = np.concatenate([(s_.transpose(0, 2, 1) @ s_).reshape(n, 9),
                            (d_.transpose(0, 2, 1) @ d_).reshape(n, 9)], axis=1)
    x0 = np.zeros(18) if state.c_sum is None or state.c_diff is None else \
        np.concatenate([state.c_sum.reshape(9), state.c_diff.reshape(9)])
    c = ema_fold(x0, pairs, w_pair)
    brk = ema_fold(np.zeros(3) if state.braking is None else state.braking, early, w)
    defined = folded + 1 >= 2
    net = np.where(defined[:, None], c[:, :9] - c[:, 9:], 0.0).reshape(n, 3, 3)
    steps = np.where(defined, folded + 1, 0).astype(np.int64)
    c_last = c[-1] if defined[-1] else None
    new = ForwardState(patterns[-1].copy(),
                       None if c_last is None else c_last[:9].reshape(3, 3).copy(),
                       None if c_last is None else c_last[9:].reshape(3, 3).copy(),
                       brk[-1].copy(), state.steps + n)
    return new, net, brk, steps


def moments(state: ForwardState) -> tuple[FloatArray, FloatArray, int]:
    """``c_sum - c_diff``, the braking mean and the steps folded (0 while undefined)."""
    if state.c_sum is None or state.c_diff is None or state.braking is None:
        return np.zeros((3, 3)), np.zeros(3), 0
    return state.c_sum - state.c_diff, state.braking, state.steps


MIN_FORWARD_STEPS = 4
_EYE3 = np.eye(3)


def forward_axes(c_net: FloatArray, braking: FloatArray,
                 up: FloatArray) -> tuple[FloatArray, npt.NDArray[np.bool_]]:
    """Forward unit vectors for a batch, from ``c_sum - c_diff`` ``(n, 3, 3)``, the braking
    means ``(n, 3)`` and the up vectors ``(n, 3)``; and which of them are identifiable.

    Forward is the horizontal direction of largest ``c_net``: the principal axis of its
    2 x 2 restriction to the horizontal plane, in closed form. It is identifiable where
    that largest value is positive (the AP pattern outweighs the ML one).
    """
    # a horizontal basis e1, e2 per sample
    ref = _EYE3[np.abs(up).argmin(axis=1)]
    e1 = ref - up * (ref * up).sum(axis=1, keepdims=True)
    e1 /= np.sqrt((e1 * e1).sum(axis=1, keepdims=True))
    e2 = np.stack([up[:, 1] * e1[:, 2] - up[:, 2] * e1[:, 1],
                   up[:, 2] * e1[:, 0] - up[:, 0] * e1[:, 2],
                   up[:, 0] * e1[:, 1] - up[:, 1] * e1[:, 0]], axis=1)  # up x e1
    c1, c2 = np.einsum("nij,nj->ni", c_net, e1), np.einsum("nij,nj->ni", c_net, e2)
    a, b, c = (e1 * c1).sum(axis=1), (e1 * c2).sum(axis=1), (e2 * c2).sum(axis=1)
    ok = 0.5 * (a + c) + np.hypot(0.5 * (a - c), b) > 0.0
    theta = 0.5 * np.arctan2(2.0 * b, a - c)
    f = np.cos(theta)[:, None] * e1 + np.sin(theta)[:, None] * e2
    flip = (f * braking).sum(axis=1) > 0.0  # early-step acceleration points back
    f = np.where(flip[:, None], -f, f)
    return np.where(ok[:, None], f, 0.0), ok
