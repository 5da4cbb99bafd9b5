"""Everything a run report shows, and the loaders that gather it.

A :class:`RunData` comes from one of three places:

- a recording (CSV): the gait engine and the coaching detectors run over it offline;
- a database speaking InfluxQL (InfluxDB 1.x, 2.x via DBRP, 3.x) holding what
  ``sensord ingest`` wrote, selected by ``run_id``;
- a list of events already in memory (the local store, tests, the live runtime).

All times are run time in seconds (the step's ``t_ic`` axis).
"""

from __future__ import annotations

import json
import math
import sys
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sensord.coaching.params import CoachParams
from sensord.errors import InputError, ServiceError
from sensord.model import (
    Alert,
    FormSummary,
    PainReport,
    Placement,
    RunInfo,
    SensorHealth,
    Severity,
    Step,
)

Activity = str  # "run" | "walk" | "still"


@dataclass(frozen=True, slots=True)
class ActivityBout:
    """A stretch of one activity (run time, seconds)."""

    activity: Activity
    start_s: float
    end_s: float


@dataclass(frozen=True, slots=True)
class RunData:
    """One run, ready to be reported.

    Attributes
    ----------
    info
        Runner, sensor, run and placement.
    steps, summaries, alerts, pain, health
        Time-ordered events of the run.
    bouts
        Walk/run/still bouts (for return-to-run compliance), possibly empty.
    source
        Where the data came from, for the report header.
    coach
        The coaching parameters the run is judged against: the warm-up and baseline
        windows and the cadence target band of the charts (the runner's config, or the
        defaults).
    """

    info: RunInfo
    steps: tuple[Step, ...]
    summaries: tuple[FormSummary, ...] = ()
    alerts: tuple[Alert, ...] = ()
    pain: tuple[PainReport, ...] = ()
    health: tuple[SensorHealth, ...] = ()
    bouts: tuple[ActivityBout, ...] = ()
    source: str = ""
    started_at_ms: int | None = field(default=None)
    coach: CoachParams = field(default_factory=CoachParams)

    @property
    def duration_s(self) -> float:
        """Run time from the first to the last step."""
        if not self.steps:
            return 0.0
        return self.steps[-1].t_ic - self.steps[0].t_ic


def bouts_from_summaries(summaries: Sequence[FormSummary]) -> tuple[ActivityBout, ...]:
    """Merge consecutive summaries of the same activity into bouts."""
    out: list[ActivityBout] = []
    prev_t = 0.0
    for s in summaries:
        if s.activity is None:
            prev_t = s.t_s
            continue
        if out and out[-1].activity == s.activity:
            out[-1] = ActivityBout(s.activity, out[-1].start_s, s.t_s)
        else:
            out.append(ActivityBout(s.activity, prev_t, s.t_s))
        prev_t = s.t_s
    return tuple(out)


def from_events(info: RunInfo, events: Iterable[object], source: str = "events",
                bouts: Sequence[ActivityBout] = (), coach: CoachParams | None = None
                ) -> RunData:
    """A :class:`RunData` from a mixed stream of model objects."""
    steps: list[Step] = []
    summaries: list[FormSummary] = []
    alerts: list[Alert] = []
    pain: list[PainReport] = []
    health: list[SensorHealth] = []
    for e in events:
        if isinstance(e, Step):
            steps.append(e)
        elif isinstance(e, FormSummary):
            summaries.append(e)
        elif isinstance(e, Alert):
            alerts.append(e)
        elif isinstance(e, PainReport):
            pain.append(e)
        elif isinstance(e, SensorHealth):
            health.append(e)
    summaries.sort(key=lambda s: s.t_s)
    return RunData(
        info=info,
        steps=tuple(sorted(steps, key=lambda s: s.t_ic)),
        summaries=tuple(summaries),
        alerts=tuple(sorted(alerts, key=lambda a: a.t_s)),
        pain=tuple(sorted(pain, key=lambda p: p.t_s)),
        health=tuple(sorted(health, key=lambda h: h.t_s)),
        bouts=tuple(bouts) or bouts_from_summaries(summaries),
        source=source,
        coach=coach or CoachParams(),
    )


