"""``sensord ingest``: the MQTT -> InfluxDB bridge.

Settings come from ``--config FILE`` (TOML, see ``configs/ingest.example.toml``), then
flags (which win). Secrets never come from flags or the config file: the database token
is read from ``SENSORD_INFLUX_TOKEN`` or ``--influx-token-file``; the MQTT password from
``SENSORD_MQTT_PASSWORD`` or ``--mqtt-password-file``. Neither is ever logged.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import re
import signal
import tomllib
from pathlib import Path
from typing import Any

from sensord.errors import InputError

HELP = "the MQTT -> InfluxDB bridge"

_DEFAULTS: dict[str, Any] = {
    "broker": "127.0.0.1:1883",
    "mqtt_username": None,
    "mqtt_password_file": None,
    "tls": False,
    "ca_file": None,
    "client_id": "sensord-ingest",
    "shared_group": None,
    "db_mode": "v1",
    "influx_url": "http://127.0.0.1:8086",
    "database": "sensord",
    "retention_policy": None,
    "bucket": "sensord",
    "org": "sensord",
    "influx_token_file": None,
    "batch_size": 5000,
    "linger_ms": 200,
    "receive_max": 2000,
    "max_backoff_s": 30.0,
    "log_level": "info",
}
_SECRET_KEYS = {"password", "mqtt_password", "token", "influx_token"}
_LOG_LEVELS = ("debug", "info", "warning", "error")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags of ``sensord ingest`` (defaults come from ``--config`` or built-ins)."""
    a = parser.add_argument
    a("--config", type=Path, help="TOML file with any of the settings below (flags win)")
    a("--broker", help="MQTT broker HOST[:PORT] (default 127.0.0.1:1883)")
    a("--mqtt-username", help="MQTT user (password: $SENSORD_MQTT_PASSWORD or file)")
    a("--mqtt-password-file", type=Path, help="file holding the MQTT password")
    a("--tls", action="store_true", default=None, help="connect to the broker with TLS")
    a("--ca-file", help="CA bundle for the broker's TLS certificate")
    a("--client-id", help="fixed MQTT client id / session name (one per replica)")
    a("--shared-group", help="subscribe via $share/NAME/... so replicas split the load")
    a("--db-mode", choices=("v1", "v2"), help="v1: /write (InfluxDB 1.x); v2: /api/v2/write")
    a("--influx-url", help="database URL (default http://127.0.0.1:8086)")
    a("--database", help="v1: database name (default sensord)")
    a("--retention-policy", help="v1: retention policy (default: the database's default)")
    a("--bucket", help="v2: bucket (default sensord)")
    a("--org", help="v2: organisation (default sensord)")
    a("--influx-token-file", type=Path, help="file holding the database token")
    a("--batch-size", type=int, help="points per write (default 5000)")
    a("--linger-ms", type=int, help="longest a point waits for its batch (default 200)")
    a("--receive-max", type=int, help="most unacknowledged messages in flight (default 2000)")
    a("--max-backoff-s", type=float, help="cap of the retry backoff (default 30)")
    a("--log-level", choices=_LOG_LEVELS, help="default info")


def _load_config(path: Path | None) -> dict[str, Any]:
    if path is None:
        return {}
    try:
        doc = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as e:
        raise InputError(f"cannot read config {path}: {e.strerror}") from None
    except UnicodeDecodeError:
        raise InputError(f"{path}: not UTF-8 text; save the config as UTF-8 TOML") from None
    except ValueError as e:  # (tomllib.TOMLDecodeError, or a number too long to read)
        raise InputError(f"{path}: invalid TOML: {e}") from None
    section = doc.get("ingest", doc)
    if not isinstance(section, dict):
        raise InputError(f"{path}: [ingest] must be a table")
    out: dict[str, Any] = {}
    for key, value in section.items():
        k = key.replace("-", "_")
        if k in _SECRET_KEYS:
            raise InputError(
                f"{path}: key {key!r}: secrets do not belong in config files; use "
                "SENSORD_INFLUX_TOKEN / SENSORD_MQTT_PASSWORD or the *_file settings"
            )
        if k not in _DEFAULTS:
            raise InputError(f"{path}: unknown key {key!r}; known: {', '.join(sorted(_DEFAULTS))}")
        out[k] = value
    return out


def read_secret(env: str, path: object, what: str) -> str | None:
    if path is not None:
        try:
            return Path(str(path)).read_text(encoding="utf-8").strip() or None
        except OSError as e:
            raise InputError(f"cannot read {what} file {path}: {e.strerror}") from None
        except UnicodeDecodeError:
            raise InputError(f"{what} file {path} is not UTF-8 text") from None
    value = os.environ.get(env)
    return value.strip() if value else None


