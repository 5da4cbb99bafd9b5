"""Grafana alert rules, contact points and notification policies for sensord.

Each rule is one InfluxQL query (A), a reduce expression (B) and a threshold (C), the
shape Grafana's unified alerting evaluates: A returns one series per runner (and run or
sensor), B reduces each series to one number, C compares it with the threshold. The
same :class:`RuleSpec` feeds the provisioning file, the HTTP API objects used by
``sensord grafana push``, and the tests that evaluate the rules against a real InfluxDB.

Grafana interpolates environment variables (``$VAR``) in provisioning files and turns
``$$`` into a literal ``$``; :func:`alerting_provisioning` escapes the ``$`` of query
macros and message templates so they reach Grafana intact, while the contact-point URLs
are deliberately left as ``${VAR}`` to be filled from the environment (``.env``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from sensord.dashboards.boards import CADENCE_BAND_SPM, UID_LIVE, UID_TEAM
from sensord.dashboards.grafana import DATASOURCE_UID

JSON = dict[str, Any]
Reducer = Literal["last", "mean", "max", "min", "sum", "count"]
Op = Literal["gt", "lt"]

FOLDER_UID = "sensord"
FOLDER_TITLE = "sensord"
GROUP = "sensord-form"
GROUP_INTERVAL_S = 30
ORG_ID = 1

WEBHOOK_RECEIVER = "sensord-webhook"
NTFY_RECEIVER = "sensord-ntfy"


@dataclass(frozen=True, slots=True)
class RuleSpec:
    """One alert rule: query, reduction and threshold.

    Attributes
    ----------
    uid, title
        Stable identifier and human title.
    query
        InfluxQL with ``$timeFilter``; ``GROUP BY`` tags become alert labels.
    window_s
        How far back the query looks (Grafana's ``relativeTimeRange.from``).
    reducer
        Grafana reduce function applied per series (non-numbers dropped).
    op, threshold
        Fires when ``reduced <op> threshold``.
    for_
        How long the condition must hold before notifying (Grafana duration).
    severity
        ``info`` / ``warning`` / ``critical`` label, used for routing.
    summary, description
        Notification text (Go templates over ``$labels`` / ``$values``).
    no_data
        Grafana ``noDataState``: what an empty query means.
    dashboard_uid
        Dashboard linked from the notification.
    """

    uid: str
    title: str
    query: str
    window_s: int
    reducer: Reducer
    op: Op
    threshold: float
    for_: str
    severity: str
    summary: str
    description: str
    no_data: Literal["OK", "NoData", "Alerting"] = "OK"
    dashboard_uid: str = UID_LIVE


def alert_rules() -> list[RuleSpec]:
    """The rules sensord ships: form, cadence, pelvic drop, pain, sensor offline."""
    lo = CADENCE_BAND_SPM[0]
    return [
        RuleSpec(
            uid="sensord-form-degradation",
            title="Form degradation",
            query='SELECT mean("form_score") FROM "summary" WHERE $timeFilter '
                  'GROUP BY time(30s), "runner", "run_id" fill(none)',
            window_s=180, reducer="mean", op="lt", threshold=65.0, for_="1m",
            severity="warning",
            summary="{{ $labels.runner }}: form is degrading",
            description="Form score averaged {{ printf \"%.0f\" $values.B.Value }} over the "
                        "last 3 minutes (below 65; 100 = the runner's own early-run form).",
        ),
        RuleSpec(
            uid="sensord-cadence-low",
            title="Cadence below band",
            query='SELECT mean("cadence_spm") FROM "summary" WHERE "activity" = \'run\' AND '
                  '$timeFilter GROUP BY time(30s), "runner", "run_id" fill(none)',
            window_s=180, reducer="mean", op="lt", threshold=lo, for_="1m",
            severity="warning",
            summary="{{ $labels.runner }}: cadence below the target band",
            description="Running cadence averaged {{ printf \"%.0f\" $values.B.Value }} spm "
                        f"over the last 3 minutes (target band {lo:.0f}–"
                        f"{CADENCE_BAND_SPM[1]:.0f}).",
        ),
        RuleSpec(
            uid="sensord-pelvic-drop-rising",
            title="Pelvic drop rising",
            query='SELECT last("active") FROM "alerts" WHERE "kind" = \'pelvic_drop_rising\' '
                  'AND $timeFilter GROUP BY "runner", "run_id"',
            window_s=1800, reducer="last", op="gt", threshold=0.5, for_="0s",
            severity="warning",
            summary="{{ $labels.runner }}: pelvic drop is rising",
            description="The coaching engine reports contralateral pelvic drop rising above "
                        "the runner's early-run baseline (hip abductor fatigue).",
        ),
        RuleSpec(
            uid="sensord-pain-reported",
            title="Pain reported",
            query='SELECT max("score") FROM "pain" WHERE $timeFilter GROUP BY "runner", "run_id"',
            window_s=600, reducer="max", op="gt", threshold=2.5, for_="0s",
            severity="critical",
            summary="{{ $labels.runner }} reported pain {{ $values.B.Value }}/10",
            description="Pain of 3/10 or more during a run: stop and walk (return-to-run "
                        "rule; the coaching engine raises pain_stop at the same score).",
        ),
        RuleSpec(
            uid="sensord-sensor-offline",
            title="Sensor offline",
            query='SELECT sum("connected") FROM "health" WHERE $timeFilter '
                  'GROUP BY time(1m), "runner", "sensor" fill(0)',
            window_s=600, reducer="last", op="lt", threshold=1.0, for_="1m",
            severity="warning",
            summary="{{ $labels.runner }}: sensor {{ $labels.sensor }} is offline",
            description="No connected health report from the sensor in the last minute "
                        "although it was reporting within the last 10 minutes.",
            dashboard_uid=UID_TEAM,
        ),
    ]


def _data(rule: RuleSpec, datasource_uid: str) -> list[JSON]:
    expr_ds = {"type": "__expr__", "uid": "__expr__"}
    return [
        {
            "refId": "A",
            "queryType": "",
            "relativeTimeRange": {"from": rule.window_s, "to": 0},
            "datasourceUid": datasource_uid,
            "model": {"refId": "A", "query": rule.query, "rawQuery": True,
                      "resultFormat": "time_series", "intervalMs": 1000,
                      "maxDataPoints": 43200},
        },
        {
            "refId": "B",
            "queryType": "",
            "relativeTimeRange": {"from": 0, "to": 0},
            "datasourceUid": "__expr__",
            "model": {"refId": "B", "type": "reduce", "expression": "A",
                      "reducer": rule.reducer, "settings": {"mode": "dropNN"},
                      "datasource": expr_ds},
        },
        {
            "refId": "C",
            "queryType": "",
            "relativeTimeRange": {"from": 0, "to": 0},
            "datasourceUid": "__expr__",
            "model": {"refId": "C", "type": "threshold", "expression": "B",
                      "conditions": [{"evaluator": {"type": rule.op,
                                                    "params": [rule.threshold]}}],
                      "datasource": expr_ds},
        },
    ]


def _annotations(rule: RuleSpec) -> dict[str, str]:
    return {"summary": rule.summary, "description": rule.description,
            "__dashboardUid__": rule.dashboard_uid}


def rule_file_entry(rule: RuleSpec, datasource_uid: str = DATASOURCE_UID) -> JSON:
    """A rule in Grafana's file-provisioning format (``$`` not yet escaped)."""
    return {
        "uid": rule.uid,
        "title": rule.title,
        "condition": "C",
        "data": _data(rule, datasource_uid),
        "noDataState": rule.no_data,
        "execErrState": "Error",
        "for": rule.for_,
        "annotations": _annotations(rule),
        "labels": {"app": "sensord", "severity": rule.severity},
        "isPaused": False,
    }


def rule_api_object(rule: RuleSpec, datasource_uid: str, folder_uid: str) -> JSON:
    """A rule as the alerting provisioning HTTP API expects it."""
    entry = rule_file_entry(rule, datasource_uid)
    entry.update({"folderUID": folder_uid, "ruleGroup": GROUP, "orgID": ORG_ID})
    return entry


def rule_group_api_object(datasource_uid: str, folder_uid: str) -> JSON:
    """The whole rule group as ``PUT /api/v1/provisioning/folder/{uid}/rule-groups/{group}``
    expects it (interval in seconds)."""
    return {"title": GROUP, "folderUid": folder_uid, "interval": GROUP_INTERVAL_S,
            "rules": [rule_api_object(r, datasource_uid, folder_uid) for r in alert_rules()]}


def contact_points() -> list[JSON]:
    """A generic webhook and an ntfy topic (URLs come from the environment)."""
    return [
        {"orgId": ORG_ID, "name": WEBHOOK_RECEIVER, "receivers": [{
            "uid": WEBHOOK_RECEIVER, "type": "webhook", "disableResolveMessage": False,
            "settings": {"url": "${SENSORD_ALERT_WEBHOOK_URL}", "httpMethod": "POST"},
        }]},
        {"orgId": ORG_ID, "name": NTFY_RECEIVER, "receivers": [{
            "uid": NTFY_RECEIVER, "type": "webhook", "disableResolveMessage": False,
            "settings": {"url": "${SENSORD_NTFY_URL}", "httpMethod": "POST"},
        }]},
    ]


def notification_policy() -> JSON:
    """Route everything to the webhook, warnings and above also to ntfy; group by runner."""
    return {
        "orgId": ORG_ID,
        "receiver": WEBHOOK_RECEIVER,
        "group_by": ["grafana_folder", "alertname", "runner"],
        "group_wait": "30s",
        "group_interval": "2m",
        "repeat_interval": "1h",
        "routes": [
            {"receiver": NTFY_RECEIVER,
             "object_matchers": [["severity", "=~", "warning|critical"]],
             "group_by": ["runner"],
             "group_wait": "10s",
             "continue": True},
            {"receiver": WEBHOOK_RECEIVER,
             "object_matchers": [["app", "=", "sensord"]],
             "group_by": ["runner"]},
        ],
    }


def escape_env(value: Any) -> Any:
    """Escape ``$`` as ``$$`` in every string (Grafana's provisioning interpolation)."""
    if isinstance(value, str):
        return value.replace("$", "$$")
    if isinstance(value, list):
        return [escape_env(v) for v in value]
    if isinstance(value, dict):
        return {k: escape_env(v) for k, v in value.items()}
    return value


def alerting_provisioning(datasource_uid: str = DATASOURCE_UID) -> dict[str, JSON]:
    """The alerting provisioning files: ``{file name: content}``.

    Rules are ``$``-escaped; contact points keep ``${VAR}`` so Grafana fills the URLs
    from its environment.
    """
    rules = {
        "apiVersion": 1,
        "groups": [{
            "orgId": ORG_ID,
            "name": GROUP,
            "folder": FOLDER_TITLE,
            "interval": f"{GROUP_INTERVAL_S}s",
            "rules": [escape_env(rule_file_entry(r, datasource_uid)) for r in alert_rules()],
        }],
    }
    return {
        "rules.yaml": rules,
        "contact-points.yaml": {"apiVersion": 1, "contactPoints": contact_points()},
        "policies.yaml": {"apiVersion": 1, "policies": [notification_policy()]},
    }
