"""Tracking: carrier events -> normalised statuses -> events to K_SINK.

Every carrier event (a Viettel Post webhook, a VietnamPost feed document or per-order answer) goes through
the never-regress StatusBook of its shipment: de-duplicated by event id, applied by the carrier's own event
time (a late older event enters the history but never moves the status back), terminal statuses final.
A change emits `tracking.updated`; reaching `delivered` / `returned` also emits `delivered` / `returned` —
once per shipment, because a terminal status is final; the ids are derived from the shipment, so a re-emit
after a failure de-duplicates downstream. An emit that fails is held in an outbox the `postal-poll` job
drains; a change whose events a crash kept from going out waits in the status book's pending index (written
with the change, atomically) and is re-emitted from the history by the same job. VietnamPost is polled
(`postal-poll`): its paged feed after a cursor kept in Redis, then per-order
queries for active shipments with no news for `stale_after_s`.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import orjson

from shared.integrations.postal import CarrierEvent, statuses
from shared.integrations.postal.settings import PostalSettings
from shared.reliability.keys import event_digest
from shared.reliability.outbox import Outbox
from shared.reliability.statusbook import StatusBook
from shared.storage.redis import Keys

log = logging.getLogger("dvci.postal")
VN = ZoneInfo("Asia/Ho_Chi_Minh")
TRACKING_UPDATED = "vn.gov.dvc.postal.tracking.updated"
DELIVERED = "vn.gov.dvc.postal.delivered"
RETURNED = "vn.gov.dvc.postal.returned"
_UNLOCK = "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0"

Emit = Callable[[str, dict[str, Any], str, dict[str, str]], Awaitable[Any]]  # (type, data, key, extensions)


def rfc3339(at_ms: int) -> str:
    return datetime.fromtimestamp(at_ms / 1000, VN).isoformat(timespec="seconds")


@dataclass(frozen=True, slots=True)
class Applied:
    action: str  # changed | duplicate | stale | final | unknown_shipment
    status: str | None = None
    previous: str | None = None


def _text(v: Any) -> str:
    return v.decode() if isinstance(v, bytes) else str(v)


class Tracker:
    def __init__(self, fast: Any, redis: Any, keys: Keys, emit: Emit, settings: PostalSettings | None = None):
        """`fast`: the hot-path RespClient (status book, lookups); `redis`: redis-py (outbox, admin)."""
        self.fast, self.redis, self.keys, self.emit = fast, redis, keys, emit
        self.settings = settings or PostalSettings()
        # every change waits in `pending` (atomically with it) until its events went out: a crash in between
        # is re-emitted by postal-poll from the shipment's history (nothing lost)
        self.book = StatusBook(fast, statuses.RANK, statuses.TERMINAL, pending_key=keys.key("postal", "pending"))
        self.outbox = Outbox(redis, keys.key("postal", "outbox", "emit"))
        self.ttl_ms = self.settings.shipment_ttl_s * 1000

    def status_key(self, carrier: str, number: str) -> str:
        return self.keys.key("postal", "status", carrier, number)

    def tracking_key(self, carrier: str, number: str) -> str:
        return self.keys.key("postal", "tracking", carrier, number)

    @property
    def active_key(self) -> str:
        return self.keys.key("postal", "active")

    async def shipment(self, carrier: str, number: str) -> dict[str, str] | None:
        sid = await self.fast.execute("GET", self.tracking_key(carrier, number))
        if not sid:
            return None
        raw = await self.fast.execute("HMGET", self.keys.key("postal", "shipment", _text(sid)), "dossier_id",
                                      "purpose")
        if not raw or raw[0] is None:
            return None
        return {"dossier_id": _text(raw[0]), "purpose": _text(raw[1] or b"")}

    async def apply(self, ev: CarrierEvent) -> Applied:
        ship = await self.shipment(ev.carrier, ev.tracking_number)
        if ship is None:
            return Applied("unknown_shipment")
        mapped = statuses.normalise(ev.carrier, ev.carrier_status)
        if mapped.status == "exception" and ev.carrier_status not in statuses.table(ev.carrier):
            log.warning("unknown carrier status", extra={"carrier": ev.carrier, "carrier_status": ev.carrier_status})
        event_id = ev.event_id or event_digest(ev.carrier, ev.tracking_number, ev.carrier_status, str(ev.at_ms))
        description = ev.description or mapped.description
        res = await self.book.apply(self.status_key(ev.carrier, ev.tracking_number), event_id, mapped.status,
                                    ev.at_ms, self.ttl_ms,
                                    {"carrier_status": ev.carrier_status, "description": description,
                                     "location": ev.location})
        if res.action != "changed":
            return Applied(res.action, res.status, res.previous)
        member = f"{ev.carrier}:{ev.tracking_number}"
        if mapped.status in statuses.TERMINAL:
            await self.fast.execute("ZREM", self.active_key, member)
        else:
            await self.fast.execute("ZADD", self.active_key, "XX", str(time.time()), member)
        await self._emit_change(ship, ev.carrier, ev.tracking_number, event_id, mapped.status, res.previous,
                                {"carrier_status": ev.carrier_status, "description": description,
                                 "location": ev.location, "at_ms": ev.at_ms})
        return Applied("changed", mapped.status, res.previous)

    async def _emit_change(self, ship: dict[str, str], carrier: str, number: str, event_id: str, status: str,
                           previous: str | None, entry: dict[str, Any]) -> None:
        """The events of one change; confirmed to the status book once they went out (or were held)."""
        member = f"{carrier}:{number}"
        at = rfc3339(int(entry["at_ms"]))
        base = {"dossier_id": ship["dossier_id"], "carrier": carrier, "tracking_number": number}
        out: list[tuple[str, dict[str, Any], str]] = [(TRACKING_UPDATED, {
            **base, "status": status, "previous_status": previous, "carrier_status": entry.get("carrier_status"),
            "description": entry.get("description"), "location": entry.get("location"), "at": at},
            f"{member}:{event_id}")]
        if status == "delivered":
            out.append((DELIVERED, {**base, "delivered_at": at}, f"{member}:delivered"))
        elif status == "returned":
            out.append((RETURNED, {**base, "returned_at": at}, f"{member}:returned"))
        for type_, data, key in out:
            await self._emit(type_, {k: v for k, v in data.items() if v is not None}, key, ship["dossier_id"])
        await self.book.emitted(self.status_key(carrier, number), event_id)

    async def replay_unconfirmed(self, older_than_s: float = 30.0) -> int:
        """Changes whose events a crash kept from going out: rebuilt from the history and emitted (same ids)."""
        done = 0
        prefix = self.keys.key("postal", "status", "")
        for key, event_id in await self.book.unconfirmed(older_than_s):
            carrier, _, number = key.removeprefix(prefix).partition(":")
            found = await self.book.replay(key, event_id)
            ship = await self.shipment(carrier, number)
            if found is None or ship is None:
                await self.book.emitted(key, event_id)
                continue
            entry, previous = found
            await self._emit_change(ship, carrier, number, event_id, str(entry["status"]), previous, entry)
            done += 1
        return done

    async def _emit(self, type_: str, data: dict[str, Any], key: str, dossier_id: str) -> None:
        ext = {"dossierid": dossier_id}
        try:
            await self.emit(type_, data, key, ext)
        except Exception as exc:  # held: postal-poll emits it again (same id: consumers de-duplicate)
            log.warning("emit failed, held in the outbox", extra={"ce_type": type_, "error": str(exc)[:200]})
            await self.outbox.add(key + "|" + type_, orjson.dumps({"type": type_, "data": data, "key": key,
                                                                  "ext": ext}), time.time())

    async def drain_outbox(self, limit: int = 500) -> int:
        sent = 0
        for member, payload in await self.outbox.due(time.time(), limit):
            item = orjson.loads(payload)
            try:
                await self.emit(item["type"], item["data"], item["key"], item["ext"])
            except Exception:
                break  # still failing: the next run tries again
            await self.outbox.done(member)
            sent += 1
        return sent

    async def history(self, carrier: str, number: str) -> list[dict[str, Any]]:
        return await self.book.history(self.status_key(carrier, number))

    async def current(self, carrier: str, number: str) -> str | None:
        return await self.book.current(self.status_key(carrier, number))

    # -- VietnamPost polling -----------------------------------------------------------------------------
    async def poll(self, vnpost: Any) -> dict[str, int]:
        """One `postal-poll` run: the feed after the cursor, stale active shipments, the outbox."""
        lock, token = self.keys.key("postal", "poll-lock"), uuid.uuid4().hex
        if not await self.redis.set(lock, token, nx=True, px=120_000):
            return {"skipped": 1}
        counts = {"feed_documents": 0, "changed": 0, "queried": 0, "emitted_from_outbox": 0}
        try:
            cursor_key = self.keys.key("postal", "vnpost", "cursor")
            cursor = _text(await self.redis.get(cursor_key) or b"")
            s = self.settings
            for _ in range(s.poll_max_pages):
                events, cursor, n = await vnpost.feed(cursor, s.poll_page_size)
                for ev in events:
                    counts["changed"] += (await self.apply(ev)).action == "changed"
                counts["feed_documents"] += n
                await self.redis.set(cursor_key, cursor)  # after the page: a crash re-reads it (de-duplicated)
                if n < s.poll_page_size:
                    break
            stale = await self.redis.zrangebyscore(self.active_key, "-inf", time.time() - s.stale_after_s,
                                                   start=0, num=s.stale_batch)
            for raw in stale:
                member = _text(raw)
                carrier, _, number = member.partition(":")
                if carrier != "vnpost":
                    continue  # Viettel Post: webhooks only
                counts["queried"] += 1
                for ev in await vnpost.events(number):
                    counts["changed"] += (await self.apply(ev)).action == "changed"
                await self.redis.zadd(self.active_key, {member: time.time()}, xx=True)
            counts["emitted_from_outbox"] = await self.drain_outbox()
            counts["replayed_after_crash"] = await self.replay_unconfirmed()
        finally:
            await self.redis.eval(_UNLOCK, 1, lock, token)
        return counts


# -- postal_track's surfaces: the carriers' webhooks and the poll job ------------------------------------------
class TrackingJobs:
    """What postal_track serves: every carrier webhook of the registry (authenticated by the webhook module)
    and the `postal-poll` job, over one Tracker per event loop."""

    def __init__(self, emit: Emit):
        from shared.integrations.postal.providers import REGISTRY
        from shared.integrations.registry import load
        from shared.runtime.loops import per_loop

        self.emit = emit
        self.registry = REGISTRY
        self.webhooks = {spec.webhook.path: (spec, spec.webhook_auth(), load(spec.webhook.parser))
                         for spec in REGISTRY.webhooks() if spec.webhook is not None}
        self.tracker = per_loop(self._tracker)
        self.pollers = per_loop(lambda: {spec.name: spec.new_client() for spec in REGISTRY
                                         if spec.receipts == "pull"})

    def _tracker(self) -> Tracker:
        from shared.runtime.settings import runtime_settings
        from shared.storage.redis import get_fast_redis, get_redis

        return Tracker(get_fast_redis(), get_redis(), Keys(runtime_settings().env), self.emit)

    def serve_webhooks(self, app: Any) -> None:
        """Route each carrier's tracking webhook (from the registry) to `webhook`."""
        for path in self.webhooks:
            app.route(path)(self._route(path))

    def _route(self, path: str) -> Callable[[Any], Awaitable[Any]]:
        async def route(request: Any) -> Any:
            return await self.webhook(path, request)

        return route

    async def webhook(self, path: str, request: Any) -> Any:
        """Authenticated (else 401/413, nothing applied), parsed (else 400), applied to the status book."""
        from starlette.responses import Response

        from shared.runtime.problem import problem_response
        from shared.security.webhooks import WebhookRefused, read_verified, refused_response

        spec, auth, parser = self.webhooks[path]
        try:
            body = await read_verified(request, auth)
        except WebhookRefused as exc:
            log.warning("tracking webhook refused", extra={"carrier": spec.name, "reason": exc.reason})
            return refused_response(exc, f"{spec.name} webhook")
        try:
            event = parser(orjson.loads(body))
        except (ValueError, KeyError, TypeError, orjson.JSONDecodeError) as exc:
            return problem_response(400, f"Invalid {spec.name} webhook", str(exc)[:200])
        applied = await self.tracker().apply(event)
        return Response(orjson.dumps({"status": 200, "error": False, "message": applied.action}),
                        media_type="application/json")

    async def poll(self) -> dict[str, int]:
        """`postal-poll`: each polled carrier's feed, stale shipments, the outbox, unconfirmed emits."""
        counts: dict[str, int] = {}
        for client in self.pollers().values():
            for k, v in (await self.tracker().poll(client)).items():
                counts[k] = counts.get(k, 0) + v
        return counts
