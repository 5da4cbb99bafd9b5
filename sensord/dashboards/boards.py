"""The three sensord dashboards: runner live view, coach team view, run review.

Queries are InfluxQL against the ingest schema. Template variables ``$runner`` and
``$run_id`` are matched as regular expressions (``=~ /^$runner$/``) so "All" and
multi-value selections work; ``$split`` is the run-review interval.
"""

from __future__ import annotations

from sensord.dashboards.grafana import (
    JSON,
    Size,
    custom_variable,
    dashboard,
    datasource_variable,
    influx_annotation,
    panel,
    query_variable,
    row,
    stat_options,
    target,
    thresholds,
    timeseries_custom,
    timeseries_options,
)

#: Cadence target band shown on every cadence panel and used by the alert rule.
CADENCE_BAND_SPM = (170.0, 180.0)

RUNNER = '"runner" =~ /^$runner$/'
RUN = '"runner" =~ /^$runner$/ AND "run_id" =~ /^$run_id$/'

RUNNER_VAR_QUERY = 'SHOW TAG VALUES FROM "summary" WITH KEY = "runner"'
RUN_VAR_QUERY = 'SHOW TAG VALUES FROM "summary" WITH KEY = "run_id" WHERE ' + RUNNER

HALF = Size(12, 8)
SMALL = Size(4, 4)

UID_LIVE = "sensord-runner-live"
UID_TEAM = "sensord-team"
UID_REVIEW = "sensord-run-review"


def _cadence_steps() -> JSON:
    lo, hi = CADENCE_BAND_SPM
    return thresholds((None, "orange"), (lo, "green"), (hi, "yellow"))


def _form_steps() -> JSON:
    return thresholds((None, "red"), (60.0, "orange"), (75.0, "green"))


def _alerts_annotation(where: str) -> JSON:
    return influx_annotation(
        "Form alerts",
        'SELECT "message", "kind", "severity", "current" FROM "alerts" WHERE '
        + where + " AND \"state\" = 'raised' AND $timeFilter",
        "red",
    )


def _pain_annotation(where: str) -> JSON:
    return influx_annotation(
        "Pain reports",
        'SELECT "score", "location" FROM "pain" WHERE ' + where + " AND $timeFilter",
        "purple", title="score", text="location", tags="",
    )


def _metric_ts(title: str, field: str, unit: str, where: str, *, measurement: str = "steps",
               band: JSON | None = None, by: str = "", alias: str = "",
               size: Size = HALF, description: str = "") -> JSON:
    group = f'GROUP BY time($__interval){", " + by if by else ""} fill(none)'
    q = (f'SELECT mean("{field}") FROM "{measurement}" WHERE {where} AND $timeFilter '
         f"{group}")
    return panel(
        "timeseries", title, [target(q, alias=alias or title)], size, unit=unit,
        steps=band, custom=timeseries_custom(band=band is not None),
        options=timeseries_options(), description=description,
    )


def _stat(title: str, query: str, unit: str, *, steps: JSON | None = None,
          decimals: int | None = 0, size: Size = SMALL, description: str = "") -> JSON:
    return panel("stat", title, [target(query)], size, unit=unit, steps=steps,
                 decimals=decimals, options=stat_options(), description=description)


def _last(field: str, measurement: str, where: str) -> str:
    return f'SELECT last("{field}") FROM "{measurement}" WHERE {where} AND $timeFilter'


def _alerts_table(where: str, size: Size) -> JSON:
    q = ('SELECT "kind", "severity", "state", "message", "baseline", "current" FROM "alerts" '
         f"WHERE {where} AND $timeFilter ORDER BY time DESC LIMIT 50")
    return panel(
        "table", "Alerts", [target(q, table=True)], size,
        options={"showHeader": True, "cellHeight": "sm"},
        description="Form-degradation events from the coaching engine, newest first.",
    )


def _health_panels(where: str) -> list[JSON]:
    return [
        _stat("Sensor connected", _last("connected", "health", where), "bool_on_off",
              steps=thresholds((None, "red"), (1.0, "green")), size=Size(4, 4)),
        _stat("Packet loss", _last("packet_loss_pct", "health", where), "percent",
              steps=thresholds((None, "green"), (2.0, "orange"), (10.0, "red")), decimals=1),
        _stat("Battery", _last("battery_pct", "health", where), "percent",
              steps=thresholds((None, "red"), (20.0, "orange"), (40.0, "green"))),
        _stat("Latency", _last("latency_ms", "health", where), "ms",
              steps=thresholds((None, "green"), (250.0, "orange"), (1000.0, "red"))),
        _stat("Reconnects", _last("reconnects", "health", where), "none",
              steps=thresholds((None, "green"), (1.0, "orange"))),
        _stat("Gaps", _last("gaps", "health", where), "none",
              steps=thresholds((None, "green"), (1.0, "orange"))),
    ]


