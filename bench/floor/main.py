"""The floor: the same runtime and server stack, a function that parses the event and replies, no I/O."""

from __future__ import annotations

from functions.send_sms.models import REQUESTED, SmsAccepted, SmsSendRequested
from shared.runtime import EventContext, FunctionApp, Reply

app = FunctionApp("bench-floor")


@app.on(REQUESTED, SmsSendRequested)
async def reply(ctx: EventContext, req: SmsSendRequested) -> Reply:
    return Reply("vn.gov.dvc.sms.accepted", SmsAccepted(to=req.to, provider="none", provider_message_id=ctx.event.id,
                                                         segments=1, encoding="gsm7", cost_vnd=0))


handle = app.entrypoint()
