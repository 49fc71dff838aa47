"""The SMS work that happens outside a send request: delivery-receipt webhooks, the Viettel receipt pull
and the Decree 91 drain (both cron-triggered through PingSources), all emitting to K_SINK."""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from shared.integrations.registry import load
from shared.integrations.sms import PulledReceipts, receipts
from shared.integrations.sms.providers import REGISTRY
from shared.integrations.sms.receipts import DELIVERY_UPDATED, Receipt, ReceiptBook
from shared.reliability.errors import ProviderError
from shared.reliability.keys import event_digest
from shared.reliability.outbox import Outbox
from shared.runtime.app import EventContext, FunctionApp
from shared.runtime.events import CloudEvent
from shared.runtime.problem import problem_response
from shared.runtime.times import to_rfc3339
from shared.security.crypto import default_crypto, is_encrypted
from shared.security.webhooks import WebhookRefused, read_verified, refused_response
from shared.storage.redis import Keys, get_fast_redis, get_redis

log = logging.getLogger("dvci.sms.jobs")
REQUESTED = "vn.gov.dvc.sms.send.requested"


class SmsJobs:
    def __init__(self, app: FunctionApp):
        self.app = app
        self.keys = Keys(app.settings.env)
        self.webhooks = {spec.webhook.path: (spec, spec.webhook_auth(app.settings.env), load(spec.webhook.parser))
                         for spec in REGISTRY.webhooks() if spec.webhook is not None}

    def serve_webhooks(self) -> None:
        """Route every provider's receipt webhook (from the registry) to `webhook`."""
        for path in self.webhooks:
            self.app.route(path)(self._route(path))

    def _route(self, path: str) -> Any:
        async def route(request: Request) -> Response:
            return await self.webhook(path, request)

        return route

    def book(self) -> ReceiptBook:
        return ReceiptBook(get_fast_redis(), self.keys)

    def schedule(self) -> Outbox:
        """Advertising held back by Decree 91 until its window opens."""
        return Outbox(get_redis(), self.keys.key("sms", "outbox", "decree91"))

    # -- receipts ----------------------------------------------------------------------------------
    async def receipt(self, r: Receipt) -> str:
        """Record one receipt; emit `delivery.updated` when the message's status moved forward."""
        book = self.book()
        outcome = await book.record(r)
        if outcome.action == "emit":
            ext = {"dossierid": outcome.dossier_id} if outcome.dossier_id else {}
            try:
                await self.app.emit(DELIVERY_UPDATED, {
                    "provider": r.provider, "provider_message_id": r.provider_message_id, "to": outcome.to,
                    "status": outcome.status, "carrier": outcome.carrier or None,
                    "at": to_rfc3339(r.at, lenient=True),  # providers send local time without an offset
                    "event_source": outcome.event_source, "event_id": outcome.event_id},
                    key=f"{r.provider}\x00{r.provider_message_id}\x00{outcome.status}", extensions=ext)
            except BaseException:  # not emitted: the receipt is not "seen", its retry emits it
                await book.undo(r, outcome)
                raise
        return outcome.action

    async def webhook(self, path: str, request: Request) -> Response:
        """POST <the provider's path>: authenticated (shared/security/webhooks.py), else 401 and nothing emitted."""
        spec, auth, parser = self.webhooks[path]
        try:
            body = await read_verified(request, auth)
        except WebhookRefused as exc:
            log.warning("receipt webhook refused", extra={"provider": spec.name, "reason": exc.reason})
            return refused_response(exc, "receipt")
        try:
            r = parser(orjson.loads(body))
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError) as exc:
            detail = f"{spec.name} receipt not understood: {type(exc).__name__}"
            return problem_response(400, "Malformed receipt", detail, type_uri="urn:dvci:problem:malformed-receipt")
        action = await self.receipt(r)
        return Response(orjson.dumps({"status": action}), media_type="application/json")

    async def pull_receipts(self, now: float | None = None) -> dict[str, int]:
        """Gateways with no callback (receipts="pull" in the registry, PulledReceipts: Viettel's getFailSub)
        report only failures; a message with no failure `delivered_after_s` after acceptance is delivered."""
        counts = {"failed": 0, "delivered": 0}
        for spec in REGISTRY:
            if spec.receipts == "pull":
                for k, v in (await self._pull(spec.name, spec.new_client(), now or time.time())).items():
                    counts[k] += v
        return counts

    async def _pull(self, name: str, client: PulledReceipts, now: float) -> dict[str, int]:
        redis = get_redis()
        pending = self.keys.key("sms", "dlr", name, "pending")
        counts = {"failed": 0, "delivered": 0}
        day = datetime.fromtimestamp(now, UTC).strftime("%Y%m%d")
        page = 1
        try:
            while True:
                total, subs = await client.fail_subs(day, page)
                for receiver, message in subs:
                    lookup = self.keys.key("sms", "dlr", name, "fs", receipts.failsub_digest(receiver, message))
                    msg_id = await redis.get(lookup)
                    if msg_id is None:
                        continue
                    mid = _text(msg_id)
                    if await self.receipt(Receipt(name, mid, "failed")) == "emit":
                        counts["failed"] += 1
                    await redis.zrem(pending, mid)
                if page * 500 >= total or not subs:
                    break
                page += 1
        except ProviderError as exc:
            log.warning("receipt pull failed; delivered-inference postponed",
                        extra={"provider": name, "error": exc.detail})
            return counts
        after_s = float(getattr(getattr(client, "settings", None), "delivered_after_s", 600))
        ripe = await redis.zrangebyscore(pending, "-inf", (now - after_s) * 1000)
        for raw in ripe:
            mid = _text(raw)
            if await self.receipt(Receipt(name, mid, "delivered")) == "emit":
                counts["delivered"] += 1
            await redis.zrem(pending, mid)
        return counts

    # -- Decree 91 -----------------------------------------------------------------------------------
    async def hold(self, ctx: EventContext, send_at: datetime) -> None:
        """Idempotent: the same event held twice is one entry."""
        event = ctx.event
        member = event_digest(event.source, event.id)
        sealed = await default_crypto().encrypt(orjson.dumps(event.to_dict()), b"sms.outbox:" + member.encode())
        await self.schedule().add(member, sealed.encode(), send_at.timestamp())

    async def drain(self, now: datetime | None = None) -> int:
        """Re-publish the advertising whose window has opened; the new id is fixed by the original."""
        schedule = self.schedule()
        sent = 0
        for member, payload in await schedule.due((now or datetime.now(UTC)).timestamp()):
            if is_encrypted(payload):  # held events carry the citizen's number: encrypted at rest
                payload = await default_crypto().decrypt(payload, b"sms.outbox:" + _text(member).encode())
            event = CloudEvent.from_dict(orjson.loads(payload))
            ext = {k: v for k, v in event.extensions.items() if k in ("dossierid", "traceparent", "partitionkey")}
            await self.app.emit(REQUESTED, event.data, key=f"{event.source}\x00{event.id}\x00scheduled",
                                extensions=ext)
            await schedule.done(member)
            sent += 1
        return sent


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
