"""Structured JSON logs with citizen data (phones, e-mails, CCCD) masked by a filter on every handler."""

from __future__ import annotations

import logging
import re
import sys
from typing import Any

import orjson

_PII = re.compile(
    r"(?P<cccd>(?<!\d)\d{12}(?!\d))"
    r"|(?<!\d)(?:\+?84|0)(?P<p1>\d{2})\d{4,5}(?P<p2>\d{3})(?!\d)"
    r"|(?P<e1>[A-Za-z0-9._%+-])[A-Za-z0-9._%+-]*@(?P<e2>[A-Za-z0-9.-]+\.[A-Za-z]{2,})"
)


def _mask(m: re.Match[str]) -> str:
    if m.group("cccd"):
        return "<cccd>"
    if m.group("p1"):
        return f"84{m.group('p1')}****{m.group('p2')}"
    return f"{m.group('e1')}***@{m.group('e2')}"


def redact(text: str) -> str:
    """Mask phone numbers, 12-digit citizen ids and e-mail local parts in free text (one pass)."""
    return _PII.sub(_mask, text)


#: fields the runtime fills with values it controls (types, names, numbers): not scanned
SAFE_FIELDS = frozenset(("function", "ce_type", "reply", "provider", "carrier", "status", "duration_ms",
                         "breaker", "change", "replayed"))

_STD = set(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    """One JSON object per line; extra fields included; every string redacted."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {"level": record.levelname, "logger": record.name,
                               "msg": redact(record.getMessage())}
        for k, v in record.__dict__.items():
            if k not in _STD and not k.startswith("_"):
                out[k] = redact(v) if isinstance(v, str) and k not in SAFE_FIELDS else v
        if record.exc_info:
            out["exc"] = redact(self.formatException(record.exc_info))
        return orjson.dumps(out, default=str).decode()


_configured = False


def configure(level: str = "INFO") -> None:
    """Install the JSON formatter on the root logger once per process."""
    global _configured
    if _configured:
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    _configured = True
