"""The never-regress status book: per subject (a message, a shipment), the current status, which only
moves forward. Events are de-duplicated by their id, a status lower in `rank` or older by event time than
the current one goes into the history but never moves the status back, and terminal statuses are final.
One Lua call per event (statusbook.lua). Kinds with more to do per event (aggregating the parts of a
message, say) append their own script to the library part of statusbook.lua.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib.resources import files
from typing import Any, Literal

import orjson

from shared.storage.redis import eval_script

_SOURCE = files("shared.reliability").joinpath("statusbook.lua").read_text()
LIBRARY = _SOURCE.split("--@@END-LIBRARY@@", 1)[0]

Action = Literal["changed", "duplicate", "stale", "final"]


@dataclass(frozen=True, slots=True)
class Applied:
    action: Action
    status: str  # the status now (the new one when changed)
    previous: str | None


class StatusBook:
    def __init__(self, redis: Any, rank: dict[str, int], terminal: set[str] | frozenset[str] = frozenset(),
                 pending_key: str | None = None):
        """`redis`: the hot-path RespClient or a redis-py asyncio client; `rank`: status -> rank (higher never
        goes back to lower); `terminal`: final statuses; `pending_key`: a sorted set (same hash tag as the
        subjects) where every change waits, atomically with it, until the caller confirms its emit
        (`emitted`): a job re-emits what a crash left there (`unconfirmed`, `replay`)."""
        self.redis = redis
        self.pending_key = pending_key
        self.rank = orjson.dumps(rank).decode()
        self.terminal = orjson.dumps(sorted(terminal)).decode()

    async def _eval(self, keys: list[str], args: list[str]) -> list[Any]:
        return list(await eval_script(self.redis, _SOURCE, keys, args))

    async def apply(self, key: str, event_id: str, status: str, at_ms: int, ttl_ms: int,
                    detail: dict[str, Any] | None = None) -> Applied:
        """Record one event about subject `key`; `detail` goes into the history with it."""
        entry = orjson.dumps({"id": event_id, "status": status, "at_ms": at_ms, **(detail or {})}).decode()
        keys = [key, key + ":history"] + ([self.pending_key] if self.pending_key else [])
        res = await self._eval(keys, [event_id, status, str(int(at_ms)), str(int(ttl_ms)), self.rank, self.terminal,
                                      entry])
        action = _text(res[0])
        previous = _text(res[1]) or None
        if action == "changed":
            return Applied("changed", status, previous)
        return Applied(action, previous or "", previous)  # type: ignore[arg-type]

    async def emitted(self, key: str, event_id: str) -> None:
        """The change's events went out: forget its pending entry."""
        if self.pending_key:
            await self._cmd("ZREM", self.pending_key, f"{key}|{event_id}")

    async def unconfirmed(self, older_than_s: float, limit: int = 500) -> list[tuple[str, str]]:
        """(subject key, event id) of changes applied at least `older_than_s` ago whose emit was never confirmed."""
        if not self.pending_key:
            return []
        import time

        raw = await self._cmd("ZRANGEBYSCORE", self.pending_key, "-inf", str(time.time() - older_than_s),
                              "LIMIT", "0", str(limit))
        return [tuple(_text(m).rsplit("|", 1)) for m in raw or []]  # type: ignore[misc]

    async def replay(self, key: str, event_id: str) -> tuple[dict[str, Any], str | None] | None:
        """The history entry of a change and the status it replaced (to rebuild its events), or None."""
        previous = await self._hget(key, "p:" + event_id)
        for entry in await self.history(key):
            if entry.get("id") == event_id:
                return entry, (_text(previous) or None) if previous is not None else None
        return None

    async def _cmd(self, *args: str) -> Any:
        if hasattr(self.redis, "execute_command"):
            return await self.redis.execute_command(*args)
        return await self.redis.execute(*args)

    async def current(self, key: str) -> str | None:
        value = await self._hget(key, "status")
        return _text(value) if value is not None else None

    async def history(self, key: str) -> list[dict[str, Any]]:
        """Every event recorded for the subject (duplicates excluded), in arrival order."""
        raw = await self._lrange(key + ":history")
        return [orjson.loads(r) for r in raw]

    async def _hget(self, key: str, field: str) -> Any:
        if hasattr(self.redis, "hget"):
            return await self.redis.hget(key, field)
        return await self.redis.execute("HGET", key, field)

    async def _lrange(self, key: str) -> list[Any]:
        if hasattr(self.redis, "lrange"):
            return list(await self.redis.lrange(key, 0, -1))
        return list(await self.redis.execute("LRANGE", key, "0", "-1"))


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
