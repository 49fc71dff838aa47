"""postal_track — shipment tracking: Viettel Post webhooks and the VietnamPost feed, normalised, de-duplicated
and never moving back; emits tracking updates, `delivered` and `returned` (once per shipment) to K_SINK.

Takes:   dev.knative.sources.ping {"job": "postal-poll"}  (PingSource: feed + stale shipments + outbox)
Routes:  POST /webhooks/<carrier>  (each pushing carrier of the registry: /webhooks/viettelpost, shared secret)
Emits:   vn.gov.dvc.postal.tracking.updated, vn.gov.dvc.postal.delivered, vn.gov.dvc.postal.returned
Calls:   shared.integrations.postal.tracking (TrackingJobs over a Tracker)
"""

from __future__ import annotations

from typing import Any

from functions.postal_track.models import (
    DELIVERED,
    RETURNED,
    TRACKING_UPDATED,
    Delivered,
    Returned,
    TrackingUpdated,
)
from shared.integrations.postal.tracking import TrackingJobs
from shared.runtime import EventContext, FunctionApp
from shared.storage.health import redis_ready

app = FunctionApp("postal-track")
app.readiness_check(redis_ready)
app.emits(TRACKING_UPDATED, TrackingUpdated)
app.emits(DELIVERED, Delivered)
app.emits(RETURNED, Returned)


async def _emit(type_: str, data: dict[str, Any], key: str, extensions: dict[str, str]) -> None:
    await app.emit(type_, data, key=key, subject=data.get("tracking_number"), extensions=extensions)


jobs = TrackingJobs(_emit)
jobs.serve_webhooks(app)


@app.job("postal-poll")
async def poll(ctx: EventContext) -> dict[str, int]:
    return await jobs.poll()


handle = app.entrypoint()
