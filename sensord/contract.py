"""The versioned MQTT contract: topics, payload schemas and their validation.

Used on both ends: the publisher (``sensord run``, ``sensord pain``) encodes with the
``encode_*`` functions, which validate what they produce; the bridge (``sensord ingest``)
decodes every message with :func:`decode`, which raises :class:`ContractError` with a
one-line reason for anything that does not match. The full contract is in
``docs/mqtt-contract.md``.

Topics (``<runner>``, ``<sensor>`` match :data:`ID_PATTERN`)::

    sensord/v1/<runner>/<sensor>/steps     sensord.step/1 or sensord.steps/1 (batch)
    sensord/v1/<runner>/<sensor>/summary   sensord.summary/1
    sensord/v1/<runner>/<sensor>/alerts    sensord.alert/1
    sensord/v1/<runner>/<sensor>/health    sensord.health/1
    sensord/v1/<runner>/<sensor>/status    sensord.status/1 (retained; last will)
    sensord/v1/<runner>/pain               sensord.pain/1
    sensord/v1/_deadletter                 sensord.deadletter/1 (written by the bridge)
"""

from __future__ import annotations

import json
import math
import re
import ssl
from dataclasses import dataclass, field
from typing import Any, Final, Literal, Protocol

from sensord.errors import InputError
from sensord.model import Alert, FormSummary, PainReport, RunInfo, SensorHealth, Step

TOPIC_ROOT: Final = "sensord/v1"
DEADLETTER_TOPIC: Final = f"{TOPIC_ROOT}/_deadletter"
#: Runner, sensor and run ids: safe as MQTT topic levels and as InfluxDB tag values.
ID_PATTERN: Final = r"^[A-Za-z0-9_.-]{1,64}$"
_ID_RE: Final = re.compile(ID_PATTERN)
#: Largest payload the bridge accepts; larger ones are dead-lettered.
MAX_PAYLOAD_BYTES: Final = 256 * 1024
#: Most steps in one ``sensord.steps/1`` batch message.
MAX_BATCH_STEPS: Final = 1000
#: Most steps a publisher puts in one batch: a step object with every field set to a
#: full-precision float is ~460 bytes, so 500 of them always fit ``MAX_PAYLOAD_BYTES``
#: (1000 do not).
PUBLISH_BATCH_STEPS: Final = 500
#: Longest free-text field (alert message, pain location), characters.
MAX_TEXT_CHARS: Final = 500

Kind = Literal["steps", "summary", "alerts", "health", "status", "pain"]
SENSOR_KINDS: Final[tuple[str, ...]] = ("steps", "summary", "alerts", "health", "status")

#: Schema names accepted per topic kind (the ``schema`` field of every payload).
SCHEMAS: Final[dict[str, tuple[str, ...]]] = {
    "steps": ("sensord.step/1", "sensord.steps/1"),
    "summary": ("sensord.summary/1",),
    "alerts": ("sensord.alert/1",),
    "health": ("sensord.health/1",),
    "status": ("sensord.status/1",),
    "pain": ("sensord.pain/1",),
}

#: Subscriptions that cover every ingestible topic (status is retained, not ingested).
INGEST_FILTERS: Final[tuple[str, ...]] = (
    f"{TOPIC_ROOT}/+/+/steps",
    f"{TOPIC_ROOT}/+/+/summary",
    f"{TOPIC_ROOT}/+/+/alerts",
    f"{TOPIC_ROOT}/+/+/health",
    f"{TOPIC_ROOT}/+/pain",
)