def from_recording(path: str | Path, pain: Sequence[PainReport] = (),
                   runner: str = "runner", coach: CoachParams | None = None) -> RunData:
    """Run the gait engine and the coaching detectors (``coach``: the runner's
    parameters, default the defaults) over a recording.

    Raises
    ------
    InputError
        The recording cannot be read, or yields no steps.
    """
    from sensord.coaching.detectors import bouts as coach_bouts
    from sensord.coaching.detectors import run_offline
    from sensord.gait.engine import EngineParams, analyze, steps_only
    from sensord.sources.recording import read_recording

    rec = read_recording(path)
    placement = rec.metadata.get("placement", "pelvis")
    if placement not in ("pelvis", "foot"):
        raise InputError(f"{path}: metadata placement={placement!r}; use pelvis or foot")
    side = rec.metadata.get("sensor_side")
    params = EngineParams(placement=placement,  # type: ignore[arg-type]
                          sensor_side=side if side in ("left", "right") else None)  # type: ignore[arg-type]
    steps = steps_only(analyze(params, rec.samples))
    if not steps:
        raise InputError(f"{path}: no steps found in the recording; is it a run or walk?")
    coach = coach or CoachParams()
    state, events = run_offline(coach, steps, pain)
    bouts = tuple(ActivityBout(b.activity, b.start_s, b.end_s) for b in coach_bouts(state))
    info = RunInfo(runner_id=rec.metadata.get("runner", runner),
                   sensor_id=rec.metadata.get("sensor", "recording"),
                   run_id=Path(path).stem, placement=placement)  # type: ignore[arg-type]
    return from_events(info, [*steps, *events, *pain], source=f"recording {Path(path).name}",
                       bouts=bouts, coach=coach)


# ----------------------------------------------------------------------------- InfluxQL


