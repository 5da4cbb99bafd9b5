"""Grafana dashboards and alert rules as code.

Everything Grafana shows or alerts on is generated here, from plain Python, so the
committed JSON under ``dashboards/`` and the provisioning YAML under
``configs/grafana/provisioning/alerting/`` are build artefacts of this package (run
``python dashboards/build.py`` after a change), and ``sensord grafana push`` installs
exactly the same objects into an existing Grafana through its HTTP API.

Every query is InfluxQL against the fixed ingest schema (measurements ``steps``,
``summary``, ``alerts``, ``pain``, ``health``), so it runs on InfluxDB 1.x, on 2.x
through a DBRP mapping and on 3.x.
"""

from __future__ import annotations

from sensord.dashboards.alerting import alert_rules, alerting_provisioning
from sensord.dashboards.boards import all_dashboards

__all__ = ["alert_rules", "alerting_provisioning", "all_dashboards"]
