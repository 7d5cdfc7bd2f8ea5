"""Weekly deploy windows: "no deploys Fri 16:00 - Mon 08:00", judged in the environment's zone.

Pure: text in, verdicts out. A window is written `Fri 16:00-Mon 08:00`, one per line; the end may
come "before" the start in the week (it wraps round Sunday night), and `Mon 08:00` means the
moment the window closes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
WEEK_MINUTES = 7 * 24 * 60
_POINT = r"([A-Za-z]{3})[a-z]*\s+(\d{1,2}):(\d{2})"
_LINE = re.compile(rf"^\s*{_POINT}\s*(?:-|–|to)\s*{_POINT}\s*$")


class WindowError(ValueError):
    """A window line cannot be read; the message quotes it."""


@dataclass(frozen=True)
class Window:
    """A recurring weekly span, in minutes from Monday 00:00 (end exclusive)."""

    start: int
    end: int
    text: str

    def contains(self, minute: int) -> bool:
        if self.start < self.end:
            return self.start <= minute < self.end
        return minute >= self.start or minute < self.end  # wraps round the end of the week

    def minutes_until_end(self, minute: int) -> int:
        return (self.end - minute) % WEEK_MINUTES or WEEK_MINUTES


def _minute(day: str, hour: str, minute: str, line: str) -> int:
    key = day.lower()[:3]
    if key not in DAYS:
        raise WindowError(f"“{line.strip()}”: “{day}” is not a day (Mon … Sun)")
    h, m = int(hour), int(minute)
    if not (0 <= h <= 24 and 0 <= m < 60) or (h == 24 and m):
        raise WindowError(f"“{line.strip()}”: {hour}:{minute} is not a time of day")
    return (DAYS.index(key) * 24 * 60 + h * 60 + m) % WEEK_MINUTES


def parse_windows(text: str) -> list[Window]:
    """Lines of `Fri 16:00-Mon 08:00`; blank lines and `# comments` are skipped."""
    windows = []
    for raw in text.splitlines():
        line = raw.split("#", 1)[0]
        if not line.strip():
            continue
        match = _LINE.match(line)
        if match is None:
            raise WindowError(f"“{line.strip()}” is not “Fri 16:00-Mon 08:00”")
        start_day, start_hour, start_minute, end_day, end_hour, end_minute = match.groups()
        start = _minute(start_day, start_hour, start_minute, line)
        end = _minute(end_day, end_hour, end_minute, line)
        if start == end:
            raise WindowError(f"“{line.strip()}” starts and ends at the same time")
        windows.append(Window(start, end, " ".join(line.split())))
    return windows


def zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        raise WindowError(f"“{name}” is not a time zone (e.g. UTC, Europe/Berlin)") from None


@dataclass(frozen=True)
class Closed:
    """Now falls in a window: which one, and when it opens again."""

    window: Window
    opens_at: datetime


def closed_window(text: str, zone_name: str, now: datetime) -> Closed | None:
    """The window `now` falls in (the one that stays closed longest), or None when open."""
    local = now.astimezone(zone(zone_name))
    minute = local.weekday() * 24 * 60 + local.hour * 60 + local.minute
    hits = [window for window in parse_windows(text) if window.contains(minute)]
    if not hits:
        return None
    # Overlapping windows: keep walking until no window holds the moment.
    opens = local.replace(second=0, microsecond=0)
    longest = max(hits, key=lambda window: window.minutes_until_end(minute))
    for _ in range(len(hits) + 7):
        current = opens.weekday() * 24 * 60 + opens.hour * 60 + opens.minute
        holding = [w for w in parse_windows(text) if w.contains(current)]
        if not holding:
            break
        opens += timedelta(minutes=max(w.minutes_until_end(current) for w in holding))
    return Closed(longest, opens)
