"""The audit record of this kind (citizen lookups, resyncs, rejected data): one place, so the security
issue's hash-chained trail can replace it. Fields carry no citizen data: ids only as keyed hashes."""

from __future__ import annotations

import time
from typing import Any

from shared.storage.redis import Keys

MAXLEN = 1_000_000


def audit_key(keys: Keys) -> str:
    return keys.key("lgsp", "audit")


async def audit(redis, keys: Keys, action: str, **fields: Any) -> None:  # type: ignore[no-untyped-def]
    """Append `{action, at, **fields}` to the `{lgsp}:audit` stream (values as text, None left out)."""
    entry = {"action": action, "at": str(int(time.time() * 1000))}
    entry.update({k: str(v) for k, v in fields.items() if v is not None})
    await redis.xadd(audit_key(keys), entry, maxlen=MAXLEN, approximate=True)


async def records(redis, keys: Keys, count: int = 1000) -> list[dict[str, str]]:  # type: ignore[no-untyped-def]
    """The latest audit records, oldest first (for `dvci` and tests)."""
    rows = await redis.xrevrange(audit_key(keys), count=count)
    return [{k.decode(): v.decode() for k, v in fields.items()} for _, fields in reversed(rows)]
