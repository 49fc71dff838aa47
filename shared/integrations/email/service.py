"""Sending one e-mail with exactly-once effect: render, check, build the MIME once (a redelivery is the
same bytes and Message-ID), admit, deliver with failover SMTP -> SES."""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from typing import Any

from shared.integrations.email import EmailFailure, EmailProvider, EmailReceipt, Envelope, mime
from shared.integrations.email.addresses import InvalidAddress, canonical
from shared.integrations.email.settings import EmailSettings
from shared.integrations.email.suppression import Suppressions
from shared.integrations.email.templates import TemplateError, render
from shared.reliability.errors import OutcomeUnknown, ProviderRejected
from shared.reliability.failover import deliver
from shared.reliability.pipeline import Pipeline
from shared.runtime.app import EventContext
from shared.runtime.loops import per_loop
from shared.storage.objects import ObjectMissing, ObjectStore, ObjectTooLarge


def _parses(address: str) -> bool:
    try:
        canonical(address)
    except InvalidAddress:
        return False
    return True


@dataclass(frozen=True, slots=True)
class EmailRequest:
    to: list[str]
    cc: list[str] = field(default_factory=list)
    bcc: list[str] = field(default_factory=list)
    template: str | None = None
    locale: str = "vi"
    params: dict[str, Any] = field(default_factory=dict)
    subject: str | None = None
    text: str | None = None
    html: str | None = None
    attachments: list[dict[str, str]] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Sent:
    message_id: str
    provider: str
    to: list[str]


@dataclass(frozen=True, slots=True)
class NotSent:
    reason: EmailFailure
    detail: str


class EmailService:
    def __init__(self, providers: dict[str, EmailProvider], order: list[str], pipeline: Pipeline,
                 suppressions: Suppressions, objects: ObjectStore, settings: EmailSettings):
        self.providers, self.order, self.pipeline = providers, order, pipeline
        self.suppressions, self.objects, self.settings = suppressions, objects, settings

    async def send(self, ctx: EventContext, req: EmailRequest) -> Sent | NotSent:
        bad = [a for a in [*req.to, *req.cc, *req.bcc] if not _parses(a)]
        if bad or not req.to:
            return NotSent(EmailFailure.invalid_recipient,
                           f"{len(bad)} address(es) are not e-mail addresses" if bad else "no recipient")
        # one canonical form from here on: what is checked against the suppression list is what is sent
        req = replace(req, to=[canonical(a) for a in req.to], cc=[canonical(a) for a in req.cc],
                      bcc=[canonical(a) for a in req.bcc])
        recipients = [*req.to, *req.cc, *req.bcc]
        html: str | None
        try:
            if req.template:
                r = render(req.template, req.locale, req.params)
                subject, text, html = r.subject, r.text, r.html
            else:
                subject, text, html = req.subject or "", req.text or "", req.html
                if not subject or not (text or html):
                    raise TemplateError("either template, or subject with text and/or html, is required")
        except TemplateError as exc:
            return NotSent(EmailFailure.template_error, str(exc))
        suppressed = await self.suppressions.which(recipients)
        if suppressed:
            return NotSent(EmailFailure.suppressed, f"{len(suppressed)} recipient(s) on the suppression list "
                                                    "(hard bounce or complaint); `dvci email unsuppress` lifts it")
        try:
            attachments = await self._attachments(req.attachments)
        except ObjectTooLarge as exc:
            return NotSent(EmailFailure.attachment_too_large, str(exc))
        except ObjectMissing as exc:
            return NotSent(EmailFailure.attachment_missing, str(exc))
        msg_id = mime.message_id(ctx.event.source, ctx.event.id, self.settings.domain)
        message = mime.build(sender=self.settings.sender, to=req.to, cc=req.cc, subject=subject,
                             text=text or "", html=html, attachments=attachments, msg_id=msg_id,
                             date=mime.event_time(ctx.event.time))
        s = self.settings
        dkim = (s.dkim_selector, s.dkim_domain, s.dkim_private_key.get_secret_value().encode()) \
            if s.dkim_selector and s.dkim_domain and s.dkim_private_key else None
        envelope = Envelope(_bare(self.settings.sender), recipients, mime.to_bytes(message, dkim), msg_id)
        adm = await self.pipeline.admit(ctx, self.order)
        try:  # SMTP does not de-duplicate: no in-request re-send; a takeover asks the provider first
            provider, _ = await deliver(self.pipeline, adm, self.order, _EmailDelivery(self, ctx, envelope),
                                        attempts=1, remaining=ctx.remaining)
        except ProviderRejected as exc:
            return NotSent(EmailFailure(exc.reason), exc.detail)
        except OutcomeUnknown as exc:
            return NotSent(EmailFailure.outcome_unknown, exc.detail)
        adm.audit = {"kind": "email", "provider": provider, "outcome": "sent", "recipients": len(recipients)}
        return Sent(msg_id, provider, req.to)

    async def _attachments(self, specs: list[dict[str, str]]) -> list[mime.Attachment]:
        budget = self.settings.max_attachment_bytes
        out = []
        for spec in specs:
            data = await self.objects.get(spec["s3_key"], budget)
            budget -= len(data)
            out.append(mime.Attachment(spec["filename"], spec.get("content_type", "application/octet-stream"), data))
        return out


@dataclass(frozen=True, slots=True)
class _EmailDelivery:
    """One message (fixed bytes and Message-ID) as a `Delivery` to SMTP or SES."""

    service: EmailService
    ctx: EventContext
    envelope: Envelope

    async def send(self, provider: str) -> EmailReceipt:
        self.ctx.log_fields["provider"] = provider
        return await self.service.providers[provider].send(self.envelope)

    async def status(self, provider: str) -> EmailReceipt | None:
        return await self.service.providers[provider].status(self.envelope)


def _bare(address: str) -> str:
    m = re.search(r"<([^>]+)>", address)
    return m.group(1) if m else address


def _build() -> EmailService:
    from shared.integrations.email.providers import REGISTRY
    from shared.reliability.policy import ProviderPolicy
    from shared.reliability.settings import ReliabilitySettings
    from shared.runtime.settings import runtime_settings
    from shared.storage.redis import Keys, get_fast_redis, get_redis

    settings = EmailSettings()
    keys = Keys(runtime_settings().env)
    order = [p.strip() for p in settings.order.split(",") if p.strip()]
    unknown = [p for p in order if p not in REGISTRY]
    if unknown:
        raise LookupError(f"DVCI_EMAIL_ORDER names unknown providers: {', '.join(unknown)}; known: "
                          f"{', '.join(REGISTRY.names())}")
    providers: dict[str, EmailProvider] = {name: REGISTRY.get(name).new_client() for name in order}
    pipeline = Pipeline(get_fast_redis(), keys, "email", {p: ProviderPolicy(p) for p in providers},
                        ReliabilitySettings().idempotency())
    return EmailService(
        providers, order, pipeline, Suppressions(get_redis(), keys),
        ObjectStore(settings.attachments_bucket, settings.s3_endpoint_url), settings)


default_service: per_loop[EmailService] = per_loop(_build)
"""The process's service for the running event loop (built on first use, after any fork)."""
