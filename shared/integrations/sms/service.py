"""Sending one SMS with exactly-once effect: validate, admit, call, retry, fail over, resolve.

The function's handler calls `SmsService.send`; the outcome is `Accepted` or `Failed` (business
outcomes); errors the broker must retry (409/429/503) are raised.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

import orjson

from shared.integrations.sms import (
    BatchSms,
    FailureReason,
    ProviderReceipt,
    PulledReceipts,
    SmsMessage,
    SmsProvider,
    decree91,
)
from shared.integrations.sms.catalogue import Catalogue
from shared.integrations.sms.content import ContentRejected, prepare
from shared.integrations.sms.numbers import InvalidNumber, normalise
from shared.integrations.sms.receipts import (
    CORRELATION_TTL_MS,
    ENCRYPTED_FIELDS,
    correlation_fields,
    correlation_key,
    failsub_digest,
    number_field,
    porting_key,
)
from shared.observability import metrics
from shared.reliability.errors import OutcomeUnknown, ProviderAmbiguous, ProviderRejected, ProviderUnavailable
from shared.reliability.failover import ambiguous, count, deliver
from shared.reliability.keys import event_digest
from shared.reliability.pipeline import Admission, Correlation, Hint, Pipeline, Reroute
from shared.runtime.app import EventContext, Replayed, stored
from shared.runtime.errors import ProvidersUnavailable
from shared.runtime.events import CloudEvent
from shared.runtime.loops import per_loop
from shared.security.crypto import blind_index

log = logging.getLogger("dvci.sms")


@dataclass(frozen=True, slots=True)
class Accepted:
    to: str
    provider: str
    provider_message_id: str
    segments: int
    encoding: str
    cost_vnd: float


@dataclass(frozen=True, slots=True)
class Scheduled:
    """Advertising outside the Decree 91 window: kept and sent when the window opens."""

    to: str
    send_at: datetime


@dataclass(frozen=True, slots=True)
class SmsRequest:
    to: str
    text: str | None = None
    template_id: str | None = None
    params: dict[str, Any] | None = None
    category: str = "transactional"
    brandname: str | None = None
    unsigned: bool | None = None


@dataclass(frozen=True, slots=True)
class BulkItem:
    """One recipient's outcome in a bulk send."""

    index: int
    to: str
    status: str  # accepted | failed
    provider: str | None = None
    provider_message_id: str | None = None
    segments: int = 0
    cost_vnd: float = 0.0
    reason: str | None = None
    detail: str | None = None


@dataclass(slots=True)
class _Child:
    ctx: EventContext
    adm: Admission
    message: SmsMessage
    candidates: list[str]


@dataclass(frozen=True, slots=True)
class Failed:
    to: str
    reason: FailureReason
    detail: str


def reference_for(ctx: EventContext) -> str:
    """The client reference sent to providers: fixed by (source, id), so redeliveries carry the same."""
    return event_digest(*ctx.event.key_parts(), length=24)


def recipient_id(msisdn: str, category: str) -> str:
    """A keyed digest of the number: Redis keys never hold a phone number in clear."""
    return blind_index("sms.rcpt", msisdn, length=24) + ":" + category


