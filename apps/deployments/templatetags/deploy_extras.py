"""Template helpers for deploy pages: diff lines and durations."""

from __future__ import annotations

from datetime import datetime

from django import template

register = template.Library()


@register.filter
def diff_lines(text: str) -> list[tuple[str, str]]:
    """A unified diff as (css class, line) pairs: added, removed, hunk header or context."""
    rows = []
    for line in (text or "").splitlines():
        if line.startswith(("+++", "---")):
            kind = "diff-file"
        elif line.startswith("@@"):
            kind = "diff-hunk"
        elif line.startswith("+"):
            kind = "diff-add"
        elif line.startswith("-"):
            kind = "diff-del"
        else:
            kind = "diff-ctx"
        rows.append((kind, line))
    return rows


@register.filter
def took(start: datetime | None, end: datetime | None) -> str:
    """How long from `start` to `end`, as people say it: 12 s, 3 min 5 s, 2 h 4 min."""
    if start is None or end is None:
        return "—"
    seconds = max(0, int((end - start).total_seconds()))
    if seconds < 60:
        return f"{seconds} s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {seconds} s" if seconds else f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min" if minutes else f"{hours} h"
