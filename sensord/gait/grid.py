"""Uniform time grid: the shape every placement-specific detector consumes.

Raw sensor samples arrive with jitter, missing samples, NaN rows and gaps at any rate
from 50 to 1000 Hz. :mod:`sensord.gait.resample` puts them on one absolute grid
(sample ``k`` is at time ``k / rate_hz``) and splits the stream at gaps, so detectors
only ever see evenly spaced, finite samples.
"""

from __future__ import annotations

from dataclasses import dataclass

from sensord.model import FloatArray


@dataclass(frozen=True, slots=True, eq=False)
class UniformBlock:
    """Evenly spaced, finite samples on the engine grid.

    Attributes
    ----------
    start_index
        Absolute grid index of the first sample; sample ``i`` is at time
        ``(start_index + i) / rate_hz`` seconds on the source's time axis.
    rate_hz
        Grid rate (constant for a whole stream).
    acc_mps2
        ``(n, 3)`` specific force in the sensor frame, m/s².
    gyr_dps
        ``(n, 3)`` angular rate in the sensor frame, deg/s, or ``None``.
    reset
        ``True`` when a gap precedes this block: the detector must drop all history
        (filters, buffers, pending events) and start over, emitting no step that would
        span the gap.
    """

    start_index: int
    rate_hz: float
    acc_mps2: FloatArray
    gyr_dps: FloatArray | None
    reset: bool = False

    def __len__(self) -> int:
        return int(self.acc_mps2.shape[0])
