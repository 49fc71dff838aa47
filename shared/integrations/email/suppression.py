"""The suppression list: addresses that hard-bounced or complained get nothing more until an operator
lifts them (`dvci email unsuppress ADDR`). Stored by digest: Redis never holds the address in clear."""

from __future__ import annotations

import time
from typing import Any

import orjson

from shared.security.crypto import blind_index
from shared.storage.redis import Keys


def digest(address: str) -> str:
    """A keyed blind index of the address (an unkeyed hash of an e-mail address is reversible by guessing)."""
    return blind_index("email.address", address.strip().lower())


class Suppressions:
    def __init__(self, redis: Any, keys: Keys):
        self.redis = redis
        self.key = keys.key("email", "suppressed")

    async def which(self, addresses: list[str]) -> list[str]:
        """The suppressed ones among `addresses` (one round trip)."""
        if not addresses:
            return []
        found = await self.redis.hmget(self.key, [digest(a) for a in addresses])
        return [a for a, f in zip(addresses, found, strict=True) if f]

    async def add(self, address: str, reason: str, source: str) -> None:
        await self.redis.hset(self.key, digest(address), orjson.dumps({"reason": reason, "source": source,
                                                                       "at": time.time()}))

    async def remove(self, address: str) -> bool:
        return bool(await self.redis.hdel(self.key, digest(address)))
