"""A lean HTTP/1.1 keep-alive client for provider calls on the hot path.

aiohttp costs ~350 µs of CPU per call here; a provider call is one small request and one small answer
on a kept-alive connection, which this client does for a fraction of that: a connection pool per
origin, httptools' response parser, one timer per request. Errors say what is known about the request:
`ConnectFailed` (it never left), `RequestTimeout` and `ConnectionLost` (it may have arrived).
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

import httptools


class HttpError(Exception):
    pass


class ConnectFailed(HttpError):
    """No connection could be made: the request was not sent."""


class RequestTimeout(HttpError):
    """No complete answer in time after the request was sent."""


class ConnectionLost(HttpError):
    """The connection closed before a complete answer, after the request was sent."""


class _Conn(asyncio.Protocol):
    def __init__(self) -> None:
        self.transport: Any = None
        self.parser = httptools.HttpResponseParser(self)
        self.waiter: asyncio.Future | None = None
        self.body: list[bytes] = []
        self.lost = False

    # asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(ConnectionLost(f"unparseable HTTP answer: {exc}"))
            self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        self._fail(ConnectionLost(f"connection closed before the answer ({exc!r})"))

    # httptools callbacks
    def on_body(self, body: bytes) -> None:
        self.body.append(body)

    def on_message_complete(self) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result((self.parser.get_status_code(), b"".join(self.body),
                                    self.parser.should_keep_alive()))

    def _fail(self, exc: Exception) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(exc)


class HttpClient:
    """`status, body = await client.request("POST", url, body=..., headers=..., timeout_s=...)`."""

    def __init__(self, *, max_idle_per_origin: int = 128):
        self._idle: dict[tuple[str, str, int], list[_Conn]] = {}
        self.max_idle = max_idle_per_origin
        self._ssl: ssl.SSLContext | None = None

    async def _connect(self, scheme: str, host: str, port: int, timeout_s: float) -> _Conn:
        loop = asyncio.get_running_loop()
        ctx = None
        if scheme == "https":
            ctx = self._ssl = self._ssl or ssl.create_default_context()
        try:
            _, conn = await asyncio.wait_for(loop.create_connection(_Conn, host, port, ssl=ctx), timeout_s)
        except (OSError, TimeoutError) as exc:
            raise ConnectFailed(f"cannot connect to {host}:{port}: {exc!r}") from exc
        return conn

    async def request(self, method: str, url: str, *, body: bytes = b"", headers: Mapping[str, str] | None = None,
                      timeout_s: float = 3.0, connect_timeout_s: float = 1.0) -> tuple[int, bytes]:
        u = urlsplit(url)
        scheme, host = u.scheme, u.hostname or "127.0.0.1"
        port = u.port or (443 if scheme == "https" else 80)
        origin = (scheme, host, port)
        idle = self._idle.setdefault(origin, [])
        conn = None
        while idle:
            candidate = idle.pop()
            if not candidate.lost:
                conn = candidate
                break
        if conn is None:
            conn = await self._connect(scheme, host, port, connect_timeout_s)
        target = (u.path or "/") + (f"?{u.query}" if u.query else "")
        head = [f"{method} {target} HTTP/1.1\r\nhost: {u.netloc}\r\ncontent-length: {len(body)}\r\n"]
        if headers:
            head.extend(f"{k}: {v}\r\n" for k, v in headers.items())
        head.append("\r\n")
        loop = asyncio.get_running_loop()
        conn.waiter = loop.create_future()
        conn.body = []
        conn.transport.write("".join(head).encode("latin-1") + body)
        timer = loop.call_later(timeout_s, conn._fail, RequestTimeout(f"no answer within {timeout_s}s"))
        try:
            status, payload, keep_alive = await conn.waiter
        except HttpError:
            conn.transport.close()
            raise
        finally:
            timer.cancel()
        if keep_alive and not conn.lost and len(idle) < self.max_idle:
            conn.parser = httptools.HttpResponseParser(conn)
            conn.waiter = None
            idle.append(conn)
        else:
            conn.transport.close()
        return status, payload

    def close(self) -> None:
        for conns in self._idle.values():
            for c in conns:
                c.transport.close()
        self._idle.clear()


_clients: dict[int, HttpClient] = {}


def get_client() -> HttpClient:
    """The process's client for the running event loop."""
    loop_id = id(asyncio.get_running_loop())
    client = _clients.get(loop_id)
    if client is None:
        client = _clients[loop_id] = HttpClient()
    return client


def close_clients() -> None:
    for c in _clients.values():
        c.close()
    _clients.clear()
