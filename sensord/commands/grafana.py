"""``sensord grafana``: install sensord's dashboards and alert rules into a Grafana.

- ``sensord grafana push --url URL --token-file FILE`` installs, through Grafana's HTTP
  API (grafana-client), exactly what the docker-compose stack provisions from files: the
  three dashboards (folder "sensord") and the alert rule group ``sensord-form``. With
  ``--webhook-url`` / ``--ntfy-url`` (or ``SENSORD_ALERT_WEBHOOK_URL`` /
  ``SENSORD_NTFY_URL``) it also creates the contact points, and with
  ``--replace-policies`` it replaces the notification policy tree (Grafana has one tree
  per organisation, so this is opt-in).
- ``sensord grafana export DIR`` writes the dashboards and provisioning files to DIR.

The token file holds a service-account token (or ``user:password``); it is never
printed. Unreachable Grafana, a refused token or a missing datasource -> one-line error,
exit status 2.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import sys
import urllib.parse
from pathlib import Path
from typing import Any

from sensord.errors import InputError, ServiceError

HELP = "install dashboards and alert rules into Grafana"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags of ``sensord grafana``."""
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    push = sub.add_parser("push", help="install dashboards and alert rules via the HTTP API")
    push.add_argument("--url", required=True, help="Grafana base URL, e.g. http://127.0.0.1:3000")
    push.add_argument("--token-file", type=Path, required=True,
                      help="file holding a service-account token (or user:password)")
    push.add_argument("--datasource-uid", default="sensord-influxql",
                      help="UID of the InfluxQL datasource to query (default sensord-influxql)")
    push.add_argument("--folder-uid", default="sensord", help="folder UID (default sensord)")
    push.add_argument("--webhook-url", help="webhook contact point URL "
                                            "(default $SENSORD_ALERT_WEBHOOK_URL)")
    push.add_argument("--ntfy-url", help="ntfy topic URL (default $SENSORD_NTFY_URL)")
    push.add_argument("--replace-policies", action="store_true",
                      help="replace the organisation's notification policy tree")
    push.add_argument("--timeout", type=float, default=10.0, help="seconds per request")
    exp = sub.add_parser("export", help="write dashboards and provisioning files to DIR")
    exp.add_argument("dir", type=Path, help="output directory")


def _read_token(path: Path) -> str | tuple[str, str]:
    try:
        text = path.read_text(encoding="utf-8").strip()
    except OSError as e:
        raise InputError(f"cannot read --token-file {path}: {e.strerror}") from None
    if not text:
        raise InputError(f"--token-file {path} is empty; put a Grafana service-account token in it")
    if ":" in text and not text.startswith("glsa_"):
        user, _, password = text.partition(":")
        return user, password
    return text


def _check_url(url: str) -> str:
    try:
        parsed = urllib.parse.urlparse(url)
        parsed.port  # noqa: B018  (raises on a bad port)
    except ValueError as e:
        raise InputError(f"--url {url!r}: {e}; it must look like http://HOST:PORT") from None
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise InputError(f"--url must look like http://HOST:PORT, got {url!r}")
    if parsed.username or parsed.password:
        raise InputError("--url must not contain credentials; use --token-file")
    return url.rstrip("/")


def _reason(e: Exception) -> str:
    """A short cause of a connection failure (no object reprs, no URLs with secrets)."""
    text = str(e)
    for needle, reason in (("Connection refused", "connection refused"),
                           ("resolve", "host name not found"),
                           ("timed out", "timed out"),
                           ("SSL", "TLS handshake failed"),
                           ("certificate", "TLS certificate not trusted")):
        if needle in text:
            return reason
    return type(e).__name__


