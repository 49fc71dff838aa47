"""E-mail: the `EmailProvider` protocol (SMTP, Amazon SES), its data types and failure reasons."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol


class EmailFailure(StrEnum):
    """The closed set of reasons in `vn.gov.dvc.email.failed`."""

    invalid_recipient = "invalid_recipient"
    template_error = "template_error"
    attachment_too_large = "attachment_too_large"
    attachment_missing = "attachment_missing"
    suppressed = "suppressed"
    content_rejected = "content_rejected"
    outcome_unknown = "outcome_unknown"


@dataclass(frozen=True, slots=True)
class Envelope:
    """What a provider sends: the envelope and the exact bytes of the MIME message."""

    sender: str
    recipients: list[str]
    raw: bytes
    message_id: str


@dataclass(frozen=True, slots=True)
class EmailReceipt:
    provider: str
    provider_message_id: str


class EmailProvider(Protocol):
    name: str

    async def send(self, envelope: Envelope) -> EmailReceipt:
        """Send the raw MIME; raise ProviderRejected / ProviderUnavailable / ProviderAmbiguous otherwise."""
        ...

    async def status(self, envelope: Envelope) -> EmailReceipt | None:
        """What became of an earlier send of this Message-ID; raise ProviderAmbiguous when the provider
        cannot say (SMTP and SES cannot: a takeover re-sends the same bytes)."""
        ...