STEP_FLOAT_FIELDS: Final[tuple[str, ...]] = (
    "gct_ms",
    "cadence_spm",
    "pelvic_drop_deg",
    "step_time_s",
    "stride_time_s",
    "gct_balance_pct",
    "vertical_oscillation_cm",
    "impact_g",
    "braking_g",
    "flight_ms",
)
SUMMARY_FLOAT_FIELDS: Final[tuple[str, ...]] = (
    "form_score",
    "cadence_spm",
    "gct_ms",
    "pelvic_drop_left_deg",
    "pelvic_drop_right_deg",
    "gct_balance_pct",
    "vertical_oscillation_cm",
    "impact_g",
    "braking_g",
    "step_time_cv_pct",
)
HEALTH_FLOAT_FIELDS: Final[tuple[str, ...]] = ("packet_loss_pct", "latency_ms")
HEALTH_INT_FIELDS: Final[tuple[str, ...]] = ("reconnects", "duplicates", "malformed", "gaps")

_SIDES: Final = ("left", "right")
_PLACEMENTS: Final = ("pelvis", "foot")
_SEVERITIES: Final = ("info", "warning", "critical")
_ALERT_STATES: Final = ("raised", "cleared")
_ACTIVITIES: Final = ("run", "walk", "still")
#: Timestamps outside 2000-01-01 .. 2200-01-01 are rejected (catches seconds-vs-ms bugs).
_TS_MIN_MS: Final = 946_684_800_000
_TS_MAX_MS: Final = 7_258_118_400_000


class ContractError(InputError):
    """A topic or payload that does not match the contract; the message is the reason."""


@dataclass(frozen=True, slots=True)
class TopicParts:
    """A parsed topic: runner, sensor (``None`` for pain) and kind."""

    runner: str
    sensor: str | None
    kind: Kind


@dataclass(frozen=True, slots=True)
class Envelope:
    """A decoded, validated message.

    Attributes
    ----------
    kind
        Topic kind (``"steps"``, ``"summary"``, ...).
    schema
        The payload's schema name, e.g. ``"sensord.step/1"``.
    runner, sensor, run_id
        Ids from the payload (checked against the topic). ``sensor`` is ``None`` for pain.
    records
        The record dicts: one per step for a batch, otherwise exactly one. Each carries
        ``ts_ms`` (epoch milliseconds) and the kind's fields, validated.
    placement
        Sensor placement for steps and summaries, else ``None``.
    """

    kind: Kind
    schema: str
    runner: str
    sensor: str | None
    run_id: str
    records: tuple[dict[str, Any], ...]
    placement: str | None = None


@dataclass(frozen=True, slots=True)
class BrokerConfig:
    """Where and how to reach the MQTT broker.

    The password comes from the environment or a file (see ``sensord ingest --help``),
    never from a config file; it is not part of ``repr``.
    """

    host: str = "127.0.0.1"
    port: int = 1883
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    tls: bool = False
    ca_file: str | None = None
    keepalive_s: int = 30

    def tls_context(self) -> ssl.SSLContext | None:
        """An SSL context when ``tls`` is on (verifying against ``ca_file`` if given)."""
        if not self.tls:
            return None
        try:
            return ssl.create_default_context(cafile=self.ca_file)
        except (OSError, ssl.SSLError) as e:
            raise InputError(f"--ca-file {self.ca_file}: cannot load it as a CA bundle "
                             f"({getattr(e, 'strerror', None) or e}); give a PEM file") from None


class RunSink(Protocol):
    """What ``sensord run`` writes a run's results to (MQTT publisher or local store)."""

    async def publish_step(self, step: Step) -> None: ...
    async def publish_alert(self, alert: Alert) -> None: ...
    async def publish_summary(self, summary: FormSummary) -> None: ...
    async def publish_health(self, health: SensorHealth) -> None: ...
    async def publish_pain(self, pain: PainReport) -> None: ...


async def publish_event(sink: RunSink, event: object) -> None:
    """Send one run output to the sink method for its type (others are not published)."""
    if isinstance(event, Step):
        await sink.publish_step(event)
    elif isinstance(event, Alert):
        await sink.publish_alert(event)
    elif isinstance(event, FormSummary):
        await sink.publish_summary(event)
    elif isinstance(event, SensorHealth):
        await sink.publish_health(event)
    elif isinstance(event, PainReport):
        await sink.publish_pain(event)


