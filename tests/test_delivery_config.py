"""``sensord ingest`` settings: config file + flags, secrets only from env/files, never logged."""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
from pathlib import Path

import pytest

from sensord.commands import ingest
from sensord.commands.ingest import parse_broker
from sensord.errors import InputError
from sensord.model import RunInfo
from tests.servers import (
    InfluxDB1Server,
    IngestProcess,
    MosquittoServer,
    influx_step_indices,
    wait_until,
)
from tests.test_delivery_basic import make_steps, publish_one_by_one

REPO = Path(__file__).resolve().parent.parent


def settings(*argv: str) -> dict[str, object]:
    p = argparse.ArgumentParser()
    ingest.add_arguments(p)
    return ingest.settings(p.parse_args(list(argv)))


def test_example_config_loads_and_flags_win() -> None:
    s = settings("--config", str(REPO / "configs/ingest.example.toml"), "--linger-ms", "50")
    assert s["linger_ms"] == 50
    assert s["mqtt_username"] == "sensord-ingest"
    assert s["db_mode"] == "v1"


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ('[ingest]\ninflux_token = "abc"\n', "secrets do not belong"),
        ('[ingest]\npassword = "abc"\n', "secrets do not belong"),
        ("[ingest]\nbatchsize = 5\n", "unknown key 'batchsize'"),
        ("[ingest\n", "invalid TOML"),
        ("[ingest]\nbatch_size = 0\n", "--batch-size must be a positive integer"),
        ('[ingest]\ntls = "false"\n', "tls: 'false' must be true or false"),
        ('[ingest]\ndb_mode = "v3"\n', "db_mode: 'v3' is not one of v1, v2"),
        ('[ingest]\nlog_level = "trace"\n', "log_level: 'trace' is not one of"),
        ('[ingest]\nmax_backoff_s = "30s"\n', "max_backoff_s: '30s' must be a number"),
        ("[ingest]\nmax_backoff_s = 0\n", "--max-backoff-s must be > 0"),
        ('[ingest]\nbroker = ""\n', "--broker must be HOST"),
        ("[ingest]\nbatch_size = 1" + "0" * 5000 + "\n", "invalid TOML"),
    ],
)
def test_bad_config_is_a_clear_error(tmp_path: Path, text: str, words: str) -> None:
    path = tmp_path / "ingest.toml"
    path.write_text(text)
    with pytest.raises(InputError, match=words):
        settings("--config", str(path))


def test_bad_flag_exits_2_with_one_line() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "sensord.cli", "ingest", "--broker", "host:notaport"],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=60,
        env=dict(os.environ, PYTHONPATH=str(REPO)),
    )
    assert out.returncode == 2
    assert out.stderr.strip() == ("sensord: error: --broker must be HOST[:PORT] or [IPV6]:PORT, "
                                  "got 'host:notaport'")


@pytest.mark.servers
async def test_token_from_env_is_never_logged(
    tmp_path: Path, mosquitto: MosquittoServer, influxdb1: InfluxDB1Server
) -> None:
    influxdb1.create_database("sensord")
    secret = "tok-7f3a9c-do-not-log"
    bridge = IngestProcess.between(tmp_path / "ingest", mosquitto, influxdb1.url,
                                   "--log-level", "debug", "--linger-ms", "20",
                                   env={"SENSORD_INFLUX_TOKEN": secret})
    await asyncio.to_thread(bridge.start)
    run = RunInfo("alice", "pelvis1", "run-secret", "pelvis")
    try:
        await publish_one_by_one(mosquitto.port, run, make_steps(20), tmp_path / "spool.sqlite")
        await asyncio.to_thread(
            wait_until,
            lambda: len(influx_step_indices(influxdb1, "run-secret")) == 20,
            30,
            "20 steps",
        )
    finally:
        await asyncio.to_thread(bridge.stop)
    log = bridge.log_tail(10_000_000)
    assert "stopped: IngestStats" in log  # the log is there and complete
    assert secret not in log


def test_broker_addresses_ipv6_included() -> None:
    assert parse_broker("mqtt.example.org") == ("mqtt.example.org", 1883)
    assert parse_broker("10.0.0.2:8883") == ("10.0.0.2", 8883)
    assert parse_broker("[::1]:1884") == ("::1", 1884)
    assert parse_broker("[fe80::1]") == ("fe80::1", 1883)
    for bad in ("", ":1883", "host:", "host:0", "::1:1883", "[::1", "host:1883:1"):
        with pytest.raises(InputError, match="--broker must be"):
            parse_broker(bad)


def test_a_bad_database_url_never_shows_its_credentials() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "sensord.cli", "ingest", "--influx-url", "htp://user:s3cret@db"],
        capture_output=True, text=True, cwd=REPO, timeout=60,
        env=dict(os.environ, PYTHONPATH=str(REPO)))
    assert out.returncode == 2
    assert "database URL must be" in out.stderr and "s3cret" not in out.stderr
