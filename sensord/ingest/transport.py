"""The one seam between the bridge and the time-series database: write line protocol.

Two implementations of :class:`LineWriter`:

- :class:`InfluxV2Writer`: influxdb-client's v2 write API (``POST /api/v2/write``;
  InfluxDB 2.x / 3.x / Cloud, VictoriaMetrics), token auth.
- :class:`InfluxV1Writer`: plain HTTP ``POST /write?db=&rp=&precision=ms`` (InfluxDB 1.x),
  optional token (``Authorization: Token``) or user:password basic auth.

Both run the blocking HTTP call in a worker thread and translate failures into
:class:`WriteError` with ``retryable`` (5xx, 429, timeouts, refused connections) and the
server's ``Retry-After`` in seconds when it sent one. Tokens are never logged.
"""

from __future__ import annotations

import asyncio
import base64
import email.utils
import http.client
import time
import urllib.parse
from dataclasses import dataclass
from typing import Any, Protocol


class WriteError(Exception):
    """A failed write.

    Attributes
    ----------
    retryable
        True for server errors (5xx), 429, timeouts and connection failures.
    retry_after_s
        The server's ``Retry-After``, seconds, or ``None``.
    """

    def __init__(self, reason: str, *, retryable: bool, retry_after_s: float | None = None):
        super().__init__(reason)
        self.retryable = retryable
        self.retry_after_s = retry_after_s


class LineWriter(Protocol):
    """Writes a batch of line-protocol lines with millisecond timestamps."""

    async def write(self, body: bytes) -> None:
        """Write ``body`` (lines joined by ``\\n``); :class:`WriteError` on failure."""
        ...

    async def close(self) -> None: ...