# --------------------------------------------------------------------------- topics


def check_id(value: object, what: str) -> str:
    """``value`` if it is a valid runner/sensor/run id, else :class:`ContractError`."""
    if not isinstance(value, str) or not _ID_RE.match(value):
        raise ContractError(
            f"{what} must match {ID_PATTERN} (letters, digits, '_', '.', '-'; 1-64 chars), "
            f"got {value!r:.80}"
        )
    return value


def topic(runner: str, sensor: str, kind: str) -> str:
    """The topic of a sensor stream, e.g. ``sensord/v1/alice/pelvis1/steps``."""
    if kind not in SENSOR_KINDS:
        raise ContractError(f"unknown topic kind {kind!r}; expected one of {SENSOR_KINDS}")
    return f"{TOPIC_ROOT}/{check_id(runner, 'runner id')}/{check_id(sensor, 'sensor id')}/{kind}"


def pain_topic(runner: str) -> str:
    """``sensord/v1/<runner>/pain``."""
    return f"{TOPIC_ROOT}/{check_id(runner, 'runner id')}/pain"


def status_filter(runner: str) -> str:
    """Subscription filter for every status topic of ``runner``."""
    return f"{TOPIC_ROOT}/{check_id(runner, 'runner id')}/+/status"


def parse_topic(topic_: str) -> TopicParts:
    """Split a contract topic; :class:`ContractError` if it is not one."""
    parts = topic_.split("/")
    if len(parts) < 4 or "/".join(parts[:2]) != TOPIC_ROOT:
        raise ContractError(f"topic {topic_!r:.120} is not under {TOPIC_ROOT}/")
    if len(parts) == 4 and parts[3] == "pain":
        return TopicParts(check_id(parts[2], "runner id in topic"), None, "pain")
    if len(parts) == 5 and parts[4] in SENSOR_KINDS:
        runner = check_id(parts[2], "runner id in topic")
        sensor = check_id(parts[3], "sensor id in topic")
        return TopicParts(runner, sensor, parts[4])  # type: ignore[arg-type]
    raise ContractError(f"topic {topic_!r:.120} is not a sensord/v1 topic")


# ----------------------------------------------------------------------- validation


def _reject_constant(name: str) -> Any:
    raise ContractError(f"payload contains {name}, which is not valid JSON")


def _num(d: dict[str, Any], key: str, *, required: bool = False) -> float | None:
    v = d.get(key)
    if v is None:
        if required:
            raise ContractError(f"field {key!r} is required")
        return None
    if isinstance(v, bool) or not isinstance(v, int | float):
        raise ContractError(f"field {key!r} must be a number, got {type(v).__name__}")
    f = float(v)
    if not math.isfinite(f):
        raise ContractError(f"field {key!r} must be finite, got {v!r}")
    return f


def _int(d: dict[str, Any], key: str, *, required: bool = False) -> int | None:
    v = d.get(key)
    if v is None:
        if required:
            raise ContractError(f"field {key!r} is required")
        return None
    if isinstance(v, bool) or not isinstance(v, int):
        raise ContractError(f"field {key!r} must be an integer, got {type(v).__name__}")
    return v


def _str(
    d: dict[str, Any], key: str, *, choices: tuple[str, ...] | None = None, required: bool = False
) -> str | None:
    v = d.get(key)
    if v is None:
        if required:
            raise ContractError(f"field {key!r} is required")
        return None
    if not isinstance(v, str):
        raise ContractError(f"field {key!r} must be a string, got {type(v).__name__}")
    if choices is not None and v not in choices:
        raise ContractError(f"field {key!r} must be one of {choices}, got {v!r:.40}")
    if len(v) > MAX_TEXT_CHARS:
        raise ContractError(f"field {key!r} is longer than {MAX_TEXT_CHARS} characters")
    return v


