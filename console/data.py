"""What the console reads: the same Redis state as `dvci`, through indexes so every page is bounded work.

- Dossier timeline: `shared/observability/timeline.py` (a sorted set per keyed-hashed dossier id, written by
  the runtime) and the dead letters of the dossier (index below).
- Dead letters: `DeadLetterStore` keeps one sorted set of all letters by time. `DeadLetterIndex` derives
  sorted sets by type, kind, HTTP code and dossier (same scores) incrementally: a watermark remembers the
  last indexed time, each read indexes only what arrived since (bounded per call). The letters themselves
  are not copied.
- Overview: the timeline's per-kind minute counters (events, failures, latency histogram), breaker hashes,
  outbox sorted sets (ZCARD), dead-letter index cardinalities.
- SMS spend: per-day aggregates derived incrementally from the `{sms}:audit` stream (watermark: the last
  stream id folded in); the stream is the record, the aggregate an index.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict
from datetime import datetime, timedelta
from typing import Any

import orjson

from shared.observability import timeline
from shared.observability.logs import redact
from shared.reliability.deadletters import DeadLetter, DeadLetterStore
from shared.runtime.times import VIETNAM, to_rfc3339
from shared.storage.redis import Keys

log = logging.getLogger("dvci.console")
SINCE = {"1h": 3600, "24h": 86400, "7d": 7 * 86400, "30d": 30 * 86400, "all": None}
#: data fields that hold citizen data, masked unless revealed (values of other strings are redacted too)
CITIZEN_FIELDS = frozenset(("to", "cc", "bcc", "phone", "email", "name", "citizen_name", "full_name", "address",
                            "address_line", "cccd", "id_number", "recipient", "recipients", "sender", "text",
                            "params", "birth_date", "contact"))


def _s(v: Any) -> str:
    return v.decode() if isinstance(v, bytes) else str(v)


def mask(value: Any, key: str | None = None) -> Any:
    """Citizen data masked: named fields replaced by a hint of their shape, free text redacted."""
    if isinstance(value, dict):
        return {k: mask(v, k) for k, v in value.items()}
    if isinstance(value, list):
        return [mask(v, key) for v in value]
    if key in CITIZEN_FIELDS and value not in (None, ""):
        if isinstance(value, str):
            return (value[:2] + "•" * max(3, len(value) - 4) + value[-2:]) if len(value) > 6 else "•••"
        return "•••"
    if isinstance(value, str):
        return redact(value)
    return value


def kind_of_type(event_type: str) -> str:
    return timeline.kind_of(event_type)


# -- dead letters ------------------------------------------------------------------------------------
class DeadLetterIndex:
    BATCH = 2000

    def __init__(self, redis: Any, keys: Keys):
        self.redis = redis
        self.keys = keys
        self.store = DeadLetterStore(redis, keys)
        self.mark = keys.key("dlq", "ix", "mark")
        self.facets = keys.key("dlq", "ix", "facets")  # hash "type:<t>" / "code:<c>" / "kind:<k>" -> 1

    def ix(self, facet: str, value: str) -> str:
        if facet == "dossier":
            value = timeline.dossier_key(self.keys, value).rsplit(":", 1)[1]
        return self.keys.key("dlq", "ix", facet, value)

    async def catch_up(self, limit: int = 20_000) -> int:
        """Index letters recorded since the watermark (at most `limit` per call); returns how many."""
        done = 0
        while done < limit:
            mark = await self.redis.get(self.mark)
            low = float(mark) if mark else 0.0
            rows = await self.redis.zrangebyscore(self.store.index, low, "+inf", start=0, num=self.BATCH,
                                                  withscores=True)
            rows = [(m, sc) for m, sc in rows if sc > low or not mark]
            if not rows:
                break
            raws = await self.redis.mget([self.store._key(_s(m)) for m, _ in rows])
            async with self.redis.pipeline(transaction=False) as pipe:
                for (member, score), raw in zip(rows, raws, strict=True):
                    if raw is None:
                        continue
                    lid = _s(member)
                    try:
                        letter = await self.store._open(lid, raw)
                    except Exception:  # unreadable (key rotated away...): listed under the main index only
                        continue
                    for facet, value in self.facets_of(letter):
                        pipe.zadd(self.ix(facet, value), {lid: score})
                        if facet != "dossier":
                            pipe.hset(self.facets, f"{facet}:{value}", 1)
                pipe.set(self.mark, repr(max(sc for _, sc in rows)))
                await pipe.execute()
            done += len(rows)
            if len(rows) < self.BATCH:
                break
        return done

    @staticmethod
    def facets_of(letter: DeadLetter) -> list[tuple[str, str]]:
        out = [("type", letter.type), ("kind", kind_of_type(letter.type)),
               ("code", str(letter.error_code or "none"))]
        dossier = (letter.event.get("dossierid") or (letter.event.get("extensions") or {}).get("dossierid"))
        if dossier:
            out.append(("dossier", str(dossier)))
        return out

    async def facet_values(self) -> dict[str, list[str]]:
        out: dict[str, list[str]] = defaultdict(list)
        for k in await self.redis.hkeys(self.facets):
            facet, value = _s(k).split(":", 1)
            out[facet].append(value)
        return {k: sorted(v) for k, v in out.items()}

    async def _source(self, type_: str | None, kind: str | None, code: str | None, dossier: str | None) -> str:
        chosen = [self.ix(f, v) for f, v in (("type", type_), ("kind", kind), ("code", code), ("dossier", dossier))
                  if v]
        if not chosen:
            return self.store.index
        if len(chosen) == 1:
            return chosen[0]
        tmp = self.keys.key("dlq", "ix", "tmp", "|".join(chosen).replace(self.keys.prefix, ""))
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.zinterstore(tmp, {chosen[0]: 1, **{c: 0 for c in chosen[1:]}})
            pipe.expire(tmp, 30)
            await pipe.execute()
        return tmp

    async def query(self, *, type_: str | None = None, kind: str | None = None, code: str | None = None,
                    dossier: str | None = None, since: str | None = None, offset: int = 0,
                    limit: int = 50) -> tuple[int, list[DeadLetter]]:
        """(total matching, one page newest first)."""
        await self.catch_up()
        src = await self._source(type_, kind, code, dossier)
        low: float | str = "-inf"
        if since and SINCE.get(since):
            low = time.time() - float(SINCE[since] or 0)
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.zcount(src, low, "+inf")
            pipe.zrevrangebyscore(src, "+inf", low, start=offset, num=limit)
            total, ids = await pipe.execute()
        letters = await self._load([_s(i) for i in ids], src)
        return int(total), letters

    async def ids(self, *, type_: str | None = None, kind: str | None = None, code: str | None = None,
                  since: str | None = None, limit: int = 1000) -> list[str]:
        await self.catch_up()
        src = await self._source(type_, kind, code, None)
        low: float | str = time.time() - float(SINCE[since] or 0) if since and SINCE.get(since) else "-inf"
        return [_s(i) for i in await self.redis.zrevrangebyscore(src, "+inf", low, start=0, num=limit)]

    async def _load(self, ids: list[str], src: str) -> list[DeadLetter]:
        if not ids:
            return []
        raws = await self.redis.mget([self.store._key(i) for i in ids])
        gone = [i for i, r in zip(ids, raws, strict=True) if r is None]
        if gone:  # purged elsewhere (dvci dlq purge): drop from the derived indexes lazily
            await self.forget(gone)
        return [await self.store._open(i, r) for i, r in zip(ids, raws, strict=True) if r]

    async def forget(self, ids: list[str]) -> None:
        facets = await self.facet_values()
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.zrem(self.store.index, *ids)
            for facet in ("type", "kind", "code"):
                for value in facets.get(facet, []):
                    pipe.zrem(self.ix(facet, value), *ids)
            await pipe.execute()

    async def purge(self, letter: DeadLetter, by: str) -> bool:
        ok = await self.store.purge(letter.id, by)
        async with self.redis.pipeline(transaction=False) as pipe:
            for facet, value in self.facets_of(letter):
                pipe.zrem(self.ix(facet, value), letter.id)
            await pipe.execute()
        return ok

    async def count(self) -> int:
        return int(await self.redis.zcard(self.store.index))

    async def count_by_kind(self) -> dict[str, int]:
        await self.catch_up()
        kinds = (await self.facet_values()).get("kind", [])
        async with self.redis.pipeline(transaction=False) as pipe:
            for k in kinds:
                pipe.zcard(self.ix("kind", k))
            counts = await pipe.execute()
        return {k: int(c) for k, c in zip(kinds, counts, strict=True) if c}


def letter_view(letter: DeadLetter, reveal: bool = False) -> dict[str, Any]:
    s = letter.summary()
    event = dict(letter.event)
    data = event.pop("data", None)
    attrs = {k: v for k, v in event.items() if k != "data"}
    err = letter.error_data or {}
    return {**s, "kind": kind_of_type(letter.type), "attributes": attrs,
            "data": data if reveal else mask(data),
            "error": (err.get("json") or err.get("text") or err.get("raw")) if reveal else
            mask(err.get("json") or err.get("text") or err.get("raw")),
            "error_dest": letter.error_dest,
            "dossier": attrs.get("dossierid") or (attrs.get("extensions") or {}).get("dossierid"),
            "replay_log": [{**r, "at": to_rfc3339(r["at"])} for r in letter.replays if "at" in r]}


# -- breakers, outboxes ------------------------------------------------------------------------------
class Discovery:
    """Breaker and outbox keys found by SCAN, cached in-process (a SCAN walks the whole keyspace: at most
    once a minute, never per page)."""

    TTL_S = 60.0

    def __init__(self, redis: Any, keys: Keys):
        self.redis = redis
        self.keys = keys
        self._at = 0.0
        self._found: dict[str, list[str]] = {"breaker": [], "outbox": []}
        self._lock = asyncio.Lock()

    async def get(self, force: bool = False) -> dict[str, list[str]]:
        if force or time.monotonic() - self._at > self.TTL_S:
            async with self._lock:
                if force or time.monotonic() - self._at > self.TTL_S:
                    await self._scan()
        return self._found

    async def _scan(self) -> None:
        found: dict[str, set[str]] = {"breaker": set(), "outbox": set()}
        async for raw in self.redis.scan_iter(match=self.keys.prefix + "{*}:*", count=2000):
            key = _s(raw)
            rest = key[len(self.keys.prefix):]
            if "}:breaker:" in rest:
                found["breaker"].add(key)
            elif "}:outbox:" in rest and not key.endswith(":payload"):
                found["outbox"].add(key)
            elif "}:queue:" in rest:
                found["outbox"].add(key)
        for kind, names in _registry_providers().items():  # known even before any state exists
            for name in names:
                found["breaker"].add(self.keys.key(kind, "breaker", name))
        self._found = {k: sorted(v) for k, v in found.items()}
        self._at = time.monotonic()


def _registry_providers() -> dict[str, list[str]]:
    try:
        from shared.integrations.registry import registries

        return {kind: reg.names() for kind, reg in registries().items()}
    except Exception:  # a kind's registry failing to import must not take the console down
        return {}


def _split(keys: Keys, key: str) -> tuple[str, str]:
    rest = key[len(keys.prefix) + 1:]
    tag, tail = rest.split("}:", 1)
    return tag, tail


async def breakers(redis: Any, keys: Keys, discovery: Discovery) -> list[dict[str, Any]]:
    found = await discovery.get()
    names = [_split(keys, k) for k in found["breaker"]]
    async with redis.pipeline(transaction=False) as pipe:
        for k in found["breaker"]:
            pipe.hgetall(k)
        for kind in sorted({kind for kind, _ in names}):
            pipe.xrevrange(keys.key(kind, "breaker-events"), count=30)
        res = await pipe.execute()
    hashes, streams = res[:len(names)], res[len(names):]
    events: dict[tuple[str, str], list[dict[str, str]]] = defaultdict(list)
    for kind, stream in zip(sorted({kind for kind, _ in names}), streams, strict=True):
        for entry_id, fields in stream:
            f = {_s(a): _s(b) for a, b in fields.items()}
            at = f.get("at") or _s(entry_id).split("-")[0]
            events[(kind, f.get("breaker", ""))].append({**f, "at": to_rfc3339(int(float(at)))})
    rows = []
    for (kind, tail), h in zip(names, hashes, strict=True):
        provider = tail.split(":", 1)[1]
        d = {_s(a): _s(b) for a, b in h.items()}
        calls, fails = int(float(d.get("wcalls", 0) or 0)), int(float(d.get("wfails", 0) or 0))
        state = (d.get("forced") and f"forced-{d['forced']}") or d.get("state", "closed")
        rows.append({"name": f"{kind}.{provider}", "kind": kind, "provider": provider, "state": state,
                     "effective": d.get("forced") or d.get("state", "closed"), "forced_by": d.get("forced_by"),
                     "fails": int(float(d.get("fails", 0) or 0)),
                     "failure_rate": (fails / calls) if calls else None,
                     "opened": to_rfc3339(int(float(d["opened"]))) if float(d.get("opened", 0) or 0) else None,
                     "transitions": events.get((kind, provider), [])[:5]})
    return rows


async def outboxes(redis: Any, keys: Keys, discovery: Discovery) -> list[dict[str, Any]]:
    found = (await discovery.get())["outbox"]
    async with redis.pipeline(transaction=False) as pipe:
        for k in found:
            pipe.zcard(k)
            pipe.zrange(k, 0, 0, withscores=True)
        res = await pipe.execute()
    rows = []
    for i, k in enumerate(found):
        size, first = res[2 * i], res[2 * i + 1]
        kind, tail = _split(keys, k)
        oldest = None
        if first:
            score = float(first[0][1])
            oldest = to_rfc3339(score) if score < 1e11 else to_rfc3339(score / 1000)
        rows.append({"kind": kind, "name": tail, "size": int(size), "oldest": oldest})
    return rows


# -- overview ----------------------------------------------------------------------------------------
async def overview(redis: Any, keys: Keys, kinds: list[str], minutes: int = 180) -> dict[str, Any]:
    """Per kind (event family): events/min over the last 5 minutes, success rate and p95 over the last hour,
    and a per-minute series of the last `minutes` minutes (for the chart)."""
    now_min = int(time.time() // 60)
    series_mins = list(range(now_min - minutes + 1, now_min + 1))
    async with redis.pipeline(transaction=False) as pipe:
        for kind in kinds:
            for m in series_mins:
                pipe.hgetall(timeline.stats_key(keys, kind, m))
        res = await pipe.execute()
    out: dict[str, Any] = {"kinds": {}, "minutes": series_mins}
    for i, kind in enumerate(kinds):
        hashes = [{_s(a): int(b) for a, b in h.items()} for h in res[i * minutes:(i + 1) * minutes]]
        series = [h.get("n", 0) for h in hashes]
        last_hour = hashes[-60:]
        n = sum(h.get("n", 0) for h in last_hour)
        f = sum(h.get("f", 0) for h in last_hour)
        hist: dict[str, int] = defaultdict(int)
        for h in last_hour:
            for k, v in h.items():
                if k.startswith("l"):
                    hist[k[1:]] += v
        out["kinds"][kind] = {"per_min": round(sum(series[-5:]) / 5, 2), "events_1h": n,
                              "success": (1 - f / n) if n else None, "p95_ms": _quantile(hist, 0.95),
                              "series": series, "failures_1h": f}
    return out


def _quantile(hist: dict[str, int], q: float) -> float | None:
    total = sum(hist.values())
    if not total:
        return None
    bounds = [*[str(b) for b in timeline.BUCKETS_MS], "inf"]
    seen = 0
    for b in bounds:
        seen += hist.get(b, 0)
        if seen >= q * total:
            return float(b) if b != "inf" else float("inf")
    return None


async def stats_kinds(redis: Any, keys: Keys) -> list[str]:
    """Kinds that have minute counters in the last hour (one SCAN of the timeline slot's counters is
    avoided: candidates are the known families)."""
    families = ["sms", "email", "postal", "dossier", "document", "citizen"]
    now_min = int(time.time() // 60)
    async with redis.pipeline(transaction=False) as pipe:
        for kind in families:
            for m in range(now_min - 179, now_min + 1, 10):
                pipe.exists(*[timeline.stats_key(keys, kind, x) for x in range(m, m + 10)])
        res = await pipe.execute()
    per = len(res) // len(families)
    return [k for i, k in enumerate(families) if any(res[i * per:(i + 1) * per])] or ["sms", "email"]


# -- SMS spend ---------------------------------------------------------------------------------------
async def sms_spend(redis: Any, keys: Keys, days: int = 14, max_entries: int = 200_000) -> dict[str, Any]:
    """Per day (Vietnam time) and provider: messages, segments, VND — folded incrementally from the audit
    stream into `{sms}:console:spend:<yyyymmdd>` hashes (fields `<provider>|<carrier>|<measure>`)."""
    stream = keys.key("sms", "audit")
    mark_key = keys.key("sms", "console", "spend-mark")
    mark = _s(await redis.get(mark_key) or b"0-0")
    folded = 0
    while folded < max_entries:
        batch = await redis.xrange(stream, min=f"({mark}" if mark != "0-0" else "-", max="+", count=5000)
        if not batch:
            break
        acc: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
        for entry_id, fields in batch:
            f = {_s(a): _s(b) for a, b in fields.items()}
            if f.get("outcome") != "accepted":
                continue
            at_ms = int(_s(entry_id).split("-")[0])
            day = time.strftime("%Y%m%d", time.gmtime(at_ms / 1000 + 7 * 3600))
            base = f"{f.get('provider', '?')}|{f.get('carrier', '?')}|"
            acc[day][base + "messages"] += 1
            acc[day][base + "segments"] += int(f.get("segments", 0) or 0)
            acc[day][base + "cost_vnd"] += float(f.get("cost_vnd", 0) or 0)
        mark = _s(batch[-1][0])
        async with redis.pipeline(transaction=True) as pipe:
            for day, fields in acc.items():
                for field, value in fields.items():
                    pipe.hincrbyfloat(keys.key("sms", "console", "spend", day), field, value)
            pipe.set(mark_key, mark)
            await pipe.execute()
        folded += len(batch)
        if len(batch) < 5000:
            break
    today = datetime.now(VIETNAM).date()
    day_list = [(today - timedelta(days=d)).strftime("%Y%m%d") for d in range(days - 1, -1, -1)]
    async with redis.pipeline(transaction=False) as pipe:
        for day in day_list:
            pipe.hgetall(keys.key("sms", "console", "spend", day))
        res = await pipe.execute()
    rows: list[dict[str, Any]] = []
    per_day: dict[str, dict[str, float]] = {}
    for day, h in zip(day_list, res, strict=True):
        by: dict[tuple[str, str], dict[str, float]] = defaultdict(lambda: defaultdict(float))
        per_provider: dict[str, float] = defaultdict(float)
        for k, v in h.items():
            provider, carrier, measure = _s(k).split("|")
            by[(provider, carrier)][measure] += float(v)
            if measure == "cost_vnd":
                per_provider[provider] += float(v)
        per_day[day] = dict(per_provider)
        for (provider, carrier), m in sorted(by.items()):
            rows.append({"day": f"{day[:4]}-{day[4:6]}-{day[6:]}", "provider": provider, "carrier": carrier,
                         "messages": int(m["messages"]), "segments": int(m["segments"]), "cost_vnd": m["cost_vnd"]})
    return {"rows": rows, "per_day": per_day, "days": day_list, "folded": folded}


# -- audit ----------------------------------------------------------------------------------------
AUDIT_SCAN = 2000  # records read per stream for a search (newest first, within the time window)


def _match(r: dict[str, Any], dossier: str, actor: str, action: str) -> bool:
    d = r.get("detail") or {}
    if dossier and dossier not in (r.get("subject"), d.get("dossier_id"), d.get("dossierid"), d.get("dossier")):
        return False
    if actor and actor.lower() not in str(r.get("actor", "")).lower():
        return False
    return not (action and not str(r.get("action", "")).startswith(action))


async def audit_search(redis: Any, keys: Keys, *, dossier: str = "", actor: str = "", action: str = "",
                       since: str = "24h", limit: int = 100, archive: Any = None) -> dict[str, Any]:
    """Newest first: the chain's live records (`{audit}:chain`) and per-kind stream entries not absorbed
    yet, at most AUDIT_SCAN per stream within the window (stream ids are times: the window is a range)."""
    from shared.security.audit import Audit

    audit = Audit(redis, keys)
    kinds = sorted({*_registry_providers(), "sms", "email", "postal", "lgsp", "signing"})
    pending = [keys.key(k, "audit") for k in kinds]
    low = "-"
    if SINCE.get(since):
        low = str(int((time.time() - float(SINCE[since] or 0)) * 1000))
    async with redis.pipeline(transaction=False) as pipe:
        pipe.xrevrange(audit.chain, max="+", min="-", count=AUDIT_SCAN)
        pipe.xlen(audit.chain)
        for s in pending:
            pipe.xrevrange(s, max="+", min=low, count=AUDIT_SCAN)
        pipe.hgetall(audit.sealed_key)
        pipe.hgetall(audit.head_key)
        res = await pipe.execute()
    chain_rows, chain_len, streams, sealed, head = res[0], res[1], res[2:-2], res[-2], res[-1]
    cutoff = float(low) / 1000 if low != "-" else 0.0
    rows: list[dict[str, Any]] = []
    for _entry_id, fields in chain_rows:
        try:
            rec = orjson.loads(fields.get(b"r", fields.get("r")))
        except (orjson.JSONDecodeError, TypeError):
            continue
        rec["_where"] = "chain"
        rows.append(rec)
    manifest = _s(sealed.get(b"manifest", b"")) if sealed else ""
    if len(rows) < AUDIT_SCAN and manifest:  # the newest sealed segments (immutable: cached in-process)
        try:
            rows += await _sealed_tail(archive or audit_settings(keys), manifest, AUDIT_SCAN - len(rows))
        except Exception:  # archive unreachable: the live part is still worth showing
            log.warning("audit archive unreachable", exc_info=True)
    for stream, entries in zip(pending, streams, strict=True):
        kind = _split(keys, stream)[0]
        for entry_id, fields in entries:
            rows.append(_pending_record(kind, _s(entry_id), {_s(a): _s(b) for a, b in fields.items()}))
    out = []
    for r in rows:
        at = r.get("_at")
        if at is None:
            try:
                at = datetime.fromisoformat(str(r.get("at"))).timestamp()
            except ValueError:
                at = 0.0
        if at < cutoff or not _match(r, dossier, actor, action):
            continue
        r["_at"] = at
        out.append(r)
    out.sort(key=lambda r: r["_at"], reverse=True)
    for r in out[:limit]:  # only what is shown is redacted (free text in details)
        r["detail"] = {k: redact(str(v)) for k, v in (r.get("detail") or {}).items()}
    return {"rows": out[:limit], "matched": len(out), "chain_length": int(chain_len), "scan": AUDIT_SCAN,
            "sealed_seq": int(_s(sealed.get(b"seq", b"0"))) if sealed else 0,
            "head_seq": int(_s(head.get(b"seq", b"0"))) if head else 0}


_SEGMENTS: dict[str, tuple[dict[str, Any], list[dict[str, Any]]]] = {}


def audit_settings(keys: Keys, s3_endpoint_url: str | None = None) -> Any:
    """The audit archive's settings for this environment (`S3_ENDPOINT_URL` unless given)."""
    from shared.security import seal

    settings = seal.AuditSettings(env=keys.prefix.split(":")[1])  # type: ignore[call-arg]
    if s3_endpoint_url:
        settings.s3_endpoint_url = s3_endpoint_url
    return settings


