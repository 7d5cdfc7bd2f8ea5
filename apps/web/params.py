"""Reading values people type into query strings and forms: bounded text, moments in time."""

from __future__ import annotations

from datetime import UTC, datetime

from django.utils.dateparse import parse_datetime


def clean_text(value: object, limit: int = 200) -> str:
    """A filter value from a query string, bounded (the middleware has refused NUL already)."""
    return str(value or "")[:limit]


def parse_moment(text: str) -> datetime | None:
    """An ISO 8601 time (a naive one is UTC); None when empty, ValueError when unreadable."""
    if not text.strip():
        return None
    try:
        parsed = parse_datetime(clean_text(text.strip(), 64))
        if parsed is None:
            raise ValueError(text)
        return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).astimezone(UTC)
    except (ValueError, OverflowError):
        raise ValueError(f"“{clean_text(text, 64)}” is not a time: use ISO 8601.") from None
