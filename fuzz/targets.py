"""Byte-level fuzz targets: the parsers that read what the outside world sends. Each target takes raw bytes
and raises only for a finding: an exception its caller does not turn into a 4xx / a provider error (which
would be a 500, a retry forever, or a breaker opened by our own input), or a broken invariant.

Run by atheris (`python -m fuzz.atheris_run TARGET`) when it is installed, else by hypothesis (`python -m fuzz`
falls back to `hypothesis_run`)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import orjson

Target = Callable[[bytes], None]


def _split(data: bytes, parts: int) -> list[bytes]:
    """`parts` byte strings from one input (separated by 0xFE 0xFE; missing ones empty)."""
    out = data.split(b"\xfe\xfe", parts - 1)
    return out + [b""] * (parts - len(out))


def cloudevent_http(data: bytes) -> None:
    """shared/runtime/events.py:parse_http over random headers and body, both modes; a parsed event must encode
    back to latin-1 headers (binary_headers) that parse again to the same attributes and data (round trip)."""
    from shared.runtime.errors import InvalidEvent
    from shared.runtime.events import binary_headers, parse_http
    from shared.runtime.settings import limit_settings

    head, body, flags = _split(data, 3)
    headers: dict[str, str] = {}
    for line in head.split(b"\n"):
        name, _, value = line.partition(b":")
        headers[name.decode("latin-1").strip().lower()] = value.decode("latin-1").strip()
    if flags[:1] == b"s":
        headers["content-type"] = "application/cloudevents+json"
    elif flags[:1] == b"b":
        headers.update({"ce-specversion": "1.0", "ce-id": "1", "ce-source": "/s", "ce-type": "t"})
    keep_deep = flags[1:2] == b"d"
    try:
        event = parse_http(headers, body, limit_settings(), keep_deep=keep_deep)
    except InvalidEvent:
        return
    if keep_deep:  # the sink takes attributes as they are; it never writes them as headers
        return
    out = binary_headers(event)
    for k, v in out.items():
        v.encode("latin-1")  # a header that cannot be written: the defect of a reply failing after the effect
        assert "\r" not in v and "\n" not in v, (k, v)
    payload = event.data_bytes()
    if not isinstance(event.data, bytes | bytearray):
        out["content-type"] = "application/json"
    again = parse_http(out, payload, limit_settings())
    assert (again.id, again.source, again.type, again.subject, again.time, again.extensions) == \
        (event.id, event.source, event.type, event.subject, event.time, event.extensions)
    assert again.data == event.data


def viettel_soap_reply(data: bytes) -> None:
    """Viettel's SOAP replies (wsCpMt, wsCpMt4, getFailSub) as our client reads them: only ProviderError."""
    from shared.integrations import transport
    from shared.integrations.sms import SmsMessage
    from shared.integrations.sms.viettel import ViettelSms
    from shared.reliability.errors import ProviderError

    status_byte, payload = (data[:1] or b"\x00"), data[1:]
    status = (200, 500, 400, 200)[status_byte[0] % 4]

    async def fake(*args: Any, **kwargs: Any) -> tuple[int, bytes]:
        return status, payload

    original = transport.request
    transport.request = fake  # type: ignore[assignment]
    try:
        client = ViettelSms()
        msgs = [SmsMessage(to="84912345678", text="x", encoding="gsm7", segments=1, reference=f"r{i}",
                           brandname="DVCQG", category="transactional") for i in range(2)]

        async def run() -> None:
            for call in (lambda: client.send(msgs[0]), lambda: client.send_many(msgs),
                         lambda: client.fail_subs("20261128")):
                try:
                    await call()
                except ProviderError:
                    pass

        asyncio.run(run())
    finally:
        transport.request = original  # type: ignore[assignment]


def xades_input(data: bytes) -> None:
    """XAdES input parsing (shared/integrations/signature/xades.py:safe_parse): InvalidDocument or a tree;
    never an entity expanded or a network fetch (no DOCTYPE gets through)."""
    from shared.integrations.signature.xades import InvalidDocument, safe_parse

    try:
        root = safe_parse(data)
    except InvalidDocument:
        return
    assert root.getroottree().docinfo.doctype == "", "a DOCTYPE got through"


def _json(data: bytes) -> Any:
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        return None