def _quote(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def redact_url(url: str) -> str:
    """``url`` with the credentials of its user info hidden, for messages.

    ``http://alice:s3cret@host`` -> ``http://alice:***@host``, ``http://TOKEN@host`` ->
    ``http://***@host``. Works on any string, even one that does not parse as a URL.
    """
    scheme, sep, rest = url.partition("://")
    if not sep:
        scheme, rest = "", url
    if "@" not in rest:
        return url
    userinfo, _, host = rest.rpartition("@")
    user, colon, _ = userinfo.partition(":")
    return f"{scheme}{sep}{user + ':' if colon else ''}***@{host}"


@dataclass(frozen=True, slots=True)
class InfluxQL:
    """A minimal InfluxQL-over-HTTP client (``/query``, epoch ms).

    Parameters
    ----------
    url
        Base URL, e.g. ``http://127.0.0.1:8086``.
    db
        Database (InfluxDB 2.x: the DBRP-mapped database name).
    token
        ``Authorization: Token`` value, or ``user:password`` for basic auth; ``None``
        for no auth. Never logged or shown.
    timeout_s
        Per-request timeout.

    Raises
    ------
    InputError
        ``url`` is not a valid ``http(s)://HOST[:PORT]`` URL, or holds credentials.
    """

    url: str
    db: str
    token: str | None = field(default=None, repr=False)
    timeout_s: float = 15.0

    def __post_init__(self) -> None:
        shown = self.shown_url
        how = "write it like http://HOST:PORT"
        if any(c.isspace() or not c.isprintable() for c in self.url):
            raise InputError(f"--influx-url {shown!r} contains spaces or control characters; "
                             + how)
        try:
            parsed = urllib.parse.urlsplit(self.url)
            _ = parsed.port  # (raises ValueError for a port that is not 0-65535)
        except ValueError as e:
            detail = f" ({e})" if shown == self.url else ""  # (e may quote a password)
            raise InputError(f"--influx-url {shown!r} is not a valid URL{detail}; {how}") from None
        if parsed.scheme not in ("http", "https") or not parsed.hostname:
            raise InputError(f"--influx-url must look like http://HOST:PORT, got {shown!r}")
        if "@" in parsed.netloc:
            raise InputError(f"--influx-url {shown!r}: credentials in the URL are not used; "
                             "put user:password in --influx-token-file or $SENSORD_INFLUX_TOKEN")

    @property
    def shown_url(self) -> str:
        """The URL as messages and reports show it (credentials redacted)."""
        return redact_url(self.url)

    def _headers(self) -> dict[str, str]:
        if not self.token:
            return {}
        if ":" in self.token:
            import base64

            return {"Authorization": "Basic " + base64.b64encode(self.token.encode()).decode()}
        return {"Authorization": f"Token {self.token}"}

    def series(self, q: str) -> list[dict[str, Any]]:
        """The series of one InfluxQL statement.

        Raises
        ------
        ServiceError
            Unreachable server, HTTP error, or an InfluxQL error (e.g. unknown database).
        InputError
            The URL cannot be used for a request.
        """
        url = self.shown_url
        body = urllib.parse.urlencode({"q": q, "db": self.db, "epoch": "ms"}).encode()
        req = urllib.request.Request(self.url.rstrip("/") + "/query", data=body,
                                     headers=self._headers(), method="POST")
        try:
            with urllib.request.urlopen(req, timeout=self.timeout_s) as resp:
                doc = json.loads(resp.read())
        except urllib.error.HTTPError as e:
            detail = " ".join(e.read()[:200].decode(errors="replace").split())
            raise ServiceError(f"InfluxDB at {url} answered HTTP {e.code}: {detail}") from None
        except (urllib.error.URLError, OSError, TimeoutError) as e:
            reason = getattr(e, "reason", e)
            raise ServiceError(f"cannot reach InfluxDB at {url}: {reason}") from None
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise ServiceError(f"{url} did not answer like InfluxDB (no JSON)") from None
        except ValueError:  # http.client.InvalidURL and the like, for what __post_init__ let by
            raise InputError(f"--influx-url {url!r} is not a valid URL; write it like "
                             "http://HOST:PORT") from None
        results = doc.get("results") or [{}]
        if "error" in results[0]:
            raise ServiceError(f"InfluxDB ({url}, db {self.db!r}): {results[0]['error']}")
        if "error" in doc:
            raise ServiceError(f"InfluxDB ({url}): {doc['error']}")
        return list(results[0].get("series", []))

    def rows(self, q: str) -> list[dict[str, Any]]:
        """Rows of every series as dicts (tags merged in)."""
        out: list[dict[str, Any]] = []
        for s in self.series(q):
            tags = s.get("tags", {})
            for values in s["values"]:
                row = dict(zip(s["columns"], values, strict=True))
                row.update(tags)
                out.append(row)
        out.sort(key=lambda r: r["time"])
        return out


def _f(v: Any) -> float | None:
    if v is None or isinstance(v, str):
        return None
    f = float(v)
    return f if math.isfinite(f) else None


def _side(v: Any) -> Any:
    return v if v in ("left", "right") else None


def from_influx(client: InfluxQL, run_id: str) -> RunData:
    """Read one run (all measurements, by ``run_id``) back from InfluxQL.

    Raises
    ------
    ServiceError
        The server cannot be used, or it holds no steps for ``run_id``.
    """
    if not run_id or any(c in run_id for c in "\n\r"):
        raise InputError(f"invalid run id {run_id!r}")
    where = f'WHERE "run_id" = {_quote(run_id)}'
    step_rows = client.rows(f'SELECT * FROM "steps" {where}')
    if not step_rows:
        known = client.rows('SELECT last("step_index") FROM "steps" GROUP BY "run_id"')
        hint = ", ".join(sorted({str(r.get("run_id")) for r in known})[:10]) or "none"
        raise ServiceError(f"run {run_id!r} not found in database {client.db!r} at "
                           f"{client.shown_url} (runs there: {hint})")
    first = step_rows[0]
    t0_ms = int(first["time"]) - round(float(first.get("t_ic_s") or 0.0) * 1000)

    def rt(row: dict[str, Any]) -> float:
        return (int(row["time"]) - t0_ms) / 1000.0

    placement: Placement = "foot" if first.get("placement") == "foot" else "pelvis"
    steps = tuple(
        Step(t_ic=float(r["t_ic_s"]) if r.get("t_ic_s") is not None else rt(r), t_fc=None,
             gct_ms=_f(r.get("gct_ms")), cadence_spm=_f(r.get("cadence_spm")),
             side=_side(r.get("side")), pelvic_drop_deg=_f(r.get("pelvic_drop_deg")),
             placement=placement, step_index=int(r.get("step_index") or 0),
             step_time_s=_f(r.get("step_time_s")), stride_time_s=_f(r.get("stride_time_s")),
             gct_balance_pct=_f(r.get("gct_balance_pct")),
             vertical_oscillation_cm=_f(r.get("vertical_oscillation_cm")),
             impact_g=_f(r.get("impact_g")), braking_g=_f(r.get("braking_g")),
             flight_ms=_f(r.get("flight_ms")))
        for r in step_rows
    )
    summaries = []
    for r in client.rows(f'SELECT * FROM "summary" {where}'):
        act = r.get("activity")
        summaries.append(FormSummary(
            t_s=rt(r), cadence_spm=_f(r.get("cadence_spm")), gct_ms=_f(r.get("gct_ms")),
            pelvic_drop_left_deg=_f(r.get("pelvic_drop_left_deg")),
            pelvic_drop_right_deg=_f(r.get("pelvic_drop_right_deg")),
            gct_balance_pct=_f(r.get("gct_balance_pct")),
            vertical_oscillation_cm=_f(r.get("vertical_oscillation_cm")),
            impact_g=_f(r.get("impact_g")), braking_g=_f(r.get("braking_g")),
            step_time_cv_pct=_f(r.get("step_time_cv_pct")), form_score=_f(r.get("form_score")),
            activity=act if act in ("run", "walk", "still") else None,
            steps=int(r.get("steps") or 0)))
    alerts = []
    for r in client.rows(f'SELECT * FROM "alerts" {where}'):
        sev_raw = r.get("severity")
        sev: Severity = sev_raw if sev_raw in ("info", "warning", "critical") else "info"
        alerts.append(Alert(
            kind=str(r.get("kind") or "alert"), severity=sev, metric=str(r.get("metric") or ""),
            baseline=_f(r.get("baseline")), current=_f(r.get("current")),
            began_at_s=_f(r.get("began_at_s")) or rt(r), t_s=rt(r),
            state="cleared" if r.get("state") == "cleared" else "raised",
            message=str(r.get("message") or ""), side=_side(r.get("side"))))
    pain = []
    for r in client.rows(f'SELECT * FROM "pain" {where}'):
        score = r.get("score")
        if isinstance(score, int | float) and 0 <= int(score) <= 10:
            loc = r.get("location")
            pain.append(PainReport(t_s=rt(r), score=int(score),
                                   location=str(loc) if loc else None))
    health = []
    for r in client.rows(f'SELECT * FROM "health" {where}'):
        bat = _f(r.get("battery_pct"))
        health.append(SensorHealth(
            t_s=rt(r), connected=bool(r.get("connected")),
            packet_loss_pct=_f(r.get("packet_loss_pct")) or 0.0,
            reconnects=int(r.get("reconnects") or 0), latency_ms=_f(r.get("latency_ms")),
            battery_pct=None if bat is None else int(bat),
            duplicates=int(r.get("duplicates") or 0), malformed=int(r.get("malformed") or 0),
            gaps=int(r.get("gaps") or 0)))
    info = RunInfo(runner_id=str(first.get("runner") or "?"),
                   sensor_id=str(first.get("sensor") or "?"), run_id=run_id,
                   placement=placement)
    data = from_events(info, [*steps, *summaries, *alerts, *pain, *health],
                       source=f"InfluxDB {client.shown_url} db {client.db}")
    return RunData(info=data.info, steps=data.steps, summaries=data.summaries,
                   alerts=data.alerts, pain=data.pain, health=data.health, bouts=data.bouts,
                   source=data.source, started_at_ms=t0_ms)


def from_store(path: str | Path, run_id: str) -> RunData:
    """Read one run from a local store (``sensord run --store``, SQLite).

    Raises
    ------
    InputError
        The file is missing or not a store.
    ServiceError
        The run is not in the store (the message lists the runs that are).
    """
    from sensord.sinks.local_store import load_run

    rec = load_run(path, run_id)
    if not rec.steps:
        raise ServiceError(f"run {run_id!r} in {path} has no steps to report")
    data = from_events(rec.run, [*rec.steps, *rec.summaries, *rec.alerts, *rec.pain,
                                 *rec.health], source=f"local store {Path(path).name}")
    return RunData(info=data.info, steps=data.steps, summaries=data.summaries,
                   alerts=data.alerts, pain=data.pain, health=data.health, bouts=data.bouts,
                   source=data.source, started_at_ms=round(rec.epoch_offset_s * 1000))


_JSONL_TYPES: dict[str, type[Any]] = {
    "step": Step, "alert": Alert, "formsummary": FormSummary, "sensorhealth": SensorHealth,
    "painreport": PainReport,
}


def _known(cls: type[Any], d: dict[str, Any]) -> dict[str, Any]:
    names = set(cls.field_names())
    return {k: v for k, v in d.items() if k in names}


def from_jsonl(path: str | Path) -> RunData:
    """Read a run from the JSON Lines store of ``sensord run`` (``<dir>/<run_id>.jsonl``).

    A last line cut off while it was written (after the run record; no newline, not a
    valid record: the run ended in a crash) is skipped with a one-line warning on stderr.

    Raises
    ------
    InputError
        Missing file, or a line that is not a valid record (file and line named).
    """
    p = Path(path)
    try:
        lines = p.read_bytes().split(b"\n")
    except FileNotFoundError:
        raise InputError(f"{p}: no such run file") from None
    except OSError as e:
        raise InputError(f"{p}: cannot read ({e})") from None
    info: RunInfo | None = None
    events: list[object] = []
    for n, raw in enumerate(lines, start=1):
        if not raw.strip():
            continue
        try:
            doc = json.loads(raw.decode("utf-8"))
            kind = doc.pop("record")
            if kind == "run":
                info = RunInfo(**_known(RunInfo, doc))
            elif kind in _JSONL_TYPES:
                cls = _JSONL_TYPES[kind]
                events.append(cls.from_dict(doc) if cls is Step else cls(**_known(cls, doc)))
        except (ValueError, TypeError, KeyError, AttributeError) as e:
            if n == len(lines) and info is not None:  # last line, no newline: a torn write
                print(f"sensord: warning: {p}:{n}: skipped the incomplete last line (the run "
                      "stopped while writing it)", file=sys.stderr)
                continue
            raise InputError(f"{p}:{n}: not a sensord run record ({e}); pass the .jsonl "
                             "file `sensord run` wrote") from None
    if info is None:
        raise InputError(f"{p}: no 'run' record; pass the .jsonl file `sensord run` wrote")
    if not any(isinstance(e, Step) for e in events):
        raise InputError(f"{p}: the run has no steps to report")
    return from_events(info, events, source=f"run file {p.name}")
