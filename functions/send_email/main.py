"""send_email — templated Vietnamese e-mail over SMTP, failing over to Amazon SES; bounces and complaints.

Takes:   vn.gov.dvc.email.send.requested  (EmailSendRequested)
Replies: vn.gov.dvc.email.sent            (EmailSent)
         vn.gov.dvc.email.failed          (EmailFailed)
Emits:   vn.gov.dvc.email.delivery.updated to K_SINK (from SES notifications)
Routes:  POST /ses/notifications  (Amazon SNS, signature verified)
Calls:   shared.integrations.email (EmailService, SesNotifications)
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from functions.send_email.models import (
    DELIVERY_UPDATED,
    FAILED,
    REQUESTED,
    SENT,
    EmailDeliveryUpdated,
    EmailFailed,
    EmailSendRequested,
    EmailSent,
)
from shared.integrations.email.notifications import SesNotifications
from shared.integrations.email.service import EmailRequest, Sent, default_service
from shared.integrations.email.settings import EmailSettings
from shared.runtime import EventContext, FunctionApp, Reply
from shared.storage.health import redis_ready

app = FunctionApp("send-email")
app.readiness_check(redis_ready)
app.emits(DELIVERY_UPDATED, EmailDeliveryUpdated)


@app.on(REQUESTED, EmailSendRequested, replies={SENT: EmailSent, FAILED: EmailFailed})
async def send(ctx: EventContext, req: EmailSendRequested) -> Reply:
    outcome = await default_service().send(ctx, EmailRequest(
        req.to, req.cc, req.bcc, req.template, req.locale, req.params, req.subject, req.text, req.html,
        [a.model_dump() for a in req.attachments]))
    if isinstance(outcome, Sent):
        return Reply(SENT, EmailSent(message_id=outcome.message_id, provider=outcome.provider, to=outcome.to))
    return Reply(FAILED, EmailFailed(reason=outcome.reason, detail=outcome.detail))


@app.route("/ses/notifications")
async def ses_notifications(request: Request) -> Response:
    settings = EmailSettings()
    topics = [t.strip() for t in settings.sns_topic_arns.split(",") if t.strip()]
    return await SesNotifications(app, default_service().suppressions, topics,
                                  max_age_s=settings.sns_max_age_s).handle(request)


handle = app.entrypoint()
