"""Event models of sign_document."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

REQUESTED = "vn.gov.dvc.document.sign.requested"
SIGNED = "vn.gov.dvc.document.signed"
PENDING = "vn.gov.dvc.document.sign.pending"
FAILED = "vn.gov.dvc.document.sign.failed"
VERIFY_REQUESTED = "vn.gov.dvc.document.verify.requested"
VERIFIED = "vn.gov.dvc.document.verified"

SignFailure = Literal["invalid_document", "key_not_found", "certificate_expired", "certificate_revoked",
                      "certificate_untrusted", "user_rejected", "user_timeout", "outcome_unknown"]
Level = Literal["B-B", "B-T", "B-LT", "B-LTA"]
ContentType = Literal["application/pdf", "application/xml"]


class DocumentRef(BaseModel):
    model_config = ConfigDict(extra="forbid")

    s3_key: str = Field(min_length=1, max_length=1024, description="object-storage key (never a URL)")
    content_type: ContentType


class SignerRef(BaseModel):
    model_config = ConfigDict(extra="forbid")

    method: Literal["hsm", "smartca", "mysign"]
    key_label: str | None = Field(None, max_length=64, description="hsm: the key's label on the token")
    user_id: str | None = Field(None, max_length=64, description="remote: the official's account (CCCD)")
    credential_id: str | None = Field(None, max_length=128, description="remote: which of the official's certs")

    @field_validator("key_label")
    @classmethod
    def _label(cls, v: str | None) -> str | None:
        return v.strip() if v else v


class AppearanceRef(BaseModel):
    model_config = ConfigDict(extra="forbid")

    page: int = Field(-1, description="page index from 0; -1 = the last page")
    box: tuple[int, int, int, int] = Field((360, 40, 570, 110), description="x1, y1, x2, y2 in points")
    text: str | None = Field(None, max_length=500, description="extra lines under 'Ký bởi' / 'Ngày ký'")


class SignRequested(BaseModel):
    """Sign a document stored in object storage, with an agency key (hsm) or by an official (remote)."""

    model_config = ConfigDict(extra="forbid")

    dossier_id: str = Field(min_length=1, max_length=64)
    document: DocumentRef
    output_key: str | None = Field(None, max_length=1024, description="default: signed/<dossier>/<event digest>")
    signer: SignerRef
    level: Level = "B-T"
    reason: str | None = Field(None, max_length=200)
    location: str | None = Field(None, max_length=200)
    appearance: AppearanceRef | None = None


class SignerIdentity(BaseModel):
    subject: str
    serial: str
    issuer: str


class DocumentSigned(BaseModel):
    dossier_id: str
    output_key: str
    sha256: str
    level: Level
    signer: SignerIdentity
    signed_at: str
    timestamp_at: str | None = None


class SignPending(BaseModel):
    dossier_id: str
    method: Literal["smartca", "mysign"]
    transaction_id: str
    expires_at: str


class SignFailed(BaseModel):
    dossier_id: str
    reason: SignFailure
    detail: str


class VerifyRequested(BaseModel):
    model_config = ConfigDict(extra="forbid")

    s3_key: str = Field(min_length=1, max_length=1024)
    content_type: ContentType


class SignatureFinding(BaseModel):
    signer_subject: str
    signed_at: str | None
    level: str
    intact: bool
    trusted: bool
    timestamp_valid: bool | None
    revocation_checked: bool
    modification: Literal["none", "permitted", "not_permitted"]
    problems: list[str]


class DocumentVerified(BaseModel):
    valid: bool
    signatures: list[SignatureFinding]
