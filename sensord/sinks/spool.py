"""A bounded, durable, ordered outbox for MQTT messages (SQLite, WAL).

Every message the publisher sends goes through the spool: it is appended (committed to
the WAL, so it survives a crash of the process) and deleted only after the broker
acknowledged it (QoS 1 PUBACK). While the broker is unreachable the spool grows; after
reconnecting the publisher replays it oldest first.

Overflow policy (``max_messages`` reached): the oldest *droppable* message (steps,
summaries, health) is deleted to make room, so a long outage keeps the most recent data;
alerts, pain reports and status messages are never dropped while any droppable message
remains. Drops are counted in :attr:`Spool.dropped`.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

_SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    topic TEXT NOT NULL,
    payload BLOB NOT NULL,
    qos INTEGER NOT NULL,
    retain INTEGER NOT NULL,
    droppable INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS outbox_droppable ON outbox (droppable, seq);
"""


@dataclass(frozen=True, slots=True)
class SpooledMessage:
    """One queued message; ``seq`` increases in append order."""

    seq: int
    topic: str
    payload: bytes
    qos: int
    retain: bool


class Spool:
    """Durable FIFO of outgoing messages.

    Parameters
    ----------
    path
        SQLite file (created with its parent directory).
    max_messages
        Capacity; see the module docstring for the overflow policy.
    fsync
        ``True``: ``synchronous=FULL`` (survives power loss, slower);
        ``False`` (default): ``synchronous=NORMAL`` (survives a crash of the process).
    """

    def __init__(self, path: Path | str, max_messages: int = 500_000, *, fsync: bool = False):
        if max_messages < 1:
            raise ValueError(f"spool capacity must be >= 1, got {max_messages}")
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.max_messages = max_messages
        self.dropped = 0
        self._db = sqlite3.connect(str(self.path), isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(f"PRAGMA synchronous={'FULL' if fsync else 'NORMAL'}")
        self._db.executescript(_SCHEMA)
        self._count = int(self._db.execute("SELECT count(*) FROM outbox").fetchone()[0])

    def __len__(self) -> int:
        return self._count

    def append(
        self,
        topic: str,
        payload: bytes,
        *,
        qos: int = 1,
        retain: bool = False,
        droppable: bool = True,
    ) -> int:
        """Queue a message durably; its sequence number."""
        with self._db:
            self._db.execute("BEGIN IMMEDIATE")
            while self._count >= self.max_messages:
                self._drop_one()
            cur = self._db.execute(
                "INSERT INTO outbox (topic, payload, qos, retain, droppable) VALUES (?,?,?,?,?)",
                (topic, payload, qos, int(retain), int(droppable)),
            )
            self._count += 1
        return int(cur.lastrowid or 0)

    def _drop_one(self) -> None:
        row = self._db.execute(
            "SELECT seq FROM outbox WHERE droppable = 1 ORDER BY seq LIMIT 1"
        ).fetchone()
        if row is None:
            row = self._db.execute("SELECT seq FROM outbox ORDER BY seq LIMIT 1").fetchone()
        self._db.execute("DELETE FROM outbox WHERE seq = ?", (row[0],))
        self._count -= 1
        self.dropped += 1

    def peek(self, n: int) -> list[SpooledMessage]:
        """The ``n`` oldest messages, oldest first (not removed)."""
        rows = self._db.execute(
            "SELECT seq, topic, payload, qos, retain FROM outbox ORDER BY seq LIMIT ?", (n,)
        ).fetchall()
        if len(rows) < n:  # all of it: recount (another process may share the file)
            self._count = len(rows)
        return [SpooledMessage(int(s), str(t), bytes(p), int(q), bool(r)) for s, t, p, q, r in rows]

    def remove(self, seqs: Sequence[int]) -> None:
        """Delete acknowledged messages."""
        if not seqs:
            return
        with self._db:
            self._db.execute("BEGIN IMMEDIATE")
            cur = self._db.executemany("DELETE FROM outbox WHERE seq = ?", [(s,) for s in seqs])
            self._count -= max(cur.rowcount, 0)
        if self._count < 0:  # pragma: no cover - defensive
            self._count = int(self._db.execute("SELECT count(*) FROM outbox").fetchone()[0])

    def close(self) -> None:
        self._db.close()
