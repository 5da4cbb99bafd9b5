"""Frozen dataclasses that cross every boundary of the pipeline.

The flow is::

    SampleBlock (sources) -> Step (gait) -> Alert / FormSummary (coaching)
        -> MQTT payloads (sinks) -> InfluxDB points (ingest)

Everything here is plain data: no I/O, no clocks, no behaviour beyond validation and
conversion to/from JSON-ready dicts. Units are in the field names (``_s``, ``_ms``,
``_deg``, ``_g``, ``_pct``, ``_spm``, ``_mps2``, ``_dps``) except for the public
per-step contract names ``t_ic`` / ``t_fc`` (seconds), which are kept stable because
outside evaluation tools read them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal, get_args

import numpy as np
import numpy.typing as npt

Placement = Literal["pelvis", "foot"]
Side = Literal["left", "right"]
Severity = Literal["info", "warning", "critical"]
AlertState = Literal["raised", "cleared"]

PLACEMENTS: tuple[str, ...] = get_args(Placement)
SIDES: tuple[str, ...] = get_args(Side)

FloatArray = npt.NDArray[np.float64]

GRAVITY_MPS2 = 9.80665


@dataclass(frozen=True, slots=True, eq=False)
class SampleBlock:
    """A contiguous block of IMU samples from one sensor.

    Attributes
    ----------
    t_s
        Sample times in seconds, shape ``(n,)``, strictly increasing. Gaps (missing
        samples) show up as a jump in ``t_s``; the gait engine resets across them.
    acc_mps2
        Specific force in the sensor frame, m/s², gravity included, shape ``(n, 3)``.
        NaN rows mark samples known to be invalid; they are treated as a gap.
    gyr_dps
        Angular rate in the sensor frame, deg/s, shape ``(n, 3)``, or ``None`` for an
        accelerometer-only sensor.
    """

    t_s: FloatArray
    acc_mps2: FloatArray
    gyr_dps: FloatArray | None = None

    def __post_init__(self) -> None:
        n = self.t_s.shape[0]
        if self.t_s.ndim != 1:
            raise ValueError(f"SampleBlock.t_s must be 1-D, got shape {self.t_s.shape}")
        if self.acc_mps2.shape != (n, 3):
            raise ValueError(
                f"SampleBlock.acc_mps2 must have shape ({n}, 3), got {self.acc_mps2.shape}"
            )
        if self.gyr_dps is not None and self.gyr_dps.shape != (n, 3):
            raise ValueError(
                f"SampleBlock.gyr_dps must have shape ({n}, 3), got {self.gyr_dps.shape}"
            )

    def __len__(self) -> int:
        return int(self.t_s.shape[0])

    @property
    def has_gyro(self) -> bool:
        return self.gyr_dps is not None

    def slice(self, start: int, stop: int) -> SampleBlock:
        """Samples ``[start, stop)`` as a new block (views, no copy)."""
        return SampleBlock(
            self.t_s[start:stop],
            self.acc_mps2[start:stop],
            None if self.gyr_dps is None else self.gyr_dps[start:stop],
        )

    @staticmethod
    def concat(blocks: list[SampleBlock]) -> SampleBlock:
        """Join blocks of the same kind (all with or all without gyro) in order."""
        if not blocks:
            return SampleBlock(np.empty(0), np.empty((0, 3)), None)
        gyro = blocks[0].has_gyro
        if any(b.has_gyro != gyro for b in blocks):
            raise ValueError("cannot concatenate blocks with and without gyroscope")
        return SampleBlock(
            np.concatenate([b.t_s for b in blocks]),
            np.concatenate([b.acc_mps2 for b in blocks]),
            np.concatenate([b.gyr_dps for b in blocks if b.gyr_dps is not None])
            if gyro
            else None,
        )


def _clean(value: Any) -> Any:
    """JSON-ready value: non-finite floats become ``None``, numpy scalars become Python."""
    if type(value) is float:  # the usual case, without the isinstance chain
        return value if math.isfinite(value) else None
    if isinstance(value, float | np.floating):
        f = float(value)
        return f if math.isfinite(f) else None
    if isinstance(value, np.integer):
        return int(value)
    return value


class _Record:
    """Mixin: ``to_dict`` / ``from_dict`` for flat frozen dataclasses."""

    __dataclass_fields__: ClassVar[dict[str, Any]]  # every subclass is a dataclass

    def to_dict(self) -> dict[str, Any]:
        """The fields as a JSON-ready dict (flat records: no deep copy needed)."""
        return {k: _clean(getattr(self, k)) for k in self.__dataclass_fields__}

    @classmethod
    def field_names(cls) -> tuple[str, ...]:
        return tuple(cls.__dataclass_fields__)


@dataclass(frozen=True, slots=True)
class Step(_Record):
    """One detected step (pelvis placement) or foot contact (foot placement).

    The first six fields are the public per-step contract of ``sensord analyze``
    (JSON Lines); keep their names and meanings stable.

    Attributes
    ----------
    t_ic
        Initial contact, seconds on the recording's time axis.
    t_fc
        Final contact (toe-off) of the same stance, seconds, or ``None``.
    gct_ms
        Ground contact time ``(t_fc - t_ic) * 1000``, or ``None``.
    cadence_spm
        Steps per minute around this step (from the recent step times).
    side
        ``"left"`` / ``"right"`` stance side, or ``None`` where unknown.
    pelvic_drop_deg
        Pelvis placement: peak frontal-plane rotation during this stance relative to the
        angle at initial contact, degrees, positive = swing side lower. ``None`` where it
        cannot be estimated (no gyroscope, foot placement).
    step_time_s
        Time from the previous initial contact (any side) to this one.
    stride_time_s
        Time from the previous initial contact of the same foot to this one.
    gct_balance_pct
        Left share of ground contact time, ``100 * L / (L + R)`` over recent steps;
        50 is symmetric.
    vertical_oscillation_cm
        Pelvis placement: peak-to-peak vertical excursion of the pelvis over this step.
    impact_g
        Peak vertical acceleration (gravity included) in the first part of stance, g.
    braking_g
        Peak forward deceleration after initial contact, g (positive = braking).
    flight_ms
        Time from the previous toe-off to this initial contact (negative = double support).
    """

    t_ic: float
    t_fc: float | None
    gct_ms: float | None
    cadence_spm: float | None
    side: Side | None
    pelvic_drop_deg: float | None
    placement: Placement = "pelvis"
    step_index: int = 0
    step_time_s: float | None = None
    stride_time_s: float | None = None
    gct_balance_pct: float | None = None
    vertical_oscillation_cm: float | None = None
    impact_g: float | None = None
    braking_g: float | None = None
    flight_ms: float | None = None

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Step:
        known = set(cls.field_names())
        return cls(**{k: v for k, v in d.items() if k in known})


@dataclass(frozen=True, slots=True)
class Gap(_Record):
    """The engine lost the signal between two times (no samples, NaN, or a dropout)."""

    t_start_s: float
    t_end_s: float


@dataclass(frozen=True, slots=True)
class Alert(_Record):
    """A coaching event: raised when form degrades, cleared when it recovers.

    Attributes
    ----------
    kind
        Detector name, e.g. ``"cadence_low"``, ``"pelvic_drop_rising"``, ``"pain_stop"``.
    severity
        ``"info"``, ``"warning"`` or ``"critical"``.
    metric
        The per-step metric it watches, e.g. ``"cadence_spm"``.
    baseline
        The runner's early-run value of that metric (or the target), or ``None``.
    current
        The current smoothed value, or ``None``.
    began_at_s
        When the degradation began (the change-point estimate), run time in seconds.
    t_s
        When this event was emitted, run time in seconds.
    state
        ``"raised"`` or ``"cleared"``.
    message
        A short sentence a runner understands mid-stride.
    side
        For per-side detectors, the side concerned.
    """

    kind: str
    severity: Severity
    metric: str
    baseline: float | None
    current: float | None
    began_at_s: float
    t_s: float
    state: AlertState
    message: str
    side: Side | None = None


@dataclass(frozen=True, slots=True)
class PainReport(_Record):
    """A runner's 0-10 pain score (NRS), at run time ``t_s``."""

    t_s: float
    score: int
    location: str | None = None

    def __post_init__(self) -> None:
        if isinstance(self.score, bool) or not isinstance(self.score, int):
            raise ValueError(f"pain score must be an integer 0-10, got {self.score!r}")
        if not 0 <= self.score <= 10:
            raise ValueError(f"pain score must be between 0 and 10, got {self.score}")
        if not math.isfinite(self.t_s):
            raise ValueError(f"pain report time must be finite, got {self.t_s!r}")


