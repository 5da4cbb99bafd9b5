"""Replay a recording CSV as a live :class:`~sensord.sources.base.Source`.

Blocks of ``block_s`` seconds are released when their last sample is due at ``speed``
times real time (``speed=0``: as fast as the consumer takes them). Times are shifted so
the first sample is at 0 (the live time axis); gaps in the recording stay gaps.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from sensord.errors import InputError
from sensord.model import PLACEMENTS, Placement, SampleBlock, SensorHealth
from sensord.sources.base import SourceEvent, SourceInfo, paced
from sensord.sources.recording import Recording, iter_blocks, read_recording


@dataclass(frozen=True, slots=True)
class ReplayParams:
    """Replay knobs: ``speed`` (1 = real time, 0 = unpaced) and block length, seconds."""

    path: str
    speed: float = 1.0
    block_s: float = 0.1

    def __post_init__(self) -> None:
        if not self.speed >= 0:
            raise InputError(f"replay speed must be >= 0, got {self.speed}")
        if not 0.001 <= self.block_s <= 60:
            raise InputError(f"block_s must be 0.001-60 s, got {self.block_s}")


class ReplaySource:
    """A recording streamed in (accelerated) real time."""

    def __init__(self, params: ReplayParams) -> None:
        self.params = params
        self._rec: Recording | None = None
        self._info: SourceInfo | None = None
        self._closed = False

    @property
    def info(self) -> SourceInfo:
        if self._info is None:
            raise RuntimeError("ReplaySource.info is valid after the source is opened")
        return self._info

    async def __aenter__(self) -> ReplaySource:
        rec = read_recording(self.params.path)  # InputError names file/line/column
        self._rec = rec
        placement = rec.metadata.get("placement")
        hint: Placement | None = placement if placement in PLACEMENTS else None  # type: ignore[assignment]
        self._info = SourceInfo(sensor_id=str(Path(rec.path).name), profile="recording",
                                placement_hint=hint, has_gyro=rec.samples.has_gyro,
                                rate_hz=rec.rate_hz, name=str(Path(rec.path).name))
        self._closed = False
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        self._closed = True

    async def stream(self) -> AsyncIterator[SourceEvent]:
        rec = self._rec
        if rec is None:
            raise RuntimeError("open the ReplaySource (async with) before streaming")
        s = rec.samples
        t0 = float(s.t_s[0])
        shifted = SampleBlock(s.t_s - t0, s.acc_mps2, s.gyr_dps)
        per = max(1, round(self.params.block_s * rec.rate_hz))
        yield SensorHealth(t_s=0.0, connected=True)
        async for block in paced(iter_blocks(shifted, per), self.params.speed):
            if self._closed:
                return
            yield block  # NaN rows stay NaN: the engine treats them as a gap
