"""The simulator as a live :class:`~sensord.sources.base.Source` (bounded memory).

Blocks come from :func:`sensord.sources.simulator.iter_simulated_blocks` and are released
at ``speed`` times real time (``speed=0``: unpaced). The simulator's ground truth for
each block is kept in :attr:`SimSource.truth` (for tests and benchmarks).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field

from sensord.errors import InputError
from sensord.model import SampleBlock, SensorHealth
from sensord.sources.base import SourceEvent, SourceInfo, paced
from sensord.sources.simulator import SimParams, TruthStep, iter_simulated_blocks


@dataclass(frozen=True, slots=True)
class SimSourceParams:
    """Simulation, seed, pacing (``speed``; 0 = unpaced) and block length, seconds."""

    sim: SimParams = field(default_factory=SimParams)
    seed: int = 0
    speed: float = 1.0
    block_s: float = 0.1

    def __post_init__(self) -> None:
        if not self.speed >= 0:
            raise InputError(f"simulation speed must be >= 0, got {self.speed}")


class SimSource:
    """Simulated samples streamed like a live sensor."""

    def __init__(self, params: SimSourceParams | None = None) -> None:
        self.params = params or SimSourceParams()
        self.truth: list[TruthStep] = []
        self._closed = False
        sim = self.params.sim
        self._info = SourceInfo(sensor_id=f"sim-{self.params.seed}", profile="simulator",
                                placement_hint=sim.placement, has_gyro=sim.gyro,
                                rate_hz=sim.rate_hz, name="simulator")

    @property
    def info(self) -> SourceInfo:
        return self._info

    async def __aenter__(self) -> SimSource:
        self._closed = False
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        self._closed = True

    async def stream(self) -> AsyncIterator[SourceEvent]:
        yield SensorHealth(t_s=0.0, connected=True)
        async for block in paced(self._blocks(), self.params.speed):
            if self._closed:
                return
            yield block

    def _blocks(self) -> Iterator[SampleBlock]:
        p = self.params
        for block, truth in iter_simulated_blocks(p.sim, p.seed, p.block_s):
            if len(block):
                self.truth.extend(truth)
                yield block
