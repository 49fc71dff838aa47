"""The one delivery loop of every kind: providers in admission order under the failover rules of
docs/architecture.md. A definitive failure (ProviderUnavailable) moves to the next provider; an ambiguous
one never does: it is retried at the same provider under the same client reference, and a takeover (a
redelivery after a crash or an ambiguous answer) first asks the provider what became of the request."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Protocol, TypeVar

from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_attempt, stop_after_delay
from tenacity.wait import wait_random_exponential

from shared.observability import metrics
from shared.reliability.errors import OutcomeUnknown, ProviderAmbiguous, ProviderRejected, ProviderUnavailable
from shared.reliability.pipeline import Admission, Pipeline
from shared.runtime.errors import ProvidersUnavailable

T = TypeVar("T")
T_co = TypeVar("T_co", covariant=True)
log = logging.getLogger("dvci.reliability")

__all__ = ["Delivery", "OutcomeUnknown", "deliver", "resolving_attempt"]


class Delivery(Protocol[T_co]):
    """One request, deliverable to any candidate provider under the same client reference."""

    async def send(self, provider: str) -> T_co:
        """Send; raise ProviderRejected / ProviderUnavailable / ProviderAmbiguous otherwise."""
        ...

    async def status(self, provider: str) -> T_co | None:
        """What became of an earlier send of this reference: its result, None if the provider never took
        it. Raise ProviderAmbiguous when the provider has no such query (the caller re-sends instead)."""
        ...


async def resolving_attempt(delivery: Delivery[T], provider: str, *, takeover: bool, attempts: int = 3,
                            remaining: Callable[[], float] | None = None) -> T:
    """One attempt at `provider`: on a takeover ask it first (else re-send: it de-duplicates); an ambiguous
    answer is retried here (fast transients only, within the request's deadline). Once an attempt may
    have reached the provider, a later refusal says nothing about it: it stays ambiguous."""
    if takeover:
        try:
            result = await delivery.status(provider)
            if result is not None:
                return result
        except ProviderAmbiguous:
            pass
        except ProviderUnavailable as exc:
            raise ProviderAmbiguous(exc.provider, f"status query failed: {exc.detail}") from exc
        return await _retrying(delivery, provider, attempts, remaining, maybe_sent=True)
    try:  # the happy path pays nothing for the retry machinery
        return await delivery.send(provider)
    except ProviderAmbiguous:
        if attempts <= 1:
            raise
    return await _retrying(delivery, provider, attempts - 1, remaining, maybe_sent=True)


async def _retrying(delivery: Delivery[T], provider: str, attempts: int, remaining: Callable[[], float] | None,
                    *, maybe_sent: bool) -> T:
    budget = max(0.1, (remaining() if remaining else 5.0) - 1)
    retrying = AsyncRetrying(retry=retry_if_exception_type(ProviderAmbiguous),
                             stop=stop_after_attempt(max(1, attempts)) | stop_after_delay(budget),
                             wait=wait_random_exponential(multiplier=0.05, max=0.5), reraise=True)
    async for attempt in retrying:
        with attempt:
            try:
                return await delivery.send(provider)
            except ProviderUnavailable as exc:
                if maybe_sent:
                    raise ProviderAmbiguous(exc.provider, f"retry refused ({exc.detail}) after an unconfirmed "
                                                          "attempt") from exc
                raise
    raise AssertionError("unreachable")


async def deliver(pipeline: Pipeline, adm: Admission, candidates: list[str], delivery: Delivery[T], *,
                  attempts: int = 3, remaining: Callable[[], float] | None = None) -> tuple[str, T]:
    """Deliver through the admitted provider, failing over down `candidates`; returns (provider, result).
    ProviderRejected propagates (the breaker told the provider works); OutcomeUnknown after
    `max_ambiguous_tries` deliveries; otherwise ProvidersUnavailable (503) for the broker to retry."""
    while adm.provider is not None:
        name = adm.provider
        if adm.wait_ms > 0:  # a reserved rate-limit slot (GCRA) a little in the future
            await asyncio.sleep(adm.wait_ms / 1000)
        try:
            result = await resolving_attempt(delivery, name, takeover=adm.takeover, attempts=attempts,
                                             remaining=remaining)
        except ProviderRejected:
            count(pipeline.kind, name, "rejected")
            adm.result = (name, "ok")
            raise
        except ProviderUnavailable as exc:
            count(pipeline.kind, name, "unavailable")
            log.warning("provider unavailable, failing over", extra={"provider": name, "error": exc.detail})
            if adm.takeover:  # the previous delivery may have reached it: never elsewhere
                adm.result, adm.ambiguous = (name, "fail"), name
                raise ProvidersUnavailable(f"{name} unavailable after an unconfirmed attempt ({exc.detail})") from exc
            remaining_candidates = candidates[candidates.index(name) + 1:] if name in candidates else []
            if await pipeline.failover(adm, name, remaining_candidates) is None:
                raise ProvidersUnavailable(f"no provider could take it (last: {exc})") from exc
            continue
        except ProviderAmbiguous as exc:
            count(pipeline.kind, name, "ambiguous")
            ambiguous(adm, name)
            if adm.tries >= pipeline.config.max_ambiguous_tries:
                raise OutcomeUnknown(name, f"{name} did not confirm after {adm.tries} deliveries: "
                                           f"{exc.detail}") from exc
            raise ProvidersUnavailable(f"{name} may have received it ({exc.detail}); the retry goes there again",
                                       retry_after=2.0) from exc
        count(pipeline.kind, name, "ok")
        adm.result = (name, "ok")
        return name, result
    raise ProvidersUnavailable("no provider available")


def ambiguous(adm: Admission, provider: str, *, report: bool = True) -> None:
    """Mark the claim as maybe delivered at `provider`: a redelivery goes back there (a takeover)."""
    adm.ambiguous = provider
    adm.result = (provider, "fail") if report else None


def count(kind: str, provider: str, result: str) -> None:
    if metrics.ENABLED:
        metrics.PROVIDER_CALLS.labels(kind, provider, result).inc()
