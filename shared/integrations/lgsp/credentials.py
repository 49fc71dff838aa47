"""A credential shared by the whole fleet (LGSP's OAuth2 token, DVCQG's session): kept sealed in Redis
until shortly before it expires, fetched by one instance at a time (single flight: the others wait for
it), invalidated only if it is still the one that was refused (a 401 after another instance refreshed
does not throw the new one away)."""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Awaitable, Callable

import orjson

from shared.integrations.lgsp.crypto import Sealer
from shared.reliability.errors import ProviderUnavailable
from shared.storage.redis import Keys

_RELEASE = "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0"

Fetch = Callable[[], Awaitable[tuple[str, float]]]  # -> (credential, lifetime in seconds)


class SharedCredential:
    def __init__(self, redis, keys: Keys, name: str, fetch: Fetch, sealer: Sealer, *,  # type: ignore[no-untyped-def]
                 margin_s: float = 60.0, wait_s: float = 10.0, provider: str = ""):
        self.redis, self.fetch, self.sealer = redis, fetch, sealer
        self.key = keys.key("lgsp", "cred", name)
        self.lock = keys.key("lgsp", "cred", name, "lock")
        self.margin_s, self.wait_s, self.provider = margin_s, wait_s, provider or name
        self._cas = redis.register_script(_RELEASE)

    async def _cached(self) -> str | None:
        blob = await self.redis.get(self.key)
        if blob is None:
            return None
        try:
            return str(orjson.loads(self.sealer.open(blob, self.key))["v"])
        except Exception:
            return None

    async def get(self) -> str:
        deadline = time.monotonic() + self.wait_s
        delay = 0.005
        while True:
            value = await self._cached()
            if value is not None:
                return value
            token = secrets.token_hex(8)
            if await self.redis.set(self.lock, token, nx=True, px=int(self.wait_s * 1000)):
                try:
                    value = await self._cached()  # refreshed between our read and our lock
                    if value is not None:
                        return value
                    value, lifetime_s = await self.fetch()
                    keep_ms = int(max(lifetime_s - self.margin_s, 1.0) * 1000)
                    blob = self.sealer.seal(orjson.dumps({"v": value}), self.key)
                    await self.redis.set(self.key, blob, px=keep_ms)
                    return value
                finally:
                    await self._cas(keys=[self.lock], args=[token])
            if time.monotonic() > deadline:
                raise ProviderUnavailable(self.provider, "credential refresh by another instance did not finish")
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.1)

    async def invalidate(self, value: str) -> None:
        """Forget `value` if it is still the cached one (the target refused it)."""
        blob = await self.redis.get(self.key)
        if blob is None:
            return
        try:
            current = orjson.loads(self.sealer.open(blob, self.key))["v"]
        except Exception:
            current = None
        if current in (None, value):
            await self._cas(keys=[self.key], args=[blob])
