"""Real servers for tests: mosquitto, InfluxDB 1.x and VictoriaMetrics.

Each server runs as a child process on a free loopback port with its own temporary data
directory, and can be stopped and started again on the same port and data (for outage
tests). The pytest fixtures ``mosquitto``, ``influxdb1`` and ``victoria`` in
``tests/conftest.py`` yield these objects; use them from any test::

    def test_something(mosquitto, influxdb1):
        mosquitto.host, mosquitto.port          # MQTT broker (anonymous allowed)
        influxdb1.url                          # http://127.0.0.1:PORT
        influxdb1.create_database("sensord")
        influxdb1.query("SELECT count(*) FROM steps", db="sensord")  # -> list of rows

    def test_vm(victoria):
        victoria.url                           # accepts /api/v2/write and /write
        victoria.query("count(steps_gct_ms)")  # PromQL instant query -> result list
        victoria.export('{__name__=~"steps_.*"}')  # raw samples (one dict per series)

No mocks: these are the packaged binaries (``/usr/sbin/mosquitto``, ``/usr/bin/influxd``,
``/usr/bin/victoria-metrics``). A missing binary skips the test that asked for it.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

#: How long a server may take to start accepting connections, seconds.
STARTUP_TIMEOUT_S = 30.0

MOSQUITTO_BIN = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
MOSQUITTO_PASSWD_BIN = shutil.which("mosquitto_passwd") or "/usr/bin/mosquitto_passwd"
INFLUXD_BIN = shutil.which("influxd") or "/usr/bin/influxd"
VICTORIA_BIN = shutil.which("victoria-metrics") or "/usr/bin/victoria-metrics"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def _http(url: str, data: bytes | None = None, method: str | None = None) -> tuple[int, bytes]:
    req = urllib.request.Request(url, data=data, method=method)
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return int(resp.status), resp.read()
    except urllib.error.HTTPError as e:
        return int(e.code), e.read()


class _Process:
    """A restartable child process with a readiness probe."""

    name = "server"

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.host = "127.0.0.1"
        self.port = free_port()
        self._proc: subprocess.Popen[bytes] | None = None
        self._log = self.workdir / f"{self.name}.log"

    def _argv(self) -> list[str]:
        raise NotImplementedError

    def _ready(self) -> bool:
        return _port_open(self.host, self.port)

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def pid(self) -> int | None:
        return None if self._proc is None else self._proc.pid

    def start(self) -> None:
        """Start (or restart) on the same port and data directory; wait until ready."""
        if self.running:
            return
        log = self._log.open("ab")
        self._proc = subprocess.Popen(
            self._argv(), stdout=log, stderr=subprocess.STDOUT, cwd=self.workdir
        )
        log.close()
        self._wait_until_ready()

    def _wait_until_ready(self) -> None:
        """Poll :meth:`_ready`; a process that exits or stays unready is an error (with its
        log), and one that stays unready is stopped first."""
        assert self._proc is not None
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited at start-up; log:\n{self.log_tail()}")
            if self._ready():
                return
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"{self.name} not ready after {STARTUP_TIMEOUT_S} s:\n{self.log_tail()}")

    def stop(self) -> None:
        """Graceful stop (SIGTERM, then SIGKILL after 15 s)."""
        if self._proc is None:
            return
        if self._proc.poll() is None:
            self._proc.send_signal(signal.SIGTERM)
            try:
                self._proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        self._proc = None

    def kill(self) -> None:
        """Hard stop (SIGKILL), as in a crash."""
        if self._proc is None:
            return
        if self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait()
        self._proc = None

    def log_tail(self, n_chars: int = 4000) -> str:
        try:
            return self._log.read_text(errors="replace")[-n_chars:]
        except OSError:
            return ""


class MosquittoServer(_Process):
    """A mosquitto broker with persistence on; anonymous access unless a config is given.

    Parameters
    ----------
    workdir
        Directory for the config, persistence file and log.
    config_text
        Extra configuration lines (``listener`` is added by this class). When ``None``,
        anonymous access on the listener is allowed.
    raw_config
        A complete configuration instead (``{port}`` and ``{workdir}`` are substituted).
    """

    name = "mosquitto"

    def __init__(
        self, workdir: Path, config_text: str | None = None, *, raw_config: str | None = None
    ) -> None:
        super().__init__(workdir)
        self.config_path = self.workdir / "mosquitto.conf"
        if raw_config is not None:  # a complete config; {port} and {workdir} are filled in
            text = raw_config.replace("{port}", str(self.port))
            text = text.replace("{workdir}", str(self.workdir))
            if os.geteuid() == 0:
                text += "\nuser root\n"
            self.config_path.write_text(text)
            return
        body = [
            f"listener {self.port} 127.0.0.1",
            "persistence true",
            f"persistence_location {self.workdir}/",
            "persistence_file mosquitto.db",
            "autosave_interval 30",  # also saved on a graceful stop
            # Queue (practically) every QoS 1 message for an offline persistent session. Not
            # 0: in mosquitto 2.0, "0 = unlimited" also disables MQTT 5 Receive Maximum.
            "max_queued_messages 100000000",
            "max_inflight_messages 0",
            "log_dest stdout",
            "log_type error",
            "log_type warning",
        ]
        if os.geteuid() == 0:
            body.append("user root")  # keep write access to the temporary data dir
        if config_text is None:
            body.append("allow_anonymous true")
        else:
            body.append(config_text)
        self.config_path.write_text("\n".join(body) + "\n")

    def _argv(self) -> list[str]:
        return [MOSQUITTO_BIN, "-c", str(self.config_path)]


class InfluxDB1Server(_Process):
    """InfluxDB 1.x (``influxd``) with HTTP on a free port; no auth.

    ``url`` is the HTTP base; :meth:`query` runs InfluxQL and returns the first series'
    rows as dicts (``[]`` when empty).
    """

    name = "influxd"

    def __init__(self, workdir: Path) -> None:
        super().__init__(workdir)
        self.rpc_port = free_port()
        self.config_path = self.workdir / "influxdb.conf"
        d = self.workdir
        self.config_path.write_text(
            f"""reporting-disabled = true