def parse_broker(value: str) -> tuple[str, int]:
    """``HOST[:PORT]`` or ``[IPV6][:PORT]`` -> (host, port); port defaults to 1883."""
    bad = InputError(f"--broker must be HOST[:PORT] or [IPV6]:PORT, got {value!r}")
    m = re.fullmatch(r"\[(?P<v6>[0-9A-Fa-f:.]+)\](?::(?P<p6>[^:]*))?|(?P<h>[^:\[\]]+)"
                     r"(?::(?P<p>[^:]*))?", value.strip())
    if m is None:
        raise bad
    host, port_s = (m["v6"], m["p6"]) if m["v6"] else (m["h"].strip(), m["p"])
    if port_s is None:
        return host, 1883
    try:
        port = int(port_s)
    except ValueError:
        raise bad from None
    if not 0 < port < 65536:
        raise bad
    return host, port


def _check_type(key: str, value: object) -> None:
    """A setting must have its default's type (``None`` = unset; paths from flags)."""
    default = _DEFAULTS[key]
    if value is None:
        return
    if isinstance(default, bool):
        ok, kind = isinstance(value, bool), "true or false (not a string)"
    elif isinstance(default, float):
        ok, kind = isinstance(value, int | float) and not isinstance(value, bool), "a number"
    elif isinstance(default, int):
        ok, kind = isinstance(value, int) and not isinstance(value, bool), "a whole number"
    else:
        ok, kind = isinstance(value, str | Path), "a string"
    if not ok:
        raise InputError(f"setting {key}: {value!r} must be {kind}")


def settings(args: argparse.Namespace) -> dict[str, Any]:
    """Defaults, then the config file, then flags."""
    s = dict(_DEFAULTS)
    s.update(_load_config(getattr(args, "config", None)))
    for k in _DEFAULTS:
        v = getattr(args, k, None)
        if v is not None:
            s[k] = v
    for k, v in s.items():
        _check_type(k, v)
    for k, allowed in (("db_mode", ("v1", "v2")), ("log_level", _LOG_LEVELS)):
        if s[k] not in allowed:
            raise InputError(f"setting {k}: {s[k]!r} is not one of {', '.join(allowed)}")
    parse_broker(s["broker"])  # (fail before anything starts)
    if not 0 < float(s["max_backoff_s"]) <= 3600:
        raise InputError(f"--max-backoff-s must be > 0 and <= 3600 s, got {s['max_backoff_s']}")
    for k in ("batch_size", "linger_ms", "receive_max"):  # (integers: _check_type)
        if s[k] < 1:
            raise InputError(f"--{k.replace('_', '-')} must be a positive integer, got {s[k]!r}")
    if s["receive_max"] > 65535:
        raise InputError(f"--receive-max must be at most 65535, got {s['receive_max']}")
    if s["shared_group"] is not None and not all(
        c.isalnum() or c in "_.-" for c in str(s["shared_group"])
    ):
        raise InputError(
            f"--shared-group must be letters, digits, '_', '.', '-': {s['shared_group']!r}"
        )
    return s


def run(args: argparse.Namespace) -> int:
    """Run the bridge until SIGINT/SIGTERM."""
    from sensord.contract import BrokerConfig
    from sensord.ingest.bridge import IngestBridge, IngestConfig
    from sensord.ingest.transport import InfluxV1Writer, InfluxV2Writer, LineWriter

    s = settings(args)
    logging.basicConfig(
        level=s["log_level"].upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    host, port = parse_broker(str(s["broker"]))
    broker = BrokerConfig(
        host=host,
        port=port,
        username=s["mqtt_username"],
        password=read_secret("SENSORD_MQTT_PASSWORD", s["mqtt_password_file"], "MQTT password"),
        tls=bool(s["tls"]),
        ca_file=s["ca_file"],
    )
    token = read_secret("SENSORD_INFLUX_TOKEN", s["influx_token_file"], "database token")
    writer: LineWriter
    try:
        if s["db_mode"] == "v1":
            writer = InfluxV1Writer(
                s["influx_url"], s["database"], retention_policy=s["retention_policy"], token=token
            )
        else:
            writer = InfluxV2Writer(s["influx_url"], s["bucket"], s["org"], token=token)
    except ValueError as e:
        raise InputError(str(e)) from None
    config = IngestConfig(
        client_id=s["client_id"],
        shared_group=s["shared_group"],
        receive_max=s["receive_max"],
        batch_max_lines=s["batch_size"],
        linger_s=s["linger_ms"] / 1000.0,
        backoff_max_s=float(s["max_backoff_s"]),
    )

    async def main() -> None:
        bridge = IngestBridge(broker, writer, config)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, bridge.stop)
        try:
            await bridge.run()
        finally:
            await writer.close()
            logging.getLogger("sensord.ingest").info("stopped: %s", bridge.stats)

    asyncio.run(main())
    return 0
