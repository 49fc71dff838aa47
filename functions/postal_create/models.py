"""Event models of postal_create."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from shared.integrations.postal import PostalFailure

SHIPMENT_REQUESTED = "vn.gov.dvc.postal.shipment.requested"
SHIPMENT_CREATED = "vn.gov.dvc.postal.shipment.created"
SHIPMENT_FAILED = "vn.gov.dvc.postal.shipment.failed"
QUOTE_REQUESTED = "vn.gov.dvc.postal.quote.requested"
QUOTED = "vn.gov.dvc.postal.quoted"
QUOTE_FAILED = "vn.gov.dvc.postal.quote.failed"
CANCEL_REQUESTED = "vn.gov.dvc.postal.shipment.cancel.requested"
CANCELLED = "vn.gov.dvc.postal.shipment.cancelled"

Carrier = Literal["vnpost", "viettelpost"]
Service = Literal["standard", "express"]
Purpose = Literal["result_delivery", "dossier_pickup", "other"]


class LegacyAddress(BaseModel):
    """A pre-reform (before 1 July 2025) three-level address: GSO codes of province, district, ward."""

    model_config = ConfigDict(extra="forbid")

    province_code: str = Field(min_length=1, max_length=3)
    district_code: str = Field(min_length=1, max_length=4)
    ward_code: str = Field(min_length=1, max_length=6)


class Party(BaseModel):
    """A sender or recipient: current two-level codes (province_code + ward_code) or a `legacy` address."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=120)
    phone: str = Field(min_length=1, max_length=20)
    address_line: str = Field(min_length=1, max_length=250, description="house number, street, hamlet")
    province_code: str | None = Field(None, max_length=3, description="GSO code, 34 provinces (2025)")
    ward_code: str | None = Field(None, max_length=6, description="GSO code, 3,321 communes/wards (2025)")
    legacy: LegacyAddress | None = Field(None, description="a pre-reform address, converted to current codes")
    email: str | None = Field(None, max_length=254)

    @model_validator(mode="after")
    def codes_or_legacy(self) -> Party:
        if self.legacy is None and not (self.province_code and self.ward_code):
            raise ValueError("give province_code and ward_code (units in force), or a legacy address")
        return self


class ParcelSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    weight_g: int = Field(gt=0, le=100_000)
    length_cm: int | None = Field(None, gt=0, le=300)
    width_cm: int | None = Field(None, gt=0, le=300)
    height_cm: int | None = Field(None, gt=0, le=300)
    contents: str = Field(min_length=1, max_length=200)


class ShipmentRequested(BaseModel):
    """Ship a dossier's result to the citizen, or collect a dossier from them (BCCI), or anything else."""

    model_config = ConfigDict(extra="forbid")

    dossier_id: str = Field(min_length=1, max_length=64)
    purpose: Purpose
    service: Service = "standard"
    recipient: Party
    sender: Party | None = Field(None, description="default: the agency's configured address")
    parcel: ParcelSpec
    cod_vnd: int = Field(0, ge=0, le=50_000_000, description="fees collected on delivery")
    carrier: Carrier | None = Field(None, description="force a carrier (must be allowed for the purpose)")


class ShipmentCreated(BaseModel):
    dossier_id: str
    purpose: Purpose
    carrier: Carrier
    service: Service
    tracking_number: str
    carrier_order_id: str
    fee_vnd: int
    cod_vnd: int
    label_key: str
    estimated_delivery_at: str | None = None


class ShipmentFailed(BaseModel):
    dossier_id: str
    reason: PostalFailure
    detail: str


class QuoteRequested(BaseModel):
    model_config = ConfigDict(extra="forbid")

    recipient: Party
    sender: Party | None = None
    parcel: ParcelSpec
    service: Service | None = Field(None, description="only this service (default: every service)")
    cod_vnd: int = Field(0, ge=0, le=50_000_000)


class QuoteOptionModel(BaseModel):
    carrier: Carrier
    service: Service
    fee_vnd: int
    estimated_days: int


class Quoted(BaseModel):
    options: list[QuoteOptionModel] = Field(description="cheapest first")


class QuoteFailed(BaseModel):
    reason: PostalFailure
    detail: str


class CancelRequested(BaseModel):
    model_config = ConfigDict(extra="forbid")

    dossier_id: str = Field(min_length=1, max_length=64)
    purpose: Purpose


class ShipmentCancelled(BaseModel):
    dossier_id: str
    carrier: Carrier
    tracking_number: str
