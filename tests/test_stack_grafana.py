"""``sensord grafana``: export writes the committed artefacts; push fails cleanly.

No Grafana can run here, so ``push`` is exercised against what is real: a closed port,
an unresolvable host, and a real server that is not Grafana (InfluxDB 1.6). Each must
give one line on stderr and exit status 2, never a traceback or the token.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from sensord.cli import main
from sensord.commands.grafana import _contact_points, _dashboards
from sensord.dashboards.build import artefacts
from tests.servers import InfluxDB1Server, free_port

ROOT = Path(__file__).resolve().parent.parent
SECRET = "glsa_supersecret_token_value_0123456789"


@pytest.fixture
def token_file(tmp_path: Path) -> Path:
    p = tmp_path / "token"
    p.write_text(SECRET + "\n")
    return p


def test_export_writes_the_committed_artefacts(tmp_path: Path) -> None:
    assert main(["grafana", "export", str(tmp_path)]) == 0
    for rel, text in artefacts().items():
        assert (tmp_path / rel).read_text() == text
        assert (ROOT / rel).read_text() == text


def _push(url: str, token: Path, *extra: str) -> list[str]:
    return ["grafana", "push", "--url", url, "--token-file", str(token), "--timeout", "5",
            *extra]


def _one_line_error(capsys: pytest.CaptureFixture[str]) -> str:
    captured = capsys.readouterr()
    err = captured.err.strip()
    assert len(err.splitlines()) == 1, err
    assert err.startswith("sensord: error: ")
    assert SECRET not in captured.err + captured.out
    return err


def test_push_to_a_closed_port_exits_2(token_file: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    assert main(_push(f"http://127.0.0.1:{free_port()}", token_file)) == 2
    err = _one_line_error(capsys)
    assert "cannot reach Grafana" in err
    assert "connection refused" in err


def test_push_to_an_unknown_host_exits_2(token_file: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    assert main(_push("http://grafana.invalid:3000", token_file)) == 2
    assert "host name not found" in _one_line_error(capsys)


def test_push_to_a_server_that_is_not_grafana_exits_2(
    influxdb1: InfluxDB1Server, token_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(_push(influxdb1.url, token_file)) == 2
    assert "does not answer like Grafana" in _one_line_error(capsys)


@pytest.mark.parametrize(("argv", "message"), [
    (["--url", "grafana:3000"], "--url must look like http://HOST:PORT"),
    (["--url", "http://admin:pw@127.0.0.1:3000"], "must not contain credentials"),
    (["--url", "http://127.0.0.1:3000", "--timeout", "0"], "--timeout must be > 0"),
    (["--url", "http://[::1"], "Invalid IPv6 URL"),
    (["--url", "http://127.0.0.1:99999"], "Port out of range"),
])
def test_push_bad_input_exits_2(argv: list[str], message: str, token_file: Path,
                                capsys: pytest.CaptureFixture[str]) -> None:
    full = ["grafana", "push", "--token-file", str(token_file), *argv]
    assert main(full) == 2
    assert message in _one_line_error(capsys)


def test_push_missing_or_empty_token_file_exits_2(tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    assert main(_push("http://127.0.0.1:3000", tmp_path / "absent")) == 2
    assert "cannot read --token-file" in _one_line_error(capsys)
    empty = tmp_path / "empty"
    empty.write_text("\n")
    assert main(_push("http://127.0.0.1:3000", empty)) == 2
    assert "is empty" in _one_line_error(capsys)


def test_push_payloads_point_at_the_chosen_datasource() -> None:
    boards = _dashboards("my-influx")
    for d in boards:
        ds = next(v for v in d["templating"]["list"] if v["type"] == "datasource")
        assert ds["current"]["value"] == "my-influx"
    cps = _contact_points("https://hooks.example/a", None)
    assert [c["name"] for c in cps] == ["sensord-webhook"]
    assert cps[0]["settings"]["url"] == "https://hooks.example/a"
    assert "${" not in str(cps)


def test_push_payloads_round_trip_through_grafanas_alerting_model() -> None:
    """The rule group, contact points and policy tree sent by ``push`` keep every field
    through Grafana's typed alerting model (grafana-foundation-sdk, the 11.6 build)."""
    al = pytest.importorskip("grafana_foundation_sdk.models.alerting")
    import json

    from sensord.dashboards.alerting import notification_policy, rule_group_api_object
    from tests.test_stack_config import _lost_keys

    def back(cls: Any, obj: dict[str, Any]) -> Any:
        parsed = cls.from_json(json.loads(json.dumps(obj)))
        return json.loads(json.dumps(parsed.to_json(), default=lambda o: o.to_json()))

    group = rule_group_api_object("my-influx", "sensord")
    assert _lost_keys(group, back(al.RuleGroup, group)) == []
    assert {r["uid"] for r in group["rules"]} >= {"sensord-sensor-offline"}
    assert all(r["data"][0]["datasourceUid"] == "my-influx" for r in group["rules"])
    policy = notification_policy()
    policy.pop("orgId")
    assert _lost_keys(policy, back(al.NotificationPolicy, policy)) == []
    for cp in _contact_points("https://hooks.example/a", "https://ntfy.example/t"):
        assert _lost_keys(cp, back(al.ContactPoint, cp)) == []