def parse_retry_after(value: str | None) -> float | None:
    """``Retry-After`` (delta seconds or HTTP date) in seconds, or ``None``."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


#: Answers about the database, not the points: wait and retry (the messages stay
#: unacknowledged on the broker) rather than dead-letter good data. 401/403: a wrong or
#: expired token; 404: the database does not exist (yet); 408/429: slow down.
_RETRY_STATUS = frozenset({401, 403, 404, 408, 429})


def _classify(status: int, body: bytes, retry_after: str | None) -> WriteError:
    text = body[:200].decode("utf-8", "replace").strip()
    retryable = status >= 500 or status in _RETRY_STATUS
    return WriteError(
        f"HTTP {status}: {text}", retryable=retryable, retry_after_s=parse_retry_after(retry_after)
    )


@dataclass(frozen=True, slots=True)
class _Endpoint:
    scheme: str
    host: str
    port: int
    base_path: str


def _endpoint(url: str) -> _Endpoint:
    u = urllib.parse.urlsplit(url)
    if u.scheme not in ("http", "https") or not u.hostname:
        shown = repr(url) if "@" not in url else "a URL with credentials (not shown)"
        raise ValueError(f"database URL must be http(s)://host[:port], got {shown}")
    port = u.port or (443 if u.scheme == "https" else 80)
    return _Endpoint(u.scheme, u.hostname, port, u.path.rstrip("/"))


class _HttpPoster:
    """A keep-alive HTTP client used from one worker thread at a time."""

    def __init__(self, url: str, timeout_s: float) -> None:
        self._ep = _endpoint(url)
        self._timeout_s = timeout_s
        self._conn: http.client.HTTPConnection | None = None

    def _connection(self) -> http.client.HTTPConnection:
        if self._conn is None:
            cls = (
                http.client.HTTPSConnection
                if self._ep.scheme == "https"
                else http.client.HTTPConnection
            )
            self._conn = cls(self._ep.host, self._ep.port, timeout=self._timeout_s)
        return self._conn

    def post(self, path_qs: str, body: bytes, headers: dict[str, str]) -> None:
        conn = self._connection()
        try:
            conn.request("POST", self._ep.base_path + path_qs, body=body, headers=headers)
            resp = conn.getresponse()
            data = resp.read()
        except TimeoutError as e:
            self.close()
            raise WriteError(f"timeout: {e}", retryable=True) from None
        except (OSError, http.client.HTTPException) as e:
            self.close()
            raise WriteError(f"connection failed: {e}", retryable=True) from None
        if resp.status >= 300:
            if resp.getheader("Connection", "").lower() == "close":
                self.close()
            raise _classify(resp.status, data, resp.getheader("Retry-After"))

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


class InfluxV1Writer:
    """InfluxDB 1.x ``/write`` with ``precision=ms``.

    Parameters
    ----------
    url
        ``http(s)://host:port`` of the database.
    database, retention_policy
        Target database and (optional) retention policy.
    token
        ``Authorization: Token <token>`` (InfluxDB 1.8+/compat) or ``user:password``
        (sent as basic auth); ``None`` for no auth.
    timeout_s
        Per-request timeout.
    """

    def __init__(
        self,
        url: str,
        database: str,
        *,
        retention_policy: str | None = None,
        token: str | None = None,
        timeout_s: float = 10.0,
    ) -> None:
        self._url, self._timeout_s = url, timeout_s
        _endpoint(url)
        self._idle: list[_HttpPoster] = []  # keep-alive connections; one per concurrent write
        params = {"db": database, "precision": "ms"}
        if retention_policy:
            params["rp"] = retention_policy
        self._path = "/write?" + urllib.parse.urlencode(params)
        self._headers = {"Content-Type": "text/plain; charset=utf-8"}
        if token:
            if ":" in token:
                cred = base64.b64encode(token.encode()).decode()
                self._headers["Authorization"] = f"Basic {cred}"
            else:
                self._headers["Authorization"] = f"Token {token}"

    async def write(self, body: bytes) -> None:
        poster = self._idle.pop() if self._idle else _HttpPoster(self._url, self._timeout_s)
        try:
            await asyncio.to_thread(poster.post, self._path, body, self._headers)
        finally:
            self._idle.append(poster)

    async def close(self) -> None:
        for poster in self._idle:
            poster.close()
        self._idle.clear()

    def __repr__(self) -> str:  # never shows the token
        return f"InfluxV1Writer({self._path!r})"


class InfluxV2Writer:
    """influxdb-client's synchronous v2 write API (``/api/v2/write``), ``precision=ms``.

    Parameters
    ----------
    url
        ``http(s)://host:port`` of the database.
    bucket, org
        Target bucket and organisation.
    token
        API token, or ``None`` (VictoriaMetrics needs none).
    timeout_s
        Per-request timeout.
    """

    def __init__(
        self,
        url: str,
        bucket: str,
        org: str,
        *,
        token: str | None = None,
        timeout_s: float = 10.0,
    ) -> None:
        from influxdb_client.client.influxdb_client import InfluxDBClient
        from influxdb_client.client.write_api import SYNCHRONOUS

        _endpoint(url)
        self._client = InfluxDBClient(
            url=url, token=token or "", org=org, timeout=int(timeout_s * 1000), retries=0
        )
        self._api = self._client.write_api(write_options=SYNCHRONOUS)
        self._bucket = bucket
        self._org = org

    def _write(self, body: bytes) -> None:
        from influxdb_client.domain.write_precision import WritePrecision
        from influxdb_client.rest import ApiException
        from urllib3.exceptions import HTTPError as Urllib3Error

        try:
            self._api.write(
                bucket=self._bucket,
                org=self._org,
                record=body.decode("utf-8"),
                write_precision=WritePrecision.MS,  # type: ignore[arg-type]
            )
        except ApiException as e:
            headers: Any = e.headers or {}
            raise _classify(
                int(e.status or 0),
                (e.body or "").encode() if isinstance(e.body, str) else (e.body or b""),
                headers.get("Retry-After"),
            ) from None
        except (Urllib3Error, OSError) as e:
            raise WriteError(f"connection failed: {type(e).__name__}", retryable=True) from None

    async def write(self, body: bytes) -> None:
        await asyncio.to_thread(self._write, body)  # the client's urllib3 pool is thread-safe

    async def close(self) -> None:
        self._client.close()  # type: ignore[no-untyped-call]

    def __repr__(self) -> str:  # never shows the token
        return f"InfluxV2Writer(bucket={self._bucket!r}, org={self._org!r})"
