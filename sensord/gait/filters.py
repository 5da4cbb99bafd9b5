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
from typing import TypeVar

import numpy as np
import numpy.typing as npt

from sensord.model import FloatArray

_G = TypeVar("_G", bound=np.generic)

#: Extra rows a :class:`Ring` buffer gets beyond twice what it holds.
_RING_SPARE = 64


@dataclass(frozen=True, slots=True, eq=False)
class Ring:
    """The most recent samples of a multi-channel signal, by absolute index.

    Appending is amortised O(new rows): the rows live in a buffer with spare room, and
    an append writes the new rows in place after the held ones. That never changes a
    row another ``Ring`` can see (a ring only sees rows up to its own end, and a buffer
    is only written past the furthest end handed out so far, ``written``); appending
    twice to the same ring (two branches of one state) copies on the second append.
    Every ``Ring`` is thus an immutable value, as the pure estimators require.

    Attributes
    ----------
    start
        Absolute index of ``data[0]``.
    data
        ``(m, channels)`` array; ``m`` never exceeds the ``max_len`` given to
        :meth:`append`.
    buf, offset, written
        The backing buffer (``None``: ``data`` is not in one), where ``data`` starts in
        it, and the shared count of its rows written so far (one-element list).
    """

    start: int
    data: FloatArray
    buf: FloatArray | None = None
    offset: int = 0
    written: list[int] | None = None

    @staticmethod
    def empty(start: int, channels: int) -> Ring:
        return Ring(start, np.empty((0, channels)))

    @property
    def end(self) -> int:
        """Absolute index one past the last sample."""
        return self.start + int(self.data.shape[0])

    def append(self, new: FloatArray, max_len: int) -> Ring:
        """This ring with ``new`` rows after it, holding at most ``max_len`` rows."""
        m, k = self.data.shape[0], new.shape[0]
        if k > max_len:
            new = new[k - max_len:]
        k_held = new.shape[0]
        keep = min(m, max_len - k_held)  # old rows still held
        start = self.start + (m - keep) + (k - k_held)
        end = self.offset + m  # where this ring's rows end in its buffer
        buf, written = self.buf, self.written
        if buf is not None and written is not None and written[0] == end \
                and end + k_held <= buf.shape[0]:
            buf[end:end + k_held] = new
            written[0] = end + k_held
            return Ring(start, buf[end - keep:end + k_held], buf, end - keep, written)
        rows = keep + k_held
        buf = np.empty((2 * rows + _RING_SPARE, new.shape[1]))
        buf[:keep] = self.data[m - keep:]
        buf[keep:rows] = new
        return Ring(start, buf[:rows], buf, 0, [rows])

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


def clip(x: npt.NDArray[_G], lo: float, hi: float) -> npt.NDArray[_G]:
    """``np.clip`` without its Python-level wrapper (a few us per call on tiny live
    batches): ``min(max(x, lo), hi)`` elementwise."""
    return np.minimum(np.maximum(x, lo), hi)  # type: ignore[no-any-return]


def parabolic_offset(y_left: float, y_mid: float, y_right: float) -> float:
    """Sub-sample offset (-0.5..0.5) of the extremum of a parabola through 3 points."""
    den = y_left - 2.0 * y_mid + y_right
    if den == 0.0 or not math.isfinite(den):
        return 0.0
    return min(max(0.5 * (y_left - y_right) / den, -0.5), 0.5)


#: Batches up to this size are folded by the plain recurrence in :func:`ema_fold`.
_EMA_LOOP_MAX = 4


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
    loop, as is a batch of at most ``_EMA_LOOP_MAX`` values; the constant-weight rest is
    a closed form over chunks of ``chunk`` values
    (``x_k = a^(k+1) x_{-1} + sum_j a^(k-j) w y_j``): a few matrix products instead of
    one Python iteration per value.
    """
    n = y.shape[0]
    out = np.empty_like(y)
    x = np.asarray(x0, dtype=np.float64)
    k = 0
    # the constant-weight tail starts where every later weight equals the last one (a
    # batch of a few values, as live, is cheaper as a plain loop)
    if n <= _EMA_LOOP_MAX:
        const_from = n
    else:
        const_from = n - int(np.argmax(w[::-1] != w[-1])) if (w != w[-1]).any() else 0
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


@dataclass(frozen=True, slots=True, eq=False)
class Windows:
    """Windows ``[start_k, stop_k)`` of a signal laid end to end, without padding.

    Per-step metrics reduce the samples of each step's window. Padding every window to
    the longest one costs as much as the longest window times the number of steps (one
    long stance, and the whole batch pays for it); laid end to end, the cost is the
    samples actually covered. Reductions use ``ufunc.reduceat`` over the window offsets.

    Attributes
    ----------
    index
        Absolute sample indices of all windows, in order, ``(total,)``.
    offset
        Position of each window's first sample in ``index``, ``(n,)``.
    count
        Samples per window (0 for an empty window), ``(n,)``.
    """

    index: npt.NDArray[np.intp]
    offset: npt.NDArray[np.intp]
    count: npt.NDArray[np.intp]

    @staticmethod
    def of(start: npt.NDArray[np.integer], stop: npt.NDArray[np.integer]) -> Windows:
        """Windows ``[start, stop)`` (``stop < start`` gives an empty window)."""
        count = np.maximum(np.asarray(stop) - start, 0).astype(np.intp)
        offset = np.zeros(count.size, dtype=np.intp)
        np.cumsum(count[:-1], out=offset[1:])
        total = int(offset[-1] + count[-1]) if count.size else 0
        index = np.arange(total, dtype=np.intp) + (start - offset).repeat(count)
        return Windows(index, offset, count)

    def spread(self, per_window: npt.NDArray[_G]) -> npt.NDArray[_G]:
        """A per-window value repeated over the window's samples (``(total, ...)``)."""
        return per_window.repeat(self.count, axis=0)

    def position(self) -> npt.NDArray[np.intp]:
        """Each sample's position within its window (0 at the window start)."""
        return np.arange(self.index.size, dtype=np.intp) - self.spread(self.offset)

    def first(self, values: FloatArray) -> FloatArray:
        """Each window's first value (NaN for an empty window)."""
        if values.size == 0:
            return np.full(self.count.size, np.nan)
        return np.where(self.count > 0, values[np.minimum(self.offset, values.size - 1)], np.nan)

    def reduce(self, ufunc: np.ufunc, values: FloatArray, empty: float) -> FloatArray:
        """``ufunc`` over each window's ``values`` (``(total,)``); ``empty`` for empty windows."""
        out = np.full(self.count.size, empty)
        # trailing empty windows start at the very end, where reduceat has no index
        n = int(np.searchsorted(self.offset, values.size))
        if n:
            out[:n] = np.where(self.count[:n] > 0, ufunc.reduceat(values, self.offset[:n]), empty)
        return out

    def cumsum(self, values: FloatArray) -> FloatArray:
        """Running sum of ``values`` restarting at each window."""
        c = values.cumsum()
        if not c.size:
            return c
        first = np.minimum(self.offset, c.size - 1)
        return c - self.spread(c[first] - values[first])


def small_median(values: list[float]) -> float:
    """Median of a short list (a few values): sort and pick, no type dispatch."""
    s = sorted(values)
    h = len(s) // 2
    return s[h] if len(s) % 2 else 0.5 * (s[h - 1] + s[h])
