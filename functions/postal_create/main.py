"""postal_create — quote, create and cancel postal shipments (BCCI through VietnamPost; others also Viettel
Post), exactly one carrier order per (dossier_id, purpose), with an A6 label PDF in object storage.

Takes:   vn.gov.dvc.postal.shipment.requested         (ShipmentRequested)
         vn.gov.dvc.postal.quote.requested            (QuoteRequested)
         vn.gov.dvc.postal.shipment.cancel.requested  (CancelRequested)
Replies: vn.gov.dvc.postal.shipment.created | .failed, vn.gov.dvc.postal.quoted | .quote.failed,
         vn.gov.dvc.postal.shipment.cancelled | .failed
Calls:   shared.integrations.postal (PostalService)
"""

from __future__ import annotations

from functions.postal_create.models import (
    CANCEL_REQUESTED,
    CANCELLED,
    QUOTE_FAILED,
    QUOTE_REQUESTED,
    QUOTED,
    SHIPMENT_CREATED,
    SHIPMENT_FAILED,
    SHIPMENT_REQUESTED,
    CancelRequested,
    Quoted,
    QuoteFailed,
    QuoteOptionModel,
    QuoteRequested,
    ShipmentCancelled,
    ShipmentCreated,
    ShipmentFailed,
    ShipmentRequested,
)
from shared.integrations.postal import addresses, label
from shared.integrations.postal.service import CreateRequest, Failed, default_service
from shared.runtime import EventContext, FunctionApp, Reply
from shared.storage.health import redis_ready

app = FunctionApp("postal-create")
app.readiness_check(redis_ready)
addresses.warm()  # the unit lists load at start, not on the first request
label.register_fonts()


@app.on(SHIPMENT_REQUESTED, ShipmentRequested, replies={SHIPMENT_CREATED: ShipmentCreated,
                                                        SHIPMENT_FAILED: ShipmentFailed})
async def create(ctx: EventContext, req: ShipmentRequested) -> Reply:
    outcome = await default_service().create(ctx, CreateRequest(
        req.dossier_id, req.purpose, req.service, req.recipient.model_dump(exclude_none=True),
        req.parcel.model_dump(), req.sender.model_dump(exclude_none=True) if req.sender else None,
        req.cod_vnd, req.carrier))
    if isinstance(outcome, Failed):
        return Reply(SHIPMENT_FAILED, ShipmentFailed(dossier_id=req.dossier_id, reason=outcome.reason,
                                                     detail=outcome.detail))
    return Reply(SHIPMENT_CREATED, ShipmentCreated(
        dossier_id=outcome.dossier_id, purpose=outcome.purpose, carrier=outcome.carrier,  # type: ignore[arg-type]
        service=outcome.service, tracking_number=outcome.tracking_number,  # type: ignore[arg-type]
        carrier_order_id=outcome.carrier_order_id, fee_vnd=outcome.fee_vnd, cod_vnd=outcome.cod_vnd,
        label_key=outcome.label_key, estimated_delivery_at=outcome.estimated_delivery_at))


@app.on(QUOTE_REQUESTED, QuoteRequested, replies={QUOTED: Quoted, QUOTE_FAILED: QuoteFailed})
async def quote(ctx: EventContext, req: QuoteRequested) -> Reply:
    outcome = await default_service().quote(req.recipient.model_dump(exclude_none=True),
                                            req.sender.model_dump(exclude_none=True) if req.sender else None,
                                            req.parcel.model_dump(), req.service, req.cod_vnd)
    if isinstance(outcome, Failed):
        return Reply(QUOTE_FAILED, QuoteFailed(reason=outcome.reason, detail=outcome.detail))
    return Reply(QUOTED, Quoted(options=[QuoteOptionModel(carrier=o.carrier, service=o.service,  # type: ignore[arg-type]
                                                          fee_vnd=o.fee_vnd, estimated_days=o.estimated_days)
                                         for o in outcome]))


@app.on(CANCEL_REQUESTED, CancelRequested, replies={CANCELLED: ShipmentCancelled, SHIPMENT_FAILED: ShipmentFailed})
async def cancel(ctx: EventContext, req: CancelRequested) -> Reply:
    outcome = await default_service().cancel(ctx, req.dossier_id, req.purpose)
    if isinstance(outcome, Failed):
        return Reply(SHIPMENT_FAILED, ShipmentFailed(dossier_id=req.dossier_id, reason=outcome.reason,
                                                     detail=outcome.detail))
    return Reply(CANCELLED, ShipmentCancelled(dossier_id=req.dossier_id, carrier=outcome.carrier,  # type: ignore[arg-type]
                                              tracking_number=outcome.tracking_number))


handle = app.entrypoint()
