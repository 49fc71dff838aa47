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
from shared.integrations.email.addresses import canonical
from shared.integrations.email.suppression import Suppressions
from shared.runtime.app import FunctionApp
from shared.runtime.problem import problem_response
from shared.runtime.settings import is_production

log = logging.getLogger("dvci.email.notifications")
DELIVERY_UPDATED = "vn.gov.dvc.email.delivery.updated"


class MalformedNotification(ValueError):
    """An authentic SNS message whose SES payload is not the documented shape."""


class SesNotifications:
    def __init__(self, app: FunctionApp, suppressions: Any, topics: list[str],
                 load_cert: sns.CertLoader = sns.fetch_cert, confirm: Any = None, max_age_s: float = 3600.0):
        self.app, self.topics, self.load_cert = app, topics, load_cert
        self.suppressions: Suppressions = suppressions
        self.confirm = confirm or _confirm
        self.max_age_s = max_age_s

    async def handle(self, request: Request) -> Response:
        try:
            message = orjson.loads(await request.body())
            if not isinstance(message, dict):
                raise TypeError("not an object")
        except (orjson.JSONDecodeError, TypeError) as exc:
            return problem_response(400, "Malformed SNS message", str(exc), type_uri="urn:dvci:problem:malformed-sns")
        if is_production(self.app.settings.env) and not self.topics:  # any AWS account's topic would do
            return problem_response(403, "No SNS topic allow-list", "DVCI_EMAIL_SNS_TOPIC_ARNS must name the "
                                    f"accepted topics in {self.app.settings.env}",
                                    type_uri="urn:dvci:problem:forbidden-topic")
        refused = await sns.verify(message, self.load_cert) or sns.fresh(message, self.max_age_s)
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
        try:
            emitted = await self.notification(orjson.loads(str(message.get("Message", ""))),
                                              str(message.get("MessageId", "")))
        except (orjson.JSONDecodeError, MalformedNotification) as exc:
            return problem_response(400, "Malformed SES notification", f"{type(exc).__name__}: not the SES shape",
                                    type_uri="urn:dvci:problem:malformed-sns")
        return Response(orjson.dumps({"status": "processed", "events": emitted}), media_type="application/json")

    async def notification(self, body: Any, sns_id: str) -> int:
        try:  # every row parsed before anything is suppressed or emitted: all of it, or none
            parsed = _parse(body)
        except (KeyError, TypeError, AttributeError, ValueError) as exc:
            raise MalformedNotification(type(exc).__name__) from exc
        if parsed is None:
            return 0
        headers, mail, rows = parsed
        for address, status, detail in rows:
            if status in ("bounced", "complained"):
                await self.suppressions.add(address, status, f"ses:{sns_id}")
            await self.app.emit(DELIVERY_UPDATED, {
                "message_id": headers.get("message-id"), "provider": "ses",
                "provider_message_id": mail.get("messageId"), "to": address, "status": status,
                "detail": detail, "suppressed": status in ("bounced", "complained")},
                key=f"{sns_id}\x00{address}")
        return len(rows)


def _parse(body: Any) -> tuple[dict[str, str], dict[str, Any], list[tuple[str, str, str | None]]] | None:
    """(mail headers, mail, [(canonical address, status, detail)]) of an SES notification; None for other kinds."""
    if not isinstance(body, dict):
        raise TypeError("not an object")
    kind = body.get("notificationType") or body.get("eventType")
    mail = _object(body, "mail")
    headers = {str(h["name"]).lower(): str(h["value"]) for h in mail.get("headers", []) if "name" in h}
    if kind == "Bounce":
        bounce = _object(body, "bounce")
        permanent = bounce.get("bounceType") == "Permanent"
        rows = [(r["emailAddress"], "bounced" if permanent else "soft_bounced", bounce.get("bounceSubType"))
                for r in bounce.get("bouncedRecipients", [])]
    elif kind == "Complaint":
        complaint = _object(body, "complaint")
        rows = [(r["emailAddress"], "complained", complaint.get("complaintFeedbackType"))
                for r in complaint.get("complainedRecipients", [])]
    elif kind == "Delivery":
        rows = [(a, "delivered", None) for a in _object(body, "delivery").get("recipients", [])]
    else:
        return None
    return headers, mail, [(canonical(a), status, None if detail is None else str(detail))
                           for a, status, detail in rows]


def _object(body: dict[str, Any], name: str) -> dict[str, Any]:
    value = body.get(name, {})
    if not isinstance(value, dict):
        raise TypeError(f"{name} is not an object")
    return value


async def _confirm(url: str) -> None:
    import aiohttp

    from shared.runtime.http import get_session

    async with get_session().get(url, timeout=aiohttp.ClientTimeout(total=5)) as resp:
        resp.raise_for_status()
