"""The :class:`Source` protocol: where a live run's samples come from.

A source is an async stream of events, each a :class:`~sensord.model.SampleBlock`
(samples, in order, on the source's time axis in seconds), a
:class:`~sensord.model.SensorHealth` (link quality, every few seconds), or, from a
cadence-only sensor (RSC footpod), a :class:`CadenceSample`. Three sources
implement it:

- :class:`sensord.sources.ble.collector.BleCollector`: a live BLE sensor via bleak,
- :class:`sensord.sources.replay.ReplaySource`: a recording CSV replayed at real time
  (or faster),
- :class:`sensord.sources.sim_source.SimSource`: the simulator, streamed live.

Usage (the runtime)::

    async with source:                  # connects / opens; info is known after this
        info = source.info              # profile, placement hint, has_gyro, rate
        async for event in source.stream():
            ...

Time axis
---------
``SampleBlock.t_s`` is seconds since the source started (its first sample is near 0),
strictly increasing across blocks. Missing samples show up as a jump in ``t_s``; a
source never interpolates across a gap. For a BLE sensor the axis is host time (the
sensor clock mapped through :mod:`sensord.sources.ble.clock`), so several sensors of one
run share it.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from types import TracebackType
from typing import Protocol, runtime_checkable

from sensord.model import Placement, SampleBlock, SensorHealth


@dataclass(frozen=True, slots=True)
class CadenceSample:
    """A cadence-only sensor's reading (RSC footpod): no raw samples, just metrics.

    Attributes
    ----------
    t_s
        Source time of the reading (arrival, on the same axis as ``SampleBlock.t_s``).
    cadence_spm
        Steps per minute, both feet.
    speed_mps, stride_length_m
        Further RSC fields where the sensor sends them.
    """

    t_s: float
    cadence_spm: float
    speed_mps: float | None = None
    stride_length_m: float | None = None


#: What a source yields.
SourceEvent = SampleBlock | SensorHealth | CadenceSample


@dataclass(frozen=True, slots=True)
class SourceInfo:
    """Facts about a source the runtime needs for :class:`~sensord.model.RunInfo`.

    Attributes
    ----------
    sensor_id
        Stable identifier of the sensor (BLE address, recording path, ``"sim"``).
    profile
        Profile name (``"polar_pmd"``, ``"rsc"``, ``"recording"``, ``"simulator"``...).
    placement_hint
        Where the sensor is probably worn, or ``None`` when unknown (the user decides).
    has_gyro
        Whether sample blocks carry angular rate.
    rate_hz
        Nominal sample rate, Hz, or ``None`` for a source without raw samples.
    name
        Human-readable device name, if any.
    cadence_only
        ``True`` for a sensor that reports cadence, not raw IMU samples (RSC footpod):
        it yields :class:`CadenceSample` events instead of sample blocks.
    """

    sensor_id: str
    profile: str
    placement_hint: Placement | None
    has_gyro: bool
    rate_hz: float | None
    name: str = ""
    cadence_only: bool = False


@runtime_checkable
class Source(Protocol):
    """An async stream of :data:`SourceEvent` from one sensor.

    ``__aenter__`` opens the source (connects, loads the file) and raises
    :class:`~sensord.errors.ServiceError` / :class:`~sensord.errors.InputError` when it
    cannot; after it, :attr:`info` is valid. ``stream()`` yields events until the
    source ends (recording exhausted, ``close()`` called); a live source never ends on
    its own and never raises on bad data (it counts it in ``SensorHealth``).
    """

    @property
    def info(self) -> SourceInfo:
        """Facts about the sensor; valid after ``__aenter__``."""
        ...

    async def __aenter__(self) -> Source: ...

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...

    def stream(self) -> AsyncIterator[SourceEvent]:
        """The events, in order; ends when the source ends or is closed."""
        ...

    async def close(self) -> None:
        """Stop streaming and release the device / file; idempotent."""
        ...


async def paced(blocks: Iterable[SampleBlock], speed: float) -> AsyncIterator[SampleBlock]:
    """Release each block when its last sample is due at ``speed`` times real time.

    The clock starts at the first iteration and ``t_s = 0`` is due then; ``speed = 0``
    releases blocks as fast as the consumer takes them (still yielding to the event
    loop between blocks). Used by the sources that replay stored or simulated samples.
    """
    loop = asyncio.get_running_loop()
    start = loop.time()
    for block in blocks:
        if speed > 0:
            delay = start + float(block.t_s[-1]) / speed - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
        else:
            await asyncio.sleep(0)
        yield block
