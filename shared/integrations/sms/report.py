"""SMS spend from the audit stream: messages, segments and VND by provider and carrier since a time."""

from __future__ import annotations

import re
import time
from collections import defaultdict
from typing import Any

from shared.storage.redis import Keys

_SINCE = re.compile(r"^(\d+)([smhd])$")


def parse_since(text: str) -> float:
    """`24h`, `30m`, `7d`, `90s` -> seconds."""
    m = _SINCE.match(text.strip())
    if not m:
        raise ValueError(f"--since takes a number and a unit (s, m, h, d), e.g. 24h; got {text!r}")
    return int(m.group(1)) * {"s": 1, "m": 60, "h": 3600, "d": 86400}[m.group(2)]


async def spend(redis: Any, keys: Keys, since_s: float) -> list[dict[str, Any]]:
    """Accepted messages since `since_s` ago, grouped by (provider, carrier)."""
    start = int((time.time() - since_s) * 1000)
    rows: dict[tuple[str, str], dict[str, float]] = defaultdict(lambda: {"messages": 0, "segments": 0, "cost_vnd": 0.0})
    cursor = f"{start}-0"
    stream = keys.key("sms", "audit")
    while True:
        batch = await redis.xrange(stream, min=cursor, max="+", count=5000)
        if not batch:
            break
        for _entry_id, fields in batch:
            f = {k.decode(): v.decode() for k, v in fields.items()}
            if f.get("outcome") != "accepted":
                continue
            row = rows[(f.get("provider", "?"), f.get("carrier", "?"))]
            row["messages"] += 1
            row["segments"] += int(f.get("segments", 0))
            row["cost_vnd"] += float(f.get("cost_vnd", 0))
        last = batch[-1][0].decode()
        ms, seq = last.split("-")
        cursor = f"{ms}-{int(seq) + 1}"
    return [{"provider": p, "carrier": c, **v} for (p, c), v in sorted(rows.items())]
