"""Event models of send_email."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from shared.integrations.email import EmailFailure
from shared.integrations.email.mime import ATTACHMENT_TYPES, has_control

REQUESTED = "vn.gov.dvc.email.send.requested"
SENT = "vn.gov.dvc.email.sent"
FAILED = "vn.gov.dvc.email.failed"
DELIVERY_UPDATED = "vn.gov.dvc.email.delivery.updated"


class AttachmentRef(BaseModel):
    model_config = ConfigDict(extra="forbid")

    s3_key: str = Field(min_length=1, max_length=1024, description="object-storage key (never a URL)")
    filename: str = Field(min_length=1, max_length=255)
    content_type: str = Field("application/octet-stream", max_length=127)

    @field_validator("filename")
    @classmethod
    def plain_filename(cls, value: str) -> str:
        if has_control(value):
            raise ValueError("control characters (CR, LF, ...) are not allowed in a file name")
        return value

    @field_validator("content_type")
    @classmethod
    def allowed_type(cls, value: str) -> str:
        if value.lower() not in ATTACHMENT_TYPES:
            raise ValueError("not an allowed attachment type: " + ", ".join(sorted(ATTACHMENT_TYPES)))
        return value.lower()


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

    @field_validator("subject")
    @classmethod
    def one_line_subject(cls, value: str | None) -> str | None:
        if value is not None and has_control(value):
            raise ValueError("control characters (CR, LF, ...) are not allowed in a subject")
        return value

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
