"""SMS brandname: the `SmsProvider` protocol every gateway module implements, and its data types."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Literal, Protocol, runtime_checkable


class FailureReason(StrEnum):
    """The closed set of reasons in `vn.gov.dvc.sms.failed`."""

    invalid_recipient = "invalid_recipient"
    content_rejected = "content_rejected"
    content_too_long = "content_too_long"
    recipient_rate_limited = "recipient_rate_limited"
    outside_window = "outside_window"
    outcome_unknown = "outcome_unknown"
    provider_rejected = "provider_rejected"


Encoding = Literal["gsm7", "ucs2"]


@dataclass(frozen=True, slots=True)
class SmsMessage:
    """One MT as providers receive it; `reference` is the client reference providers de-duplicate on."""

    to: str  # 84xxxxxxxxx
    text: str
    encoding: Encoding
    segments: int
    reference: str
    brandname: str
    category: str
    carrier: str = "unknown"


@dataclass(frozen=True, slots=True)
class ProviderReceipt:
    provider: str
    provider_message_id: str


class SmsProvider(Protocol):
    """A gateway: send one MT; optionally look up what became of a reference."""

    name: str
    max_chars: int

    async def send(self, message: SmsMessage) -> ProviderReceipt:
        """Send; raise ProviderRejected / ProviderUnavailable / ProviderAmbiguous otherwise."""
        ...

    async def status(self, message: SmsMessage) -> ProviderReceipt | None:
        """The receipt of an earlier send of `message.reference`, None if the provider never took it.

        Raise ProviderAmbiguous when the provider offers no such query (the caller then re-sends with
        the same reference, which the provider de-duplicates)."""
        ...


@runtime_checkable
class BatchSms(Protocol):
    """A gateway with a many-recipient call (Viettel's wsCpMt4): bulk sends go through it in batches."""

    async def send_many(self, messages: list[SmsMessage]) -> dict[str, ProviderReceipt | Exception]:
        """One outcome per reference: a receipt or a ProviderRejected; the whole call may raise."""
        ...


@runtime_checkable
class PulledReceipts(Protocol):
    """A gateway that reports only failures, by (receiver, text), pulled by a job (Viettel's getFailSub)."""

    async def fail_subs(self, day: str, page: int = 1, page_size: int = 500) -> tuple[int, list[tuple[str, str]]]:
        ...
