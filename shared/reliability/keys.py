"""One way to derive a key from an event: `event_digest(source, id)` names its idempotency record,
the client reference sent to providers, an order number at a provider. Parts are length-prefixed, so
no two different part lists share a digest (`("/a\\0b", "c")` and `("/a", "b\\0c")` differ)."""

from __future__ import annotations

import hashlib


def event_digest(*parts: str, length: int = 32) -> str:
    """Hex sha256 over the length-prefixed parts, cut to `length` characters (at most 64)."""
    h = hashlib.sha256()
    for part in parts:
        raw = part.encode("utf-8", "surrogatepass")
        h.update(b"%d:" % len(raw))
        h.update(raw)
    return h.hexdigest()[:length]
