"""SES bounce/complaint/delivery notifications arriving through SNS at `/ses/notifications`: verified,
subscription confirmed, hard bounces and complaints suppressed, each turned into
`vn.gov.dvc.email.delivery.updated` to K_SINK."""

from __future__ import annotations

import logging
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from shared.integrations.email import sns
from shared.integrations.email.suppression import Suppressions
from shared.runtime.app import FunctionApp
from shared.runtime.problem import problem_response

log = logging.getLogger("dvci.email.notifications")
DELIVERY_UPDATED = "vn.gov.dvc.email.delivery.updated"


class SesNotifications:
    def __init__(self, app: FunctionApp, suppressions: Any, topics: list[str],
                 load_cert: sns.CertLoader = sns.fetch_cert, confirm: Any = None):
        self.app, self.topics, self.load_cert = app, topics, load_cert
        self.suppressions: Suppressions = suppressions
        self.confirm = confirm or _confirm

    async def handle(self, request: Request) -> Response:
        try:
            message = orjson.loads(await request.body())
            if not isinstance(message, dict):
                raise TypeError("not an object")
        except (orjson.JSONDecodeError, TypeError) as exc:
            return problem_response(400, "Malformed SNS message", str(exc), type_uri="urn:dvci:problem:malformed-sns")
        refused = await sns.verify(message, self.load_cert)
        if refused:
            log.warning("SNS message refused", extra={"reason": refused})
            return problem_response(401, "Unauthenticated SNS message", refused,
                                    type_uri="urn:dvci:problem:unauthenticated")
        if self.topics and message.get("TopicArn") not in self.topics:
            return problem_response(403, "Unexpected SNS topic", "topic not configured in DVCI_EMAIL_SNS_TOPIC_ARNS",
                                    type_uri="urn:dvci:problem:forbidden-topic")
        kind = message["Type"]
        if kind == "SubscriptionConfirmation":
            url = str(message.get("SubscribeURL", ""))
            if not sns.sns_url(url):
                return problem_response(400, "Bad SubscribeURL", "not an SNS host", type_uri="urn:dvci:problem:bad-url")
            await self.confirm(url)
            return Response(b'{"status":"subscribed"}', media_type="application/json")
        if kind != "Notification":
            return Response(b'{"status":"ignored"}', media_type="application/json")
        emitted = await self.notification(orjson.loads(message["Message"]), message["MessageId"])
        return Response(orjson.dumps({"status": "processed", "events": emitted}), media_type="application/json")

    async def notification(self, body: dict[str, Any], sns_id: str) -> int:
        kind = body.get("notificationType") or body.get("eventType")
        mail = body.get("mail") or {}
        headers = {h["name"].lower(): h["value"] for h in mail.get("headers", []) if "name" in h}
        if kind == "Bounce":
            bounce = body.get("bounce", {})
            permanent = bounce.get("bounceType") == "Permanent"
            rows = [(r["emailAddress"], "bounced" if permanent else "soft_bounced", bounce.get("bounceSubType"))
                    for r in bounce.get("bouncedRecipients", [])]
        elif kind == "Complaint":
            rows = [(r["emailAddress"], "complained", (body.get("complaint") or {}).get("complaintFeedbackType"))
                    for r in (body.get("complaint") or {}).get("complainedRecipients", [])]
        elif kind == "Delivery":
            rows = [(a, "delivered", None) for a in (body.get("delivery") or {}).get("recipients", [])]
        else:
            return 0
        for address, status, detail in rows:
            if status in ("bounced", "complained"):
                await self.suppressions.add(address, status, f"ses:{sns_id}")
            await self.app.emit(DELIVERY_UPDATED, {
                "message_id": headers.get("message-id"), "provider": "ses",
                "provider_message_id": mail.get("messageId"), "to": address, "status": status,
                "detail": detail, "suppressed": status in ("bounced", "complained")},
                key=f"{sns_id}\x00{address}")
        return len(rows)


async def _confirm(url: str) -> None:
    import aiohttp

    from shared.runtime.http import get_session

    async with get_session().get(url, timeout=aiohttp.ClientTimeout(total=5)) as resp:
        resp.raise_for_status()
