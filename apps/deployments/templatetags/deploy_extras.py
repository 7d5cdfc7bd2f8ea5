"""Template helpers for deploy pages: badge classes for states and health, diff lines."""

from __future__ import annotations

from django import template

register = template.Library()

STATE_BADGES = {
    "pending_approval": "badge-warn",
    "queued": "badge-info",
    "applying": "badge-accent",
    "rolling_out": "badge-accent",
    "succeeded": "badge-ok",
    "failed": "badge-danger",
    "rolled_back": "badge-warn",
    "cancelled": "",
    "rejected": "badge-danger",
}
HEALTH_BADGES = {
    "healthy": "badge-ok",
    "progressing": "badge-info",
    "failing": "badge-danger",
    "missing": "badge-danger",
    "unreachable": "badge-warn",
}


@register.filter
def state_badge(state: str) -> str:
    """The badge class for a deploy request state."""
    return STATE_BADGES.get(state, "")


@register.filter
def health_badge(health: str) -> str:
    return HEALTH_BADGES.get(health, "")


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
def took(start, end) -> str:  # type: ignore[no-untyped-def]
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
