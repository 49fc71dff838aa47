"""Operating the shared circuit breakers: list their state, force one open or closed (recorded)."""

from __future__ import annotations

import time
from typing import Any

import redis.asyncio as aioredis

from shared.storage.redis import Keys


class BreakerAdmin:
    def __init__(self, redis: aioredis.Redis, keys: Keys):
        self.redis = redis
        self.keys = keys

    async def status(self) -> list[dict[str, Any]]:
        """Every breaker that has state, as `kind.provider`."""
        rows = []
        async for raw in self.redis.scan_iter(match=self.keys.prefix + "{*}:breaker:*", count=500):
            key = raw.decode() if isinstance(raw, bytes) else raw
            kind = key[len(self.keys.prefix) + 1:].split("}", 1)[0]
            name = key.rsplit(":", 1)[1]
            h = {_text(k): _text(v) for k, v in (await self.redis.hgetall(key)).items()}
            rows.append({"name": f"{kind}.{name}", "state": h.get("state", "closed"), "forced": h.get("forced"),
                         "forced_by": h.get("forced_by"), "fails": int(h.get("fails", 0)),
                         "opened": int(float(h.get("opened", 0)))})
        return sorted(rows, key=lambda r: r["name"])

    async def force(self, name: str, verb: str, by: str) -> None:
        """`verb` is open, close or auto (lift the forced state); who and when are recorded."""
        if "." not in name:
            raise ValueError(f"breaker name must be kind.provider (kind.provider), got {name!r}")
        kind, provider = name.split(".", 1)
        key = self.keys.key(kind, "breaker", provider)
        now_ms = str(int(time.time() * 1000))
        async with self.redis.pipeline(transaction=True) as pipe:
            if verb == "auto":
                pipe.hdel(key, "forced", "forced_by", "forced_at")
                pipe.hset(key, mapping={"state": "closed", "fails": "0", "wcalls": "0", "wfails": "0"})
            else:
                pipe.hset(key, mapping={"forced": "open" if verb == "open" else "closed", "forced_by": by,
                                        "forced_at": now_ms})
            pipe.xadd(self.keys.key(kind, "breaker-events"),
                      {"breaker": provider, "to": f"forced-{verb}", "by": by, "at": now_ms, "why": "operator"})
            await pipe.execute()


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
