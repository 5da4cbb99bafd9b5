"""Small builders for Grafana dashboard JSON (dashboard model, schemaVersion 39).

Only the parts of the model sensord uses: time series, stat, table and bar gauge
panels with raw InfluxQL targets, query/custom/datasource template variables and
InfluxQL annotations. Every builder returns a fresh plain ``dict`` ready for
``json.dumps``; nothing here keeps state between calls.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

#: Dashboard JSON model version of Grafana 11.x.
SCHEMA_VERSION = 39
#: The datasource template variable every panel points at.
DS_VAR = "datasource"
#: UID of the provisioned InfluxQL datasource (configs/grafana/provisioning/datasources).
DATASOURCE_UID = "sensord-influxql"
DS_REF: dict[str, str] = {"type": "influxdb", "uid": f"${{{DS_VAR}}}"}

JSON = dict[str, Any]


def target(query: str, ref_id: str = "A", *, table: bool = False, alias: str = "") -> JSON:
    """A raw InfluxQL query target.

    Parameters
    ----------
    query
        InfluxQL with Grafana macros (``$timeFilter``, ``$__interval``) and template
        variables (``$runner``, ``$run_id``).
    ref_id
        Grafana's query letter.
    table
        ``resultFormat`` table instead of time series.
    alias
        Series alias, e.g. ``"$tag_side"``.
    """
    t: JSON = {
        "refId": ref_id,
        "datasource": dict(DS_REF),
        "query": query,
        "rawQuery": True,
        "resultFormat": "table" if table else "time_series",
    }
    if alias:
        t["alias"] = alias
    return t


def thresholds(*steps: tuple[float | None, str]) -> JSON:
    """Absolute thresholds: ``(None, base colour), (value, colour), ...``."""
    return {
        "mode": "absolute",
        "steps": [{"color": c, "value": v} for v, c in steps],
    }


@dataclass(frozen=True, slots=True)
class Size:
    """Panel width and height in grid units (24 columns wide)."""

    w: int
    h: int


def panel(
    kind: str,
    title: str,
    targets: list[JSON],
    size: Size,
    *,
    unit: str = "none",
    decimals: int | None = None,
    steps: JSON | None = None,
    custom: JSON | None = None,
    options: JSON | None = None,
    transformations: list[JSON] | None = None,
    description: str = "",
    min_: float | None = None,
    max_: float | None = None,
    overrides: list[JSON] | None = None,
) -> JSON:
    """A panel without ``id``/``gridPos`` (``layout`` assigns them)."""
    defaults: JSON = {"unit": unit, "color": {"mode": "palette-classic"}}
    if kind in ("stat", "bargauge"):
        defaults["color"] = {"mode": "thresholds"}
    if decimals is not None:
        defaults["decimals"] = decimals
    if steps is not None:
        defaults["thresholds"] = steps
    else:
        defaults["thresholds"] = thresholds((None, "green"))
    if custom is not None:
        defaults["custom"] = custom
    if min_ is not None:
        defaults["min"] = min_
    if max_ is not None:
        defaults["max"] = max_
    p: JSON = {
        "type": kind,
        "title": title,
        "description": description,
        "datasource": dict(DS_REF),
        "targets": targets,
        "fieldConfig": {"defaults": defaults, "overrides": overrides or []},
        "options": options or {},
        "_size": size,
    }
    if transformations:
        p["transformations"] = transformations
    return p


def timeseries_custom(*, band: bool = False, points: bool = False) -> JSON:
    """``fieldConfig.defaults.custom`` of a time series; ``band`` shades the thresholds."""
    return {
        "drawStyle": "line",
        "lineWidth": 2,
        "fillOpacity": 0,
        "showPoints": "always" if points else "never",
        "spanNulls": 30000,
        "thresholdsStyle": {"mode": "line+area" if band else "off"},
        "axisPlacement": "auto",
    }


def stat_options() -> JSON:
    """Options of a single-value stat panel showing the last value."""
    return {
        "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
        "colorMode": "background",
        "graphMode": "area",
        "textMode": "auto",
        "justifyMode": "auto",
        "orientation": "auto",
    }


def timeseries_options() -> JSON:
    """Legend and tooltip options of a time series panel."""
    return {
        "legend": {"displayMode": "list", "placement": "bottom", "showLegend": True},
        "tooltip": {"mode": "multi", "sort": "none"},
    }


def row(title: str) -> JSON:
    """A (non-collapsed) row header."""
    return {"type": "row", "title": title, "collapsed": False, "panels": [],
            "_size": Size(24, 1)}


def layout(panels: list[JSON]) -> list[JSON]:
    """Assign ``id`` and ``gridPos``, packing panels left to right, top to bottom."""
    out: list[JSON] = []
    x = y = row_h = 0
    for i, p in enumerate(panels, start=1):
        p = dict(p)
        size: Size = p.pop("_size")
        if x + size.w > 24 or p["type"] == "row":
            x, y, row_h = 0, y + row_h, 0
        p["id"] = i
        p["gridPos"] = {"x": x, "y": y, "w": size.w, "h": size.h}
        x += size.w
        row_h = max(row_h, size.h)
        if p["type"] == "row":
            x, y, row_h = 0, y + size.h, 0
        out.append(p)
    return out


def datasource_variable() -> JSON:
    """The ``datasource`` variable: any InfluxDB datasource, default the provisioned one."""
    return {
        "name": DS_VAR,
        "label": "InfluxDB",
        "type": "datasource",
        "query": "influxdb",
        "current": {"text": "sensord InfluxQL", "value": DATASOURCE_UID},
        "hide": 0,
        "refresh": 1,
        "regex": "",
        "options": [],
    }


def query_variable(name: str, label: str, query: str, *, multi: bool, include_all: bool) -> JSON:
    """A template variable filled from an InfluxQL ``SHOW TAG VALUES`` query."""
    var: JSON = {
        "name": name,
        "label": label,
        "type": "query",
        "datasource": dict(DS_REF),
        "query": query,
        "definition": query,
        "refresh": 2,  # on time range change
        "sort": 1,
        "multi": multi,
        "includeAll": include_all,
        "current": {},
        "options": [],
        "hide": 0,
        "regex": "",
    }
    if include_all:
        var["allValue"] = ".*"
    return var


def custom_variable(name: str, label: str, values: list[str], default: str) -> JSON:
    """A fixed-choice template variable."""
    return {
        "name": name,
        "label": label,
        "type": "custom",
        "query": ",".join(values),
        "current": {"text": default, "value": default, "selected": True},
        "options": [{"text": v, "value": v, "selected": v == default} for v in values],
        "multi": False,
        "includeAll": False,
        "hide": 0,
    }


def influx_annotation(name: str, query: str, colour: str, *, title: str = "kind",
                      text: str = "message", tags: str = "severity") -> JSON:
    """An InfluxQL annotation source in the current model (the query in ``target``).

    ``title`` / ``text`` / ``tags`` name the result columns Grafana shows.
    """
    return {
        "name": name,
        "datasource": dict(DS_REF),
        "enable": True,
        "hide": False,
        "iconColor": colour,
        "target": {
            "refId": "Anno",
            "query": query,
            "rawQuery": True,
            "resultFormat": "table",
            "fromAnnotations": True,
            "titleColumn": title,
            "textColumn": text,
            "tagsColumn": tags,
            "timeEndColumn": "",
        },
    }


def builtin_annotation() -> JSON:
    """Grafana's own "Annotations & Alerts" source (alert state changes)."""
    return {
        "builtIn": 1,
        "datasource": {"type": "grafana", "uid": "-- Grafana --"},
        "enable": True,
        "hide": True,
        "iconColor": "rgba(0, 211, 255, 1)",
        "name": "Annotations & Alerts",
        "type": "dashboard",
    }


def dashboard(
    uid: str,
    title: str,
    panels: list[JSON],
    variables: list[JSON],
    *,
    annotations: list[JSON],
    time_from: str,
    refresh: str,
    description: str,
    links: list[JSON] | None = None,
) -> JSON:
    """A complete dashboard in Grafana's JSON model."""
    return {
        "uid": uid,
        "title": title,
        "description": description,
        "tags": ["sensord", "running"],
        "timezone": "browser",
        "editable": True,
        "graphTooltip": 1,
        "schemaVersion": SCHEMA_VERSION,
        "version": 1,
        "refresh": refresh,
        "time": {"from": time_from, "to": "now"},
        "timepicker": {},
        "fiscalYearStartMonth": 0,
        "liveNow": False,
        "weekStart": "",
        "links": links or [],
        "annotations": {"list": [builtin_annotation(), *annotations]},
        "templating": {"list": variables},
        "panels": layout(panels),
    }
