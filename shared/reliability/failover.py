"""Calling providers in admission order with the failover rules of DESIGN.md, for any integration kind:
a definitive failure moves to the next provider; an ambiguous one never does (the broker retries it at the
same provider, which the idempotency record remembers); a refusal is the caller's business outcome."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

from shared.integrations.errors import ProviderAmbiguous, ProviderRejected, ProviderUnavailable
from shared.observability import metrics
from shared.reliability.pipeline import Admission, Pipeline
from shared.runtime.errors import ProvidersUnavailable

T = TypeVar("T")
log = logging.getLogger("dvci.reliability")


class OutcomeUnknown(Exception):
    """Every delivery so far was ambiguous at the same provider: report `outcome_unknown`."""

    def __init__(self, provider: str, detail: str):
        super().__init__(detail)
        self.provider, self.detail = provider, detail


async def deliver(pipeline: Pipeline, adm: Admission, candidates: list[str],
                  attempt: Callable[[str, bool], Awaitable[T]]) -> tuple[str, T]:
    """`attempt(provider, takeover)` until one succeeds; returns (provider, result). ProviderRejected
    propagates (with the breaker told the provider works); the rest as DESIGN.md says."""
    while adm.provider is not None:
        name = adm.provider
        if adm.wait_ms > 0:  # a reserved rate-limit slot (GCRA) a little in the future
            await asyncio.sleep(adm.wait_ms / 1000)
        try:
            result = await attempt(name, adm.takeover)
        except ProviderRejected:
            _count(pipeline.kind, name, "rejected")
            adm.result = (name, "ok")
            raise
        except ProviderUnavailable as exc:
            _count(pipeline.kind, name, "unavailable")
            log.warning("provider unavailable, failing over", extra={"provider": name, "error": exc.detail})
            if adm.takeover:  # the previous delivery may have reached it: never elsewhere
                adm.result, adm.ambiguous = (name, "fail"), name
                raise ProvidersUnavailable(f"{name} unavailable after an unconfirmed attempt ({exc.detail})") from exc
            remaining = candidates[candidates.index(name) + 1:]
            if await pipeline.failover(adm, name, remaining) is None:
                raise ProvidersUnavailable(f"no provider could take it (last: {exc})") from exc
            continue
        except ProviderAmbiguous as exc:
            _count(pipeline.kind, name, "ambiguous")
            adm.result, adm.ambiguous = (name, "fail"), name
            if adm.tries >= pipeline.config.max_ambiguous_tries:
                raise OutcomeUnknown(name, f"{name} did not confirm after {adm.tries} deliveries: "
                                           f"{exc.detail}") from exc
            raise ProvidersUnavailable(f"{name} may have received it ({exc.detail}); the retry goes there again",
                                       retry_after=2.0) from exc
        _count(pipeline.kind, name, "ok")
        adm.result = (name, "ok")
        return name, result
    raise ProvidersUnavailable("no provider available")


def _count(kind: str, provider: str, result: str) -> None:
    if metrics.ENABLED:
        metrics.PROVIDER_CALLS.labels(kind, provider, result).inc()
