"""Structured JSON logs with citizen data (phones, e-mails, CCCD) masked by a filter on every handler."""

from __future__ import annotations

import logging
import re
import sys
from typing import Any

import orjson

_PHONE = re.compile(r"(?<!\d)(?:\+?84|0)(\d{2})\d{4,5}(\d{3})(?!\d)")
_CCCD = re.compile(r"(?<!\d)\d{12}(?!\d)")
_EMAIL = re.compile(r"([A-Za-z0-9._%+-])[A-Za-z0-9._%+-]*@([A-Za-z0-9.-]+\.[A-Za-z]{2,})")


def redact(text: str) -> str:
    """Mask phone numbers, 12-digit citizen ids and e-mail local parts in free text."""
    text = _CCCD.sub("<cccd>", text)
    text = _PHONE.sub(lambda m: f"84{m.group(1)}****{m.group(2)}", text)
    return _EMAIL.sub(lambda m: f"{m.group(1)}***@{m.group(2)}", text)


_STD = set(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    """One JSON object per line; extra fields included; every string redacted."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {"level": record.levelname, "logger": record.name,
                               "msg": redact(record.getMessage())}
        for k, v in record.__dict__.items():
            if k not in _STD and not k.startswith("_"):
                out[k] = redact(v) if isinstance(v, str) else v
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
