"""docker-compose, Grafana provisioning files and dashboards, checked statically.

- ``docker-compose config`` accepts the stack with a complete ``.env`` and refuses it
  when a secret is missing; ports bind to loopback; services have health checks and
  restart policies.
- The provisioning files follow Grafana's documented file-provisioning structure
  (apiVersion 1; datasources, dashboard providers, alert rule groups, contact points,
  notification policies), and survive Grafana's ``$VAR`` interpolation intact.
- The dashboards follow Grafana's dashboard JSON model.
- The committed generated files are what the generator produces.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import yaml

from sensord.dashboards.alerting import alert_rules, alerting_provisioning
from sensord.dashboards.boards import all_dashboards
from sensord.dashboards.build import artefacts, to_yaml

ROOT = Path(__file__).resolve().parent.parent
PROV = ROOT / "configs" / "grafana" / "provisioning"
COMPOSE = shutil.which("docker-compose")

SECRETS = ("INFLUXDB_ADMIN_PASSWORD", "INFLUXDB_ADMIN_TOKEN", "INFLUXDB_GRAFANA_PASSWORD",
           "INFLUXDB_INGEST_PASSWORD", "GRAFANA_ADMIN_PASSWORD", "MQTT_INGEST_PASSWORD",
           "MQTT_DEMO_PASSWORD")


def _env_file(tmp: Path, drop: str | None = None) -> Path:
    """A project dir with the compose file and a .env filled from .env.example."""
    shutil.copy(ROOT / "docker-compose.yml", tmp / "docker-compose.yml")
    lines = []
    for raw in (ROOT / ".env.example").read_text().splitlines():
        m = re.match(r"^([A-Z_]+)=(.*)$", raw)
        if m is None:
            continue
        key, value = m.groups()
        if key == drop:
            continue
        lines.append(f"{key}={value or 'test-' + key.lower()}")
    (tmp / ".env").write_text("\n".join(lines) + "\n")
    return tmp


def _compose(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    assert COMPOSE is not None
    env = {k: v for k, v in os.environ.items() if not k.startswith(("INFLUXDB_", "GRAFANA_",
                                                                   "MQTT_", "SENSORD_"))}
    return subprocess.run([COMPOSE, *args], cwd=cwd, capture_output=True, text=True,
                          env=env, timeout=120, check=False)


needs_compose = pytest.mark.skipif(COMPOSE is None, reason="docker-compose not installed")


@needs_compose
def test_compose_config_is_valid_with_a_complete_env(tmp_path: Path) -> None:
    r = _compose(_env_file(tmp_path), "config", "-q")
    assert r.returncode == 0, r.stderr
    r = _compose(tmp_path, "--profile", "demo", "config", "-q")
    assert r.returncode == 0, r.stderr


@needs_compose
def test_compose_refuses_to_start_without_any_one_secret(tmp_path: Path) -> None:
    dirs = []
    for secret in SECRETS:
        d = tmp_path / secret.lower()
        d.mkdir()
        dirs.append(_env_file(d, drop=secret))
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(lambda d: _compose(d, "--profile", "demo", "config", "-q"),
                                dirs))
    for secret, r in zip(SECRETS, results, strict=True):
        assert r.returncode != 0, secret
        assert f"set {secret} in .env" in r.stderr


@needs_compose
def test_compose_services_bind_loopback_and_have_health_and_restart(tmp_path: Path) -> None:
    r = _compose(_env_file(tmp_path), "--profile", "demo", "config")
    assert r.returncode == 0, r.stderr
    cfg = yaml.safe_load(r.stdout)
    services = cfg["services"]
    assert set(services) == {"mosquitto", "influxdb", "grafana", "ingest", "demo"}
    for name, svc in services.items():
        for port in svc.get("ports", []):
            host_ip = port["host_ip"] if isinstance(port, dict) else str(port).split(":")[0]
            assert host_ip == "127.0.0.1", (name, port)
        if name != "demo":
            assert svc["restart"] == "unless-stopped", name
            assert svc["healthcheck"]["test"], name
    assert services["demo"]["profiles"] == ["demo"]
    assert services["grafana"]["depends_on"]["influxdb"]["condition"] == "service_healthy"

    def mounts(svc: str) -> dict[str, str]:
        out = {}
        for v in services[svc]["volumes"]:
            src, target = (v["source"], v["target"]) if isinstance(v, dict) else v.split(":")[:2]
            out[target] = src
        return out

    grafana = mounts("grafana")
    assert grafana["/etc/grafana/provisioning"].endswith("configs/grafana/provisioning")
    assert grafana["/var/lib/grafana/dashboards"].endswith("/dashboards")
    assert mounts("mosquitto")["/mosquitto/config"].endswith("configs/mosquitto")
    assert mounts("influxdb")["/docker-entrypoint-initdb.d"].endswith("configs/influxdb/init")


def test_no_secret_has_a_default_anywhere() -> None:
    text = (ROOT / "docker-compose.yml").read_text()
    for secret in SECRETS:
        assert f"${{{secret}:-" not in text, secret
        assert f"${{{secret}}}" not in text, secret
        assert f"${{{secret}:?" in text, secret
    for raw in (ROOT / ".env.example").read_text().splitlines():
        key, _, value = raw.partition("=")
        if key in SECRETS:
            assert value == "", f".env.example must leave {key} empty"


# ------------------------------------------------------------------ provisioning


def grafana_interpolate(text: str, env: dict[str, str]) -> str:
    """Grafana's provisioning interpolation: ``$$`` is a literal ``$``, else ``$VAR``."""

    def expand(part: str) -> str:
        return re.sub(r"\$\{(\w+)\}|\$(\w+)",
                      lambda m: env.get(m.group(1) or m.group(2), ""), part)

    return "$".join(expand(p) for p in text.split("$$"))


