"""Local calendar days as epoch ranges, in the configured time zone.

A day runs from local midnight to the next local midnight, both computed with ``zoneinfo``, so a
daylight-saving day is 23 or 25 hours long (Europe/Berlin: 2026-03-29 has 1380 minutes,
2026-10-25 has 1500). Where midnight itself does not exist (a zone that springs forward at
00:00), the day starts at the first instant of that date.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from datetime import time as dtime
from zoneinfo import ZoneInfo

DATE_RE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
# The first day whose report can be computed everywhere: it and the 14 days of history before
# it stay within what datetime and epoch arithmetic accept (year 1 gave a 500: "year 0 is out
# of range"), and nothing was monitored earlier.
MIN_DATE = date(1970, 1, 2)


class BadDate(ValueError):
    """A date the report cannot be built for; ``str()`` is one line for the user."""


def parse_date(text: str | None, tz: ZoneInfo, now: float) -> date:
    """``YYYY-MM-DD``, ``today`` or ``yesterday`` (the default) -> a date; never in the future."""
    today = datetime.fromtimestamp(now, tz).date()
    if text is None or text == "" or text == "yesterday":
        return today - timedelta(days=1)
    if text == "today":
        return today
    if not DATE_RE.fullmatch(text):
        raise BadDate(f"date: expected YYYY-MM-DD, got {text[:40]!r}")
    try:
        d = date.fromisoformat(text)
    except ValueError:
        raise BadDate(f"date: {text!r} is not a calendar date") from None
    if d < MIN_DATE:
        raise BadDate(f"date: {text} is before {MIN_DATE.isoformat()}, the earliest day with a summary")
    if d > today:
        raise BadDate(f"date: {text} is in the future (today is {today.isoformat()} in {tz.key})")
    return d


def local_midnight(d: date, tz: ZoneInfo) -> float:
    """Epoch seconds of the first instant of ``d`` in ``tz``."""
    t = datetime.combine(d, dtime(0, 0)).replace(tzinfo=tz).timestamp()
    # Where 00:00 falls in a DST gap, zoneinfo maps it past the gap; walk back to the first
    # instant whose local date is ``d`` (a no-op on every ordinary day).
    for _ in range(240):
        if datetime.fromtimestamp(t - 60, tz).date() != d:
            break
        t -= 60
    return t


@dataclass(frozen=True)
class Day:
    date: date
    tz: ZoneInfo
    start: float            # epoch, inclusive
    end: float              # epoch, exclusive
    now: float

    @property
    def minutes(self) -> int:
        """Minutes in the whole local day: 1440, or 1380 / 1500 on DST days."""
        return int(round((self.end - self.start) / 60))

    @property
    def hours(self) -> float:
        return (self.end - self.start) / 3600

    @property
    def is_today(self) -> bool:
        return self.start <= self.now < self.end

    @property
    def until(self) -> float:
        """Where the data of the report ends: the day's end, or now for today."""
        return min(self.end, self.now)

    @property
    def elapsed_minutes(self) -> int:
        """Minutes of the day that have begun (all of them for a past day)."""
        if self.now >= self.end:
            return self.minutes
        return max(0, int((self.now - self.start) // 60) + 1)

    def local(self, ts: float) -> datetime:
        return datetime.fromtimestamp(ts, self.tz)

    def clock(self, ts: float) -> str:
        """``HH:MM`` local, with the zone abbreviation when the day has two (DST days)."""
        t = self.local(ts)
        if self.local(self.start).utcoffset() != self.local(self.end - 1).utcoffset():
            return t.strftime("%H:%M %Z")
        return t.strftime("%H:%M")

    def iso(self, ts: float) -> str:
        return self.local(ts).isoformat(timespec="seconds")


def day_of(d: date, tz: ZoneInfo, now: float) -> Day:
    return Day(d, tz, local_midnight(d, tz), local_midnight(d + timedelta(days=1), tz), now)


def previous_days(day: Day, count: int) -> list[Day]:
    """The ``count`` days before ``day``, oldest first."""
    return [day_of(day.date - timedelta(days=i), day.tz, day.now) for i in range(count, 0, -1)]
