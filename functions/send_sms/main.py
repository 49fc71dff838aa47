"""send_sms — SMS brandname through Viettel, VNPT/VinaPhone and MobiFone: cheapest route, failover,
Decree 91, delivery receipts.

Takes:   vn.gov.dvc.sms.send.requested  (SmsSendRequested)
         vn.gov.dvc.sms.bulk.requested  (SmsBulkRequested: up to 1,000 recipients)
         dev.knative.sources.ping       (jobs: sms-advertising-drain, sms-pull-receipts)
Replies: vn.gov.dvc.sms.accepted        (SmsAccepted)
         vn.gov.dvc.sms.failed          (SmsFailed)
         vn.gov.dvc.sms.scheduled       (SmsScheduled)
         vn.gov.dvc.sms.bulk.completed  (SmsBulkCompleted: one result per recipient)
Emits:   vn.gov.dvc.sms.delivery.updated to K_SINK (receipts), vn.gov.dvc.sms.send.requested (drain)
Routes:  POST /dlr/<provider>  (signed delivery-receipt webhooks of every push provider in the registry)
Calls:   shared.integrations.sms (SmsService, SmsJobs)
"""

from __future__ import annotations

from functions.send_sms.models import (
    ACCEPTED,
    BULK_COMPLETED,
    BULK_REQUESTED,
    DELIVERY_UPDATED,
    FAILED,
    REQUESTED,
    SCHEDULED,
    BulkResult,
    SmsAccepted,
    SmsBulkCompleted,
    SmsBulkRequested,
    SmsDeliveryUpdated,
    SmsFailed,
    SmsScheduled,
    SmsSendRequested,
)
from shared.integrations.sms.jobs import SmsJobs
from shared.integrations.sms.service import Accepted, Scheduled, SmsRequest, default_service
from shared.runtime import EventContext, FunctionApp, Reply
from shared.storage.health import redis_ready

app = FunctionApp("send-sms")
app.readiness_check(redis_ready)
jobs = SmsJobs(app)
jobs.serve_webhooks()  # POST /dlr/vnpt, /dlr/mobifone, ... (shared/integrations/sms/providers.py)
app.emits(DELIVERY_UPDATED, SmsDeliveryUpdated)
app.emits(REQUESTED, SmsSendRequested)  # the Decree 91 drain re-publishes held advertising


@app.on(REQUESTED, SmsSendRequested, replies={ACCEPTED: SmsAccepted, FAILED: SmsFailed, SCHEDULED: SmsScheduled})
async def send(ctx: EventContext, req: SmsSendRequested) -> Reply:
    outcome = await default_service().send(ctx, SmsRequest(
        req.to, req.text, req.template_id, req.params, req.category, req.brandname, req.unsigned))
    if isinstance(outcome, Accepted):
        return Reply(ACCEPTED, SmsAccepted(to=outcome.to, provider=outcome.provider,
                                           provider_message_id=outcome.provider_message_id,
                                           segments=outcome.segments, encoding=outcome.encoding,  # type: ignore[arg-type]
                                           cost_vnd=outcome.cost_vnd))
    if isinstance(outcome, Scheduled):
        await jobs.hold(ctx, outcome.send_at)
        return Reply(SCHEDULED, SmsScheduled(to=outcome.to, send_at=outcome.send_at))
    return Reply(FAILED, SmsFailed(to=outcome.to, reason=outcome.reason, detail=outcome.detail))


@app.on(BULK_REQUESTED, SmsBulkRequested, replies={BULK_COMPLETED: SmsBulkCompleted})
async def send_bulk(ctx: EventContext, req: SmsBulkRequested) -> Reply:
    items = await default_service().send_bulk(
        ctx, [(r.to, r.params) for r in req.recipients],
        SmsRequest("", req.text, req.template_id, req.params, req.category, req.brandname, req.unsigned))
    results = [BulkResult(to=i.to, status=i.status, provider=i.provider,  # type: ignore[arg-type]
                          provider_message_id=i.provider_message_id, segments=i.segments, cost_vnd=i.cost_vnd,
                          reason=i.reason, detail=i.detail) for i in items]
    accepted = sum(r.status == "accepted" for r in results)
    return Reply(BULK_COMPLETED, SmsBulkCompleted(total=len(results), accepted=accepted, failed=len(results) - accepted,
                                                  cost_vnd=sum(r.cost_vnd for r in results), results=results))


@app.job("sms-advertising-drain")
async def advertising_drain(ctx: EventContext) -> dict[str, int]:
    return {"drained": await jobs.drain()}


@app.job("sms-pull-receipts")
async def pull_receipts(ctx: EventContext) -> dict[str, int]:
    return await jobs.pull_receipts()


handle = app.entrypoint()
