"""Postal shipping (BCCI and other parcels): the `PostalCarrier` protocol every carrier module implements,
and the data it speaks. Carriers: VietnamPost (`vnpost`, EMS is its express service) and Viettel Post
(`viettelpost`); see docs/postal.md for the wire-format assumptions."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Literal, Protocol

Service = Literal["standard", "express"]
Purpose = Literal["result_delivery", "dossier_pickup", "other"]

STATUSES = ("pre_transit", "picked_up", "in_transit", "out_for_delivery", "delivered", "delivery_failed",
            "returning", "returned", "cancelled", "exception")


class PostalFailure(StrEnum):
    """The closed set of reasons in `vn.gov.dvc.postal.shipment.failed` / `quote.failed`."""

    invalid_address = "invalid_address"
    invalid_phone = "invalid_phone"
    parcel_rejected = "parcel_rejected"
    no_carrier = "no_carrier"
    rejected = "rejected"
    outcome_unknown = "outcome_unknown"
    not_cancellable = "not_cancellable"
    unknown_shipment = "unknown_shipment"


@dataclass(frozen=True, slots=True)
class Place:
    """A resolved two-level address (codes in force since 1 July 2025) with the names carriers print."""

    name: str
    phone: str  # national form 0xxxxxxxxx
    address_line: str
    province_code: str
    province_name: str
    ward_code: str
    ward_name: str
    email: str | None = None
    # pre-reform names for carriers that still want a district (from the same data package)
    legacy_district_name: str = ""

    def one_line(self) -> str:
        return ", ".join(p for p in (self.address_line, self.ward_name, self.province_name) if p)


@dataclass(frozen=True, slots=True)
class Parcel:
    weight_g: int
    contents: str
    length_cm: int | None = None
    width_cm: int | None = None
    height_cm: int | None = None


@dataclass(frozen=True, slots=True)
class Order:
    """One shipment as carriers receive it; `reference` is the client order number they de-duplicate on."""

    reference: str
    dossier_id: str
    service: Service
    sender: Place
    recipient: Place
    parcel: Parcel
    cod_vnd: int = 0


@dataclass(frozen=True, slots=True)
class QuoteOption:
    carrier: str
    service: Service
    fee_vnd: int
    estimated_days: int


@dataclass(frozen=True, slots=True)
class CarrierOrder:
    """What a carrier says it created (or found) for a client order number."""

    carrier: str
    reference: str
    tracking_number: str
    carrier_order_id: str
    fee_vnd: int
    estimated_delivery_at: str | None = None
    carrier_status: str | None = None


@dataclass(frozen=True, slots=True)
class CarrierEvent:
    """One tracking event as the carrier reported it (raw code) with its own event time."""

    carrier: str
    tracking_number: str
    carrier_status: str
    description: str
    at_ms: int
    location: str | None = None
    reference: str | None = None
    event_id: str = ""
    extra: dict[str, str] = field(default_factory=dict)


class NotCancellable(Exception):
    """The carrier refuses to cancel (already picked up, or in a final state)."""


class PostalCarrier(Protocol):
    """A carrier: quote, create (de-duplicated on `order.reference`), look up, cancel, track."""

    name: str

    async def quote(self, order: Order) -> list[QuoteOption]:
        """Fees for `order` per service; ProviderUnavailable / ProviderRejected otherwise."""
        ...

    async def create(self, order: Order) -> CarrierOrder:
        """Create; raise ProviderRejected / ProviderUnavailable / ProviderAmbiguous otherwise."""
        ...

    async def find(self, order: Order) -> CarrierOrder | None:
        """The order created earlier under `order.reference`, None if the carrier never took it. Raise
        ProviderAmbiguous when the carrier has no such query (the caller re-sends under the same number)."""
        ...

    async def cancel(self, shipment: CarrierOrder) -> None:
        """Cancel; NotCancellable when the carrier refuses (picked up already)."""
        ...

    async def events(self, tracking_number: str) -> list[CarrierEvent]:
        """Every tracking event the carrier has for one shipment (per-order query)."""
        ...
