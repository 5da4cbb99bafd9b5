"""Pain reports for a live run, from the runner's MQTT pain topic.

``sensord pain`` (or a watch or phone app) publishes a 0-10 score on
``sensord/v1/<runner>/pain``, naming the live run it belongs to. A live ``sensord run``
listens there so that its coaching sees the report during the run: a score at or above
the threshold raises the stop alert now, not only in a dashboard later.

Only reports for this run are taken. Delivery is at-least-once (QoS 1), so a report
seen before (same time, score and location) is not passed on twice. The listener
reconnects with backoff while the broker is unreachable; reports published meanwhile
are not retained by the broker (a clean session), so they reach the dashboards through
``sensord ingest`` but not this run's coaching.
"""

from __future__ import annotations

import asyncio
import logging
import random

import aiomqtt

from sensord.contract import BrokerConfig, ContractError, decode, pain_topic
from sensord.model import PainReport, RunInfo

log = logging.getLogger(__name__)


async def listen_for_pain(broker: BrokerConfig, run: RunInfo,
                          queue: asyncio.Queue[PainReport], backoff_max_s: float = 10.0) -> None:
    """Put this run's pain reports on ``queue`` until cancelled.

    Overflow policy: a report that finds ``queue`` full is dropped with a warning (a
    runner sends a handful per run; a full queue means nobody is reading it).
    """
    seen: set[tuple[float, int, str | None]] = set()
    delay = 0.2
    while True:
        try:
            async with aiomqtt.Client(
                broker.host, broker.port, username=broker.username, password=broker.password,
                identifier=f"sensord-run-{run.runner_id}-{run.sensor_id}-pain",
                tls_context=broker.tls_context(), keepalive=broker.keepalive_s, timeout=10,
            ) as client:
                await client.subscribe(pain_topic(run.runner_id), qos=1)
                delay = 0.2
                async for message in client.messages:
                    for report in _reports(run, message.topic.value, message.payload):
                        key = (report.t_s, report.score, report.location)
                        if key in seen:
                            continue
                        seen.add(key)
                        try:
                            queue.put_nowait(report)
                        except asyncio.QueueFull:
                            log.warning("pain report %d/10 dropped: queue full", report.score)
        except aiomqtt.MqttError as e:
            log.warning("pain reports: broker unavailable (%s); retrying", e)
        await asyncio.sleep(delay * (0.5 + random.random()))
        delay = min(delay * 2, backoff_max_s)


def _reports(run: RunInfo, topic: str, payload: object) -> list[PainReport]:
    """This run's pain reports in one message (none from a malformed or other run's one)."""
    if not isinstance(payload, bytes | bytearray):
        return []
    try:
        env = decode(topic, bytes(payload))
    except ContractError as e:
        log.warning("pain message ignored: %s", e)
        return []
    if env.kind != "pain" or env.run_id != run.run_id:
        return []
    return [PainReport(t_s=float(r["t_s"]), score=int(r["score"]), location=r.get("location"))
            for r in env.records]