def _load(rel: str, env: dict[str, str] | None = None) -> Any:
    text = (PROV / rel).read_text()
    return yaml.safe_load(grafana_interpolate(text, env or {}))


def test_generated_files_are_up_to_date() -> None:
    for rel, text in artefacts().items():
        assert (ROOT / rel).read_text() == text, f"{rel} is stale: run python dashboards/build.py"


def test_yaml_emitter_round_trips() -> None:
    for content in alerting_provisioning().values():
        assert yaml.safe_load(to_yaml(content)) == content


def test_datasource_provisioning() -> None:
    doc = _load("datasources/sensord.yaml", {"INFLUXDB_BUCKET": "sensord",
                                             "INFLUXDB_GRAFANA_PASSWORD": "pw"})
    assert doc["apiVersion"] == 1
    (ds,) = doc["datasources"]
    assert ds["uid"] == "sensord-influxql"
    assert ds["type"] == "influxdb"
    assert ds["access"] == "proxy"
    assert ds["url"].startswith("http://influxdb:8086")
    assert ds["jsonData"]["dbName"] == "sensord"
    assert ds["secureJsonData"]["password"] == "pw"
    raw = (PROV / "datasources/sensord.yaml").read_text()
    assert "${INFLUXDB_GRAFANA_PASSWORD}" in raw  # from the environment, not the file


def test_dashboard_provider_points_at_the_mounted_dashboards() -> None:
    doc = _load("dashboards/sensord.yaml")
    assert doc["apiVersion"] == 1
    (p,) = doc["providers"]
    assert p["type"] == "file"
    assert p["options"]["path"] == "/var/lib/grafana/dashboards"
    assert {d["uid"] for d in all_dashboards()} == {
        f.stem for f in (ROOT / "dashboards").glob("*.json")}


DURATION = re.compile(r"^\d+(ms|s|m|h|d)$")


