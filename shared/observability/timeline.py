"""Per-dossier timeline: every outcome event that carries the `dossierid` extension, indexed for the console.

    await record(redis, keys, dossier_id, kind, event_type, provider, outcome, at, event_id=..., duration_ms=...)

One EVALSHA (one Redis command, sent without waiting by `schedule`) writes:
- `dvci:<env>:{timeline}:d:<hmac(dossier id)>`: a sorted set (score: event time in ms) of compact JSON
  members `{t, k, p, o, id}` (type, kind, provider, outcome, event id) — never citizen data; the member is
  fixed by the event, so a re-emitted event updates its entry instead of adding one;
- `dvci:<env>:{timeline}:s:<kind>:<minute>`: a hash of counters for the console's overview (events, failures,
  a latency histogram in fixed buckets), kept two days.
The dossier id is keyed-hashed (`DVCI_TIMELINE_KEY`, HMAC-SHA256) so keys do not list dossiers.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import os
import time
from functools import lru_cache
from typing import Any

import orjson

from shared.storage.redis import Keys

log = logging.getLogger("dvci.timeline")

#: latency histogram upper bounds (ms) of the overview counters; the last bucket is "+Inf"
BUCKETS_MS = (5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000)
STATS_TTL_MS = 2 * 86_400_000
FAILED = frozenset(("failed", "rejected", "bounced", "complaint", "expired", "returned", "exception",
                    "delivery_failed", "outcome_unknown", "unknown", "not_found"))

_SCRIPT = """
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
redis.call('HINCRBY', KEYS[2], 'n', 1)
if ARGV[4] == '1' then redis.call('HINCRBY', KEYS[2], 'f', 1) end
if ARGV[5] ~= '' then redis.call('HINCRBY', KEYS[2], 'l' .. ARGV[5], 1) end
redis.call('PEXPIRE', KEYS[2], ARGV[6])
return 1
"""
_SHA = hashlib.sha1(_SCRIPT.encode()).hexdigest()
_pending: set[asyncio.Task[Any]] = set()


@lru_cache(maxsize=1)
def _secret() -> bytes:
    return os.environ.get("DVCI_TIMELINE_KEY", "dvci-timeline-dev-key").encode()


@lru_cache(maxsize=1)
def enabled() -> bool:
    return os.environ.get("DVCI_TIMELINE", "1") not in ("0", "false", "off")


@lru_cache(maxsize=1)
def ttl_ms() -> int:
    """Read once per process, like the key (settings do not change under a running function)."""
    return int(float(os.environ.get("DVCI_TIMELINE_TTL_DAYS", "30")) * 86_400_000)


def dossier_key(keys: Keys, dossier_id: str) -> str:
    digest = hmac.new(_secret(), dossier_id.encode("utf-8", "surrogatepass"), hashlib.sha256).hexdigest()[:32]
    return keys.key("timeline", "d", digest)


def stats_key(keys: Keys, kind: str, minute: int) -> str:
    return keys.key("timeline", "s", kind, str(minute))


def kind_of(event_type: str) -> str:
    """`vn.gov.dvc.sms.accepted` -> `sms`; other namespaces: the segment before the last."""
    parts = event_type.split(".")
    if event_type.startswith("vn.gov.dvc.") and len(parts) > 4:
        return parts[3]
    return parts[-2] if len(parts) > 1 else event_type


def bucket_of(duration_ms: float) -> str:
    for bound in BUCKETS_MS:
        if duration_ms <= bound:
            return str(bound)
    return "inf"


def failed(outcome: str) -> bool:
    return outcome in FAILED or outcome.endswith("failed")


async def record(redis: Any, keys: Keys, dossier_id: str, kind: str, event_type: str, provider: str | None,
                 outcome: str, at: float, *, event_id: str = "", duration_ms: float | None = None) -> None:
    """Add one event to the dossier's timeline and to the kind's minute counters (one Redis command).
    `redis` is the runtime's RespClient or a redis-py asyncio client; `at` is unix seconds."""
    member = orjson.dumps({"t": event_type, "k": kind, "p": provider or "", "o": outcome, "id": event_id}).decode()
    key_list = [dossier_key(keys, dossier_id), stats_key(keys, kind, int(at // 60))]
    args = [member, str(int(at * 1000)), str(ttl_ms()), "1" if failed(outcome) else "0",
            bucket_of(duration_ms) if duration_ms is not None else "", str(STATS_TTL_MS)]
    if hasattr(redis, "evalsha") and hasattr(redis, "execute"):  # shared.storage.resp.RespClient
        await redis.evalsha(_SCRIPT, key_list, args)
    else:
        await redis.eval(_SCRIPT, len(key_list), *key_list, *args)


def schedule(redis: Any, keys: Keys, dossier_id: str, event_type: str, provider: str | None, outcome: str, *,
             event_id: str = "", duration_ms: float | None = None) -> None:
    """Fire and forget `record` from the request path: never raises, never waits. Records are buffered and
    sent together a few milliseconds later (one task per batch, not per event); failures are logged at debug."""
    try:
        loop = asyncio.get_running_loop()
        buffer = _buffers.setdefault(id(loop), [])
        buffer.append((redis, keys, dossier_id, kind_of(event_type), event_type, provider, outcome, time.time(),
                       event_id, duration_ms))
        if len(buffer) == 1:
            loop.call_later(FLUSH_S, _flush, loop)
    except Exception:  # no loop / bad input: the timeline is best effort
        log.debug("timeline not recorded", exc_info=True)


FLUSH_S = 0.005
_buffers: dict[int, list[tuple[Any, ...]]] = {}


def _flush(loop: asyncio.AbstractEventLoop) -> None:
    items = _buffers.pop(id(loop), [])
    if not items:
        return
    task = loop.create_task(_send(items))
    _pending.add(task)
    task.add_done_callback(_done)


async def _send(items: list[tuple[Any, ...]]) -> None:
    results = await asyncio.gather(*(record(r, k, d, kind, t, p, o, at, event_id=eid, duration_ms=ms)
                                     for r, k, d, kind, t, p, o, at, eid, ms in items), return_exceptions=True)
    failures = [r for r in results if isinstance(r, BaseException)]
    if failures:
        log.debug("timeline: %d record(s) not written: %r", len(failures), failures[0])


def _done(task: asyncio.Task[Any]) -> None:
    _pending.discard(task)
    if not task.cancelled() and task.exception() is not None:
        log.debug("timeline not recorded: %r", task.exception())


async def drain() -> None:
    """Wait for scheduled records (tests, shutdown)."""
    loop = asyncio.get_running_loop()
    if _buffers.get(id(loop)):
        _flush(loop)
    while _pending:
        await asyncio.gather(*list(_pending), return_exceptions=True)


def describe(data: Any) -> tuple[str | None, str | None]:
    """(provider, status) of an outcome event's data (a model or a dict): `provider` or `carrier`,
    and `status` when the event reports one (delivery/tracking updates)."""
    if isinstance(data, dict):
        get = data.get
    else:
        def get(name: str, default: Any = None) -> Any:
            return getattr(data, name, default)
    provider = get("provider") or get("carrier") or get("target")
    status = get("status")
    return (str(provider) if provider else None), (str(status) if isinstance(status, str) and status else None)


async def read(redis: Any, keys: Keys, dossier_id: str, limit: int = 500) -> list[dict[str, Any]]:
    """The dossier's events, oldest first: [{at_ms, type, kind, provider, outcome, id}] (redis-py client)."""
    rows = await redis.zrange(dossier_key(keys, dossier_id), 0, limit - 1, withscores=True)
    out = []
    for member, score in rows:
        m = orjson.loads(member)
        out.append({"at_ms": int(score), "type": m.get("t"), "kind": m.get("k"), "provider": m.get("p") or None,
                    "outcome": m.get("o"), "id": m.get("id")})
    return out
