"""Event models of send_sms."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from shared.integrations.sms import FailureReason

REQUESTED = "vn.gov.dvc.sms.send.requested"
ACCEPTED = "vn.gov.dvc.sms.accepted"
FAILED = "vn.gov.dvc.sms.failed"
SCHEDULED = "vn.gov.dvc.sms.scheduled"
BULK_REQUESTED = "vn.gov.dvc.sms.bulk.requested"
BULK_COMPLETED = "vn.gov.dvc.sms.bulk.completed"
DELIVERY_UPDATED = "vn.gov.dvc.sms.delivery.updated"


class SmsSendRequested(BaseModel):
    """Send one SMS to a citizen: free `text`, or a registered `template_id` with `params`."""

    model_config = ConfigDict(extra="forbid")

    to: str = Field(min_length=1, max_length=32, description="0912345678, +84912345678 or 84912345678")
    text: str | None = Field(None, min_length=1, max_length=1600)
    template_id: str | None = Field(None, max_length=64)
    params: dict[str, Any] | None = None
    category: Literal["transactional", "otp", "advertising"] = "transactional"
    brandname: str | None = Field(None, max_length=11)
    unsigned: bool | None = Field(None, description="strip diacritics (default: the category's policy)")
    dossier_id: str | None = Field(None, max_length=64)

    @model_validator(mode="after")
    def text_or_template(self) -> SmsSendRequested:
        if (self.text is None) == (self.template_id is None):
            raise ValueError("exactly one of text or template_id is required")
        return self


class SmsAccepted(BaseModel):
    to: str
    provider: str
    provider_message_id: str
    segments: int
    encoding: Literal["gsm7", "ucs2"]
    cost_vnd: float


class SmsFailed(BaseModel):
    to: str
    reason: FailureReason
    detail: str


class SmsScheduled(BaseModel):
    to: str
    send_at: datetime
    reason: str = "Decree 91/2020: advertising only between 07:00 and 22:00 (Asia/Ho_Chi_Minh)"


class BulkRecipient(BaseModel):
    model_config = ConfigDict(extra="forbid")

    to: str = Field(min_length=1, max_length=32)
    params: dict[str, Any] | None = None


class SmsBulkRequested(BaseModel):
    """The same text (or template, with per-recipient params) to up to 1,000 recipients."""

    model_config = ConfigDict(extra="forbid")

    recipients: list[BulkRecipient] = Field(min_length=1, max_length=1000)
    text: str | None = Field(None, min_length=1, max_length=1600)
    template_id: str | None = Field(None, max_length=64)
    params: dict[str, Any] | None = None
    category: Literal["transactional", "otp", "advertising"] = "transactional"
    brandname: str | None = Field(None, max_length=11)
    unsigned: bool | None = None

    @model_validator(mode="after")
    def text_or_template(self) -> SmsBulkRequested:
        if (self.text is None) == (self.template_id is None):
            raise ValueError("exactly one of text or template_id is required")
        return self


class BulkResult(BaseModel):
    to: str
    status: Literal["accepted", "failed"]
    provider: str | None = None
    provider_message_id: str | None = None
    segments: int = 0
    cost_vnd: float = 0.0
    reason: FailureReason | None = None
    detail: str | None = None


class SmsBulkCompleted(BaseModel):
    total: int
    accepted: int
    failed: int
    cost_vnd: float
    results: list[BulkResult]


class SmsDeliveryUpdated(BaseModel):
    """A delivery receipt, normalised across providers (emitted to K_SINK)."""

    provider: str
    provider_message_id: str
    to: str
    status: Literal["delivered", "failed", "expired", "unknown"]
    carrier: str | None = None
    at: str
    event_source: str | None = Field(None, description="source of the send.requested event")
    event_id: str | None = Field(None, description="id of the send.requested event")