def runner_live() -> JSON:
    """One runner, live: metrics with the cadence band, alerts, pain and sensor health."""
    w = RUN
    panels: list[JSON] = [
        _stat("Form score", _last("form_score", "summary", w), "none", steps=_form_steps(),
              description="Composite form score of the last few seconds (100 = baseline)."),
        _stat("Cadence", _last("cadence_spm", "summary", w), "none", steps=_cadence_steps(),
              description="Steps per minute; target band 170–180."),
        _stat("Ground contact", _last("gct_ms", "summary", w), "ms"),
        _stat("GCT balance (L %)", _last("gct_balance_pct", "summary", w), "percent",
              decimals=1,
              steps=thresholds((None, "orange"), (48.0, "green"), (52.0, "orange"))),
        _stat("Pain (0–10)", _last("score", "pain", RUN), "none",
              steps=thresholds((None, "green"), (3.0, "orange"), (5.0, "red"))),
        _stat("Activity", _last("activity", "summary", w), "none", decimals=None),
        row("Form"),
        _metric_ts("Cadence (steps/min)", "cadence_spm", "none", w, band=_cadence_steps(),
                   description="Green band: the 170–180 spm target."),
        _metric_ts("Ground contact time", "gct_ms", "ms", w),
        _metric_ts("Pelvic drop by stance side", "pelvic_drop_deg", "degree",
                   w + " AND \"side\" != 'unknown'", by='"side"', alias="$tag_side"),
        _metric_ts("GCT balance (left share)", "gct_balance_pct", "percent", w,
                   band=thresholds((None, "orange"), (48.0, "green"), (52.0, "orange"))),
        _metric_ts("Form score", "form_score", "none", w, measurement="summary",
                   band=_form_steps()),
        _metric_ts("Vertical oscillation", "vertical_oscillation_cm", "suffix: cm", w,
                   description="Peak-to-peak vertical excursion of the pelvis per step."),
        _alerts_table(w, Size(24, 7)),
        row("Sensor health"),
        *_health_panels(w),
        _metric_ts("Packet loss", "packet_loss_pct", "percent", w, measurement="health",
                   by='"sensor"', alias="$tag_sensor", size=Size(24, 6)),
    ]
    return dashboard(
        UID_LIVE, "sensord · Runner live", panels,
        [datasource_variable(),
         query_variable("runner", "Runner", RUNNER_VAR_QUERY, multi=False, include_all=False),
         query_variable("run_id", "Run", RUN_VAR_QUERY, multi=False, include_all=True)],
        annotations=[_alerts_annotation(RUN), _pain_annotation(RUN)],
        time_from="now-30m", refresh="5s",
        description="One runner's live form: cadence band, contact time, pelvic drop, "
                    "balance, form score, alerts and sensor health.",
    )


def team_view() -> JSON:
    """Every runner on one screen, most degraded form first."""
    w = RUNNER
    table_q = (
        'SELECT last("form_score") AS "form_score", last("cadence_spm") AS "cadence_spm", '
        'last("gct_ms") AS "gct_ms", last("pelvic_drop_left_deg") AS "drop_left_deg", '
        'last("pelvic_drop_right_deg") AS "drop_right_deg", '
        'last("gct_balance_pct") AS "balance_pct", last("activity") AS "activity" '
        f'FROM "summary" WHERE {w} AND $timeFilter GROUP BY "runner"'
    )
    alerts_q = ('SELECT count("message") AS "raised" FROM "alerts" WHERE '
                f"{w} AND \"state\" = 'raised' AND $timeFilter GROUP BY \"runner\"")
    pain_q = ('SELECT max("score") AS "pain" FROM "pain" '
              f'WHERE {w} AND $timeFilter GROUP BY "runner"')
    health_q = ('SELECT last("connected") AS "connected", last("packet_loss_pct") AS "loss_pct", '
                'last("battery_pct") AS "battery_pct" FROM "health" '
                f'WHERE {w} AND $timeFilter GROUP BY "runner", "sensor"')
    panels: list[JSON] = [
        panel(
            "table", "Runners by form (most degraded first)",
            [target(table_q, "A", table=True), target(alerts_q, "B", table=True),
             target(pain_q, "C", table=True)],
            Size(24, 9),
            options={"showHeader": True, "sortBy": [{"displayName": "form_score",
                                                       "desc": False}]},
            transformations=[
                {"id": "joinByField", "options": {"byField": "runner", "mode": "outer"}},
                {"id": "organize", "options": {"excludeByName": {"Time": True, "Time 1": True,
                                                                 "Time 2": True,
                                                                 "Time 3": True}}},
                {"id": "sortBy", "options": {"sort": [{"field": "form_score",
                                                       "desc": False}]}},
            ],
            overrides=[{
                "matcher": {"id": "byName", "options": "form_score"},
                "properties": [
                    {"id": "custom.cellOptions", "value": {"type": "color-background"}},
                    {"id": "thresholds", "value": _form_steps()},
                ],
            }],
            description="Lowest form score first: the runner whose form has degraded most "
                        "is on top. Raised alerts and worst pain in the time range.",
        ),
        _metric_ts("Form score by runner", "form_score", "none", w, measurement="summary",
                   by='"runner"', alias="$tag_runner", band=_form_steps()),
        _metric_ts("Cadence by runner", "cadence_spm", "none", w, measurement="summary",
                   by='"runner"', alias="$tag_runner", band=_cadence_steps()),
        panel(
            "bargauge", "Raised alerts by runner", [target(alerts_q, table=False,
                                                           alias="$tag_runner")],
            Size(12, 7), steps=thresholds((None, "green"), (1.0, "orange"), (3.0, "red")),
            options={"orientation": "horizontal", "displayMode": "gradient",
                     "reduceOptions": {"calcs": ["lastNotNull"], "fields": "",
                                       "values": False}},
        ),
        panel("table", "Sensor health by runner", [target(health_q, table=True)], Size(12, 7),
              options={"showHeader": True}),
    ]
    return dashboard(
        UID_TEAM, "sensord · Team", panels,
        [datasource_variable(),
         query_variable("runner", "Runners", RUNNER_VAR_QUERY, multi=True, include_all=True)],
        annotations=[_alerts_annotation(RUNNER)],
        time_from="now-1h", refresh="10s",
        description="Every runner on one screen for a coach, ordered by form degradation.",
    )


