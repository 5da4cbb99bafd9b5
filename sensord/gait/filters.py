"""Streaming building blocks: a bounded ring of recent samples and linear-phase kernels.

Detectors keep the last few seconds of their signals in a :class:`Ring` addressed by
absolute grid index, and compute smoothed signals and derivatives with symmetric
(linear-phase, zero-delay after alignment) Gaussian kernels only where the kernel's
whole support is available. Each output sample then depends on a fixed window of input
samples, never on where a block boundary fell: the core of chunk invariance.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from sensord.model import FloatArray


@dataclass(frozen=True, slots=True, eq=False)
class Ring:
    """The most recent samples of a multi-channel signal, by absolute index.

    Attributes
    ----------
    start
        Absolute index of ``data[0]``.
    data
        ``(m, channels)`` array; ``m`` never exceeds the ``max_len`` given to
        :meth:`append`.
    """

    start: int
    data: FloatArray

    @staticmethod
    def empty(start: int, channels: int) -> Ring:
        return Ring(start, np.empty((0, channels)))

    @property
    def end(self) -> int:
        """Absolute index one past the last sample."""
        return self.start + int(self.data.shape[0])

    def append(self, new: FloatArray, max_len: int) -> Ring:
        if not new.shape[0]:
            data = self.data
        elif not self.data.shape[0]:
            data = new
        else:
            data = np.concatenate([self.data, new])
        drop = max(0, data.shape[0] - max_len)
        return Ring(self.start + drop, data[drop:])

    def get(self, a: int, b: int) -> FloatArray:
        """Samples ``[a, b)`` by absolute index, clipped to what is held."""
        lo = max(a, self.start) - self.start
        hi = max(min(b, self.end) - self.start, lo)
        return self.data[lo:hi]


def gaussian_kernels(sigma_s: float, rate_hz: float) -> tuple[FloatArray, FloatArray]:
    """Gaussian smoothing and first-derivative kernels for :func:`correlate_valid`.

    Parameters
    ----------
    sigma_s
        Standard deviation of the Gaussian in seconds.
    rate_hz
        Sample rate.

    Returns
    -------
    smooth, deriv
        Kernels of length ``2r + 1`` with ``r = ceil(3 sigma)`` samples. ``smooth``
        sums to 1; ``deriv`` returns the derivative per second of the smoothed signal
        (it maps a unit-slope ramp to exactly ``rate_hz``).
    """
    sigma = max(sigma_s * rate_hz, 0.5)
    r = max(1, math.ceil(3.0 * sigma))
    m = np.arange(-r, r + 1, dtype=np.float64)
    g = np.exp(-0.5 * (m / sigma) ** 2)
    g /= g.sum()
    d = m * g
    d /= float(np.sum(m * d))
    return g, d * rate_hz


def correlate_valid(x: FloatArray, kernel: FloatArray) -> FloatArray:
    """``y[i] = sum_j x[i + j] * kernel[j]`` for every fully covered ``i``.

    The output sample ``i`` is centred on input sample ``i + len(kernel) // 2``.
    """
    if x.shape[0] < kernel.shape[0]:
        return np.empty(0)
    return np.correlate(x, kernel, mode="valid")


def parabolic_offset(y_left: float, y_mid: float, y_right: float) -> float:
    """Sub-sample offset (-0.5..0.5) of the extremum of a parabola through 3 points."""
    den = y_left - 2.0 * y_mid + y_right
    if den == 0.0 or not math.isfinite(den):
        return 0.0
    return float(np.clip(0.5 * (y_left - y_right) / den, -0.5, 0.5))


def ema_fold(x0: FloatArray, y: FloatArray, w: FloatArray, chunk: int = 64) -> FloatArray:
    """The running averages ``x_k = (1 - w_k) x_{k-1} + w_k y_k`` of a batch, in order.

    Parameters
    ----------
    x0
        ``(d,)`` average before the batch.
    y
        ``(n, d)`` new values.
    w
        ``(n,)`` weights in ``[0, 1]`` (0 = skip, 1 = restart at ``y_k``); usually
        ``1 / min(memory, count)``, which shrinks to a constant and stays there.

    Returns
    -------
    ``(n, d)``: the average after each value. The warm-up (varying weights) is a plain
    loop; the constant-weight rest is a closed form over chunks of ``chunk`` values
    (``x_k = a^(k+1) x_{-1} + sum_j a^(k-j) w y_j``): a few matrix products instead of
    one Python iteration per value.
    """
    n = y.shape[0]
    out = np.empty_like(y)
    x = np.asarray(x0, dtype=np.float64)
    k = 0
    # the constant-weight tail starts where every later weight equals the last one
    const_from = n - int(np.argmax(w[::-1] != w[-1])) if n and (w != w[-1]).any() else 0
    while k < min(const_from, n):
        x = (1.0 - w[k]) * x + w[k] * y[k]
        out[k] = x
        k += 1
    if k < n:
        wc = float(w[-1])
        a = 1.0 - wc
        size = min(chunk, n - k)
        e = np.arange(size)
        powers = np.tril(a ** np.maximum(e[:, None] - e[None, :], 0))  # a^(i-j), j <= i
        carry = a ** (e + 1.0)
        while k < n:
            m = min(size, n - k)
            blk = powers[:m, :m] @ (wc * y[k:k + m]) + carry[:m, None] * x[None, :]
            out[k:k + m] = blk
            x = blk[-1]
            k += m
    return out


def small_median(values: list[float]) -> float:
    """Median of a short list (a few values): sort and pick, no type dispatch."""
    s = sorted(values)
    h = len(s) // 2
    return s[h] if len(s) % 2 else 0.5 * (s[h - 1] + s[h])
