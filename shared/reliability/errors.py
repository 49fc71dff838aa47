"""The failure vocabulary of every provider call, whatever the kind. The distinction decides failover
(docs/architecture.md, "Reliability semantics"):

- ProviderRejected: the provider answered and refused this request for good (a business outcome).
- ProviderUnavailable: the request certainly did not take effect (refused connection, 5xx/429 before
  acceptance): safe to fail over to the next provider.
- ProviderAmbiguous: the request may have taken effect (timeout after sending, reset, malformed reply):
  never failed over; resolved by the provider's status query or re-sent with the same client reference.
- OutcomeUnknown: every delivery so far was ambiguous at the same provider; the caller reports it.
"""

from __future__ import annotations


class ProviderError(Exception):
    def __init__(self, provider: str, detail: str):
        super().__init__(f"{provider}: {detail}")
        self.provider = provider
        self.detail = detail


class ProviderRejected(ProviderError):
    """Refused for good; `reason` is the kind's failure reason (its closed vocabulary)."""

    def __init__(self, provider: str, reason: str, detail: str):
        super().__init__(provider, detail)
        self.reason = reason


class ProviderUnavailable(ProviderError):
    """Certainly not taken: fail over (unless an earlier attempt may have reached this provider)."""


class ProviderAmbiguous(ProviderError):
    """Maybe taken: never fail over; ask the provider or re-send under the same reference."""


class OutcomeUnknown(ProviderError):
    """Every delivery was ambiguous at the same provider, `max_ambiguous_tries` times."""
