"""What both carrier clients share: JSON calls through the classified transport, and a login token
cached per process (re-login once when the carrier says it expired)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import orjson

from shared.integrations import transport
from shared.reliability.errors import ProviderAmbiguous, ProviderUnavailable


async def call_json(provider: str, method: str, url: str, payload: Any = None, *, headers: dict[str, str] | None = None,
                    timeout_s: float, safe: bool = False) -> tuple[int, Any]:
    """(HTTP status, decoded JSON). `safe` (reads: lookups, quotes, feeds): any failure is Unavailable —
    nothing can have taken effect; otherwise 5xx and unreadable answers are ambiguous."""
    body = orjson.dumps(payload) if payload is not None else None
    hdrs = {"content-type": "application/json", "accept": "application/json", **(headers or {})}
    try:
        status, raw = await transport.request(provider, method, url, body=body, headers=hdrs, timeout_s=timeout_s,
                                              kind="postal")
    except ProviderAmbiguous as exc:
        if safe:
            raise ProviderUnavailable(provider, exc.detail) from exc
        raise
    if status >= 500:
        if safe:
            raise ProviderUnavailable(provider, f"HTTP {status}")
        raise ProviderAmbiguous(provider, f"HTTP {status}")
    if status == 401:
        return status, None
    try:
        return status, orjson.loads(raw) if raw else None
    except orjson.JSONDecodeError as exc:
        if safe:
            raise ProviderUnavailable(provider, f"unreadable answer (HTTP {status})") from exc
        raise ProviderAmbiguous(provider, f"unreadable answer (HTTP {status})") from exc


class TokenCache:
    """One login token per process and carrier account, refreshed before it expires or when refused."""

    def __init__(self, login: Callable[[], Awaitable[tuple[str, float]]]):
        self._login = login
        self._token: str | None = None
        self._expires = 0.0
        self._lock = asyncio.Lock()

    async def get(self) -> str:
        if self._token is None or time.monotonic() >= self._expires:
            async with self._lock:
                if self._token is None or time.monotonic() >= self._expires:
                    token, ttl_s = await self._login()
                    self._token, self._expires = token, time.monotonic() + max(30.0, ttl_s - 60)
        return self._token

    def invalidate(self, token: str) -> None:
        if self._token == token:
            self._token = None
