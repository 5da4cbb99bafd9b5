"""The MQTT publisher used inside ``sensord run`` (aiomqtt 2.x, QoS 1).

Every message is first appended to a durable :class:`~sensord.sinks.spool.Spool`; a
sender task publishes the spool oldest first and deletes a message only once the broker
acknowledged it. So a broker outage, a lost network or a crash of ``sensord run`` loses
nothing (within the spool's capacity; see its overflow policy): after reconnecting, the
backlog is replayed in order. A message may reach the broker twice (published, then the
link died before the PUBACK); the bridge's writes are idempotent, so that is harmless.

Point identity is deterministic: a step's ``ts_ms`` is ``epoch_offset_s + t_ic`` in
milliseconds and its tags are the run's ids, so a re-sent step overwrites itself.

The retained ``.../status`` topic says ``online`` while connected; the broker publishes
the ``offline`` last will if the connection dies, and :meth:`MqttPublisher.__aexit__`
publishes ``offline`` on a clean stop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import aiomqtt

from sensord.contract import (
    PUBLISH_BATCH_STEPS,
    BrokerConfig,
    encode_alert,
    encode_health,
    encode_pain,
    encode_status,
    encode_step,
    encode_steps,
    encode_summary,
    pain_topic,
    topic,
)
from sensord.model import Alert, FormSummary, PainReport, RunInfo, SensorHealth, Step
from sensord.sinks.spool import Spool

log = logging.getLogger("sensord.publisher")


@dataclass(frozen=True, slots=True)
class PublisherStats:
    """Counters of one publisher."""

    queued: int
    sent: int
    dropped: int
    reconnects: int
    connected: bool


class MqttPublisher:
    """Publishes one run's steps, alerts, summaries, health and pain to MQTT.

    Parameters
    ----------
    broker
        Broker address and credentials.
    run
        Run, runner and sensor ids (the tags of every point).
    epoch_offset_s
        Epoch time (s) of run time 0: for a recording, its start time; for a live
        source, the host's epoch time at t = 0. Fixed for the whole run, so every
        redelivery of a record carries the same ``ts_ms``.
    spool_path
        SQLite file of the outbox; keep one per runner+sensor (left-over messages of an
        earlier run are sent first).
    max_spool_messages
        Outbox capacity (overflow: oldest steps/summaries/health dropped first).
    window
        Most messages published before waiting for their acknowledgements.
    client_id
        MQTT client id; default ``sensord-run-<runner>-<sensor>``.

    Examples
    --------
    >>> async with MqttPublisher(BrokerConfig(), run, epoch_offset_s=t0,
    ...                          spool_path=path) as pub:               # doctest: +SKIP
    ...     await pub.publish_step(step)
    """

    def __init__(
        self,
        broker: BrokerConfig,
        run: RunInfo,
        *,
        epoch_offset_s: float,
        spool_path: Path | str,
        max_spool_messages: int = 500_000,
        window: int = 200,
        client_id: str | None = None,
        backoff_max_s: float = 10.0,
    ) -> None:
        self._broker = broker
        self._run = run
        self._t0 = float(epoch_offset_s)
        self._run_start_ms = round(self._t0 * 1000)
        self._status_topic = topic(run.runner_id, run.sensor_id, "status")
        self._steps_topic = topic(run.runner_id, run.sensor_id, "steps")
        self._spool = Spool(spool_path, max_spool_messages)
        self._window = window
        self._client_id = client_id or f"sensord-run-{run.runner_id}-{run.sensor_id}"
        self._backoff_max_s = backoff_max_s
        self._wake = asyncio.Event()
        self._closing = False
        self._sender: asyncio.Task[None] | None = None
        self._sent = 0
        self._reconnects = 0
        self.connected = asyncio.Event()
        self._online = True
        self._live_client: aiomqtt.Client | None = None

    # ------------------------------------------------------------------ lifecycle

    async def __aenter__(self) -> Self:
        self._sender = asyncio.create_task(self._send_loop(), name="mqtt-publisher")
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self, timeout_s: float = 5.0) -> None:
        """Publish ``offline``, try to send the backlog for ``timeout_s``, then stop.

        Whatever could not be sent stays in the spool for the next run.
        """
        if self._sender is None:
            return
        await self.flush(timeout_s)
        await self.publish_status(online=False)
        self._closing = True
        self._wake.set()
        self._sender.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._sender
        self._sender = None
        self._spool.close()

    async def flush(self, timeout_s: float | None = None) -> bool:
        """Wait until the spool is empty (everything acknowledged); ``False`` on timeout."""
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        while len(self._spool):
            if deadline is not None and time.monotonic() >= deadline:
                return False
            await asyncio.sleep(0.02)
        return True

    @property
    def stats(self) -> PublisherStats:
        """A snapshot of the counters."""
        return PublisherStats(
            len(self._spool),
            self._sent,
            self._spool.dropped,
            self._reconnects,
            self.connected.is_set(),
        )

    # ------------------------------------------------------------------- publish

    def _enqueue(
        self, topic_: str, payload: bytes, *, retain: bool = False, droppable: bool = True
    ) -> None:
        self._spool.append(topic_, payload, retain=retain, droppable=droppable)
        self._wake.set()

    async def publish_step(self, step: Step) -> None:
        """Queue one step (``sensord.step/1``)."""
        self._enqueue(self._steps_topic, encode_step(self._run, step, self._t0))

    async def publish_steps(self, steps: list[Step]) -> None:
        """Queue steps as ``sensord.steps/1`` batch messages of at most
        ``PUBLISH_BATCH_STEPS`` (500) steps each (any number of steps)."""
        for i in range(0, len(steps), PUBLISH_BATCH_STEPS):
            batch = steps[i:i + PUBLISH_BATCH_STEPS]
            self._enqueue(self._steps_topic, encode_steps(self._run, batch, self._t0))

    async def publish_summary(self, summary: FormSummary) -> None:
        """Queue a rolling form summary."""
        t = topic(self._run.runner_id, self._run.sensor_id, "summary")
        self._enqueue(t, encode_summary(self._run, summary, self._t0))

    async def publish_alert(self, alert: Alert) -> None:
        """Queue a coaching alert (never dropped on spool overflow)."""
        t = topic(self._run.runner_id, self._run.sensor_id, "alerts")
        self._enqueue(t, encode_alert(self._run, alert, self._t0), droppable=False)

    async def publish_health(self, health: SensorHealth) -> None:
        """Queue a sensor link-health report."""
        t = topic(self._run.runner_id, self._run.sensor_id, "health")
        self._enqueue(t, encode_health(self._run, health, self._t0))

    async def publish_pain(self, pain: PainReport) -> None:
        """Queue a pain report (never dropped on spool overflow)."""
        payload = encode_pain(self._run, pain, self._t0)
        self._enqueue(pain_topic(self._run.runner_id), payload, droppable=False)

    async def publish_status(self, online: bool) -> None:
        """Set the retained ``online`` / ``offline`` presence.

        Presence is not spooled (a stale ``offline`` replayed later would hide a live
        run): it is published now if connected, and again on every reconnect; while
        disconnected, the broker's last will says ``offline``.
        """
        self._online = online
        client = self._live_client
        if client is not None:
            with contextlib.suppress(aiomqtt.MqttError, asyncio.TimeoutError):
                await asyncio.wait_for(self._send_status(client), 5.0)

    async def _send_status(self, client: aiomqtt.Client) -> None:
        payload = encode_status(
            self._run, self._online, int(time.time() * 1000), self._run_start_ms
        )
        await client.publish(self._status_topic, payload, qos=1, retain=True)

    # -------------------------------------------------------------------- sender

    def _client(self) -> aiomqtt.Client:
        b = self._broker
        will_payload = encode_status(self._run, False, int(time.time() * 1000), self._run_start_ms)
        client = aiomqtt.Client(
            b.host,
            b.port,
            username=b.username,
            password=b.password,
            identifier=self._client_id,
            will=aiomqtt.Will(self._status_topic, will_payload, qos=1, retain=True),
            keepalive=b.keepalive_s,
            tls_context=b.tls_context(),
            max_inflight_messages=self._window,
            timeout=10,
        )
        client.pending_calls_threshold = 2 * self._window  # a full window is normal here
        return client

    async def _send_loop(self) -> None:
        delay = 0.2
        while not self._closing:
            try:
                async with self._client() as client:
                    self._live_client = client
                    self.connected.set()
                    delay = 0.2
                    await self._send_status(client)
                    await self._drain(client)
            except aiomqtt.MqttError as e:
                log.warning("broker unavailable (%s); %d messages spooled", e, len(self._spool))
            finally:
                self._live_client = None
                self.connected.clear()
            if self._closing:
                return
            self._reconnects += 1
            await asyncio.sleep(delay * (0.5 + random.random()))
            delay = min(delay * 2, self._backoff_max_s)

    async def _drain(self, client: aiomqtt.Client) -> None:
        while True:
            batch = self._spool.peek(self._window)
            if not batch:
                self._wake.clear()
                if len(self._spool):
                    continue
                await self._wait_for_work(client)
                continue
            await asyncio.gather(
                *(client.publish(m.topic, m.payload, qos=m.qos, retain=m.retain) for m in batch)
            )
            self._spool.remove([m.seq for m in batch])
            self._sent += len(batch)

    async def _wait_for_work(self, client: aiomqtt.Client) -> None:
        """Sleep until something is queued; notice a dead connection meanwhile."""
        waiter = asyncio.create_task(self._wake.wait())
        dead: asyncio.Future[Any] = client._disconnected  # no public "disconnected" awaitable
        done, _ = await asyncio.wait({waiter, dead}, return_when=asyncio.FIRST_COMPLETED)
        if waiter not in done:
            waiter.cancel()
            raise aiomqtt.MqttError("connection lost while idle")
