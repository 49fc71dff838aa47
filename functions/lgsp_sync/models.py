"""Event models of lgsp_sync."""

from __future__ import annotations

from datetime import date
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

CHANGED = "vn.gov.dvc.dossier.status.changed"
SYNC_RESULT = "vn.gov.dvc.dossier.sync.result"
SYNCED = "vn.gov.dvc.dossier.synced"
REJECTED = "vn.gov.dvc.dossier.sync.rejected"
LOOKUP = "vn.gov.dvc.citizen.lookup.requested"
FOUND = "vn.gov.dvc.citizen.found"
NOT_FOUND = "vn.gov.dvc.citizen.not_found"
LOOKUP_FAILED = "vn.gov.dvc.citizen.lookup.failed"

Status = Literal["registered", "received", "not_received", "processing", "supplement_requested",
                 "financial_obligation", "withdrawn", "suspended", "completed", "returned"]


class Applicant(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    type: Literal["citizen", "business", "organization"]
    id_number: str | None = Field(None, max_length=20)
    phone: str | None = Field(None, max_length=20)
    email: str | None = Field(None, max_length=254)
    address: str | None = Field(None, max_length=500)


class Step(BaseModel):
    model_config = ConfigDict(extra="forbid")

    handler_name: str = Field(min_length=1, max_length=200)
    handler_title: str = Field(max_length=200)
    department: str = Field(max_length=200)
    action: str = Field(min_length=1, max_length=1000)
    started_at: AwareDatetime
    due_at: AwareDatetime | None = None


class Attachment(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(min_length=1, max_length=100)
    name: str = Field(min_length=1, max_length=300)
    s3_key: str = Field(min_length=1, max_length=1024)
    component_code: str | None = Field(None, max_length=100)


class Fee(BaseModel):
    model_config = ConfigDict(extra="forbid")

    code: str = Field(min_length=1, max_length=50)
    name: str = Field(min_length=1, max_length=300)
    amount_vnd: int = Field(ge=0)
    method: str = Field("cash", max_length=30)


class DossierStatusChanged(BaseModel):
    """A dossier changed in DVC core; `version` increases with every change of this dossier."""

    model_config = ConfigDict(extra="forbid")

    dossier_id: str = Field(min_length=1, max_length=64)
    version: int = Field(ge=1)
    agency_code: str = Field(min_length=1, max_length=50)
    procedure_code: str = Field(min_length=1, max_length=50)
    procedure_name: str = Field(min_length=1, max_length=500)
    sector_code: str | None = Field(None, max_length=50)
    sector_name: str | None = Field(None, max_length=300)
    status: Status
    changed_at: AwareDatetime
    received_at: AwareDatetime
    appointed_at: AwareDatetime | None = None
    returned_at: AwareDatetime | None = None
    applicant: Applicant
    summary: str = Field(max_length=2000)
    intake_channel: Literal["counter", "online", "postal"]
    result_delivery: Literal["counter", "postal"]
    step: Step | None = None
    note: str | None = Field(None, max_length=2000)
    attachments: list[Attachment] | None = Field(None, max_length=200)
    fees: list[Fee] | None = Field(None, max_length=50)


class TargetResult(BaseModel):
    target: Literal["dvcqg", "lgsp"]
    state: Literal["synced", "queued", "superseded", "rejected"]
    detail: str | None = None


class SyncResult(BaseModel):
    dossier_id: str
    version: int
    targets: list[TargetResult]


class DossierSynced(BaseModel):
    dossier_id: str
    version: int
    target: Literal["dvcqg", "lgsp"]
    lag_s: float


class SyncRejected(BaseModel):
    dossier_id: str
    version: int
    target: Literal["dvcqg", "lgsp"]
    detail: str


class CitizenLookupRequested(BaseModel):
    """Look a citizen up in the population database; `purpose` and `requested_by` are required
    (Decree 13/2023/NĐ-CP)."""

    model_config = ConfigDict(extra="forbid")

    citizen_id: str = Field(min_length=1, max_length=20, description="12-digit CCCD")
    full_name: str | None = Field(None, max_length=200)
    birth_date: date | None = None
    purpose: str = Field(min_length=3, max_length=300)
    requested_by: str = Field(min_length=1, max_length=200)
    dossier_id: str | None = Field(None, max_length=64)


class CitizenFound(BaseModel):
    citizen_id: str
    full_name: str
    birth_date: str
    gender: str
    permanent_address: str
    source: Literal["live", "cache"]
    as_of: str


class CitizenNotFound(BaseModel):
    citizen_id: str


class CitizenLookupFailed(BaseModel):
    citizen_id: str
    reason: Literal["invalid_id", "mismatch", "unavailable"]
    detail: str
