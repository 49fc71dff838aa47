"""The signing audit: every signature (document hash, signer certificate, level, time, who asked) goes
through `record()`, one Redis stream `keys.key("signing", "audit")`. The security issue replaces the
storage (hash-chained, archived) behind this one function."""

from __future__ import annotations

import time
from typing import Any

import orjson

from shared.storage.redis import Keys

MAXLEN = 1_000_000


def stream_key(keys: Keys) -> str:
    return keys.key("signing", "audit")


async def record(redis: Any, keys: Keys, *, action: str, dossier_id: str, document_sha256: str, level: str,
                 signer: dict[str, str], method: str, requested_by: str, event_id: str,
                 output_key: str | None = None, outcome: str = "signed", detail: str = "") -> None:
    """Append one audit entry (no citizen data: identifiers, hashes and the signer's certificate)."""
    entry = {"at_ms": int(time.time() * 1000), "action": action, "dossier_id": dossier_id,
             "document_sha256": document_sha256, "level": level, "signer": signer, "method": method,
             "requested_by": requested_by, "event_id": event_id, "output_key": output_key, "outcome": outcome,
             "detail": detail[:300]}
    await redis.xadd(stream_key(keys), {"e": orjson.dumps(entry)}, maxlen=MAXLEN, approximate=True)


async def entries(redis: Any, keys: Keys, count: int = 1000) -> list[dict[str, Any]]:
    """The signing entries (the reliability pipeline appends its own, other-shaped records to the stream)."""
    rows = await redis.xrange(stream_key(keys), count=count)
    out = []
    for _id, fields in rows:
        raw = fields.get(b"e", fields.get("e"))
        if raw is not None:
            out.append(orjson.loads(raw))
    return out