bind-address = "127.0.0.1:{self.rpc_port}"
[meta]
  dir = "{d}/meta"
  logging-enabled = false
[data]
  dir = "{d}/data"
  wal-dir = "{d}/wal"
  wal-fsync-delay = "0s"
  query-log-enabled = false
  trace-logging-enabled = false
[coordinator]
  log-queries-after = "0s"
[monitor]
  store-enabled = false
[http]
  enabled = true
  bind-address = "127.0.0.1:{self.port}"
  auth-enabled = false
  log-enabled = false
  max-body-size = 0
[continuous_queries]
  enabled = false
[logging]
  level = "warn"
"""
        )

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def _argv(self) -> list[str]:
        return [INFLUXD_BIN, "run", "-config", str(self.config_path)]

    def _ready(self) -> bool:
        try:
            status, _ = _http(self.url + "/ping")
        except OSError:
            return False
        return status == 204

    def raw_query(self, q: str, db: str | None = None) -> dict[str, Any]:
        """Run InfluxQL (POST /query); the decoded JSON response."""
        params = {"q": q, "epoch": "ms"}
        if db is not None:
            params["db"] = db
        status, body = _http(
            self.url + "/query", data=urllib.parse.urlencode(params).encode(), method="POST"
        )
        if status != 200:
            raise RuntimeError(f"InfluxQL {q!r} -> HTTP {status}: {body[:300]!r}")
        result: dict[str, Any] = json.loads(body)
        return result

    def query(self, q: str, db: str | None = None) -> list[dict[str, Any]]:
        """Run InfluxQL; rows of every series of the first statement, as dicts."""
        result = self.raw_query(q, db)["results"][0]
        if "error" in result:
            raise RuntimeError(f"InfluxQL {q!r}: {result['error']}")
        rows: list[dict[str, Any]] = []
        for series in result.get("series", []):
            tags = series.get("tags", {})
            for values in series["values"]:
                row = dict(zip(series["columns"], values, strict=True))
                row.update(tags)
                rows.append(row)
        return rows

    def create_database(self, db: str) -> None:
        self.raw_query(f'CREATE DATABASE "{db}"')


class VictoriaServer(_Process):
    """Single-node VictoriaMetrics, reads immediately consistent, 1 ms de-duplication.

    ``-dedup.minScrapeInterval=1ms`` makes a re-written sample (same series and
    millisecond) count once, as InfluxDB would overwrite it.
    """

    name = "victoria-metrics"

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def _argv(self) -> list[str]:
        return [
            VICTORIA_BIN,
            f"-httpListenAddr={self.host}:{self.port}",
            f"-storageDataPath={self.workdir}/data",
            "-search.latencyOffset=0",
            "-dedup.minScrapeInterval=1ms",
            "-retentionPeriod=100y",
            "-loggerLevel=ERROR",
        ]

    def _ready(self) -> bool:
        try:
            status, _ = _http(self.url + "/health")
        except OSError:
            return False
        return status == 200

    def flush(self) -> None:
        """Make recently written samples searchable (``/internal/force_flush``)."""
        _http(self.url + "/internal/force_flush")

    def query(self, promql: str, time_ms: int | None = None) -> list[dict[str, Any]]:
        """PromQL instant query; the ``data.result`` list."""
        self.flush()
        params = {"query": promql}
        if time_ms is not None:
            params["time"] = f"{time_ms / 1000:.3f}"
        status, body = _http(self.url + "/api/v1/query?" + urllib.parse.urlencode(params))
        if status != 200:
            raise RuntimeError(f"PromQL {promql!r} -> HTTP {status}: {body[:300]!r}")
        result: list[dict[str, Any]] = json.loads(body)["data"]["result"]
        return result

    def export(self, match: str) -> list[dict[str, Any]]:
        """Raw samples of every series matching ``match`` (``/api/v1/export``)."""
        self.flush()
        q = urllib.parse.urlencode({"match[]": match, "reduce_mem_usage": "1"})
        status, body = _http(self.url + "/api/v1/export?" + q)
        if status != 200:
            raise RuntimeError(f"export {match!r} -> HTTP {status}: {body[:300]!r}")
        return [json.loads(line) for line in body.splitlines() if line.strip()]


def make_passwd_file(path: Path, users: dict[str, str]) -> Path:
    """Write a mosquitto password file for ``users`` (name -> password) with mosquitto_passwd."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.unlink(missing_ok=True)
    for i, (user, password) in enumerate(users.items()):
        argv = [MOSQUITTO_PASSWD_BIN, "-b"]
        if i == 0:
            argv.append("-c")
        subprocess.run([*argv, str(path), user, password], check=True, capture_output=True)
    os.chmod(path, 0o600)
    return path


