"""Building the MIME message: multipart/alternative (text + HTML), attachments, UTF-8 everywhere with
RFC 2047 headers, a Message-ID and Date fixed by the event (a redelivery is byte-identical), optional
DKIM signature."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime, parsedate_to_datetime

from shared.reliability.keys import event_digest

#: what may be attached to a letter to a citizen: documents and images, never containers of other messages
#: (multipart/*, message/rfc822) or active content
ATTACHMENT_TYPES = frozenset((
    "application/pdf", "application/octet-stream", "application/zip", "application/xml", "text/xml",
    "text/plain", "text/csv", "image/png", "image/jpeg", "image/gif", "image/tiff",
    "application/msword", "application/vnd.ms-excel",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "application/vnd.oasis.opendocument.text", "application/vnd.oasis.opendocument.spreadsheet",
    "application/pkcs7-signature", "application/pkcs7-mime",
))
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def has_control(value: str) -> bool:
    """Whether `value` holds a control character (CR/LF would split a header)."""
    return _CONTROL.search(value) is not None


@dataclass(frozen=True, slots=True)
class Attachment:
    filename: str
    content_type: str
    data: bytes


def message_id(source: str, event_id: str, domain: str) -> str:
    digest = event_digest(source, event_id)
    return f"<{digest}@{domain}>"


def build(*, sender: str, to: list[str], cc: list[str], subject: str, text: str, html: str | None,
          attachments: list[Attachment], msg_id: str, date: datetime | None) -> EmailMessage:
    msg = EmailMessage(policy=SMTP)
    msg["From"] = sender
    msg["To"] = ", ".join(to)
    if cc:
        msg["Cc"] = ", ".join(cc)
    msg["Subject"] = subject
    msg["Message-ID"] = msg_id
    msg["Date"] = format_datetime((date or datetime.now(UTC)).astimezone(UTC))
    msg["MIME-Version"] = "1.0"
    msg.set_content(text, charset="utf-8")
    if html is not None:
        msg.add_alternative(html, subtype="html", charset="utf-8")
    for a in attachments:
        maintype, _, subtype = a.content_type.partition("/")
        msg.add_attachment(a.data, maintype=maintype, subtype=subtype or "octet-stream", filename=a.filename)
    seed = hashlib.sha256(msg_id.encode()).hexdigest()[:24]
    for i, part in enumerate(p for p in msg.walk() if p.is_multipart()):
        part.set_boundary(f"=_dvci_{seed}_{i}")  # boundaries too are fixed by the event: same bytes every time
    return msg


def to_bytes(msg: EmailMessage, dkim: tuple[str, str, bytes] | None = None) -> bytes:
    """The wire form (CRLF); DKIM-signed when (selector, domain, private key PEM) is given."""
    raw = msg.as_bytes(policy=SMTP)
    if dkim is None:
        return raw
    import dkim as dkimpy  # only when a key is configured

    selector, domain, key = dkim
    signature = dkimpy.sign(raw, selector.encode(), domain.encode(), key,
                            include_headers=[b"from", b"to", b"subject", b"date", b"message-id"])
    return signature + raw


def event_time(value: str | None) -> datetime | None:
    """The event's time as an aware UTC datetime for the Date header; None (now) when it has none, or one
    that is not a time, or one outside what a Date header can carry."""
    if not value:
        return None
    try:
        stamp = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        try:
            stamp = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
    try:
        stamp = stamp.astimezone(UTC)
    except (OverflowError, ValueError):
        return None
    return stamp if 1970 <= stamp.year <= 9998 else None
