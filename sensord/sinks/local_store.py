"""A local store sink: keeps a run's results in one SQLite file when no broker/DB is used.

Same interface as :class:`~sensord.sinks.mqtt_publisher.MqttPublisher` (the
:class:`~sensord.contract.RunSink` protocol), and the same validated contract records, so
what ``sensord report`` reads locally is what the bridge would have written to InfluxDB.
Writing a record twice (same run, sensor and step index; same time for the others)
replaces it.

Read API::

    runs = list_runs("runs.sqlite")             # [StoredRun(run=RunInfo, ...), ...]
    rec = load_run("runs.sqlite", "2026-05-01-alice")
    rec.steps, rec.alerts, rec.summaries, rec.health, rec.pain   # tuples of model objects
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from sensord.contract import (
    epoch_ms,
    step_record,
)
from sensord.errors import InputError, ServiceError
from sensord.model import Alert, FormSummary, PainReport, RunInfo, SensorHealth, Step

_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT NOT NULL,
    sensor_id TEXT NOT NULL,
    runner_id TEXT NOT NULL,
    placement TEXT NOT NULL,
    sensor_side TEXT,
    extra TEXT NOT NULL,
    epoch_offset_s REAL NOT NULL,
    PRIMARY KEY (run_id, sensor_id)
);
CREATE TABLE IF NOT EXISTS records (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id TEXT NOT NULL,
    sensor_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    key TEXT NOT NULL,
    ts_ms INTEGER NOT NULL,
    record TEXT NOT NULL,
    UNIQUE (run_id, sensor_id, kind, key)
);
CREATE INDEX IF NOT EXISTS records_run ON records (run_id, kind, ts_ms);
"""


@dataclass(frozen=True, slots=True)
class StoredRun:
    """One run (one sensor) in a local store."""

    run: RunInfo
    epoch_offset_s: float
    n_steps: int


@dataclass(frozen=True, slots=True)
class RunRecords:
    """Everything stored for a run, in time order.

    Attributes
    ----------
    run
        The run's ids (the first sensor's, when several sensors share a run id).
    epoch_offset_s
        Epoch time of run time 0 (``ts_ms = (epoch_offset_s + t) * 1000``).
    steps, alerts, summaries, health, pain
        Model objects as the engine produced them.
    """

    run: RunInfo
    epoch_offset_s: float
    steps: tuple[Step, ...]
    alerts: tuple[Alert, ...]
    summaries: tuple[FormSummary, ...]
    health: tuple[SensorHealth, ...]
    pain: tuple[PainReport, ...]


def _connect(path: Path | str, *, create: bool) -> sqlite3.Connection:
    """Open a store for writing (``create=True``: created if missing) or read-only.

    Reading never writes: the file is opened with ``mode=ro`` and must already hold the
    store's tables, so a foreign or empty file is reported, never turned into a store.
    """
    p = Path(path)
    if not create and not p.exists():
        raise InputError(f"local store {p} does not exist")
    if create:
        p.parent.mkdir(parents=True, exist_ok=True)
    db: sqlite3.Connection | None = None
    try:
        if create:
            db = sqlite3.connect(str(p), isolation_level=None)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            db.executescript(_SCHEMA)
            return db
        db = sqlite3.connect(f"{p.absolute().as_uri()}?mode=ro", uri=True, isolation_level=None)
        tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    except sqlite3.DatabaseError as e:
        if db is not None:
            db.close()
        if isinstance(e, sqlite3.OperationalError):  # locked, no permission, ...
            raise InputError(f"cannot open local store {p}: {e}") from None
        raise InputError(f"{p} is not a sensord local store: {e}") from None
    if not {"runs", "records"} <= tables:
        db.close()
        raise InputError(f"{p} is not a sensord local store (no runs/records tables); pass "
                         "a store file LocalStore wrote, or the `sensord run --store` directory")
    return db