def sms_receipts(data: bytes) -> None:
    """The SMS receipt parsers (VNPT, MobiFone: every push provider of the registry), with the exceptions
    SmsJobs.webhook turns into 400."""
    from shared.integrations.registry import load
    from shared.integrations.sms.providers import REGISTRY

    payload = _json(data)
    for spec in REGISTRY.webhooks():
        assert spec.webhook is not None
        try:
            load(spec.webhook.parser)(payload)
        except (KeyError, TypeError, ValueError, AttributeError):
            pass


def postal_webhook(data: bytes) -> None:
    """Viettel Post's tracking webhook parser, with the exceptions its route turns into 400
    (postal.tracking.TrackingJobs.webhook)."""
    from shared.integrations.postal.viettelpost import parse_webhook

    try:
        parse_webhook(_json(data))
    except (ValueError, KeyError, TypeError):
        pass


def signing_callbacks(data: bytes) -> None:
    """SmartCA / MySign callback parsers, with the exceptions sign_document's route turns into 400."""
    from shared.integrations.signature.mysign import MySign
    from shared.integrations.signature.smartca import SmartCa
    from shared.reliability.errors import ProviderError

    for cls in (SmartCa, MySign):
        client = cls()
        try:
            client.parse_webhook(data)
        except (ValueError, KeyError, TypeError, AttributeError, ProviderError):
            pass


def ses_notification(data: bytes) -> None:
    """The SES payload inside an SNS notification (send_email's bounce/complaint parser): MalformedNotification
    (400) or rows."""
    from shared.integrations.email.notifications import _parse

    try:
        _parse(_json(data))
    except (KeyError, TypeError, AttributeError, ValueError):  # SesNotifications.notification: 400
        pass


TARGETS: dict[str, Target] = {
    "cloudevent_http": cloudevent_http,
    "viettel_soap_reply": viettel_soap_reply,
    "xades_input": xades_input,
    "sms_receipts": sms_receipts,
    "postal_webhook": postal_webhook,
    "signing_callbacks": signing_callbacks,
    "ses_notification": ses_notification,
}

#: seed inputs per target (atheris corpus / hypothesis examples)
SEEDS: dict[str, list[bytes]] = {
    "cloudevent_http": [
        b"content-type: application/json\nce-specversion: 1.0\nce-id: a\nce-source: /s\nce-type: t\xfe\xfe{}",
        b"\xfe\xfe" + orjson.dumps({"specversion": "1.0", "id": "1", "source": "/s", "type": "t",
                                    "dossierid": "H\u1ed3 s\u01a1", "data": {"a": [1]}}) + b"\xfe\xfes",
        b"ce-dossierid: %E1%BB%93\xfe\xfe[1]\xfe\xfeb",
    ],
    "viettel_soap_reply": [b"\x00<return><result>1</result><message>OK</message></return>",
                           b"\x00<faultstring>x</faultstring>", b"\x00<errCode>0</errCode><total>1</total>"
                           b"<failSub><message>m</message><receiver>84912345678</receiver></failSub>",
                           b"\x00<return><details>OK</details><msgId>r0</msgId><receiver>1</receiver></return>"],
    "xades_input": [b"<a/>", b'<?xml version="1.0"?><!DOCTYPE a [<!ENTITY e "x">]><a>&e;</a>',
                    b'<ds:Signature xmlns:ds="http://www.w3.org/2000/09/xmldsig#"/>'],
    "sms_receipts": [b'{"msgid":"1","status":"DELIVRD","parts":2,"part":1,"to":"0912345678"}',
                     b'{"smsid":"1","status":1,"done_date":"2026-11-28 10:00:00"}'],
    "postal_webhook": [b'{"DATA":{"ORDER_NUMBER":"1","ORDER_STATUS":501,"ORDER_STATUSDATE":"28/11/2026 10:00:00"}}'],
    "signing_callbacks": [b'{"transaction_id":"t","status":"signed","signed_files":[{"signature_value":"YQ=="}]}',
                          b'{"tran_id":"t","status":1,"signatures":["YQ=="]}'],
    "ses_notification": [b'{"notificationType":"Bounce","mail":{"headers":[]},"bounce":{"bounceType":"Permanent",'
                         b'"bouncedRecipients":[{"emailAddress":"a@example.vn"}]}}'],
}
