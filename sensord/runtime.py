"""The one place where the live pipeline's tasks and queues are wired.

::

    source task --(bounded queue)--> engine + coaching task --> outputs
     (sim / replay / BLE)              (pure folds)               (console, local store,
                                                                   MQTT publisher)

Queue policy: the source -> engine queue holds at most ``queue_blocks`` blocks and the
source waits when it is full (backpressure; no sample is dropped). A live BLE collector
buffers on its side and reports anything it had to drop in ``SensorHealth``.

Everything behind the queue is a fold of pure ``step`` functions: the gait engine
(:mod:`sensord.gait.engine`) and the coaching detectors (:mod:`sensord.coaching`), the
same code ``sensord analyze`` and ``sensord report`` run offline.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from sensord.coaching import detectors as coaching
from sensord.coaching.params import CoachParams
from sensord.contract import BrokerConfig
from sensord.gait import engine
from sensord.model import (
    Alert,
    FormSummary,
    Gap,
    PainReport,
    RunInfo,
    SampleBlock,
    SensorHealth,
    Step,
)
from sensord.sinks.mqtt_publisher import MqttPublisher
from sensord.sources.recording import iter_blocks, read_recording
from sensord.sources.simulator import SimParams, iter_simulated_blocks

Output = Step | Gap | Alert | FormSummary | SensorHealth | PainReport
SourceItem = SampleBlock | SensorHealth


@dataclass(frozen=True, slots=True)
class RunConfig:
    """What ``sensord run`` was asked to do."""

    run: RunInfo
    engine: engine.EngineParams
    coach: CoachParams = field(default_factory=CoachParams)
    speed: float = 1.0  # replay/simulation speed factor; 0 = as fast as possible
    block_s: float = 0.1
    queue_blocks: int = 256
    store_dir: Path | None = None
    broker: BrokerConfig | None = None
    epoch_offset_s: float = 0.0


async def paced(blocks: Iterable[SampleBlock], speed: float) -> AsyncIterator[SampleBlock]:
    """Release blocks at ``speed`` times real time (by their last sample time)."""
    start = time.monotonic()
    t0: float | None = None
    for b in blocks:
        if len(b) == 0:
            continue
        if t0 is None:
            t0 = float(b.t_s[0])
        if speed > 0:
            due = start + (float(b.t_s[-1]) - t0) / speed
            delay = due - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
        else:
            await asyncio.sleep(0)
        yield b


def simulated_source(params: SimParams, seed: int, speed: float,
                     block_s: float) -> AsyncIterator[SampleBlock]:
    """The simulator as a live source (bounded memory)."""
    return paced((blk for blk, _ in iter_simulated_blocks(params, seed, block_s)), speed)


def replay_source(path: str, speed: float, block_s: float) -> AsyncIterator[SampleBlock]:
    """A recording replayed at ``speed`` times real time."""
    rec = read_recording(path)
    rate = rec.rate_hz
    return paced(iter_blocks(rec.samples, max(1, round(block_s * rate))), speed)


class JsonlStore:
    """Local store: every output of a run as JSON Lines in ``<dir>/<run_id>.jsonl``.

    Each line is one record with ``"record"`` naming its type (``run``, ``step``,
    ``gap``, ``alert``, ``formsummary``, ``sensorhealth``, ``painreport``) and the
    record's own fields.
    """

    def __init__(self, directory: Path, run: RunInfo) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.path = directory / f"{run.run_id}.jsonl"
        self._fh = self.path.open("a", encoding="utf-8")
        self._write("run", run.to_dict())

    def _write(self, record: str, payload: dict[str, object]) -> None:
        line = json.dumps({"record": record, **payload}, separators=(",", ":"))
        self._fh.write(line + "\n")

    def add(self, item: Output) -> None:
        self._write(type(item).__name__.lower(), item.to_dict())

    def close(self) -> None:
        self._fh.close()


async def run_pipeline(cfg: RunConfig, source: AsyncIterator[SourceItem],
                       on_output: Callable[[Output], None],
                       pain_queue: asyncio.Queue[PainReport] | None = None) -> list[Output]:
    """Run the live pipeline until the source ends; return every output in order."""
    queue: asyncio.Queue[SourceItem | None] = asyncio.Queue(maxsize=cfg.queue_blocks)
    outputs: list[Output] = []
    store = JsonlStore(cfg.store_dir, cfg.run) if cfg.store_dir else None
    publisher = None
    if cfg.broker is not None:
        spool = (cfg.store_dir or Path(".")) / f"{cfg.run.run_id}.spool.sqlite"
        publisher = MqttPublisher(cfg.broker, cfg.run, epoch_offset_s=cfg.epoch_offset_s,
                                  spool_path=spool)
        await publisher.__aenter__()

    async def produce() -> None:
        try:
            async for item in source:
                await queue.put(item)  # backpressure: wait while the engine is behind
        finally:
            await queue.put(None)

    async def emit(items: list[Output]) -> None:
        for it in items:
            outputs.append(it)
            on_output(it)
            if store is not None:
                store.add(it)
            if publisher is not None:
                if isinstance(it, Step):
                    await publisher.publish_step(it)
                elif isinstance(it, Alert):
                    await publisher.publish_alert(it)
                elif isinstance(it, FormSummary):
                    await publisher.publish_summary(it)
                elif isinstance(it, SensorHealth):
                    await publisher.publish_health(it)
                elif isinstance(it, PainReport):
                    await publisher.publish_pain(it)

    async def consume() -> None:
        est = engine.init_state(cfg.engine)
        cst = coaching.init_state()
        while True:
            item = await queue.get()
            pains: list[PainReport] = []
            while pain_queue is not None and not pain_queue.empty():
                pains.append(pain_queue.get_nowait())
            if item is None:
                est, events = engine.finish(cfg.engine, est)
            elif isinstance(item, SensorHealth):
                await emit([item])
                continue
            else:
                est, events = engine.step(cfg.engine, est, item)
            steps = [e for e in events if isinstance(e, Step)]
            cst, coach_events = coaching.step(cfg.coach, cst, steps, pains)
            await emit([*pains, *events, *coach_events])
            if item is None:
                return

    try:
        await asyncio.gather(produce(), consume())
    finally:
        if publisher is not None:
            await publisher.close()
        if store is not None:
            store.close()
    return outputs
