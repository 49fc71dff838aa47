"""Decree 91/2020/NĐ-CP on advertising messages: only between 07:00 and 22:00 Vietnam time (the label
`[QC]` is added in content.py, at most 3 per number per 24 h is the `advertising` recipient limit)."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

VIETNAM = ZoneInfo("Asia/Ho_Chi_Minh")
OPENS, CLOSES = time(7, 0), time(22, 0)


def next_allowed(now: datetime) -> datetime | None:
    """None when an advertising message may be sent at `now`; else when the window next opens (UTC-aware)."""
    local = now.astimezone(VIETNAM)
    if OPENS <= local.time() < CLOSES:
        return None
    day = local.date() if local.time() < OPENS else local.date() + timedelta(days=1)
    return datetime.combine(day, OPENS, tzinfo=VIETNAM)