SPLIT_FIELDS: tuple[tuple[str, str], ...] = (
    ("cadence_spm", "cadence_spm"),
    ("gct_ms", "gct_ms"),
    ("pelvic_drop_deg", "pelvic_drop_deg"),
    ("gct_balance_pct", "gct_balance_pct"),
    ("vertical_oscillation_cm", "vertical_oscillation_cm"),
    ("impact_g", "impact_g"),
)


def splits_query() -> str:
    """Per-interval splits of one run (``$split`` long), the run-review backbone."""
    cols = ", ".join(f'mean("{f}") AS "{a}"' for f, a in SPLIT_FIELDS)
    return (f'SELECT {cols}, count("step_index") AS "steps" FROM "steps" WHERE {RUN} '
            "AND $timeFilter GROUP BY time($split) fill(none)")


def run_review() -> JSON:
    """One finished run: splits, early vs late, metrics over time, alerts and pain."""
    w = RUN
    panels: list[JSON] = [
        panel(
            "table", "Early vs late (first and last split)", [target(splits_query())],
            Size(12, 8),
            transformations=[{"id": "reduce", "options": {
                "mode": "seriesToRows", "reducers": ["firstNotNull", "lastNotNull"],
                "includeTimeField": False}}],
            options={"showHeader": True},
            description="Means of the first and the last $split interval of the run.",
        ),
        panel(
            "table", "Splits ($split)", [target(splits_query(), table=True)], Size(12, 8),
            options={"showHeader": True},
            description="Per-interval means; change the interval with the Split variable.",
        ),
        _metric_ts("Cadence (steps/min)", "cadence_spm", "none", w, band=_cadence_steps()),
        _metric_ts("Ground contact time", "gct_ms", "ms", w),
        _metric_ts("Pelvic drop by stance side", "pelvic_drop_deg", "degree",
                   w + " AND \"side\" != 'unknown'", by='"side"', alias="$tag_side"),
        _metric_ts("GCT balance (left share)", "gct_balance_pct", "percent", w),
        _metric_ts("Form score", "form_score", "none", w, measurement="summary",
                   band=_form_steps()),
        _metric_ts("Step time variability (CV)", "step_time_cv_pct", "percent", w,
                   measurement="summary"),
        _alerts_table(w, Size(16, 8)),
        panel("table", "Pain reports",
              [target(f'SELECT "score", "location" FROM "pain" WHERE {w} AND $timeFilter',
                      table=True)],
              Size(8, 8), options={"showHeader": True}),
    ]
    return dashboard(
        UID_REVIEW, "sensord · Run review", panels,
        [datasource_variable(),
         query_variable("runner", "Runner", RUNNER_VAR_QUERY, multi=False, include_all=False),
         query_variable("run_id", "Run", RUN_VAR_QUERY, multi=False, include_all=False),
         custom_variable("split", "Split", ["1m", "2m", "5m", "10m"], "5m")],
        annotations=[_alerts_annotation(RUN), _pain_annotation(RUN)],
        time_from="now-24h", refresh="",
        description="A finished run: early vs late, per-interval splits, alerts and pain.",
    )


def all_dashboards() -> list[JSON]:
    """The dashboards sensord ships, in the order they are installed."""
    return [runner_live(), team_view(), run_review()]
