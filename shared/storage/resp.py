"""A multiplexed RESP client for the hot path: every caller's commands pipelined over one connection.

redis-py's asyncio client costs ~200 µs of CPU per round trip here (a pooled connection, a timeout
context and a parser per call); the reliability pipeline needs two round trips per event at thousands
of events per second. This client writes each command straight to the socket, matches replies to
callers in order (hiredis parses them), and fails every caller fast when the connection drops.
Used for the hot path's scripts (reliability, status books, timeline); everything else uses redis-py.
A Redis Cluster URL (`redis+cluster://`) gets `shared.storage.cluster.ClusterClient`, which routes by
slot over one of these per master.
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


def _encode(args: tuple[bytes | str | int | float, ...]) -> bytes:
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        b = a if isinstance(a, bytes) else str(a).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(b), b))
    return b"".join(out)


def encode(args: tuple[bytes | str | int | float, ...]) -> bytes:
    """A command in RESP: hiredis's C packer (3x faster than Python here: ~1 µs for an EVALSHA)."""
    try:
        return _pack(args)
    except TypeError:  # a type hiredis does not take: the same bytes, built in Python
        return _encode(args)


_pack = getattr(hiredis, "pack_command", _encode)


class _Protocol(asyncio.Protocol):
    def __init__(self, timeout_s: float) -> None:
        self.reader = hiredis.Reader(replyError=RespError)
        self.waiters: deque[tuple[asyncio.Future, float]] = deque()
        self.transport: Any = None
        self.lost = False
        self.timeout_s = timeout_s
        self._watchdog: asyncio.TimerHandle | None = None
        self._pending: list[bytes] = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # uvloop's transports are not asyncio.Transport subclasses
        self._arm()

    def data_received(self, data: bytes) -> None:
        self.reader.feed(data)
        while True:
            reply = self.reader.gets()
            if reply is False:
                return
            fut = self.waiters.popleft()[0]
            if not fut.done():  # a caller that gave up still holds its place in the queue
                if isinstance(reply, RespError):
                    fut.set_exception(reply)
                else:
                    fut.set_result(reply)

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        if self._watchdog is not None:
            self._watchdog.cancel()
        self._fail_all(RespConnectionError(f"Redis connection lost: {exc!r}"))

    def send(self, payload: bytes) -> asyncio.Future:
        """Queue a command; every command queued in one loop iteration leaves in one write (a syscall
        costs more than encoding here, so concurrent events share it: auto-pipelining)."""
        loop = asyncio.get_running_loop()
        fut = loop.create_future()
        self.waiters.append((fut, loop.time()))
        if not self._pending:
            loop.call_soon(self._flush)
        self._pending.append(payload)
        return fut

    def _flush(self) -> None:
        data, self._pending = b"".join(self._pending), []
        if not self.lost:
            self.transport.write(data)

    def _arm(self) -> None:
        self._watchdog = asyncio.get_running_loop().call_later(min(0.1, self.timeout_s / 4), self._check)

    def _check(self) -> None:
        """One timer per connection, not per command: replies come in order, so if the oldest command
        waited past the timeout the connection is stuck: fail everything in flight and drop it."""
        if self.lost:
            return
        if self.waiters and asyncio.get_running_loop().time() - self.waiters[0][1] > self.timeout_s:
            self.lost = True
            self._fail_all(TimeoutError(f"Redis did not answer within {self.timeout_s}s"))
            self.transport.abort()
            return
        self._arm()

    def _fail_all(self, exc: Exception) -> None:
        while self.waiters:
            fut = self.waiters.popleft()[0]
            if not fut.done():
                fut.set_exception(exc)


class RespClient:
    """`await client.execute("GET", "k")`; `await client.evalsha(script, keys, args)`."""

    cluster = False  # shared.storage.cluster.ClusterClient: True

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
            factory = lambda: _Protocol(self.timeout_s)  # noqa: E731
            try:
                if u.scheme == "unix":
                    connect = loop.create_unix_connection(factory, unquote(u.path))
                else:
                    ctx = ssl.create_default_context() if u.scheme == "rediss" else None
                    connect = loop.create_connection(factory, u.hostname or "127.0.0.1", u.port or 6379, ssl=ctx)
                _, proto = await asyncio.wait_for(connect, self.timeout_s)
            except (OSError, TimeoutError) as exc:
                raise RespConnectionError(f"cannot connect to Redis: {exc!r}") from exc
            if u.password:
                auth = (unquote(u.username), unquote(u.password)) if u.username else (unquote(u.password),)
                await proto.send(encode(("AUTH", *auth)))
            if u.scheme == "unix":  # unix:///path/redis.sock?db=N
                db = dict(p.split("=", 1) for p in u.query.split("&") if "=" in p).get("db", "0")
            else:
                db = (u.path or "/0").lstrip("/") or "0"
            if db != "0":
                await proto.send(encode(("SELECT", db)))
            self._proto = proto
            return proto

    async def execute(self, *args: bytes | str | int | float) -> Any:
        proto = self._proto
        if proto is None or proto.lost:
            proto = await self._connect()
        return await proto.send(encode(args))

    async def execute_asking(self, *args: bytes | str | int | float) -> Any:
        """ASKING + the command in one write (Redis Cluster: a slot being migrated to this node)."""
        proto = self._proto
        if proto is None or proto.lost:
            proto = await self._connect()
        asking = proto.send(encode(("ASKING",)))
        reply = proto.send(encode(args))
        await asking
        return await reply

    async def evalsha(self, script: str, keys: list[str], args: list[bytes | str]) -> Any:
        """EVALSHA, loading the script on NOSCRIPT (after a Redis restart or failover)."""
        sha = self._shas.get(script)
        if sha is None:
            sha = self._shas[script] = hashlib.sha1(script.encode()).hexdigest().encode()
        proto = self._proto
        if proto is None or proto.lost:
            proto = await self._connect()
        try:
            return await proto.send(encode(("EVALSHA", sha, len(keys), *keys, *args)))
        except RespError as exc:
            if not str(exc).startswith("NOSCRIPT"):
                raise
            return await self.execute("EVAL", script, len(keys), *keys, *args)

    async def close(self) -> None:
        if self._proto is not None and self._proto.transport is not None:
            self._proto.transport.close()
        self._proto = None