def test_alert_rules_follow_the_provisioning_format() -> None:
    doc = _load("alerting/rules.yaml")
    assert doc["apiVersion"] == 1
    (group,) = doc["groups"]
    assert {"orgId", "name", "folder", "interval", "rules"} <= set(group)
    assert DURATION.match(group["interval"])
    uids = set()
    for rule in group["rules"]:
        assert {"uid", "title", "condition", "data", "noDataState", "execErrState", "for",
                "annotations", "labels"} <= set(rule)
        assert re.fullmatch(r"[a-zA-Z0-9_-]{1,40}", rule["uid"])
        uids.add(rule["uid"])
        assert rule["noDataState"] in {"OK", "NoData", "Alerting", "KeepLast"}
        assert rule["execErrState"] in {"OK", "Error", "Alerting", "KeepLast"}
        assert DURATION.match(rule["for"])
        refs = {d["refId"] for d in rule["data"]}
        assert rule["condition"] in refs
        for d in rule["data"]:
            assert {"refId", "datasourceUid", "model", "relativeTimeRange"} <= set(d)
            assert d["model"]["refId"] == d["refId"]
            if d["datasourceUid"] == "__expr__":
                assert d["model"]["type"] in {"reduce", "threshold", "math", "classic_conditions"}
                assert d["model"]["expression"] in refs - {d["refId"]}
            else:
                assert d["datasourceUid"] == "sensord-influxql"
                assert d["model"]["rawQuery"] is True
                assert d["relativeTimeRange"]["from"] > 0
    assert uids == {r.uid for r in alert_rules()}
    assert {"sensord-form-degradation", "sensord-cadence-low", "sensord-pelvic-drop-rising",
            "sensord-pain-reported", "sensord-sensor-offline"} <= uids


def test_rule_queries_survive_grafana_env_interpolation() -> None:
    doc = _load("alerting/rules.yaml", {"timeFilter": "BROKEN", "labels": "BROKEN"})
    by_uid = {r["uid"]: r for r in doc["groups"][0]["rules"]}
    for spec in alert_rules():
        rule = by_uid[spec.uid]
        assert rule["data"][0]["model"]["query"] == spec.query
        assert "$timeFilter" in spec.query
        assert rule["annotations"]["summary"] == spec.summary


def test_contact_points_and_policies() -> None:
    env = {"SENSORD_ALERT_WEBHOOK_URL": "https://hooks.example/x",
           "SENSORD_NTFY_URL": "https://ntfy.example/topic"}
    cps = _load("alerting/contact-points.yaml", env)
    assert cps["apiVersion"] == 1
    names = set()
    for cp in cps["contactPoints"]:
        names.add(cp["name"])
        for r in cp["receivers"]:
            assert {"uid", "type", "settings"} <= set(r)
            assert r["settings"]["url"] in env.values()
    assert names == {"sensord-webhook", "sensord-ntfy"}
    pol = _load("alerting/policies.yaml")
    assert pol["apiVersion"] == 1
    (root,) = pol["policies"]
    assert root["receiver"] in names
    assert "runner" in root["group_by"]

    def walk(node: dict[str, Any]) -> None:
        assert node["receiver"] in names
        for m in node.get("object_matchers", []):
            assert len(m) == 3
            assert m[1] in {"=", "!=", "=~", "!~"}
        for child in node.get("routes", []):
            walk(child)

    walk(root)


# ------------------------------------------------------------------ dashboard model


PANEL_TYPES = {"timeseries", "stat", "table", "bargauge", "row", "gauge", "text"}


@pytest.mark.parametrize("board", all_dashboards(), ids=lambda d: d["uid"])
def test_dashboard_follows_grafana_model(board: dict[str, Any]) -> None:
    assert {"uid", "title", "schemaVersion", "panels", "templating", "annotations", "time",
            "version", "tags"} <= set(board)
    assert board["schemaVersion"] >= 36
    variables = {v["name"]: v for v in board["templating"]["list"]}
    assert "runner" in variables
    assert variables["datasource"]["type"] == "datasource"
    if board["uid"] != "sensord-team":
        assert "run_id" in variables
    ids = [p["id"] for p in board["panels"]]
    assert len(ids) == len(set(ids))
    cells: set[tuple[int, int]] = set()
    for p in board["panels"]:
        assert p["type"] in PANEL_TYPES
        g = p["gridPos"]
        assert g["x"] >= 0
        assert g["x"] + g["w"] <= 24
        assert g["h"] > 0
        mine = {(x, y) for x in range(g["x"], g["x"] + g["w"])
                for y in range(g["y"], g["y"] + g["h"])}
        assert not (mine & cells), f"{p['title']} overlaps another panel"
        cells |= mine
        if p["type"] == "row":
            continue
        assert p["datasource"] == {"type": "influxdb", "uid": "${datasource}"}
        refs = [t["refId"] for t in p["targets"]]
        assert refs
        assert len(refs) == len(set(refs))
        for t in p["targets"]:
            assert t["rawQuery"] is True
            assert t["resultFormat"] in {"time_series", "table"}
            for var in re.findall(r"\$(\w+)", t["query"]):
                assert var in variables or var in {"timeFilter", "__interval"}, var
        assert "defaults" in p["fieldConfig"]
        assert "overrides" in p["fieldConfig"]


