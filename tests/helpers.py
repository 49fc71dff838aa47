"""Test helpers: CloudEvents encoded by the official SDK (cloudevents 1.x)."""

from __future__ import annotations

import random
import uuid
from typing import Any

from cloudevents.conversion import to_binary, to_structured
from cloudevents.http import CloudEvent

SMS_REQUESTED = "vn.gov.dvc.sms.send.requested"


def sdk_event(data: Any, type_: str = SMS_REQUESTED, *, id_: str | None = None, source: str = "/dvc/core/test",
              **extensions: str) -> CloudEvent:
    attrs = {"type": type_, "source": source, "id": id_ or str(uuid.uuid4()), "datacontenttype": "application/json",
             **extensions}
    return CloudEvent(attrs, data)


def binary(event: CloudEvent) -> tuple[dict[str, str], bytes]:
    headers, body = to_binary(event)
    return dict(headers), body


def structured(event: CloudEvent) -> tuple[dict[str, str], bytes]:
    headers, body = to_structured(event)
    return dict(headers), body


def random_number() -> str:
    """A valid Vietnamese mobile number, different each call (recipient limits apply per number)."""
    return random.choice(["091", "094", "096", "097", "098", "090", "093", "088", "086", "032"]) + \
        f"{random.randrange(10**7):07d}"


def sms(to: str | None = None, text: str = "Ho so cua ban da duoc tiep nhan.", **kw: Any) -> dict[str, Any]:
    return {"to": to or random_number(), "text": text, **kw}
