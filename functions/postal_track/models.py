"""Event models of postal_track (emitted to K_SINK)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel

TRACKING_UPDATED = "vn.gov.dvc.postal.tracking.updated"
DELIVERED = "vn.gov.dvc.postal.delivered"
RETURNED = "vn.gov.dvc.postal.returned"

Status = Literal["pre_transit", "picked_up", "in_transit", "out_for_delivery", "delivered", "delivery_failed",
                 "returning", "returned", "cancelled", "exception"]


class TrackingUpdated(BaseModel):
    dossier_id: str
    carrier: str
    tracking_number: str
    status: Status
    previous_status: Status | None = None
    carrier_status: str
    description: str
    location: str | None = None
    at: str


class Delivered(BaseModel):
    dossier_id: str
    carrier: str
    tracking_number: str
    delivered_at: str


class Returned(BaseModel):
    dossier_id: str
    carrier: str
    tracking_number: str
    returned_at: str