@needs_compose
def test_mosquitto_container_listens_beyond_its_loopback(tmp_path: Path) -> None:
    """The compose command rewrites the host-install listener for the container."""
    r = _compose(_env_file(tmp_path), "config")
    assert r.returncode == 0, r.stderr
    command = yaml.safe_load(r.stdout)["services"]["mosquitto"]["command"]
    script = command[2].replace("$$", "$")
    script = script.replace("/mosquitto/config", str(ROOT / "configs" / "mosquitto"))
    script = script.replace("/tmp/mosquitto.conf", str(tmp_path / "m.conf"))
    script = script.split("&& exec")[0]
    subprocess.run(["sh", "-c", script], check=True, timeout=30)
    listeners = [ln for ln in (tmp_path / "m.conf").read_text().splitlines()
                 if ln.startswith("listener ")]
    assert "listener 1883" in listeners
    assert "listener 1883 127.0.0.1" not in listeners
    for key in ("allow_anonymous false", "password_file", "acl_file"):
        assert key in (tmp_path / "m.conf").read_text()


def _lost_keys(ours: Any, theirs: Any, path: str = "") -> list[str]:
    """Paths of keys (or values) of ``ours`` that did not survive in ``theirs``."""
    if isinstance(ours, dict):
        if not isinstance(theirs, dict):
            return [f"{path}: not an object"]
        return [p for k, v in ours.items()
                for p in ([f"{path}.{k}"] if k not in theirs
                          else _lost_keys(v, theirs[k], f"{path}.{k}"))]
    if isinstance(ours, list):
        if not isinstance(theirs, list) or len(ours) != len(theirs):
            return [f"{path}: list changed"]
        return [p for i, (a, b) in enumerate(zip(ours, theirs, strict=True))
                for p in _lost_keys(a, b, f"{path}[{i}]")]
    return [] if ours == theirs else [f"{path}: {ours!r} -> {theirs!r}"]


@pytest.mark.parametrize("board", all_dashboards(), ids=lambda d: d["uid"])
def test_dashboard_round_trips_through_grafanas_typed_model(board: dict[str, Any]) -> None:
    """Grafana's own dashboard schema (grafana-foundation-sdk, the 11.6 build) keeps
    every field we write, except the datasource-specific annotation target and the
    variables' display-only ``definition`` (free-form in the schema)."""
    sdk = pytest.importorskip("grafana_foundation_sdk.models.dashboard")
    import json

    def plain(o: Any) -> Any:
        return o.to_json() if hasattr(o, "to_json") else str(o)

    parsed = sdk.Dashboard.from_json(json.loads(json.dumps(board)))
    back = json.loads(json.dumps(parsed.to_json(), default=plain))
    lost = [p for p in _lost_keys(board, back)
            if not re.match(r"^\.annotations\.list\[\d+\]\.target\.", p)
            and not p.endswith(".definition")]
    assert lost == []
    assert len(back["panels"]) == len(board["panels"])


def test_files_the_stack_mounts_exist_and_the_init_script_parses() -> None:
    for rel in ("configs/mosquitto/mosquitto.conf", "configs/mosquitto/acl",
                "configs/grafana/provisioning/datasources/sensord.yaml",
                "configs/grafana/provisioning/dashboards/sensord.yaml",
                "dashboards/sensord-team.json", "Dockerfile", "pyproject.toml"):
        assert (ROOT / rel).is_file(), rel
    init = ROOT / "configs/influxdb/init/10-sensord.sh"
    assert os.access(init, os.X_OK)
    subprocess.run(["sh", "-n", str(init)], check=True, timeout=30)
    text = init.read_text()
    assert "influx v1 dbrp create" in text
    assert "--read-bucket" in text
    assert "--write-bucket" in text