@dataclass(frozen=True, slots=True)
class FormSummary(_Record):
    """Rolling metrics over the last few seconds, with the composite form score."""

    t_s: float
    cadence_spm: float | None = None
    gct_ms: float | None = None
    pelvic_drop_left_deg: float | None = None
    pelvic_drop_right_deg: float | None = None
    gct_balance_pct: float | None = None
    vertical_oscillation_cm: float | None = None
    impact_g: float | None = None
    braking_g: float | None = None
    step_time_cv_pct: float | None = None
    form_score: float | None = None
    activity: Literal["run", "walk", "still"] | None = None
    steps: int = 0
    #: metrics pulling ``form_score`` down, worst first, comma-separated (or ``None``)
    form_factors: str | None = None


@dataclass(frozen=True, slots=True)
class SensorHealth(_Record):
    """Link quality of one sensor, reported every few seconds by the collector."""

    t_s: float
    connected: bool
    packet_loss_pct: float = 0.0
    reconnects: int = 0
    latency_ms: float | None = None
    battery_pct: int | None = None
    duplicates: int = 0
    malformed: int = 0
    gaps: int = 0


@dataclass(frozen=True, slots=True)
class RunInfo(_Record):
    """Who and what a stream belongs to; the tags every point carries."""

    runner_id: str
    sensor_id: str
    run_id: str
    placement: Placement
    sensor_side: Side | None = None
    extra: dict[str, str] = field(default_factory=dict)
