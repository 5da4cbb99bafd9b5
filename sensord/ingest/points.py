"""Contract messages -> InfluxDB line protocol (``docs/influxdb-schema.md``), precision ms.

A point's identity is its measurement, tag set and timestamp. For steps these come from
``run_id`` + ``step_index``'s record (runner, sensor, placement, run_id, side; ``ts_ms``
of initial contact), so a redelivered message overwrites the same point.
"""

from __future__ import annotations

from typing import Any, Final

from sensord.contract import (
    HEALTH_FLOAT_FIELDS,
    HEALTH_INT_FIELDS,
    STEP_FLOAT_FIELDS,
    SUMMARY_FLOAT_FIELDS,
    Envelope,
)

_TAG_ESCAPE: Final = str.maketrans({",": r"\,", "=": r"\=", " ": r"\ ", "\n": " ", "\r": " "})


def _tag(value: str) -> str:
    return value.translate(_TAG_ESCAPE) if value else "unknown"


def _fstr(value: str) -> str:
    v = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", " ").replace("\r", " ")
    return f'"{v}"'


def _ffloat(value: Any) -> str:
    return repr(float(value))


def _line(measurement: str, tags: str, fields: list[str], ts_ms: int) -> str:
    return f"{measurement},{tags} {','.join(fields)} {ts_ms}"


def to_lines(env: Envelope) -> list[str]:
    """Line-protocol lines for one validated message (empty for status messages)."""
    runner, sensor, run_id = env.runner, env.sensor or "", env.run_id
    out: list[str] = []
    if env.kind == "steps":
        # hot path: validated numbers are finite int/float; "{v}" of an int is a float
        # field in line protocol (no "i" suffix), which is what the schema wants.
        # tags in key order: InfluxDB sorts them otherwise (measurably faster writes)
        base = f"steps,placement={env.placement},run_id={run_id},runner={runner},sensor={sensor}"
        for r in env.records:
            flds = ",".join(
                [f"{k}={float(v)!r}" for k in STEP_FLOAT_FIELDS if (v := r.get(k)) is not None]
                + [f"t_ic_s={float(r['t_ic'])!r}", f"step_index={r['step_index']}i"]
            )
            out.append(f"{base},side={r.get('side') or 'unknown'} {flds} {r['ts_ms']}")
    elif env.kind == "summary":
        r = env.records[0]
        tags = f"placement={env.placement},run_id={run_id},runner={runner},sensor={sensor}"
        fields = [f"{k}={_ffloat(r[k])}" for k in SUMMARY_FLOAT_FIELDS if r.get(k) is not None]
        fields.append(f"steps={_ffloat(r.get('steps') or 0)}")
        if r.get("activity") is not None:
            fields.append(f"activity={_fstr(r['activity'])}")
        out.append(_line("summary", tags, fields, r["ts_ms"]))
    elif env.kind == "alerts":
        r = env.records[0]
        tags = (
            f"kind={_tag(r['kind'])},run_id={run_id},runner={runner},sensor={sensor},"
            f"severity={r['severity']},side={r.get('side') or 'unknown'},state={r['state']}"
        )
        fields = [f"metric={_fstr(r['metric'])}", f"message={_fstr(r['message'])}"]
        fields += [f"{k}={_ffloat(r[k])}" for k in ("baseline", "current") if r.get(k) is not None]
        fields.append(f"began_at_s={_ffloat(r['began_at_s'])}")
        fields.append(f"active={1 if r['state'] == 'raised' else 0}i")
        out.append(_line("alerts", tags, fields, r["ts_ms"]))
    elif env.kind == "pain":
        r = env.records[0]
        fields = [f"score={int(r['score'])}i"]
        if r.get("location"):
            fields.append(f"location={_fstr(r['location'])}")
        out.append(_line("pain", f"run_id={run_id},runner={runner}", fields, r["ts_ms"]))
    elif env.kind == "health":
        r = env.records[0]
        fields = [f"connected={1 if r['connected'] else 0}i"]
        fields += [f"{k}={_ffloat(r[k])}" for k in HEALTH_FLOAT_FIELDS if r.get(k) is not None]
        if r.get("reconnects") is not None:
            fields.append(f"reconnects={int(r['reconnects'])}i")
        if r.get("battery_pct") is not None:
            fields.append(f"battery_pct={int(r['battery_pct'])}i")
        fields += [
            f"{k}={_ffloat(r[k])}"
            for k in HEALTH_INT_FIELDS
            if k != "reconnects" and r.get(k) is not None
        ]
        tags = f"run_id={run_id},runner={runner},sensor={sensor}"
        out.append(_line("health", tags, fields, r["ts_ms"]))
    return out