class _Grafana:
    """grafana-client calls with every failure turned into a ServiceError."""

    def __init__(self, url: str, credential: str | tuple[str, str], timeout: float) -> None:
        from grafana_client.api import GrafanaApi

        self.url = url
        self.api = GrafanaApi.from_url(url, credential=credential, timeout=timeout)

    def call(self, what: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        import niquests
        from grafana_client.client import (
            GrafanaClientError,
            GrafanaException,
            GrafanaUnauthorizedError,
        )

        try:
            return fn(*args, **kwargs)
        except GrafanaUnauthorizedError:
            raise ServiceError(f"Grafana at {self.url} refused the token ({what}): "
                               "check --token-file") from None
        except GrafanaClientError as e:
            if e.status_code == 403:
                raise ServiceError(f"Grafana at {self.url}: the token may not {what} "
                                   "(needs the Editor or Admin role)") from None
            raise ServiceError(f"Grafana at {self.url}: {what} failed: HTTP "
                               f"{e.status_code} {str(e.message)[:200]}") from None
        except GrafanaException as e:
            raise ServiceError(f"cannot reach Grafana at {self.url} ({what}): "
                               f"{str(e.message)[:200]}") from None
        except niquests.exceptions.RequestException as e:
            raise ServiceError(f"cannot reach Grafana at {self.url}: {_reason(e)}") from None

    def status(self, fn: Any, *args: Any) -> int | None:
        """HTTP status of a failing GET (``None`` when it succeeds)."""
        from grafana_client.client import GrafanaClientError

        try:
            self.call("read", fn, *args)
        except ServiceError as e:
            cause = e.__cause__ or e.__context__
            if isinstance(cause, GrafanaClientError):
                return int(cause.status_code)
            if "HTTP 404" in str(e):
                return 404
            raise
        return None


def _dashboards(datasource_uid: str) -> list[dict[str, Any]]:
    from sensord.dashboards.boards import all_dashboards

    out = []
    for d in all_dashboards():
        d = copy.deepcopy(d)
        for var in d["templating"]["list"]:
            if var["type"] == "datasource":
                var["current"] = {"text": datasource_uid, "value": datasource_uid}
        out.append(d)
    return out


def _contact_points(webhook: str | None, ntfy: str | None) -> list[dict[str, Any]]:
    from sensord.dashboards.alerting import contact_points

    urls = {"sensord-webhook": webhook, "sensord-ntfy": ntfy}
    out = []
    for cp in contact_points():
        url = urls.get(cp["name"])
        if not url:
            continue
        for r in cp["receivers"]:
            out.append({"uid": r["uid"], "name": cp["name"], "type": r["type"],
                        "settings": {**r["settings"], "url": url},
                        "disableResolveMessage": r["disableResolveMessage"]})
    return out


def push(g: _Grafana, *, datasource_uid: str, folder_uid: str, webhook: str | None,
         ntfy: str | None, replace_policies: bool) -> list[str]:
    """Install everything; returns one line per object installed."""
    from sensord.dashboards.alerting import (
        FOLDER_TITLE,
        GROUP,
        alert_rules,
        notification_policy,
        rule_group_api_object,
    )

    api = g.api
    try:
        health = g.call("check health", api.health.check)
    except ServiceError as e:
        if "HTTP" not in str(e):
            raise
        raise ServiceError(f"{g.url} does not answer like Grafana (/api/health: "
                           f"{str(e).rsplit('HTTP', 1)[1].strip()[:40]})") from None
    if not isinstance(health, dict) or "version" not in health:
        raise ServiceError(f"{g.url} does not answer like Grafana (/api/health)")
    done = [f"Grafana {health.get('version')} at {g.url}"]
    if g.status(api.datasource.get_datasource_by_uid, datasource_uid) == 404:
        raise ServiceError(f"Grafana at {g.url} has no datasource with UID {datasource_uid!r}: "
                           "add an InfluxDB (InfluxQL) datasource or pass --datasource-uid")
    if g.status(api.folder.get_folder, folder_uid) == 404:
        g.call("create a folder", api.folder.create_folder, FOLDER_TITLE, uid=folder_uid)
        done.append(f"folder {folder_uid} created")
    for d in _dashboards(datasource_uid):
        g.call("save a dashboard", api.dashboard.update_dashboard,
               {"dashboard": d, "folderUid": folder_uid, "overwrite": True,
                "message": "sensord grafana push"})
        done.append(f"dashboard {d['uid']} ({d['title']})")
    group = rule_group_api_object(datasource_uid, folder_uid)
    g.call("save alert rules", api.alertingprovisioning.update_rule_group,
           folder_uid, GROUP, group)
    done.append(f"alert rule group {GROUP}: {', '.join(r.uid for r in alert_rules())}")
    cps = _contact_points(webhook, ntfy)
    existing = g.call("read contact points", api.alertingprovisioning.get_contactpoints) or []
    known = {c.get("uid") for c in existing if isinstance(c, dict)}
    for cp in cps:
        if cp["uid"] in known:
            g.call("update a contact point", api.alertingprovisioning.update_contactpoint,
                   cp["uid"], cp)
        else:
            g.call("create a contact point", api.alertingprovisioning.create_contactpoint, cp)
        done.append(f"contact point {cp['name']}")
    if replace_policies:
        if {c["name"] for c in cps} != {"sensord-webhook", "sensord-ntfy"}:
            raise InputError("--replace-policies needs both --webhook-url and --ntfy-url "
                             "(the policy routes to both contact points)")
        tree = notification_policy()
        tree.pop("orgId", None)
        g.call("replace the notification policies",
               api.alertingprovisioning.set_notification_policy_tree, tree)
        done.append("notification policy tree (grouped by runner)")
    return done


def export(directory: Path) -> list[str]:
    """Write the dashboards and the provisioning files under ``directory``."""
    from sensord.dashboards.build import artefacts

    written = []
    for rel, text in artefacts().items():
        path = directory / rel
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
        except OSError as e:
            raise InputError(f"cannot write {path}: {e.strerror}") from None
        written.append(str(path))
    return written


def run(args: argparse.Namespace) -> int:
    """Dispatch ``push`` / ``export``."""
    if args.action == "export":
        for line in export(args.dir):
            print(f"wrote {line}")
        return 0
    url = _check_url(args.url)
    if not args.timeout > 0:
        raise InputError(f"--timeout must be > 0, got {args.timeout}")
    credential = _read_token(args.token_file)
    g = _Grafana(url, credential, args.timeout)
    lines = push(
        g, datasource_uid=args.datasource_uid, folder_uid=args.folder_uid,
        webhook=args.webhook_url or os.environ.get("SENSORD_ALERT_WEBHOOK_URL") or None,
        ntfy=args.ntfy_url or os.environ.get("SENSORD_NTFY_URL") or None,
        replace_policies=args.replace_policies,
    )
    for line in lines:
        print(line, file=sys.stderr)
    print(json.dumps({"installed": len(lines) - 1, "url": url}))
    return 0
