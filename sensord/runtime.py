"""The one place where the live pipeline's tasks and queues are wired.

::

    Source.stream() --(bounded queue)--> engine + coaching task --> outputs
     (SimSource, ReplaySource,             (pure folds)               (console, local
      BleCollector: sensord.sources)            ^                      store, MQTT)
                                                |
    MQTT pain topic --(bounded queue)-----------+
     (listen_for_pain, with a broker)

Queue policy: the source -> engine queue holds at most ``queue_blocks`` blocks and the
source waits when it is full (backpressure; no sample is dropped). A live BLE collector
buffers on its side and reports anything it had to drop in ``SensorHealth``. The pain
queue holds 64 reports (a handful arrive per run) and drops new ones when full.

Everything behind the queue is a fold of pure ``step`` functions: the gait engine
(:mod:`sensord.gait.engine`) and the coaching detectors (:mod:`sensord.coaching`), the
same code ``sensord analyze`` and ``sensord report`` run offline.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path

from sensord.coaching import detectors as coaching
from sensord.coaching.params import CoachParams
from sensord.contract import BrokerConfig, publish_event
from sensord.gait import engine
from sensord.model import (
    Alert,
    FormSummary,
    Gap,
    PainReport,
    RunInfo,
    SensorHealth,
    Step,
)
from sensord.sinks.mqtt_publisher import MqttPublisher
from sensord.sources.base import CadenceSample, SourceEvent
from sensord.sources.pain import listen_for_pain

Output = Step | Gap | Alert | FormSummary | SensorHealth | PainReport

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class RunConfig:
    """What ``sensord run`` was asked to do."""

    run: RunInfo
    engine: engine.EngineParams
    coach: CoachParams = field(default_factory=CoachParams)
    queue_blocks: int = 256
    store_dir: Path | None = None
    broker: BrokerConfig | None = None
    epoch_offset_s: float = 0.0
    #: Where the publisher's outbox lives (default: the store directory, else ".").
    outbox_dir: Path | None = None


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


def outbox_path(directory: Path, run: RunInfo, broker: BrokerConfig) -> Path:
    """The publisher's spool: one per runner, sensor and broker, not per run, so that
    what a run could not deliver (broker unreachable when it ended) is sent to that
    broker by the next run with the same runner and sensor, before its own messages
    (each message names its run)."""
    dest = re.sub(r"[^A-Za-z0-9_.-]", "_", f"{broker.host}-{broker.port}")
    return directory / f"{run.runner_id}.{run.sensor_id}.{dest}.outbox.sqlite"


async def run_pipeline(cfg: RunConfig, source: AsyncIterator[SourceEvent],
                       on_output: Callable[[Output], None]) -> list[Output]:
    """Run the live pipeline until the source ends; return every output in order.

    With a broker, the run also listens for its runner's pain reports
    (:mod:`sensord.sources.pain`) and coaches on them as they arrive.
    """
    queue: asyncio.Queue[SourceEvent | None] = asyncio.Queue(maxsize=cfg.queue_blocks)
    pain_queue: asyncio.Queue[PainReport] = asyncio.Queue(maxsize=64)
    outputs: list[Output] = []
    store = JsonlStore(cfg.store_dir, cfg.run) if cfg.store_dir else None
    publisher = None
    pain_listener: asyncio.Task[None] | None = None
    if cfg.broker is not None:
        spool = outbox_path(cfg.outbox_dir or cfg.store_dir or Path("."), cfg.run, cfg.broker)
        publisher = MqttPublisher(cfg.broker, cfg.run, epoch_offset_s=cfg.epoch_offset_s,
                                  spool_path=spool)
        await publisher.__aenter__()
        pain_listener = asyncio.create_task(listen_for_pain(cfg.broker, cfg.run, pain_queue),
                                            name="pain-listener")

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
            if publisher is not None and not isinstance(it, PainReport):
                # (pain reports came from the broker: publishing them would echo them)
                await publish_event(publisher, it)

    async def consume() -> None:
        est = engine.init_state(cfg.engine)
        cst = coaching.init_state()
        while True:
            item = await queue.get()
            pains: list[PainReport] = []
            while not pain_queue.empty():
                pains.append(pain_queue.get_nowait())
            if item is None:
                est, events = engine.finish(cfg.engine, est)
                steps = [e for e in events if isinstance(e, Step)]
                cst, coach_events = coaching.step(cfg.coach, cst, steps, pains)
                cst, closing = coaching.finish(cfg.coach, cst)
                await emit([*pains, *events, *coach_events, *closing])
                return
            elif isinstance(item, SensorHealth):
                await emit([item])
                continue
            elif isinstance(item, CadenceSample):
                # a cadence-only sensor (footpod): no steps to detect, cadence to pass on
                await emit([FormSummary(t_s=item.t_s, cadence_spm=item.cadence_spm)])
                continue
            else:
                est, events = engine.step(cfg.engine, est, item)
            steps = [e for e in events if isinstance(e, Step)]
            cst, coach_events = coaching.step(cfg.coach, cst, steps, pains)
            await emit([*pains, *events, *coach_events])

    try:
        await asyncio.gather(produce(), consume())
    finally:
        if pain_listener is not None:
            pain_listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await pain_listener
        if publisher is not None and cfg.broker is not None:
            await publisher.close()
            if left := publisher.stats.queued:
                log.warning("%d messages not delivered to mqtt://%s:%d yet: kept in %s; the "
                            "next run of runner %s with sensor %s to this broker sends them "
                            "first", left, cfg.broker.host, cfg.broker.port, spool,
                            cfg.run.runner_id, cfg.run.sensor_id)
        if store is not None:
            store.close()
    return outputs