class SmsService:
    def __init__(self, providers: dict[str, SmsProvider], catalogue: Catalogue, pipeline: Pipeline,
                 ambiguous_attempts: int = 3, clock: Callable[[], datetime] | None = None):
        self.clock = clock or (lambda: datetime.now(UTC))
        self.providers = providers
        self.catalogue = catalogue
        self.pipeline = pipeline
        self.ambiguous_attempts = ambiguous_attempts

    async def send(self, ctx: EventContext, req: SmsRequest) -> Accepted | Failed | Scheduled:
        outcome = await self._admit(ctx, req)
        if isinstance(outcome, _Child):
            return await self._deliver(ctx, outcome.adm, outcome.message, outcome.candidates)
        return outcome

    async def _admit(self, ctx: EventContext, req: SmsRequest) -> _Child | Failed | Scheduled:
        """Everything before the provider call: number, content, Decree 91, route, admission."""
        try:
            msisdn = normalise(req.to)
        except InvalidNumber as exc:
            return Failed(req.to, FailureReason.invalid_recipient, str(exc))
        try:
            content = prepare(text=req.text, template_id=req.template_id, params=req.params, category=req.category,
                              brandname=req.brandname, unsigned=req.unsigned)
        except ContentRejected as exc:
            return Failed(msisdn.e164, FailureReason.content_rejected, str(exc))
        if req.category == "advertising":
            send_at = decree91.next_allowed(self.clock())
            if send_at is not None:
                return Scheduled(msisdn.e164, send_at)
        able = [p for p in self.catalogue.order if len(content.text) <= self.providers[p].max_chars]
        if not able:
            return Failed(msisdn.e164, FailureReason.content_too_long,
                          f"{len(content.text)} characters exceed every provider's maximum")
        candidates = self.catalogue.ranked(able, content.encoding, msisdn.carrier, req.category, content.segments)
        message = SmsMessage(msisdn.e164, content.text, content.encoding, content.segments, reference_for(ctx),
                             content.brandname, req.category, msisdn.carrier)
        limit = self.catalogue.recipient_limits.get(req.category)
        recipient = (recipient_id(msisdn.e164, req.category), limit)
        porting = Hint(porting_key(self.pipeline.keys), number_field(msisdn.e164), msisdn.carrier)
        try:
            adm = await self.pipeline.admit(ctx, candidates, recipient=recipient, hint=porting)
        except Reroute as ported:  # the number moved carrier: route for the carrier it is on now
            message = replace(message, carrier=ported.value)
            candidates = self.catalogue.ranked(able, content.encoding, ported.value, req.category,
                                               content.segments)
            adm = await self.pipeline.admit(ctx, candidates, recipient=recipient)
        if adm.recipient_limited:
            return Failed(msisdn.e164, FailureReason.recipient_rate_limited,
                          f"at most {limit.rate:g} {req.category} messages per {limit.period_s:g}s to one number"
                          if limit else "recipient limit")
        ctx.log_fields["carrier"] = message.carrier
        return _Child(ctx, adm, message, candidates)

    # -- bulk ----------------------------------------------------------------------------------------
    async def send_bulk(self, ctx: EventContext, recipients: list[tuple[str, dict[str, Any] | None]],
                        base: SmsRequest, concurrency: int = 64) -> list[BulkItem]:
        """Every recipient is its own idempotent send (child id `<event id>#<index>`); recipients routed to
        Viettel go out in wsCpMt4 calls of up to 100. A redelivered bulk replays finished recipients and
        retries only the rest; a transient failure of any recipient raises for the broker to retry."""
        sem = asyncio.Semaphore(concurrency)
        items: dict[int, BulkItem] = {}
        children: dict[int, _Child] = {}

        async def admit(i: int, to: str, params: dict[str, Any] | None) -> None:
            async with sem:
                req = replace(base, to=to, params={**(base.params or {}), **(params or {})} or None)
                event = CloudEvent(id=f"{ctx.event.id}#{i}", source=ctx.event.source, type=ctx.event.type,
                                   extensions=ctx.event.extensions,
                                   derived=(*ctx.event.key_parts(), "bulk", str(i)),  # never a single event's
                                   data={"to": to, "text": req.text, "template_id": req.template_id,
                                         "params": req.params, "category": req.category, "brandname": req.brandname})
                cctx = EventContext(event, ctx.app, ctx.deadline)
                try:
                    outcome = await self._admit(cctx, req)
                except Replayed as rep:
                    items[i] = BulkItem(**orjson.loads(rep.response.body))
                    return
                if isinstance(outcome, _Child):
                    children[i] = outcome
                elif isinstance(outcome, Failed):
                    items[i] = BulkItem(i, outcome.to, "failed", reason=outcome.reason, detail=outcome.detail)
                else:
                    items[i] = BulkItem(i, outcome.to, "failed", reason=FailureReason.outside_window,
                                        detail=f"advertising may be sent from {outcome.send_at.isoformat()}")
                if cctx.claim is not None and i in items:  # a recipient-limited outcome holds a claim
                    await cctx.claim.complete(_blob(items[i]))

        try:
            await asyncio.gather(*(admit(i, to, params) for i, (to, params) in enumerate(recipients)))
            # gateways with a many-recipient call (BatchSms: Viettel's wsCpMt4) take their recipients in batches
            batched = [i for i, c in children.items() if c.adm.provider is not None and not c.adm.takeover
                       and isinstance(self.providers[c.adm.provider], BatchSms)]
            groups: dict[tuple[str, str, str], list[int]] = {}
            for i in batched:
                c = children[i]
                groups.setdefault((str(c.adm.provider), c.message.brandname, c.message.encoding), []).append(i)
            tasks = [self._batch(children, chunk, items) for idx in groups.values()
                     for chunk in (idx[k:k + 100] for k in range(0, len(idx), 100))]
            singles = [i for i in children if i not in batched]

            async def single(i: int) -> None:
                async with sem:
                    c = children[i]
                    items[i] = _item(i, await self._deliver(c.ctx, c.adm, c.message, c.candidates))

            await asyncio.gather(*tasks, *(single(i) for i in singles))
        except BaseException as exc:
            for i, c in children.items():  # finished recipients keep their outcome; the rest run again
                if i in items:
                    await c.adm.complete(_blob(items[i]))
                else:
                    await c.adm.release(exc)
            raise
        for i, c in children.items():
            await c.adm.complete(_blob(items[i]))
        return [items[i] for i in range(len(recipients))]

    async def _batch(self, children: dict[int, _Child], chunk: list[int], items: dict[int, BulkItem]) -> None:
        """One many-recipient call: refused -> each recipient fails over on its own; ambiguous -> every
        recipient goes back to the same gateway; else one outcome per recipient."""
        name = str(children[chunk[0]].adm.provider)
        gateway = self.providers[name]
        assert isinstance(gateway, BatchSms)
        try:
            results = await gateway.send_many([children[i].message for i in chunk])
        except ProviderUnavailable:
            count("sms", name, "unavailable")
            for n, i in enumerate(chunk):  # nothing was sent: each recipient fails over on its own
                c = children[i]
                rest = c.candidates[c.candidates.index(name) + 1:]
                # one refused call is one failure for the breaker, however many recipients it carried
                if await self.pipeline.failover(c.adm, name, rest, count=n == 0) is None:
                    raise
                items[i] = _item(i, await self._deliver(c.ctx, c.adm, c.message, c.candidates))
            return
        except ProviderAmbiguous as exc:
            count("sms", name, "ambiguous")
            for n, i in enumerate(chunk):  # one call is one breaker failure, however many it carried
                ambiguous(children[i].adm, name, report=n == 0)
            raise ProvidersUnavailable(f"{name} may have received {len(chunk)} message(s) ({exc.detail}); "
                                       f"the retry goes to {name} with the same references", retry_after=2.0) from exc
        for i in chunk:
            c, r = children[i], results[children[i].message.reference]
            c.adm.result = (name, "ok")
            if isinstance(r, ProviderRejected):
                count("sms", name, "rejected")
                items[i] = BulkItem(i, c.message.to, "failed", name, reason=r.reason, detail=r.detail)
                continue
            if not isinstance(r, ProviderReceipt):
                raise ProviderAmbiguous(name, f"unexpected batch outcome {type(r).__name__}")
            count("sms", name, "ok")
            items[i] = _item(i, self._accepted(c.ctx, c.adm, name, r, c.message))

    async def _deliver(self, ctx: EventContext, adm: Admission, message: SmsMessage,
                       candidates: list[str]) -> Accepted | Failed:
        """The providers in admission order under the shared failover loop (shared/reliability/failover.py)."""
        try:
            name, receipt = await deliver(self.pipeline, adm, candidates, _SmsDelivery(self, ctx, message),
                                          attempts=self.ambiguous_attempts, remaining=ctx.remaining)
        except ProviderRejected as exc:  # the provider works; the message was refused
            self._audit(adm, exc.provider, message, "rejected:" + exc.reason)
            return Failed(message.to, FailureReason(exc.reason), exc.detail)
        except OutcomeUnknown as exc:
            self._audit(adm, exc.provider, message, "outcome_unknown")
            return Failed(message.to, FailureReason.outcome_unknown, exc.detail)
        return self._accepted(ctx, adm, name, receipt, message)

    def _accepted(self, ctx: EventContext, adm: Admission, name: str, receipt: ProviderReceipt,
                  message: SmsMessage) -> Accepted:
        """What every accepted message leaves behind: cost, audit, receipt correlation, spend metrics."""
        cost = message.segments * self.catalogue.price(name, message.encoding, message.carrier, message.category)
        self._audit(adm, name, message, "accepted", cost)
        adm.correlation = self._correlation(ctx, name, receipt.provider_message_id, message)
        if metrics.ENABLED:
            metrics.SMS_SEGMENTS.labels(name, message.encoding).inc(message.segments)
            metrics.SMS_COST.labels(name).inc(cost)
        return Accepted(message.to, name, receipt.provider_message_id, message.segments, message.encoding, cost)

    def _correlation(self, ctx: EventContext, provider: str, message_id: str, message: SmsMessage) -> Correlation:
        """Stored with the completion, so a delivery receipt finds its event (no extra round trip)."""
        keys = self.pipeline.keys
        fields = correlation_fields(message.to, message.segments, message.carrier, ctx.event.source, ctx.event.id,
                                    ctx.event.extensions.get("dossierid"))
        c = Correlation(correlation_key(keys, provider, message_id), fields, CORRELATION_TTL_MS, message_id,
                        encrypted=ENCRYPTED_FIELDS)
        if isinstance(self.providers[provider], PulledReceipts):  # reports name (receiver, text), not our id
            c.lookup_key = keys.key("sms", "dlr", provider, "fs", failsub_digest(message.to, message.text))
            c.pending_key = keys.key("sms", "dlr", provider, "pending")
        return c

    @staticmethod
    def _audit(adm: Admission, provider: str, message: SmsMessage, outcome: str, cost: float = 0.0) -> None:
        adm.audit = {"kind": "sms", "provider": provider, "ref": message.reference, "outcome": outcome,
                     "segments": message.segments, "carrier": message.carrier, "category": message.category,
                     "encoding": message.encoding, "cost_vnd": cost}


