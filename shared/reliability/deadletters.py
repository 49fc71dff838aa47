"""The dead-letter store: every dead letter kept in Redis with its reason, listable and replayable.

Knative's `knativeerrordata` is base64 of the subscriber's answer, truncated to 1024 characters and
so possibly invalid: it is decoded defensively and kept raw when it cannot be.
"""

from __future__ import annotations

import base64
import binascii
import time
from dataclasses import dataclass, field
from typing import Any

import orjson
import redis.asyncio as aioredis
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from shared.reliability.keys import event_digest
from shared.runtime.events import CloudEvent
from shared.runtime.times import to_rfc3339
from shared.security.crypto import default_crypto, is_encrypted
from shared.storage.redis import Keys


class DeadLetterSettings(BaseSettings):
    """Dead letters hold whole events (citizen data): encrypted, expiring, size-capped."""

    model_config = SettingsConfigDict(env_prefix="DVCI_DLQ_", extra="ignore")

    ttl_s: int = Field(14 * 86400, ge=60, description="How long a dead letter is kept (then it expires).")
    max_event_bytes: int = Field(256 * 1024, ge=1024, description="Larger events keep their attributes only.")

ERROR_EXTENSIONS = ("knativeerrordest", "knativeerrorcode", "knativeerrordata")


def decode_error_data(raw: str | None) -> dict[str, Any] | None:
    """Best-effort decoding of `knativeerrordata`: text (and JSON when it parses), else the raw value."""
    if raw is None:
        return None
    out: dict[str, Any] = {"raw": raw}
    cleaned = raw.strip()
    try:
        data = base64.b64decode(cleaned + "=" * (-len(cleaned) % 4), validate=False)
    except (binascii.Error, ValueError):
        out["decoded"] = False
        return out
    text = data.decode("utf-8", errors="replace")
    out.update(decoded=True, text=text, truncated=len(raw) >= 1024)
    try:
        out["json"] = orjson.loads(data)
    except orjson.JSONDecodeError:
        pass
    return out


@dataclass(slots=True)
class DeadLetter:
    id: str
    event: dict[str, Any]
    error_dest: str | None
    error_code: int | None
    error_data: dict[str, Any] | None
    first_at: float
    last_at: float
    times: int = 1
    replays: list[dict[str, Any]] = field(default_factory=list)

    @property
    def type(self) -> str:
        return str(self.event.get("type"))

    def summary(self) -> dict[str, Any]:
        reason = None
        if self.error_data:
            body = self.error_data.get("json")
            reason = body.get("detail") if isinstance(body, dict) else self.error_data.get("text")
        return {"id": self.id, "type": self.type, "event_id": self.event.get("id"),
                "source": self.event.get("source"), "error_code": self.error_code, "reason": reason,
                "times": self.times, "first_at": to_rfc3339(self.first_at), "last_at": to_rfc3339(self.last_at),
                "replays": len(self.replays)}


class DeadLetterStore:
    def __init__(self, redis: aioredis.Redis, keys: Keys, settings: DeadLetterSettings | None = None):
        self.redis = redis
        self.index = keys.key("dlq", "index")
        self._keys = keys
        self.settings = settings or DeadLetterSettings()

    def _key(self, letter_id: str) -> str:
        return self._keys.key("dlq", "letter", letter_id)

    @staticmethod
    def letter_id(event: CloudEvent) -> str:
        return event_digest(event.source, event.id, length=16)

    async def record(self, event: CloudEvent) -> DeadLetter:
        """Keep `event` (its knativeerror* extensions split off as the reason); one id per (source, id)."""
        ext = dict(event.extensions)
        dest, code, data = (ext.pop(name, None) for name in ERROR_EXTENSIONS)
        original = CloudEvent(event.id, event.source, event.type, event.specversion, event.datacontenttype,
                              event.subject, event.time, event.dataschema, ext, event.data).to_dict()
        size = len(orjson.dumps(original))
        if size > self.settings.max_event_bytes:  # kept: attributes and the size; not replayable
            original = {k: v for k, v in original.items() if k not in ("data", "data_base64")}
            original["dvcitruncated"] = str(size)
        letter_id = self.letter_id(event)
        now = time.time()
        existing = await self.get(letter_id)
        try:
            code_int = int(code) if code is not None else None
        except ValueError:
            code_int = None
        letter = DeadLetter(letter_id, original, dest, code_int, decode_error_data(data),
                            existing.first_at if existing else now, now,
                            (existing.times + 1) if existing else 1, existing.replays if existing else [])
        sealed = await self._seal(letter)
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.set(self._key(letter_id), sealed, ex=self.settings.ttl_s)
            pipe.zadd(self.index, {letter_id: now})
            pipe.zremrangebyscore(self.index, "-inf", now - self.settings.ttl_s)  # expired letters
            await pipe.execute()
        return letter

    async def _seal(self, letter: DeadLetter) -> str:
        return await default_crypto().encrypt(orjson.dumps(_as_dict(letter)), b"dlq:" + letter.id.encode())

    async def _open(self, letter_id: str, raw: bytes | str) -> DeadLetter:
        blob = await default_crypto().decrypt(raw, b"dlq:" + letter_id.encode()) if is_encrypted(raw) else raw
        return DeadLetter(**orjson.loads(blob))

    async def get(self, letter_id: str) -> DeadLetter | None:
        raw = await self.redis.get(self._key(letter_id))
        return await self._open(letter_id, raw) if raw else None

    async def list(self, event_type: str | None = None, limit: int = 1000) -> list[DeadLetter]:
        ids = await self.redis.zrevrange(self.index, 0, limit - 1)
        if not ids:
            return []
        names = [i.decode() if isinstance(i, bytes) else str(i) for i in ids]
        raws = await self.redis.mget([self._key(i) for i in names])
        letters = [await self._open(i, r) for i, r in zip(names, raws, strict=True) if r]
        return [x for x in letters if event_type is None or x.type == event_type]

    async def mark_replayed(self, letter: DeadLetter, by: str, status: int) -> None:
        """Note the replay on the letter (the operator command records it in the audit chain)."""
        letter.replays.append({"by": by, "at": time.time(), "status": status})
        await self.redis.set(self._key(letter.id), await self._seal(letter), keepttl=True)

    async def purge(self, letter_id: str, by: str) -> bool:
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.delete(self._key(letter_id))
            pipe.zrem(self.index, letter_id)
            removed, _ = await pipe.execute()
        return bool(removed)


def _as_dict(letter: DeadLetter) -> dict[str, Any]:
    return {f: getattr(letter, f) for f in letter.__dataclass_fields__}
