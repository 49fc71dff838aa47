"""postal_track — shipment tracking: Viettel Post webhooks and the VietnamPost feed, normalised, de-duplicated
and never moving back; emits tracking updates, `delivered` and `returned` (once per shipment) to K_SINK.

Takes:   dev.knative.sources.ping {"job": "postal-poll"}  (PingSource: feed + stale shipments + outbox)
Routes:  POST /webhooks/viettelpost  (shared secret in `Authorization`, shared/security/webhooks.py)
Emits:   vn.gov.dvc.postal.tracking.updated, vn.gov.dvc.postal.delivered, vn.gov.dvc.postal.returned
Calls:   shared.integrations.postal.tracking (Tracker)
"""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from functions.postal_track.models import (
    DELIVERED,
    RETURNED,
    TRACKING_UPDATED,
    Delivered,
    Returned,
    TrackingUpdated,
)
from shared.integrations.postal.providers import REGISTRY
from shared.integrations.postal.tracking import Tracker
from shared.integrations.postal.viettelpost import parse_webhook
from shared.runtime import EventContext, FunctionApp
from shared.runtime.problem import problem_response
from shared.security.webhooks import WebhookRefused, read_verified, refused_response
from shared.storage.health import redis_ready

app = FunctionApp("postal-track")
app.readiness_check(redis_ready)
app.emits(TRACKING_UPDATED, TrackingUpdated)
app.emits(DELIVERED, Delivered)
app.emits(RETURNED, Returned)
VTP = REGISTRY.get("viettelpost")
_auth = VTP.webhook_auth()
_trackers: dict[int, Tracker] = {}
_vnpost: dict[int, Any] = {}


async def _emit(type_: str, data: dict[str, Any], key: str, extensions: dict[str, str]) -> None:
    await app.emit(type_, data, key=key, subject=data.get("tracking_number"), extensions=extensions)


def tracker() -> Tracker:
    loop = id(asyncio.get_running_loop())
    t = _trackers.get(loop)
    if t is None:
        from shared.runtime.settings import runtime_settings
        from shared.storage.redis import Keys, get_fast_redis, get_redis

        t = _trackers[loop] = Tracker(get_fast_redis(), get_redis(), Keys(runtime_settings().env), _emit)
    return t


@app.route("/webhooks/viettelpost")
async def viettelpost_webhook(request: Request) -> Response:
    try:
        body = await read_verified(request, _auth)
    except WebhookRefused as exc:
        return refused_response(exc, "Viettel Post webhook")
    try:
        event = parse_webhook(orjson.loads(body))
    except (ValueError, orjson.JSONDecodeError) as exc:
        return problem_response(400, "Invalid Viettel Post webhook", str(exc)[:200])
    applied = await tracker().apply(event)
    return Response(orjson.dumps({"status": 200, "error": False, "message": applied.action}),
                    media_type="application/json")


@app.job("postal-poll")
async def poll(ctx: EventContext) -> dict[str, int]:
    loop = id(asyncio.get_running_loop())
    if loop not in _vnpost:
        _vnpost[loop] = REGISTRY.get("vnpost").new_client()
    return await tracker().poll(_vnpost[loop])


handle = app.entrypoint()
