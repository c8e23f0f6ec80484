"""Time units of the trail and the timestamp formats CloudTrail writes.

Timestamps are integer seconds since the epoch, UTC; formatting never reads the clock."""

from __future__ import annotations

import functools
import time

SLOT = 300
HOUR = 3600
DAY = 86400
SLOTS_PER_HOUR = HOUR // SLOT


@functools.lru_cache(maxsize=64)
def _day(days: int) -> str:
    return time.strftime("%Y-%m-%d", time.gmtime(days * DAY))


def iso(ts: int) -> str:
    days, sec = divmod(ts, DAY)
    return f"{_day(days)}T{sec // HOUR:02d}:{sec // 60 % 60:02d}:{sec % 60:02d}Z"


MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def aws_date(ts: int) -> str:
    """The `Oct 1, 2026, 9:05:12 AM` form AWS uses inside responseElements."""
    t = time.gmtime(ts)
    hour = t.tm_hour % 12 or 12
    ampm = "AM" if t.tm_hour < 12 else "PM"
    clock = f"{hour}:{t.tm_min:02d}:{t.tm_sec:02d} {ampm}"
    return f"{MONTHS[t.tm_mon - 1]} {t.tm_mday}, {t.tm_year}, {clock}"
