"""Event models of send_sms."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from shared.integrations.sms import FailureReason

REQUESTED = "vn.gov.dvc.sms.send.requested"
ACCEPTED = "vn.gov.dvc.sms.accepted"
FAILED = "vn.gov.dvc.sms.failed"


class SmsSendRequested(BaseModel):
    """Send one SMS to a citizen."""

    model_config = ConfigDict(extra="forbid")

    to: str = Field(min_length=1, max_length=32, description="0912345678, +84912345678 or 84912345678")
    text: str = Field(min_length=1, max_length=1600)
    category: Literal["transactional", "otp", "advertising"] = "transactional"
    brandname: str | None = Field(None, max_length=11)
    dossier_id: str | None = Field(None, max_length=64)


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
