"""Advertising held back by Decree 91: kept in Redis until the window opens, then re-published by the
cron-triggered drain as a `send.requested` event whose id is derived from the original (re-drains dedupe)."""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any

import orjson

from shared.runtime.events import CloudEvent
from shared.storage.redis import Keys


class Schedule:
    def __init__(self, redis: Any, keys: Keys):
        self.redis = redis
        self.index = keys.key("sms", "scheduled")
        self.payloads = keys.key("sms", "scheduled", "payload")

    @staticmethod
    def member(event: CloudEvent) -> str:
        return hashlib.sha256(f"{event.source}\x00{event.id}".encode()).hexdigest()[:32]

    async def add(self, event: CloudEvent, send_at: datetime) -> None:
        """Idempotent: the same event scheduled twice is one entry."""
        member = self.member(event)
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(self.payloads, member, orjson.dumps(event.to_dict()))
            pipe.zadd(self.index, {member: send_at.timestamp()})
            await pipe.execute()

    async def due(self, now: datetime, limit: int = 500) -> list[tuple[str, CloudEvent]]:
        members = await self.redis.zrangebyscore(self.index, "-inf", now.timestamp(), start=0, num=limit)
        if not members:
            return []
        raws = await self.redis.hmget(self.payloads, members)
        return [(m.decode() if isinstance(m, bytes) else m, CloudEvent.from_dict(orjson.loads(r)))
                for m, r in zip(members, raws, strict=True) if r]

    async def done(self, member: str) -> None:
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.zrem(self.index, member)
            pipe.hdel(self.payloads, member)
            await pipe.execute()

    async def pending(self) -> int:
        return int(await self.redis.zcard(self.index))
