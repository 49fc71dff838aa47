"""Times in events and CLI/JSON outputs: RFC 3339 with an offset, always (`to_rfc3339`).

Providers write times in many ways, mostly Vietnam local time without an offset (`2026-11-28 05:48:56`,
`20261128054856`, `28/11/2026 05:48:56`); stored times are epoch seconds or milliseconds. `to_rfc3339`
takes any of these: a value that carries an offset keeps it; a naive one is read in Asia/Ho_Chi_Minh; an
epoch is shown in Asia/Ho_Chi_Minh. Output: `2026-11-28T05:48:56+07:00` (milliseconds when the value has
a fraction of a second; `Z` for UTC values).
"""

from __future__ import annotations

import re
import time
from datetime import datetime, tzinfo
from zoneinfo import ZoneInfo

VIETNAM = ZoneInfo("Asia/Ho_Chi_Minh")
_EPOCH_MS_FROM = 100_000_000_000  # larger epochs are milliseconds (1973 in ms; year 5138 in seconds)
_COMPACT = re.compile(r"\d{14}")  # yyyyMMddHHmmss
_NUMBER = re.compile(r"\d+(?:\.\d+)?")
_DAY_FIRST = ("%d/%m/%Y %H:%M:%S", "%d/%m/%Y %H:%M", "%d/%m/%Y", "%d-%m-%Y %H:%M:%S")


def parse_time(value: str | float | datetime | None = None, *, local: tzinfo = VIETNAM) -> datetime:
    """An aware datetime from a provider's or a store's time; None or "" is now. Raises ValueError."""
    if value is None or value == "":
        return datetime.now(local)
    if isinstance(value, datetime):
        return value if value.tzinfo is not None else value.replace(tzinfo=local)
    if isinstance(value, bool):
        raise ValueError("a boolean is not a time")
    if isinstance(value, int | float):
        seconds = value / 1000 if value >= _EPOCH_MS_FROM else value
        return datetime.fromtimestamp(seconds, local)
    text = value.strip()
    if _COMPACT.fullmatch(text):
        return datetime.strptime(text, "%Y%m%d%H%M%S").replace(tzinfo=local)
    if _NUMBER.fullmatch(text):
        return parse_time(float(text), local=local)
    try:
        parsed = datetime.fromisoformat(text.replace("z", "Z"))
    except ValueError:
        for fmt in _DAY_FIRST:
            try:
                parsed = datetime.strptime(text, fmt)
                break
            except ValueError:
                continue
        else:
            raise ValueError(f"not a recognised time: {text[:40]!r}") from None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=local)


def to_rfc3339(value: str | float | datetime | None = None, *, local: tzinfo = VIETNAM,
               lenient: bool = False) -> str:
    """RFC 3339 with the offset: `2026-11-28T05:48:56+07:00`. See the module docstring for what it reads.

    `lenient`: a value that cannot be read gives now (for times received from providers) instead of ValueError."""
    try:
        dt = parse_time(value, local=local)
    except ValueError:
        if not lenient:
            raise
        dt = datetime.now(local)
    stamp = dt.isoformat(timespec="milliseconds" if dt.microsecond else "seconds")
    return stamp[:-6] + "Z" if stamp.endswith("+00:00") else stamp


def now_local() -> str:
    """Now in Vietnam time, RFC 3339, to the second."""
    return to_rfc3339(int(time.time()))