@contextlib.contextmanager
def running(server: _Process) -> Iterator[_Process]:
    """Start ``server``, yield it, always stop it."""
    server.start()
    try:
        yield server
    finally:
        server.stop()


class TcpProxy:
    """A loopback TCP relay to ``target`` that can be cut, as if the network went away.

    ``cut()`` closes every relayed connection and stops listening (new connections are
    refused); ``restore()`` listens again on the same port. Runs in a daemon thread.
    """

    def __init__(self, target_host: str, target_port: int) -> None:
        import threading

        self.host = "127.0.0.1"
        self.port = free_port()
        self._target = (target_host, target_port)
        self._lock = threading.Lock()
        self._conns: list[socket.socket] = []
        self._listener: socket.socket | None = None
        self._threads: list[threading.Thread] = []
        self.restore()

    def restore(self) -> None:
        """Accept connections again."""
        import threading

        with self._lock:
            if self._listener is not None:
                return
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind((self.host, self.port))
            s.listen(64)
            self._listener = s
        t = threading.Thread(target=self._accept, args=(s,), daemon=True)
        t.start()

    def cut(self) -> None:
        """Drop every connection and refuse new ones."""
        with self._lock:
            listener, self._listener = self._listener, None
            conns, self._conns = self._conns, []
        if listener is not None:
            with contextlib.suppress(OSError):
                listener.shutdown(socket.SHUT_RDWR)
            listener.close()
        for c in conns:
            with contextlib.suppress(OSError):
                c.shutdown(socket.SHUT_RDWR)
            c.close()

    close = cut

    def _accept(self, listener: socket.socket) -> None:
        import threading

        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self._target, timeout=5)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            with self._lock:
                if self._listener is not listener:
                    client.close()
                    upstream.close()
                    return
                self._conns += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(src: socket.socket, dst: socket.socket) -> None:
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)