def _ts(d: dict[str, Any]) -> int:
    ts = _int(d, "ts_ms", required=True)
    assert ts is not None
    if not _TS_MIN_MS <= ts <= _TS_MAX_MS:
        raise ContractError(f"field 'ts_ms' must be epoch milliseconds, got {ts}")
    return ts


_STEP_NUMBERS: Final = ("t_fc", *STEP_FLOAT_FIELDS)
_isfinite = math.isfinite


def _check_step(d: dict[str, Any]) -> dict[str, Any]:
    # Fast path (the bridge's hot loop): exact type checks; on any doubt, the slow path
    # below produces the precise reason.
    if type(d) is dict:
        ts, idx, side = d.get("ts_ms"), d.get("step_index"), d.get("side")
        t_ic: Any = d.get("t_ic")
        if (
            type(ts) is int
            and _TS_MIN_MS <= ts <= _TS_MAX_MS
            and type(idx) is int
            and idx >= 0
            and type(t_ic) in (float, int)
            and _isfinite(t_ic)
            and (side is None or side in _SIDES)
        ):
            for k in _STEP_NUMBERS:
                v = d.get(k)
                if v is not None and (type(v) not in (float, int) or not _isfinite(v)):
                    break
            else:
                return d
    return _check_step_slow(d)


def _check_step_slow(d: dict[str, Any]) -> dict[str, Any]:
    if not isinstance(d, dict):
        raise ContractError(f"a step must be a JSON object, got {type(d).__name__}")
    _ts(d)
    idx = _int(d, "step_index", required=True)
    if idx is not None and idx < 0:
        raise ContractError(f"field 'step_index' must be >= 0, got {idx}")
    _num(d, "t_ic", required=True)
    _num(d, "t_fc")
    _str(d, "side", choices=_SIDES)
    for k in STEP_FLOAT_FIELDS:
        _num(d, k)
    return d


def _check_summary(d: dict[str, Any]) -> dict[str, Any]:
    _ts(d)
    _num(d, "t_s", required=True)
    for k in SUMMARY_FLOAT_FIELDS:
        _num(d, k)
    _int(d, "steps")
    _str(d, "activity", choices=_ACTIVITIES)
    return d


def _check_alert(d: dict[str, Any]) -> dict[str, Any]:
    _ts(d)
    check_id(d.get("kind"), "field 'kind'")
    _str(d, "severity", choices=_SEVERITIES, required=True)
    _str(d, "state", choices=_ALERT_STATES, required=True)
    _str(d, "metric", required=True)
    _str(d, "message", required=True)
    _str(d, "side", choices=_SIDES)
    for k in ("baseline", "current"):
        _num(d, k)
    _num(d, "began_at_s", required=True)
    _num(d, "t_s", required=True)
    return d


def _check_health(d: dict[str, Any]) -> dict[str, Any]:
    _ts(d)
    _num(d, "t_s", required=True)
    if not isinstance(d.get("connected"), bool):
        raise ContractError("field 'connected' must be true or false")
    for k in HEALTH_FLOAT_FIELDS:
        _num(d, k)
    for k in HEALTH_INT_FIELDS:
        _int(d, k)
    _int(d, "battery_pct")
    return d


def _check_pain(d: dict[str, Any]) -> dict[str, Any]:
    _ts(d)
    _num(d, "t_s", required=True)
    score = _int(d, "score", required=True)
    if score is None or not 0 <= score <= 10:
        raise ContractError(f"field 'score' must be an integer 0-10, got {score}")
    _str(d, "location")
    return d


def _check_status(d: dict[str, Any]) -> dict[str, Any]:
    _ts(d)
    _str(d, "state", choices=("online", "offline"), required=True)
    _int(d, "run_start_ms")
    return d


_CHECKS = {
    "sensord.step/1": _check_step,
    "sensord.summary/1": _check_summary,
    "sensord.alert/1": _check_alert,
    "sensord.health/1": _check_health,
    "sensord.pain/1": _check_pain,
    "sensord.status/1": _check_status,
}


