"""A multiplexed RESP client for the hot path: every caller's commands pipelined over one connection.

redis-py's asyncio client costs ~200 µs of CPU per round trip here (a pooled connection, a timeout
context and a parser per call); the reliability pipeline needs two round trips per event at thousands
of events per second. This client writes each command straight to the socket, matches replies to
callers in order (hiredis parses them), and fails every caller fast when the connection drops.
Used only for EVALSHA of the reliability script; everything else uses redis-py.
"""

from __future__ import annotations

import asyncio
import hashlib
import ssl
from collections import deque
from typing import Any
from urllib.parse import unquote, urlsplit

import hiredis


class RespError(Exception):
    """An error reply from Redis (e.g. NOSCRIPT, a Lua error)."""


class RespConnectionError(ConnectionError):
    """The connection to Redis is down or was lost with commands in flight."""


def encode(args: tuple[bytes | str | int | float, ...]) -> bytes:
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        b = a if isinstance(a, bytes) else str(a).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(b), b))
    return b"".join(out)


class _Protocol(asyncio.Protocol):
    def __init__(self) -> None:
        self.reader = hiredis.Reader(replyError=RespError)
        self.waiters: deque[asyncio.Future] = deque()
        self.transport: Any = None
        self.lost = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # uvloop's transports are not asyncio.Transport subclasses

    def data_received(self, data: bytes) -> None:
        self.reader.feed(data)
        while True:
            reply = self.reader.gets()
            if reply is False:
                return
            fut = self.waiters.popleft()
            if not fut.done():  # a caller that timed out still holds its place in the queue
                if isinstance(reply, RespError):
                    fut.set_exception(reply)
                else:
                    fut.set_result(reply)

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        while self.waiters:
            fut = self.waiters.popleft()
            if not fut.done():
                fut.set_exception(RespConnectionError(f"Redis connection lost: {exc!r}"))


class RespClient:
    """`await client.execute("GET", "k")`; `await client.evalsha(script, keys, args)`."""

    def __init__(self, url: str, *, timeout_s: float = 2.0):
        self.url = url
        self.timeout_s = timeout_s
        self._proto: _Protocol | None = None
        self._connecting: asyncio.Lock | None = None
        self._shas: dict[str, bytes] = {}

    async def _connect(self) -> _Protocol:
        if self._connecting is None:
            self._connecting = asyncio.Lock()
        async with self._connecting:
            if self._proto is not None and not self._proto.lost:
                return self._proto
            loop = asyncio.get_running_loop()
            u = urlsplit(self.url)
            try:
                if u.scheme == "unix":
                    connect = loop.create_unix_connection(_Protocol, unquote(u.path))
                else:
                    ctx = ssl.create_default_context() if u.scheme == "rediss" else None
                    connect = loop.create_connection(_Protocol, u.hostname or "127.0.0.1", u.port or 6379, ssl=ctx)
                _, proto = await asyncio.wait_for(connect, self.timeout_s)
            except (OSError, TimeoutError) as exc:
                raise RespConnectionError(f"cannot connect to Redis: {exc!r}") from exc
            self._proto = proto
            if u.password:
                auth = (unquote(u.username), unquote(u.password)) if u.username else (unquote(u.password),)
                await self._send(proto, ("AUTH", *auth))
            db = (u.path or "/0").lstrip("/") or "0"
            if db != "0":
                await self._send(proto, ("SELECT", db))
            return proto

    async def _send(self, proto: _Protocol, args: tuple) -> Any:
        loop = asyncio.get_running_loop()
        fut = loop.create_future()
        proto.waiters.append(fut)
        assert proto.transport is not None
        proto.transport.write(encode(args))
        timer = loop.call_later(self.timeout_s, _expire, fut, self.timeout_s)
        try:
            return await fut
        finally:
            timer.cancel()

    async def execute(self, *args: bytes | str | int | float) -> Any:
        proto = self._proto
        if proto is None or proto.lost:
            proto = await self._connect()
        return await self._send(proto, args)

    async def evalsha(self, script: str, keys: list[str], args: list[bytes | str]) -> Any:
        """EVALSHA, loading the script on NOSCRIPT (after a Redis restart or failover)."""
        sha = self._shas.get(script)
        if sha is None:
            sha = self._shas[script] = hashlib.sha1(script.encode()).hexdigest().encode()
        try:
            return await self.execute("EVALSHA", sha, len(keys), *keys, *args)
        except RespError as exc:
            if not str(exc).startswith("NOSCRIPT"):
                raise
            return await self.execute("EVAL", script, len(keys), *keys, *args)

    async def close(self) -> None:
        if self._proto is not None and self._proto.transport is not None:
            self._proto.transport.close()
        self._proto = None


def _expire(fut: asyncio.Future, timeout: float) -> None:
    if not fut.done():
        fut.set_exception(TimeoutError(f"Redis did not answer within {timeout}s"))