async def _sealed_tail(settings: Any, manifest: str, want: int, max_segments: int = 3) -> list[dict[str, Any]]:
    """Records of the newest sealed segments, newest segment first (following `previous` links)."""
    from shared.security import seal

    arch = seal.Archive(settings)
    out: list[dict[str, Any]] = []
    key: str | None = manifest
    for _ in range(max_segments):
        if not key or len(out) >= want:
            break
        if key not in _SEGMENTS:
            m = orjson.loads(await asyncio.to_thread(arch.get, key))
            body = await asyncio.to_thread(arch.get, str(m["segment"]))
            _SEGMENTS[key] = (m, [orjson.loads(line) for line in body.splitlines() if line.strip()])
            while len(_SEGMENTS) > 8:
                _SEGMENTS.pop(next(iter(_SEGMENTS)))
        m, records = _SEGMENTS[key]
        out += [{**r, "_where": "sealed"} for r in records]
        key = m.get("previous")
    return out


_SKIP = frozenset(("at", "kind", "action", "outcome", "actor", "by", "subject"))


def _pending_record(kind: str, entry_id: str, f: dict[str, str]) -> dict[str, Any]:
    """A per-kind stream entry not absorbed into the chain yet, shaped as a chain record for display
    (shared/security/audit.py:from_entry without the hashing, which display does not need)."""
    at_ms = int(entry_id.split("-", 1)[0])
    return {"seq": None, "at": to_rfc3339(at_ms / 1000), "_at": at_ms / 1000, "_where": "pending",
            "actor": f.get("actor") or f.get("by") or f"service:{f.get('kind') or kind}",
            "action": f.get("action") or "provider.call", "kind": f.get("kind") or kind,
            "subject": f.get("subject") or f.get("ref") or f.get("letter") or f.get("dossier_id") or "",
            "outcome": f.get("outcome") or "", "detail": {k: v for k, v in f.items() if k not in _SKIP}}


async def verify_chain(redis: Any, keys: Keys, settings: Any = None) -> dict[str, Any]:
    """`dvci audit verify` (shared/security/seal.py) — the archive too when it is reachable."""
    from shared.security import seal

    note = ""
    settings = settings or audit_settings(keys)
    try:
        report = await seal.verify(redis, keys, settings)
    except Exception as exc:  # no archive configured/reachable: the live chain alone
        note = f"archive not checked ({type(exc).__name__})"
        report = await seal.verify(redis, keys, settings, archive=False)
    return {**report.as_dict(), "note": note, "at": to_rfc3339(time.time())}
