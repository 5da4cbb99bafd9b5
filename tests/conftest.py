"""Shared pytest fixtures: real servers on free loopback ports (see tests/servers.py).

- ``mosquitto``: a broker allowing anonymous clients, persistence on; ``.host``, ``.port``,
  ``.stop()`` / ``.start()`` / ``.kill()`` for outage tests.
- ``influxdb1``: InfluxDB 1.x; ``.url``, ``.query(influxql, db=...)``, ``.create_database``.
- ``victoria``: VictoriaMetrics; ``.url``, ``.query(promql)``, ``.export(match)``.

Each is function-scoped: a fresh server and data directory per test, stopped afterwards.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import TypeVar

import pytest

try:
    from tests.servers import (
        INFLUXD_BIN,
        MOSQUITTO_BIN,
        VICTORIA_BIN,
        InfluxDB1Server,
        MosquittoServer,
        VictoriaServer,
    )
except ImportError:  # plain `pytest` without the repo root on sys.path
    from servers import (  # type: ignore[no-redef]
        INFLUXD_BIN,
        MOSQUITTO_BIN,
        VICTORIA_BIN,
        InfluxDB1Server,
        MosquittoServer,
        VictoriaServer,
    )


def _require(binary: str) -> None:
    if shutil.which(binary) is None and not Path(binary).exists():
        pytest.skip(f"{binary} is not installed")


S = TypeVar("S", MosquittoServer, InfluxDB1Server, VictoriaServer)


def _running(server: S, binary: str) -> Iterator[S]:
    """Start ``server`` (skip if its binary is missing), yield it, always stop it."""
    _require(binary)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def mosquitto(tmp_path: Path) -> Iterator[MosquittoServer]:
    """A running mosquitto broker (anonymous, persistent) on a free loopback port."""
    yield from _running(MosquittoServer(tmp_path / "mosquitto"), MOSQUITTO_BIN)


@pytest.fixture
def influxdb1(tmp_path: Path) -> Iterator[InfluxDB1Server]:
    """A running InfluxDB 1.x on a free loopback port (no auth)."""
    yield from _running(InfluxDB1Server(tmp_path / "influxdb1"), INFLUXD_BIN)


@pytest.fixture
def victoria(tmp_path: Path) -> Iterator[VictoriaServer]:
    """A running VictoriaMetrics on a free loopback port (reads consistent at once)."""
    yield from _running(VictoriaServer(tmp_path / "victoria"), VICTORIA_BIN)