class LocalStore:
    """Writes one run's records to a SQLite file.

    Parameters
    ----------
    path
        The store file (created if missing; may hold many runs).
    run
        The run's ids.
    epoch_offset_s
        Epoch time of run time 0 (as for the MQTT publisher).
    """

    def __init__(self, path: Path | str, run: RunInfo, *, epoch_offset_s: float) -> None:
        self.path = Path(path)
        self._run = run
        self._t0 = float(epoch_offset_s)
        self._db = _connect(self.path, create=True)
        self._db.execute(
            "INSERT OR REPLACE INTO runs VALUES (?,?,?,?,?,?,?)",
            (
                run.run_id,
                run.sensor_id,
                run.runner_id,
                run.placement,
                run.sensor_side,
                json.dumps(run.extra),
                self._t0,
            ),
        )

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        self._db.close()

    def _put(self, kind: str, key: str, ts_ms: int, record: dict[str, Any]) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO records (run_id, sensor_id, kind, key, ts_ms, record) "
            "VALUES (?,?,?,?,?,?)",
            (
                self._run.run_id,
                self._run.sensor_id,
                kind,
                key,
                ts_ms,
                json.dumps(record, allow_nan=False),
            ),
        )

    async def publish_step(self, step: Step) -> None:
        """Store one step (keyed by step index)."""
        rec = step_record(step, self._t0)
        self._put("steps", str(step.step_index), rec["ts_ms"], rec)

    async def publish_steps(self, steps: list[Step]) -> None:
        """Store several steps in one transaction."""
        with self._db:
            self._db.execute("BEGIN")
            for s in steps:
                await self.publish_step(s)

    async def publish_summary(self, summary: FormSummary) -> None:
        ts = epoch_ms(self._t0, summary.t_s)
        self._put("summary", str(ts), ts, summary.to_dict())

    async def publish_alert(self, alert: Alert) -> None:
        ts = epoch_ms(self._t0, alert.t_s)
        key = f"{ts}:{alert.kind}:{alert.side or '-'}:{alert.state}"  # (both sides at once)
        self._put("alerts", key, ts, alert.to_dict())

    async def publish_health(self, health: SensorHealth) -> None:
        ts = epoch_ms(self._t0, health.t_s)
        self._put("health", str(ts), ts, health.to_dict())

    async def publish_pain(self, pain: PainReport) -> None:
        ts = epoch_ms(self._t0, pain.t_s)
        self._put("pain", str(ts), ts, pain.to_dict())

    async def publish_status(self, online: bool) -> None:
        """Accepted for interface parity; a local store has no presence to report."""


def list_runs(path: Path | str) -> list[StoredRun]:
    """Every run (per sensor) in the store, in run id order."""
    db = _connect(path, create=False)
    try:
        rows = db.execute(
            "SELECT r.run_id, r.sensor_id, r.runner_id, r.placement, r.sensor_side, r.extra, "
            "r.epoch_offset_s, (SELECT count(*) FROM records c WHERE c.run_id = r.run_id "
            "AND c.sensor_id = r.sensor_id AND c.kind = 'steps') FROM runs r "
            "ORDER BY r.run_id, r.sensor_id"
        ).fetchall()
    finally:
        db.close()
    return [
        StoredRun(RunInfo(rn, sn, rid, pl, side, json.loads(ex)), float(t0), int(n))
        for rid, sn, rn, pl, side, ex, t0, n in rows
    ]


def load_run(path: Path | str, run_id: str, sensor_id: str | None = None) -> RunRecords:
    """All records of ``run_id`` (optionally of one sensor), oldest first.

    Raises
    ------
    InputError
        When the file is missing or not a store.
    ServiceError
        When the run is not in the store (the message lists the runs that are).
    """
    db = _connect(path, create=False)
    try:
        q = "SELECT runner_id, sensor_id, placement, sensor_side, extra, epoch_offset_s FROM runs "
        q += "WHERE run_id = ?" + (" AND sensor_id = ?" if sensor_id else "")
        q += " ORDER BY sensor_id"
        params: tuple[str, ...] = (run_id, sensor_id) if sensor_id else (run_id,)
        head = db.execute(q, params).fetchone()
        if head is None:
            known = [r[0] for r in db.execute("SELECT DISTINCT run_id FROM runs LIMIT 20")]
            raise ServiceError(
                f"run {run_id!r} is not in {path}; runs there: {', '.join(known) or 'none'}"
            )
        rq = "SELECT kind, record FROM records WHERE run_id = ?"
        rq += " AND sensor_id = ?" if sensor_id else ""
        rows = db.execute(rq + " ORDER BY ts_ms, seq", params).fetchall()
    finally:
        db.close()
    runner, sensor, placement, side, extra, t0 = head
    by_kind: dict[str, list[dict[str, Any]]] = {}
    for kind, rec in rows:
        by_kind.setdefault(kind, []).append(json.loads(rec))

    def steps() -> tuple[Step, ...]:
        out = []
        for r in by_kind.get("steps", []):
            r.pop("ts_ms", None)
            out.append(Step.from_dict(r | {"placement": placement}))
        return tuple(sorted(out, key=lambda s: (s.t_ic, s.step_index)))

    return RunRecords(
        run=RunInfo(runner, sensor, run_id, placement, side, json.loads(extra)),
        epoch_offset_s=float(t0),
        steps=steps(),
        alerts=tuple(Alert(**r) for r in by_kind.get("alerts", [])),
        summaries=tuple(FormSummary(**r) for r in by_kind.get("summary", [])),
        health=tuple(SensorHealth(**r) for r in by_kind.get("health", [])),
        pain=tuple(PainReport(**r) for r in by_kind.get("pain", [])),
    )
