"""A throw-away mosquitto on a free loopback port, for ``sensord run`` without a broker.

The main job on embedded defaults shows the whole chain, MQTT included: when the user
names no broker and a ``mosquitto`` binary is installed, ``sensord run`` starts one
listening on 127.0.0.1 only (anonymous access is acceptable there: nothing else on the
network can reach it), with no persistence, and stops it at the end of the run.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType

from sensord.errors import ServiceError

_CANDIDATES = ("mosquitto", "/usr/sbin/mosquitto")


def find_mosquitto() -> str | None:
    """Path of a mosquitto binary, or None."""
    for name in _CANDIDATES:
        path = shutil.which(name) or (name if Path(name).is_file() else None)
        if path:
            return path
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class LocalBroker:
    """``with LocalBroker() as b: ... b.port``: a loopback-only mosquitto."""

    def __init__(self, binary: str | None = None, start_timeout_s: float = 5.0) -> None:
        self.binary = binary or find_mosquitto()
        self.port = 0
        self._timeout = start_timeout_s
        self._proc: subprocess.Popen[bytes] | None = None
        self._dir: tempfile.TemporaryDirectory[str] | None = None

    def __enter__(self) -> LocalBroker:
        if self.binary is None:
            raise ServiceError("no mosquitto binary found; install mosquitto or pass --broker")
        self._dir = tempfile.TemporaryDirectory(prefix="sensord-broker-")
        self.port = _free_port()
        conf = Path(self._dir.name) / "mosquitto.conf"
        conf.write_text(
            f"listener {self.port} 127.0.0.1\nallow_anonymous true\n"
            "persistence false\nlog_dest none\n"
        )
        self._proc = subprocess.Popen(
            [self.binary, "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + self._timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                break
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", self.port)) == 0:
                    return self
            time.sleep(0.05)
        self.__exit__(None, None, None)
        raise ServiceError(f"local mosquitto did not start on 127.0.0.1:{self.port}")

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._proc is not None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
            self._proc = None
        if self._dir is not None:
            self._dir.cleanup()
            self._dir = None
