"""send_sms — SMS brandname through Viettel, VNPT/VinaPhone and MobiFone with failover.

Takes:   vn.gov.dvc.sms.send.requested  (SmsSendRequested)
Replies: vn.gov.dvc.sms.accepted        (SmsAccepted)
         vn.gov.dvc.sms.failed          (SmsFailed)
Calls:   shared.integrations.sms (SmsService: idempotency, breakers, rate limits, failover)
"""

from __future__ import annotations

from functions.send_sms.models import ACCEPTED, FAILED, REQUESTED, SmsAccepted, SmsFailed, SmsSendRequested
from shared.integrations.sms.service import Accepted, default_service
from shared.integrations.sms.settings import SmsSettings
from shared.runtime import EventContext, FunctionApp, Reply
from shared.storage.health import redis_ready

app = FunctionApp("send-sms")
app.readiness_check(redis_ready)
settings = SmsSettings()


@app.on(REQUESTED, SmsSendRequested)
async def send(ctx: EventContext, req: SmsSendRequested) -> Reply:
    outcome = await default_service().send(ctx, req.to, req.text, req.category, req.brandname or settings.brandname)
    if isinstance(outcome, Accepted):
        return Reply(ACCEPTED, SmsAccepted(to=outcome.to, provider=outcome.provider,
                                           provider_message_id=outcome.provider_message_id,
                                           segments=outcome.segments, encoding=outcome.encoding,  # type: ignore[arg-type]
                                           cost_vnd=outcome.cost_vnd))
    return Reply(FAILED, SmsFailed(to=outcome.to, reason=outcome.reason, detail=outcome.detail))


handle = app.entrypoint()
