"""Sending one SMS with exactly-once effect: validate, admit, call, retry, fail over, resolve.

The function's handler calls `SmsService.send`; the outcome is `Accepted` or `Failed` (business
outcomes); errors the broker must retry (409/429/503) are raised.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from dataclasses import dataclass

from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_attempt, stop_after_delay
from tenacity.wait import wait_random_exponential

from shared.integrations.errors import ProviderAmbiguous, ProviderRejected, ProviderUnavailable
from shared.integrations.sms import FailureReason, ProviderReceipt, SmsMessage, SmsProvider, encoding
from shared.integrations.sms.catalogue import Catalogue
from shared.integrations.sms.numbers import InvalidNumber, normalise
from shared.observability import metrics
from shared.reliability.pipeline import Admission, Pipeline
from shared.runtime.app import EventContext
from shared.runtime.errors import ProvidersUnavailable

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
class Failed:
    to: str
    reason: FailureReason
    detail: str


def reference_for(ctx: EventContext) -> str:
    """The client reference sent to providers: fixed by (source, id), so redeliveries carry the same."""
    return hashlib.sha256(f"{ctx.event.source}\x00{ctx.event.id}".encode()).hexdigest()[:24]


def recipient_id(msisdn: str, category: str) -> str:
    """A keyed digest of the number: Redis keys never hold a phone number in clear."""
    return hashlib.sha256(f"rcpt\x00{msisdn}".encode()).hexdigest()[:24] + ":" + category


class SmsService:
    def __init__(self, providers: dict[str, SmsProvider], catalogue: Catalogue, pipeline: Pipeline,
                 ambiguous_attempts: int = 3):
        self.providers = providers
        self.catalogue = catalogue
        self.pipeline = pipeline
        self.ambiguous_attempts = ambiguous_attempts

    async def send(self, ctx: EventContext, to: str, text: str, category: str, brandname: str) -> Accepted | Failed:
        try:
            msisdn = normalise(to)
        except InvalidNumber as exc:
            return Failed(to, FailureReason.invalid_recipient, str(exc))
        enc = encoding.detect(text)
        candidates = [p for p in self.catalogue.order if len(text) <= self.providers[p].max_chars]
        if not candidates:
            return Failed(msisdn.e164, FailureReason.content_too_long,
                          f"{len(text)} characters exceed every provider's maximum")
        message = SmsMessage(msisdn.e164, text, enc, encoding.segments(text, enc), reference_for(ctx),
                             brandname, category)
        limit = self.catalogue.recipient_limits.get(category)
        adm = await self.pipeline.admit(
            ctx, candidates, recipient=(recipient_id(msisdn.e164, category), limit) if limit else None)
        if adm.recipient_limited:
            return Failed(msisdn.e164, FailureReason.recipient_rate_limited,
                          f"at most {limit.rate:g} {category} messages per {limit.period_s:g}s to one number"
                          if limit else "recipient limit")
        ctx.log_fields["carrier"] = msisdn.carrier
        return await self._deliver(ctx, adm, message, candidates)

    async def _deliver(self, ctx: EventContext, adm: Admission, message: SmsMessage,
                       candidates: list[str]) -> Accepted | Failed:
        while adm.provider is not None:
            name = adm.provider
            provider = self.providers[name]
            ctx.log_fields["provider"] = name
            if adm.wait_ms > 0:
                await asyncio.sleep(adm.wait_ms / 1000)
            try:
                receipt = await (self._resolve(ctx, provider, message) if adm.takeover
                                 else self._send_retrying(ctx, provider, message))
            except ProviderRejected as exc:
                _count(name, "rejected")
                adm.result = (name, "ok")  # the provider works; the message was refused
                self._audit(adm, name, message, "rejected:" + exc.reason)
                return Failed(message.to, FailureReason(exc.reason), exc.detail)
            except ProviderUnavailable as exc:
                _count(name, "unavailable")
                log.warning("provider unavailable, failing over", extra={"provider": name, "error": exc.detail})
                remaining = candidates[candidates.index(name) + 1:]
                if await self.pipeline.failover(adm, name, remaining) is None:
                    raise ProvidersUnavailable(f"no SMS provider could take the message (last: {exc})") from exc
                adm.takeover = False
                continue
            except ProviderAmbiguous as exc:
                _count(name, "ambiguous")
                adm.result = (name, "fail")
                adm.ambiguous = name
                if adm.tries >= self.pipeline.config.max_ambiguous_tries:
                    self._audit(adm, name, message, "outcome_unknown")
                    return Failed(message.to, FailureReason.outcome_unknown,
                                  f"{name} did not confirm after {adm.tries} deliveries: {exc.detail}")
                raise ProvidersUnavailable(
                    f"{name} may have received the message ({exc.detail}); retry goes to the same provider",
                    retry_after=2.0) from exc
            adm.result = (name, "ok")
            self._audit(adm, name, message, "accepted")
            cost = message.segments * self.catalogue.price(name, message.encoding)
            if metrics.ENABLED:
                metrics.PROVIDER_CALLS.labels("sms", name, "ok").inc()
                metrics.SMS_SEGMENTS.labels(name, message.encoding).inc(message.segments)
                metrics.SMS_COST.labels(name).inc(cost)
            return Accepted(message.to, name, receipt.provider_message_id, message.segments, message.encoding,
                            cost)
        raise ProvidersUnavailable("no SMS provider available")

    async def _send_retrying(self, ctx: EventContext, provider: SmsProvider, message: SmsMessage) -> ProviderReceipt:
        """Fast transients only: an ambiguous answer is retried at the same provider, same reference."""
        try:  # the happy path pays nothing for the retry machinery
            return await provider.send(message)
        except ProviderAmbiguous:
            pass
        retrying = AsyncRetrying(
            retry=retry_if_exception_type(ProviderAmbiguous),
            stop=stop_after_attempt(self.ambiguous_attempts - 1) | stop_after_delay(max(0.1, ctx.remaining() - 1)),
            wait=wait_random_exponential(multiplier=0.05, max=0.5), reraise=True)
        async for attempt in retrying:
            with attempt:
                return await self._send_once(provider, message, maybe_sent=True)
        raise AssertionError("unreachable")

    @staticmethod
    async def _send_once(provider: SmsProvider, message: SmsMessage, *, maybe_sent: bool) -> ProviderReceipt:
        """One send. Once an earlier attempt may have reached the provider, a definitive refusal of a later
        attempt says nothing about the earlier one: it stays ambiguous (never a reason to fail over)."""
        try:
            return await provider.send(message)
        except ProviderUnavailable as exc:
            if maybe_sent:
                raise ProviderAmbiguous(exc.provider, f"retry refused ({exc.detail}) after an unconfirmed attempt"
                                        ) from exc
            raise

    async def _resolve(self, ctx: EventContext, provider: SmsProvider, message: SmsMessage) -> ProviderReceipt:
        """A takeover after a crash or an ambiguous answer: ask the provider, else re-send (it de-duplicates)."""
        try:
            receipt = await provider.status(message)
            if receipt is not None:
                return receipt
        except ProviderAmbiguous:
            pass
        except ProviderUnavailable as exc:
            raise ProviderAmbiguous(exc.provider, f"status query failed: {exc.detail}") from exc
        try:
            return await self._send_retrying(ctx, provider, message)
        except ProviderUnavailable as exc:  # the earlier delivery may have reached it: never fail over
            raise ProviderAmbiguous(exc.provider, f"re-send refused: {exc.detail}") from exc

    @staticmethod
    def _audit(adm: Admission, provider: str, message: SmsMessage, outcome: str) -> None:
        adm.audit = {"kind": "sms", "provider": provider, "ref": message.reference, "outcome": outcome,
                     "segments": message.segments}


def _count(provider: str, result: str) -> None:
    if metrics.ENABLED:
        metrics.PROVIDER_CALLS.labels("sms", provider, result).inc()


_services: dict[int, SmsService] = {}


def default_service() -> SmsService:
    """The process's service for the running loop: catalogue, the three gateways, Redis pipeline."""
    service = _services.get(id(asyncio.get_running_loop()))
    return service if service is not None else _build_service()


def _build_service() -> SmsService:
    from shared.integrations.sms.catalogue import load
    from shared.integrations.sms.mobifone import MobifoneSms
    from shared.integrations.sms.viettel import ViettelSms
    from shared.integrations.sms.vnpt import VnptSms
    from shared.reliability.settings import ReliabilitySettings
    from shared.runtime.settings import runtime_settings
    from shared.storage.redis import Keys, get_fast_redis

    catalogue = load()
    gateways: dict[str, SmsProvider] = {p.name: p for p in (ViettelSms(), VnptSms(), MobifoneSms())}
    pipeline = Pipeline(get_fast_redis(), Keys(runtime_settings().env), "sms", catalogue.policies,
                        ReliabilitySettings().idempotency())
    service = _services[id(asyncio.get_running_loop())] = SmsService(
        {name: gateways[name] for name in catalogue.policies}, catalogue, pipeline)
    return service
