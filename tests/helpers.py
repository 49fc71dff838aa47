"""Test helpers: CloudEvents encoded by the official SDK (cloudevents 1.x)."""

from __future__ import annotations

import uuid
from typing import Any

from cloudevents.conversion import to_binary, to_structured
from cloudevents.http import CloudEvent

SMS_REQUESTED = "vn.gov.dvc.sms.send.requested"


def sdk_event(data: Any, type_: str = SMS_REQUESTED, *, id_: str | None = None, source: str = "/dvc/core/test",
              **extensions: str) -> CloudEvent:
    attrs = {"type": type_, "source": source, "id": id_ or str(uuid.uuid4()), **extensions}
    return CloudEvent(attrs, data)


def binary(event: CloudEvent) -> tuple[dict[str, str], bytes]:
    headers, body = to_binary(event)
    return dict(headers), body


def structured(event: CloudEvent) -> tuple[dict[str, str], bytes]:
    headers, body = to_structured(event)
    return dict(headers), body


def sms(to: str = "0912345678", text: str = "Ho so cua ban da duoc tiep nhan.", **kw: Any) -> dict[str, Any]:
    return {"to": to, "text": text, **kw}