def decode(topic_: str, payload: bytes) -> Envelope:
    """Parse and validate one message.

    Raises
    ------
    ContractError
        With a one-line reason: bad topic, oversized or malformed payload, unknown
        schema or version, wrong or non-finite types, ids that differ from the topic.
    """
    parts = parse_topic(topic_)
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise ContractError(f"payload of {len(payload)} bytes exceeds {MAX_PAYLOAD_BYTES}")
    try:
        doc = json.loads(payload, parse_constant=_reject_constant)
    except ContractError:
        raise
    except (ValueError, UnicodeDecodeError) as e:
        raise ContractError(f"malformed JSON: {e}") from None
    except RecursionError:
        raise ContractError("malformed JSON: nested too deeply") from None
    if not isinstance(doc, dict):
        raise ContractError(f"payload must be a JSON object, got {type(doc).__name__}")
    schema = doc.get("schema")
    if not isinstance(schema, str):
        raise ContractError("field 'schema' is missing or not a string")
    allowed = SCHEMAS[parts.kind]
    if schema not in allowed:
        name = schema.partition("/")[0]
        if any(a.partition("/")[0] == name for a in allowed):
            raise ContractError(f"unknown schema version {schema!r:.60}; supported: {allowed}")
        raise ContractError(f"schema {schema!r:.60} is not valid on a {parts.kind} topic")
    runner = check_id(doc.get("runner"), "field 'runner'")
    if runner != parts.runner:
        raise ContractError(f"runner {runner!r} in payload differs from topic ({parts.runner!r})")
    sensor: str | None = None
    if parts.sensor is not None:
        sensor = check_id(doc.get("sensor"), "field 'sensor'")
        if sensor != parts.sensor:
            raise ContractError(
                f"sensor {sensor!r} in payload differs from topic ({parts.sensor!r})"
            )
    run_id = check_id(doc.get("run_id"), "field 'run_id'")
    placement: str | None = None
    if parts.kind in ("steps", "summary"):
        placement = _str(doc, "placement", choices=_PLACEMENTS, required=True)
    if schema == "sensord.steps/1":
        steps = doc.get("steps")
        if not isinstance(steps, list) or not steps:
            raise ContractError("field 'steps' must be a non-empty list")
        if len(steps) > MAX_BATCH_STEPS:
            raise ContractError(f"batch of {len(steps)} steps exceeds {MAX_BATCH_STEPS}")
        for i, s in enumerate(steps):
            try:
                _check_step(s)
            except ContractError as e:
                raise ContractError(f"steps[{i}]: {e}") from None
        records: tuple[dict[str, Any], ...] = tuple(steps)
    else:
        records = (_CHECKS[schema](doc),)
    return Envelope(parts.kind, schema, runner, sensor, run_id, records, placement)


# ------------------------------------------------------------------------- encoding


def epoch_ms(epoch_offset_s: float, t_s: float) -> int:
    """Absolute time of run time ``t_s``: ``round((epoch_offset_s + t_s) * 1000)``."""
    return round((epoch_offset_s + t_s) * 1000.0)


def _dumps(doc: dict[str, Any]) -> bytes:
    try:
        return json.dumps(doc, allow_nan=False, separators=(",", ":")).encode()
    except ValueError as e:
        raise ContractError(f"cannot encode payload: {e}") from None


def _head(schema: str, run: RunInfo, *, sensor: bool = True) -> dict[str, Any]:
    head: dict[str, Any] = {"schema": schema, "run_id": check_id(run.run_id, "run id")}
    head["runner"] = check_id(run.runner_id, "runner id")
    if sensor:
        head["sensor"] = check_id(run.sensor_id, "sensor id")
    return head


def step_record(step: Step, epoch_offset_s: float) -> dict[str, Any]:
    """The per-step object of a step payload (``ts_ms`` from the step's initial contact)."""
    rec = step.to_dict()
    rec.pop("placement", None)
    rec["ts_ms"] = epoch_ms(epoch_offset_s, step.t_ic)
    return rec


