"""Event models of send_email."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from shared.integrations.email import EmailFailure

REQUESTED = "vn.gov.dvc.email.send.requested"
SENT = "vn.gov.dvc.email.sent"
FAILED = "vn.gov.dvc.email.failed"
DELIVERY_UPDATED = "vn.gov.dvc.email.delivery.updated"


class AttachmentRef(BaseModel):
    model_config = ConfigDict(extra="forbid")

    s3_key: str = Field(min_length=1, max_length=1024, description="object-storage key (never a URL)")
    filename: str = Field(min_length=1, max_length=255)
    content_type: str = Field("application/octet-stream", max_length=127)


class EmailSendRequested(BaseModel):
    """A templated (or given) e-mail to citizens."""

    model_config = ConfigDict(extra="forbid")

    to: list[str] = Field(min_length=1, max_length=50)
    cc: list[str] = Field(default_factory=list, max_length=50)
    bcc: list[str] = Field(default_factory=list, max_length=50)
    template: str | None = Field(None, max_length=64)
    locale: Literal["vi", "en"] = "vi"
    params: dict[str, Any] = Field(default_factory=dict)
    subject: str | None = Field(None, max_length=998)
    text: str | None = None
    html: str | None = None
    attachments: list[AttachmentRef] = Field(default_factory=list, max_length=20)
    dossier_id: str | None = Field(None, max_length=64)

    @model_validator(mode="after")
    def template_or_content(self) -> EmailSendRequested:
        if self.template is None and not (self.subject and (self.text or self.html)):
            raise ValueError("give template (+ params), or subject with text and/or html")
        return self


class EmailSent(BaseModel):
    message_id: str
    provider: str
    to: list[str]


class EmailFailed(BaseModel):
    reason: EmailFailure
    detail: str


class EmailDeliveryUpdated(BaseModel):
    message_id: str | None
    provider: str
    provider_message_id: str | None
    to: str
    status: Literal["delivered", "bounced", "soft_bounced", "complained"]
    detail: str | None = None
    suppressed: bool
