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

from shared.integrations.errors import ProviderError
from shared.integrations.sms import receipts
from shared.integrations.sms.receipts import DELIVERY_UPDATED, Receipt, ReceiptBook
from shared.integrations.sms.schedule import Schedule
from shared.integrations.sms.settings import MobifoneSettings, ViettelSettings, VnptSettings
from shared.runtime.app import EventContext, FunctionApp
from shared.runtime.problem import problem_response
from shared.storage.redis import Keys, get_fast_redis, get_redis

log = logging.getLogger("dvci.sms.jobs")
REQUESTED = "vn.gov.dvc.sms.send.requested"
_PARSERS = {"vnpt": receipts.from_vnpt, "mobifone": receipts.from_mobifone}


class SmsJobs:
    def __init__(self, app: FunctionApp):
        self.app = app
        self.keys = Keys(app.settings.env)
        self.webhook_auth = {
            "vnpt": (VnptSettings().dlr_secret.get_secret_value(), _ips(VnptSettings().dlr_allow_ips)),
            "mobifone": (MobifoneSettings().dlr_secret.get_secret_value(), _ips(MobifoneSettings().dlr_allow_ips)),
        }
        self.viettel = ViettelSettings()

    def book(self) -> ReceiptBook:
        return ReceiptBook(get_fast_redis(), self.keys)

    def schedule(self) -> Schedule:
        return Schedule(get_redis(), self.keys)

    # -- receipts ----------------------------------------------------------------------------------
    async def receipt(self, r: Receipt) -> str:
        """Record one receipt; emit `delivery.updated` when the message's status moved forward."""
        outcome = await self.book().record(r)
        if outcome.action == "emit":
            ext = {"dossierid": outcome.dossier_id} if outcome.dossier_id else {}
            await self.app.emit(DELIVERY_UPDATED, {
                "provider": r.provider, "provider_message_id": r.provider_message_id, "to": outcome.to,
                "status": outcome.status, "carrier": outcome.carrier or None,
                "at": r.at or datetime.now(UTC).isoformat(timespec="seconds"),
                "event_source": outcome.event_source, "event_id": outcome.event_id},
                key=f"{r.provider}\x00{r.provider_message_id}\x00{outcome.status}", extensions=ext)
        return outcome.action

    async def webhook(self, provider: str, request: Request) -> Response:
        """POST /dlr/<provider>: authenticated (HMAC signature or IP allow-list), else 401 and nothing emitted."""
        body = await request.body()
        secret, ips = self.webhook_auth[provider]
        refused = receipts.verify(secret, ips, request.headers.get("x-dvci-signature"), body,
                                  request.client.host if request.client else None)
        if refused:
            log.warning("receipt webhook refused", extra={"provider": provider, "reason": refused})
            return problem_response(401, "Unauthenticated receipt", refused,
                                    type_uri="urn:dvci:problem:unauthenticated")
        try:
            r = _PARSERS[provider](orjson.loads(body))
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            return problem_response(400, "Malformed receipt", f"{provider} receipt not understood: {exc!r}",
                                    type_uri="urn:dvci:problem:malformed-receipt")
        action = await self.receipt(r)
        return Response(orjson.dumps({"status": action}), media_type="application/json")

    async def pull_viettel(self, now: float | None = None) -> dict[str, int]:
        """Viettel has no callback: its failures come from getFailSub; a message with no failure
        `delivered_after_s` after acceptance is reported delivered."""
        from shared.integrations.sms.viettel import ViettelSms

        now = now or time.time()
        client = ViettelSms(self.viettel)
        redis = get_redis()
        pending = self.keys.key("sms", "dlr", "viettel", "pending")
        counts = {"failed": 0, "delivered": 0}
        day = datetime.fromtimestamp(now, UTC).strftime("%Y%m%d")
        page = 1
        try:
            while True:
                total, subs = await client.fail_subs(day, page)
                for receiver, message in subs:
                    lookup = self.keys.key("sms", "dlr", "viettel", "fs", receipts.failsub_digest(receiver, message))
                    msg_id = await redis.get(lookup)
                    if msg_id is None:
                        continue
                    mid = _text(msg_id)
                    if await self.receipt(Receipt("viettel", mid, "failed")) == "emit":
                        counts["failed"] += 1
                    await redis.zrem(pending, mid)
                if page * 500 >= total or not subs:
                    break
                page += 1
        except ProviderError as exc:
            log.warning("Viettel receipt pull failed; delivered-inference postponed", extra={"error": exc.detail})
            return counts
        ripe = await redis.zrangebyscore(pending, "-inf", (now - self.viettel.delivered_after_s) * 1000)
        for raw in ripe:
            mid = _text(raw)
            if await self.receipt(Receipt("viettel", mid, "delivered")) == "emit":
                counts["delivered"] += 1
            await redis.zrem(pending, mid)
        return counts

    # -- Decree 91 -----------------------------------------------------------------------------------
    async def hold(self, ctx: EventContext, send_at: datetime) -> None:
        await self.schedule().add(ctx.event, send_at)

    async def drain(self, now: datetime | None = None) -> int:
        """Re-publish the advertising whose window has opened; the new id is fixed by the original."""
        schedule = self.schedule()
        sent = 0
        for member, event in await schedule.due(now or datetime.now(UTC)):
            ext = {k: v for k, v in event.extensions.items() if k in ("dossierid", "traceparent", "partitionkey")}
            await self.app.emit(REQUESTED, event.data, key=f"{event.source}\x00{event.id}\x00scheduled",
                                extensions=ext)
            await schedule.done(member)
            sent += 1
        return sent


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _ips(text: str) -> list[str]:
    return [p.strip() for p in text.split(",") if p.strip()]


async def run_job(jobs: SmsJobs, job: str) -> dict[str, Any]:
    if job == "sms-advertising-drain":
        return {"drained": await jobs.drain()}
    if job == "sms-viettel-receipts":
        return await jobs.pull_viettel()
    raise ValueError(job)