@dataclass(frozen=True, slots=True)
class _SmsDelivery:
    """One MT as a `Delivery`: the same message and reference at whichever gateway is asked."""

    service: SmsService
    ctx: EventContext
    message: SmsMessage

    async def send(self, provider: str) -> ProviderReceipt:
        self.ctx.log_fields["provider"] = provider
        return await self.service.providers[provider].send(self.message)

    async def status(self, provider: str) -> ProviderReceipt | None:
        self.ctx.log_fields["provider"] = provider
        return await self.service.providers[provider].status(self.message)


def _blob(item: BulkItem) -> bytes:
    """A recipient's outcome in the idempotency record's format (replayed on a redelivered bulk)."""
    return stored(200, {}, orjson.dumps(item))


def _item(index: int, outcome: Accepted | Failed) -> BulkItem:
    if isinstance(outcome, Accepted):
        return BulkItem(index, outcome.to, "accepted", outcome.provider, outcome.provider_message_id,
                        outcome.segments, outcome.cost_vnd)
    return BulkItem(index, outcome.to, "failed", reason=outcome.reason, detail=outcome.detail)


def _build_service() -> SmsService:
    from shared.integrations.sms.catalogue import load
    from shared.integrations.sms.providers import REGISTRY
    from shared.reliability.settings import ReliabilitySettings
    from shared.runtime.settings import runtime_settings
    from shared.storage.redis import Keys, get_fast_redis

    catalogue = load()
    missing = [name for name in catalogue.policies if name not in REGISTRY]
    if missing:
        raise LookupError(f"the SMS catalogue names providers with no registry entry: {', '.join(missing)}")
    pipeline = Pipeline(get_fast_redis(), Keys(runtime_settings().env), "sms", catalogue.policies,
                        ReliabilitySettings().idempotency())
    gateways: dict[str, SmsProvider] = {name: REGISTRY.get(name).new_client() for name in catalogue.policies}
    return SmsService(gateways, catalogue, pipeline)


default_service: per_loop[SmsService] = per_loop(_build_service)
"""The process's service for the running event loop (built on first use, after any fork)."""
