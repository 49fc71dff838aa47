"""How a provider call can end, besides success. The distinction decides failover (DESIGN.md).

- ProviderRejected: the provider answered and refused this message for good (a business outcome).
- ProviderUnavailable: the request certainly did not take effect (refused connection, 5xx/429 before
  acceptance): safe to fail over to the next provider.
- ProviderAmbiguous: the request may have taken effect (timeout after sending, reset, malformed reply):
  never failed over; retried at the same provider with the same client reference.
"""

from __future__ import annotations


class ProviderError(Exception):
    def __init__(self, provider: str, detail: str):
        super().__init__(f"{provider}: {detail}")
        self.provider = provider
        self.detail = detail


class ProviderRejected(ProviderError):
    def __init__(self, provider: str, reason: str, detail: str):
        super().__init__(provider, detail)
        self.reason = reason


class ProviderUnavailable(ProviderError):
    pass


class ProviderAmbiguous(ProviderError):
    pass