class IngestProcess(_Process):
    """``sensord ingest`` as a child process (for crash tests: ``kill()`` is SIGKILL).

    Parameters
    ----------
    workdir
        Directory for the log.
    args
        Command-line arguments after ``sensord ingest``.
    env
        Extra environment (e.g. ``SENSORD_INFLUX_TOKEN``).
    """

    name = "sensord-ingest"

    def __init__(self, workdir: Path, args: list[str], env: dict[str, str] | None = None):
        super().__init__(workdir)
        self.args = args
        self.env = env or {}

    @classmethod
    def between(cls, workdir: Path, broker: MosquittoServer, influx_url: str, *extra: str,
                env: dict[str, str] | None = None) -> IngestProcess:
        """The bridge from ``broker`` to the InfluxDB at ``influx_url``, plus ``extra``."""
        return cls(workdir, ["--broker", f"{broker.host}:{broker.port}",
                             "--influx-url", influx_url, *extra], env)

    def _argv(self) -> list[str]:
        import sys

        return [sys.executable, "-m", "sensord.cli", "ingest", *self.args]

    def _ready(self) -> bool:
        return "connected to" in self.log_tail(100_000)

    def start(self) -> None:
        """Start and wait until the bridge is connected and subscribed."""
        if self.running:
            return
        repo = str(Path(__file__).resolve().parent.parent)
        env = dict(os.environ)
        env["PYTHONPATH"] = repo + os.pathsep + env.get("PYTHONPATH", "")
        env.update(self.env)
        self._log.write_text("")
        log = self._log.open("ab")
        self._proc = subprocess.Popen(
            self._argv(), stdout=log, stderr=subprocess.STDOUT, cwd=repo, env=env
        )
        log.close()
        self._wait_until_ready()


# ---------------------------------------------------------------- delivery test helpers


def wait_until(predicate: Any, timeout_s: float, what: str, poll_s: float = 0.2) -> None:
    """Poll ``predicate()`` until true; ``AssertionError`` naming ``what`` after timeout."""
    deadline = time.monotonic() + timeout_s
    last: Any = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return
        time.sleep(poll_s)
    raise AssertionError(f"timed out after {timeout_s} s waiting for {what} (last: {last!r})")


def influx_step_indices(db: InfluxDB1Server, run_id: str, database: str = "sensord") -> list[int]:
    """Every stored ``step_index`` of a run, one per point (duplicates would show)."""
    try:
        rows = db.query(f"SELECT step_index FROM steps WHERE run_id = '{run_id}'", db=database)
    except (RuntimeError, OSError):  # database down: nothing to count yet
        return []
    return sorted(int(r["step_index"]) for r in rows)


class FlakyHttpProxy:
    """An HTTP relay to ``target_url`` that answers the first ``n_failures`` POSTs itself
    with ``status`` (and ``Retry-After: retry_after_s`` if given), then forwards
    everything. ``failed`` counts the refused requests. Runs in a daemon thread.
    """

    def __init__(
        self,
        target_url: str,
        n_failures: int,
        status: int = 503,
        retry_after_s: float | None = None,
    ) -> None:
        import http.server
        import threading

        self.failed = 0
        proxy = self
        target = target_url.rstrip("/")

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _relay(self, method: str) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                if method == "POST" and proxy.failed < n_failures:
                    proxy.failed += 1
                    self.send_response(status)
                    if retry_after_s is not None:
                        self.send_header("Retry-After", f"{retry_after_s:g}")
                    self.send_header("Content-Length", "4")
                    self.end_headers()
                    self.wfile.write(b"busy")
                    return
                headers = {
                    k: v
                    for k, v in self.headers.items()
                    if k.lower() not in ("host", "content-length", "connection")
                }
                status_, data = _http_with_headers(target + self.path, body, method, headers)
                self.send_response(status_)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self) -> None:
                self._relay("POST")

            def do_GET(self) -> None:
                self._relay("GET")

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = int(self._server.server_address[1])
        self.url = f"http://127.0.0.1:{self.port}"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def _http_with_headers(
    url: str, data: bytes | None, method: str, headers: dict[str, str]
) -> tuple[int, bytes]:
    req = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return int(resp.status), resp.read()
    except urllib.error.HTTPError as e:
        return int(e.code), e.read()
