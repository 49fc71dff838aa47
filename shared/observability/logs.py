"""Structured JSON logs with citizen data (phones, e-mails, CCCD) masked by a filter on every handler."""

from __future__ import annotations

import atexit
import logging
import os
import re
import sys
import threading
import time
from typing import IO, Any

import orjson

# Every pattern is linear in the text: a match can only start where a run of its characters starts (the
# look-behinds), so no position is rescanned (a 1 MB id is one pass, not 10^12 steps). E-mail addresses go
# first, then numbers: 12-digit ids, and phone numbers however written (`0912 345 678`, `+84 912-345-678`,
# `(091) 234.5678`: at most two separators between digits).
_LOCAL = r"A-Za-z0-9._%+\-"
_EMAIL = re.compile(rf"(?<![{_LOCAL}])(?P<e1>[{_LOCAL}])[{_LOCAL}]*@(?P<e2>[A-Za-z0-9.-]+\.[A-Za-z]{{2,}})")
_SEP = r"[\s.\-()/]{0,2}"
_NUMBER = re.compile(
    r"(?P<cccd>(?<!\d)\d{12}(?!\d))"
    rf"|(?<![\d+])(?P<phone>(?:\+?84|\(?0){_SEP}\d(?:{_SEP}\d){{8,9}})(?!\d)"
)


def _mask_email(m: re.Match[str]) -> str:
    return f"{m.group('e1')}***@{m.group('e2')}"


def _mask_number(m: re.Match[str]) -> str:
    if m.group("cccd"):
        return "<cccd>"
    digits = "".join(c for c in m.group("phone") if c.isdigit())
    national = digits[2:] if digits.startswith("84") and len(digits) in (11, 12) else digits[1:]
    return f"84{national[:2]}****{national[-3:]}"


def redact(text: str) -> str:
    """Mask phone numbers (with or without separators), 12-digit citizen ids and e-mail local parts in
    free text, in time linear in its length."""
    return _NUMBER.sub(_mask_number, _EMAIL.sub(_mask_email, text))


#: fields the runtime fills with values it controls (types, names, numbers): not scanned
SAFE_FIELDS = frozenset(("function", "ce_type", "reply", "provider", "carrier", "status", "duration_ms",
                         "breaker", "change", "replayed"))

_STD = set(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {"message", "asctime"}


_RESERVED = frozenset(("level", "logger", "msg", "exc"))


class JsonFormatter(logging.Formatter):
    """One JSON object per line; extra fields included; every string redacted."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {"level": record.levelname, "logger": record.name,
                               "msg": redact(record.getMessage())}
        for k, v in record.__dict__.items():
            if k not in _STD and not k.startswith("_"):
                key = f"field_{k}" if k in _RESERVED else k  # an extra never replaces level/logger/msg
                out[key] = redact(v) if isinstance(v, str) and k not in SAFE_FIELDS else v
        if record.exc_info:
            out["exc"] = redact(self.formatException(record.exc_info))
        return orjson.dumps(out, default=str).decode()


class BufferedStreamHandler(logging.Handler):
    """Writes log lines in batches: one write per 50 ms (or 256 lines) instead of a syscall per event;
    warnings and errors are written at once. A daemon thread flushes what a quiet period leaves behind."""

    def __init__(self, stream: IO[str], interval_s: float = 0.05, max_lines: int = 256):
        super().__init__()
        self.stream = stream
        self.interval_s = interval_s
        self.max_lines = max_lines
        self._lines: list[str] = []
        self._last = time.monotonic()
        self._pid = 0  # the flusher thread is started per process: gunicorn forks workers after import
        atexit.register(self.flush)

    def emit(self, record: logging.LogRecord) -> None:
        if self._pid != os.getpid():
            self._pid = os.getpid()
            threading.Thread(target=self._run, name="dvci-log-flush", daemon=True).start()
        try:
            line = self.format(record)
        except Exception:
            self.handleError(record)
            return
        with self.lock:  # type: ignore[union-attr]
            self._lines.append(line)
            due = record.levelno >= logging.WARNING or len(self._lines) >= self.max_lines \
                or time.monotonic() - self._last >= self.interval_s
        if due:
            self.flush()

    def flush(self) -> None:
        with self.lock:  # type: ignore[union-attr]
            lines, self._lines = self._lines, []
            self._last = time.monotonic()
        if lines:
            try:
                self.stream.write("\n".join(lines) + "\n")
                self.stream.flush()
            except (ValueError, OSError):
                pass

    def _run(self) -> None:
        while True:
            time.sleep(self.interval_s * 4)
            if self._lines:
                self.flush()


_configured = False


def configure(level: str = "INFO", stream: IO[str] | None = None) -> None:
    """Install the JSON formatter on the root logger once per process (stderr unless `stream`)."""
    global _configured
    if _configured:
        return
    handler = BufferedStreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    _configured = True
