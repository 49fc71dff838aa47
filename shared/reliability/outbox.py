"""A durable outbox in Redis: items held until a due time, drained by a scheduled job.

    box = Outbox(redis, keys.key("<kind>", "outbox", "<name>"))
    await box.add(member, payload, due_at)         # idempotent per member; a later add coalesces
    for member, payload in await box.due(now): ...; await box.done(member)

Two keys under one hash tag: a sorted set (member -> due time, the index a drain reads oldest first)
and a hash (member -> payload). Kinds use it for items held until a
time window opens and for queues kept while a target is down.
"""

from __future__ import annotations

from typing import Any


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class Outbox:
    def __init__(self, redis: Any, name_key: str):
        """`redis`: a redis-py asyncio client; `name_key`: the outbox's key (with its hash tag)."""
        self.redis = redis
        self.index = name_key
        self.payloads = name_key + ":payload"

    async def add(self, member: str, payload: bytes, due_at: float, *, keep_earliest: bool = True) -> None:
        """Hold `payload` under `member` until `due_at` (unix seconds). The same member again replaces its
        payload (coalescing) and keeps the earlier due time unless `keep_earliest` is False."""
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(self.payloads, member, payload)
            if keep_earliest:
                pipe.zadd(self.index, {member: due_at}, lt=True)
                pipe.zadd(self.index, {member: due_at}, nx=True)
            else:
                pipe.zadd(self.index, {member: due_at})
            await pipe.execute()

    async def due(self, now: float, limit: int = 500) -> list[tuple[str, bytes]]:
        """Up to `limit` items due at `now`, oldest due first."""
        members = await self.redis.zrangebyscore(self.index, "-inf", now, start=0, num=limit)
        if not members:
            return []
        raws = await self.redis.hmget(self.payloads, members)
        return [(_text(m), bytes(r)) for m, r in zip(members, raws, strict=True) if r is not None]

    async def get(self, member: str) -> bytes | None:
        raw = await self.redis.hget(self.payloads, member)
        return bytes(raw) if raw is not None else None

    async def done(self, member: str) -> None:
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.zrem(self.index, member)
            pipe.hdel(self.payloads, member)
            await pipe.execute()

    async def size(self) -> int:
        return int(await self.redis.zcard(self.index))

    async def oldest_due(self) -> float | None:
        first = await self.redis.zrange(self.index, 0, 0, withscores=True)
        return float(first[0][1]) if first else None