def encode_step(run: RunInfo, step: Step, epoch_offset_s: float) -> bytes:
    """A ``sensord.step/1`` payload for one step."""
    doc = _head("sensord.step/1", run) | {"placement": run.placement}
    doc |= step_record(step, epoch_offset_s)
    return _validated(topic(run.runner_id, run.sensor_id, "steps"), doc)


def encode_steps(run: RunInfo, steps: list[Step], epoch_offset_s: float) -> bytes:
    """A ``sensord.steps/1`` batch payload (1..:data:`MAX_BATCH_STEPS` steps)."""
    doc = _head("sensord.steps/1", run) | {"placement": run.placement}
    doc["steps"] = [step_record(s, epoch_offset_s) for s in steps]
    return _validated(topic(run.runner_id, run.sensor_id, "steps"), doc)


def encode_summary(run: RunInfo, summary: FormSummary, epoch_offset_s: float) -> bytes:
    """A ``sensord.summary/1`` payload."""
    doc = _head("sensord.summary/1", run) | {"placement": run.placement}
    doc |= summary.to_dict() | {"ts_ms": epoch_ms(epoch_offset_s, summary.t_s)}
    return _validated(topic(run.runner_id, run.sensor_id, "summary"), doc)


def encode_alert(run: RunInfo, alert: Alert, epoch_offset_s: float) -> bytes:
    """A ``sensord.alert/1`` payload."""
    doc = _head("sensord.alert/1", run)
    doc |= alert.to_dict() | {"ts_ms": epoch_ms(epoch_offset_s, alert.t_s)}
    return _validated(topic(run.runner_id, run.sensor_id, "alerts"), doc)


def encode_health(run: RunInfo, health: SensorHealth, epoch_offset_s: float) -> bytes:
    """A ``sensord.health/1`` payload."""
    doc = _head("sensord.health/1", run)
    doc |= health.to_dict() | {"ts_ms": epoch_ms(epoch_offset_s, health.t_s)}
    return _validated(topic(run.runner_id, run.sensor_id, "health"), doc)


def encode_pain(run: RunInfo, pain: PainReport, epoch_offset_s: float) -> bytes:
    """A ``sensord.pain/1`` payload (``run.sensor_id`` is not used)."""
    doc = _head("sensord.pain/1", run, sensor=False)
    doc |= pain.to_dict() | {"ts_ms": epoch_ms(epoch_offset_s, pain.t_s)}
    return _validated(pain_topic(run.runner_id), doc)


def encode_status(run: RunInfo, online: bool, now_ms: int, run_start_ms: int) -> bytes:
    """A ``sensord.status/1`` payload (retained; the offline one is also the last will)."""
    doc = _head("sensord.status/1", run)
    doc |= {
        "state": "online" if online else "offline",
        "ts_ms": now_ms,
        "run_start_ms": run_start_ms,
    }
    return _validated(topic(run.runner_id, run.sensor_id, "status"), doc)


def _validated(topic_: str, doc: dict[str, Any]) -> bytes:
    payload = _dumps(doc)
    decode(topic_, payload)
    return payload


def deadletter_payload(topic_: str, payload: bytes, reason: str, now_ms: int) -> bytes:
    """A ``sensord.deadletter/1`` payload: the reason, the topic and the original payload.

    The original is kept as text when it is valid UTF-8 (else ``payload_b64``), cut to
    64 KiB (``truncated`` says whether it was).
    """
    import base64

    limit = 64 * 1024
    cut = payload[:limit]
    doc: dict[str, Any] = {
        "schema": "sensord.deadletter/1",
        "reason": reason,
        "topic": topic_,
        "ts_ms": now_ms,
        "size_bytes": len(payload),
        "truncated": len(payload) > limit,
    }
    try:
        doc["payload"] = cut.decode("utf-8")
    except UnicodeDecodeError:
        doc["payload_b64"] = base64.b64encode(cut).decode()
    return json.dumps(doc, separators=(",", ":")).encode()
