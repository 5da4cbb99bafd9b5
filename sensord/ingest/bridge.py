"""The MQTT -> InfluxDB bridge behind ``sensord ingest``.

Delivery is at-least-once end to end, and exactly-once in the database because writes
are idempotent (a redelivered step has the same measurement, tags and timestamp):

- MQTT 5 persistent session (fixed client id, ``clean_start=False``, session expiry),
  QoS 1 subscriptions, optionally shared (``$share/<group>/...``) across replicas.
- Manual acknowledgements: a message's PUBACK is sent only after every point it carries
  is written to the database (or after it was published to the dead-letter topic).
  A crash (even SIGKILL) before that leaves the message unacknowledged in the broker's
  session, which redelivers it on reconnect.
- Memory is bounded. The bridge announces an MQTT 5 *Receive Maximum*, but brokers do
  not all honour it once acknowledgements flow (mosquitto 2.0.11 releases a whole window
  per PUBACK), so the bridge also stops reading its socket while ``receive_max``
  messages wait unread (TCP back-pressure: the backlog stays in the broker). As a last
  resort, messages beyond a hard cap are shed **unacknowledged** and fetched again by
  re-joining the same persistent session once the bridge has caught up. Nothing is lost.
- Database failures (5xx, 429, timeouts, refused connections) are retried forever with
  capped exponential backoff, honouring ``Retry-After``; a batch the database rejects as
  invalid (4xx) is split per message and the rejected messages are dead-lettered.
- Invalid payloads go to ``sensord/v1/_deadletter`` with the reason; the bridge goes on.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from dataclasses import dataclass
from typing import Any

import aiomqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from sensord.contract import (
    DEADLETTER_TOPIC,
    INGEST_FILTERS,
    BrokerConfig,
    ContractError,
    deadletter_payload,
)
from sensord.contract import decode as decode_message
from sensord.ingest.points import to_lines
from sensord.ingest.transport import LineWriter, WriteError

log = logging.getLogger("sensord.ingest")

#: MQTT 5 session expiry meaning "never" (the broker may still cap it).
SESSION_NEVER_EXPIRES = 0xFFFFFFFF


@dataclass(frozen=True, slots=True)
class IngestConfig:
    """Bridge settings.

    Attributes
    ----------
    client_id
        Fixed MQTT client id (the persistent session's name); one per replica.
    shared_group
        When set, subscribe as ``$share/<shared_group>/...`` so replicas split the load.
    session_expiry_s
        How long the broker keeps the session (and queues messages) while the bridge is
        away. Default: never expires.
    receive_max
        MQTT 5 Receive Maximum, and the most received-but-unread messages (the socket is
        not read beyond that). Messages held at once are at most
        ``receive_max + (write_concurrency + 3) * batch_max_lines`` (one message per line
        in the worst case): that bounds the bridge's memory.
    batch_max_lines
        Write when this many points are buffered ...
    linger_s
        ... or when the oldest buffered point has waited this long.
    backoff_initial_s, backoff_max_s
        Retry delays for database writes and broker reconnects (doubling, capped).
    write_concurrency
        Batches written at the same time (acknowledged in order).
    """

    client_id: str = "sensord-ingest"
    shared_group: str | None = None
    session_expiry_s: int = SESSION_NEVER_EXPIRES
    receive_max: int = 2000
    batch_max_lines: int = 5000
    linger_s: float = 0.2
    backoff_initial_s: float = 0.5
    backoff_max_s: float = 30.0
    stop_grace_s: float = 10.0
    write_concurrency: int = 2
    filters: tuple[str, ...] = INGEST_FILTERS


@dataclass(frozen=True, slots=True)
class IngestStats:
    """Counters since the bridge started (``shed``: messages dropped unacknowledged while
    busy, redelivered after a re-sync)."""

    messages: int = 0
    points_written: int = 0
    batches_written: int = 0
    deadlettered: int = 0
    write_retries: int = 0
    reconnects: int = 0
    shed: int = 0
    resyncs: int = 0


@dataclass(slots=True)
class _Item:
    conn: int
    mid: int
    qos: int
    lines: list[str]
    topic: str
    payload: bytes


@dataclass(slots=True)
class _Counters:
    messages: int = 0
    points_written: int = 0
    batches_written: int = 0
    deadlettered: int = 0
    write_retries: int = 0
    reconnects: int = 0
    shed: int = 0
    resyncs: int = 0


class _ResyncNeededError(Exception):
    """Leave the connection so the broker redelivers messages shed while busy."""


class _ShedDetector(logging.Filter):
    """Notices aiomqtt's "Message queue is full. Discarding message." (a bounded queue)."""

    def __init__(self, counters: _Counters) -> None:
        super().__init__()
        self._c = counters
        self.pending = False

    def filter(self, record: logging.LogRecord) -> bool:
        if record.getMessage().startswith("Message queue is full"):
            self._c.shed += 1
            self.pending = True
            return False  # counted and summarised by the bridge instead
        return True


def _paho(client: aiomqtt.Client) -> Any:
    """The underlying paho client: aiomqtt 2.5 has no public manual-ack or flow control."""
    return client._client


class _ReadGate:
    """TCP back-pressure: stop reading the broker's socket while the bridge is saturated.

    Replaces aiomqtt's socket reader with an equivalent one (paho ``loop_read``) that
    pauses when ``high`` messages wait unread, and :meth:`maybe_resume` reads again
    below ``low``. The broker then keeps the backlog, not the bridge's memory.
    """

    def __init__(self, client: aiomqtt.Client, high: int, low: int) -> None:
        self._client = client
        self._paho = _paho(client)
        self._loop = asyncio.get_running_loop()
        self._high, self._low = high, low
        self._fd: int | None = None
        self.paused = False

    def install(self) -> None:
        sock = self._paho.socket()
        if sock is None:
            return
        self._fd = sock.fileno()
        self._loop.remove_reader(self._fd)  # aiomqtt's reader
        self._loop.add_reader(self._fd, self._read)

    def _read(self) -> None:
        try:
            sock = self._paho.socket()
            while True:
                self._paho.loop_read()
                if sock is not None and hasattr(sock, "pending") and sock.pending() > 0:
                    continue  # TLS: decoded bytes left in the SSL object
                break
        except Exception as e:  # broken connection: let aiomqtt see a disconnect
            log.warning("reading from the broker failed: %s", e)
            self._paho.disconnect()
            return
        # (never while our own publish awaits its PUBACK: only reading brings it in)
        if (len(self._client.messages) >= self._high and self._fd is not None
                and not self._paho._out_messages):
            self._loop.remove_reader(self._fd)
            self.paused = True

    def maybe_resume(self) -> None:
        if self.paused and len(self._client.messages) <= self._low:
            self.keep_reading()

    def keep_reading(self) -> None:
        """Read again now, however full: before a publish of ours (a dead letter) is
        awaited, or its PUBACK would wait behind the pause forever."""
        if self.paused and self._fd is not None:
            self.paused = False
            sock = self._paho.socket()
            if sock is not None and sock.fileno() == self._fd:
                self._loop.add_reader(self._fd, self._read)


class IngestBridge:
    """Consumes sensord/v1 messages and writes them to the database.

    Parameters
    ----------
    broker
        MQTT connection settings.
    writer
        The database seam (:class:`~sensord.ingest.transport.InfluxV1Writer` or
        :class:`~sensord.ingest.transport.InfluxV2Writer`).
    config
        Session, batching and retry settings.

    Examples
    --------
    >>> bridge = IngestBridge(BrokerConfig(), writer, IngestConfig())  # doctest: +SKIP
    >>> await bridge.run()  # until bridge.stop()                       # doctest: +SKIP
    """

    def __init__(
        self, broker: BrokerConfig, writer: LineWriter, config: IngestConfig | None = None
    ) -> None:
        self._broker = broker
        self._writer = writer
        self._cfg = config or IngestConfig()
        self._c = _Counters()
        self._stop = asyncio.Event()
        self._conn = 0  # id of the live connection; 0 = none
        self._conn_seq = 0
        self._client: aiomqtt.Client | None = None
        self._batch: list[_Item] = []
        self._batch_lines = 0
        self._batch_started = 0.0
        self._flush_q: asyncio.Queue[list[_Item]] = asyncio.Queue(maxsize=1)
        self._in_pipeline = 0  # messages handed to the writer, not yet acknowledged
        self.connected = asyncio.Event()
        self._shed = _ShedDetector(self._c)
        self._gate: _ReadGate | None = None  # (the live connection's, for dead letters)
        self._mqtt_log = logging.getLogger(f"sensord.ingest.mqtt.{id(self):x}")
        self._mqtt_log.addFilter(self._shed)

    @property
    def stats(self) -> IngestStats:
        """A snapshot of the counters."""
        c = self._c
        return IngestStats(
            c.messages,
            c.points_written,
            c.batches_written,
            c.deadlettered,
            c.write_retries,
            c.reconnects,
            c.shed,
            c.resyncs,
        )

    @property
    def held_messages(self) -> int:
        """Messages received from the broker and not yet acknowledged (memory in use)."""
        client = self._client
        queued = len(client.messages) if client is not None else 0
        return queued + len(self._batch) + self._in_pipeline

    def stop(self) -> None:
        """Ask :meth:`run` to flush what it has, acknowledge it and return."""
        self._stop.set()

    # ------------------------------------------------------------------ main loop

    async def run(self) -> None:
        """Run until :meth:`stop`; reconnects to the broker forever."""
        writer_task = asyncio.create_task(self._writer_loop(), name="ingest-writer")
        delay = self._cfg.backoff_initial_s
        try:
            while not self._stop.is_set():
                try:
                    await self._session()
                    delay = self._cfg.backoff_initial_s
                except _ResyncNeededError:
                    self._c.resyncs += 1
                    log.info("re-syncing the session to receive messages shed while busy")
                    continue
                except aiomqtt.MqttError as e:
                    log.warning("broker connection lost or refused: %s", e)
                finally:
                    self._conn = 0
                    self._client = None
                    self.connected.clear()
                    self._drop_unflushed()
                if self._stop.is_set():
                    break
                self._c.reconnects += 1
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(self._stop.wait(), delay * (0.5 + random.random()))
                delay = min(delay * 2, self._cfg.backoff_max_s)
        finally:
            writer_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await writer_task

    def _connect_properties(self) -> Properties:
        props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        props.SessionExpiryInterval = self._cfg.session_expiry_s
        props.ReceiveMaximum = self._cfg.receive_max
        return props

    async def _session(self) -> None:
        b = self._broker
        client = aiomqtt.Client(
            b.host,
            b.port,
            username=b.username,
            password=b.password,
            identifier=self._cfg.client_id,
            protocol=aiomqtt.ProtocolVersion.V5,
            clean_start=False,
            properties=self._connect_properties(),
            keepalive=b.keepalive_s,
            tls_context=b.tls_context(),
            timeout=10,
            max_queued_incoming_messages=2 * self._cfg.receive_max,  # hard cap (see above)
            logger=self._mqtt_log,
        )
        self._shed.pending = False
        # Before connecting: a resumed session delivers queued messages right after CONNACK.
        _paho(client).manual_ack_set(True)
        async with client:
            self._conn_seq += 1
            conn = self._conn = self._conn_seq
            self._client = client
            gate = self._gate = _ReadGate(client, self._cfg.receive_max,
                                          self._cfg.receive_max // 2)
            gate.install()
            # Read first: a resumed session may deliver a backlog before our SUBACKs, and
            # the SUBACKs arrive only once the reader has made room.
            reader: asyncio.Task[Any] = asyncio.create_task(self._reader(client, conn, gate))
            ticker: asyncio.Task[Any] = asyncio.create_task(self._ticker())
            stopper: asyncio.Task[Any] = asyncio.create_task(self._stop.wait())
            subscriber: asyncio.Task[Any] = asyncio.create_task(self._subscribe(client))
            tasks = {reader, ticker, stopper, subscriber}
            while True:
                done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
                if done == {subscriber} and subscriber.exception() is None:
                    tasks.discard(subscriber)
                    continue
                break
            for t in tasks:
                t.cancel()
            for t in tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    await t
            if stopper in done:
                await self._drain(conn)
                return
            for t in done:
                exc = t.exception()
                if exc is not None:
                    raise exc

    async def _subscribe(self, client: aiomqtt.Client) -> None:
        prefix = f"$share/{self._cfg.shared_group}/" if self._cfg.shared_group else ""
        for f in self._cfg.filters:
            # a long wait: behind a resumed session's backlog, the SUBACK can take a while
            await client.subscribe(prefix + f, qos=1, timeout=24 * 3600)
        b = self._broker
        log.info("connected to %s:%d as %s", b.host, b.port, self._cfg.client_id)
        self.connected.set()

    async def _drain(self, conn: int) -> None:
        """On stop: write and acknowledge what is buffered (give up after the grace period;
        whatever is left unacknowledged is redelivered to the next run)."""
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._hand_off(), self._cfg.stop_grace_s)
            await asyncio.wait_for(self._flush_q.join(), self._cfg.stop_grace_s)

    # ------------------------------------------------------------------- reading

    async def _reader(self, client: aiomqtt.Client, conn: int, gate: _ReadGate) -> None:
        async for message in client.messages:
            gate.maybe_resume()
            topic = message.topic.value
            payload = message.payload
            if not isinstance(payload, bytes | bytearray):
                payload = str(payload).encode()
            payload = bytes(payload)
            self._c.messages += 1
            item = _Item(conn, message.mid, message.qos, [], topic, payload)
            try:
                item.lines = to_lines(decode_message(topic, payload))
            except ContractError as e:
                await self._deadletter(client, topic, payload, str(e))
            except Exception as e:  # a bug must not stop the bridge: dead-letter and go on
                log.exception("unexpected error handling a message on %s", topic)
                await self._deadletter(client, topic, payload, f"internal error: {e!r}")
            if not self._batch:
                self._batch_started = time.monotonic()
            self._batch.append(item)
            self._batch_lines += len(item.lines)
            if self._batch_lines >= self._cfg.batch_max_lines:
                await self._hand_off()
            if self._shed.pending and len(client.messages) == 0:
                # caught up: write + acknowledge what we hold, then reconnect for the rest
                await self._hand_off()
                await self._flush_q.join()
                raise _ResyncNeededError

    async def _deadletter(
        self, client: aiomqtt.Client, topic: str, payload: bytes, reason: str
    ) -> None:
        log.warning("dead-lettered a message on %s: %s", topic, reason)
        body = deadletter_payload(topic, payload, reason, int(time.time() * 1000))
        if self._gate is not None:
            self._gate.keep_reading()
        await client.publish(DEADLETTER_TOPIC, body, qos=1)
        self._c.deadlettered += 1

    async def _ticker(self) -> None:
        period = max(self._cfg.linger_s / 4, 0.005)
        while True:
            await asyncio.sleep(period)
            if (
                self._batch
                and time.monotonic() - self._batch_started >= self._cfg.linger_s
                and not self._flush_q.full()  # never park a second batch (memory bound)
            ):
                await self._hand_off()

    async def _hand_off(self) -> None:
        if not self._batch:
            return
        batch, self._batch, self._batch_lines = self._batch, [], 0
        self._in_pipeline += len(batch)
        await self._flush_q.put(batch)

    def _drop_unflushed(self) -> None:
        """After a disconnect the broker redelivers unacked messages: forget the open batch."""
        self._batch, self._batch_lines = [], 0

    # ------------------------------------------------------------------- writing

    async def _writer_loop(self) -> None:
        """Start up to ``write_concurrency`` batch writes; acknowledge them in order.

        A slot is freed only when its batch is acknowledged (not merely written), so a
        batch stuck in retries cannot let later batches pile up behind it.
        """
        slots = asyncio.Semaphore(self._cfg.write_concurrency)
        in_order: asyncio.Queue[tuple[asyncio.Task[None], list[_Item]]] = asyncio.Queue()
        acker = asyncio.create_task(self._acker(in_order, slots))
        try:
            while True:
                batch = await self._flush_q.get()
                await slots.acquire()
                in_order.put_nowait((asyncio.create_task(self._write_batch(batch)), batch))
        finally:
            acker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await acker

    async def _acker(
        self,
        in_order: asyncio.Queue[tuple[asyncio.Task[None], list[_Item]]],
        slots: asyncio.Semaphore,
    ) -> None:
        # MQTT wants PUBACKs in the order the PUBLISHes arrived: wait for batches in order.
        while True:
            task, batch = await in_order.get()
            try:
                await task
                self._ack(batch)
            except Exception:  # pragma: no cover - a bug; the broker will redeliver
                log.exception("writing a batch failed unexpectedly")
            finally:
                self._in_pipeline -= len(batch)
                slots.release()
                self._flush_q.task_done()

    async def _write_batch(self, batch: list[_Item]) -> None:
        lines = [ln for item in batch for ln in item.lines]
        if not lines:
            return
        try:
            await self._write_retrying(lines)
        except WriteError as e:  # rejected as invalid: find the culprits one message at a time
            log.warning("database rejected a batch of %d points (%s); splitting", len(lines), e)
            for item in batch:
                if not item.lines:
                    continue
                try:
                    await self._write_retrying(item.lines)
                except WriteError as e1:
                    item.lines = []
                    client = self._client
                    if client is not None and self._conn == item.conn:
                        await self._deadletter(
                            client, item.topic, item.payload, f"rejected by database: {e1}"
                        )
                    else:
                        item.conn = -1  # not acked: the broker redelivers, we retry
        self._c.batches_written += 1

    async def _write_retrying(self, lines: list[str]) -> None:
        """Write until it succeeds; raise only non-retryable errors."""
        body = "\n".join(lines).encode()
        delay = self._cfg.backoff_initial_s
        while True:
            try:
                await self._writer.write(body)
                self._c.points_written += len(lines)
                return
            except WriteError as e:
                if not e.retryable:
                    raise
                wait = delay * (0.5 + random.random())
                if e.retry_after_s is not None:
                    wait = min(max(e.retry_after_s, 0.0), 300.0)
                self._c.write_retries += 1
                log.warning("database write failed (%s); retrying in %.1f s", e, wait)
                await asyncio.sleep(wait)
                delay = min(delay * 2, self._cfg.backoff_max_s)

    def _ack(self, batch: list[_Item]) -> None:
        client = self._client
        if client is None:
            return
        paho = _paho(client)
        for item in batch:
            if item.conn == self._conn and item.qos > 0:
                paho.ack(item.mid, item.qos)
