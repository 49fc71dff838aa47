"""Signing: PAdES (PDF) and XAdES (XML) with keys in a PKCS#11 token or at a remote signing service.

Two kinds of signer, one rule: a different key is a different legal act, so signing never fails over
between signers (a single candidate per request).

- `Signer` (immediate): the key is at hand (PKCS#11 token): `cms_signer(key_label)` gives a pyHanko signer.
- `RemoteSigner` (VNPT SmartCA, Viettel MySign): signs a hash after the official confirms on a phone:
  `certificate()` first, `request()` sends the hash under our transaction id (the provider de-duplicates
  it), `status()` asks what became of it; the answer also arrives by webhook (`parse_webhook`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, Protocol

Failure = Literal["invalid_document", "key_not_found", "certificate_expired", "certificate_revoked",
                  "certificate_untrusted", "user_rejected", "user_timeout", "outcome_unknown"]


class Signer(Protocol):
    """A signer whose key signs at once (PKCS#11)."""

    name: str

    def session(self) -> Any:
        """An async context manager holding one token session for one signature."""
        ...

    async def signer(self, session: Any, key_label: str) -> Any:
        """The pyHanko signer of `key_label` (ProviderRejected `key_not_found` when absent)."""
        ...


@dataclass(frozen=True, slots=True)
class RemoteCertificate:
    cert: Any  # asn1crypto x509.Certificate
    chain: list[Any]
    credential_id: str


@dataclass(frozen=True, slots=True)
class RemoteResult:
    """What became of a remote signing request: `signed` (with the raw signature value), `rejected` by the
    official, `pending` still waiting, or `expired` at the provider."""

    status: Literal["signed", "rejected", "pending", "expired"]
    signature: bytes | None = None
    detail: str = ""


class RemoteSigner(Protocol):
    name: str

    async def certificate(self, user_id: str, credential_id: str | None) -> RemoteCertificate: ...

    async def request(self, transaction_id: str, user_id: str, credential_id: str, digest: bytes,
                      description: str) -> str:
        """Ask the official to sign `digest` (SHA-256); returns the provider's reference."""
        ...

    async def status(self, transaction_id: str, provider_ref: str) -> RemoteResult: ...

    def parse_webhook(self, body: bytes) -> tuple[str, RemoteResult]:
        """(our transaction id, result) from a callback body."""
        ...
