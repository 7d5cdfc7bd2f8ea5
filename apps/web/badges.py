"""The one mapping from a state, level or outcome to the tone of its badge.

Each app registers the tones of its own choices (from their TextChoices, in the app's
`badges.py`); templates ask `{{ value|badge }}`. The same word has one tone everywhere, so a
"failed" deploy and a "failed" promotion look alike; registering a different tone for a word
already taken is an error at start-up.
"""

from __future__ import annotations

from collections.abc import Mapping

TONES = ("ok", "info", "accent", "warn", "danger", "")
BADGE_TONES: dict[str, str] = {}


class BadgeToneConflictError(ValueError):
    """Two apps gave one word two tones."""


def register_badge_tones(tones: Mapping[str, str]) -> None:
    """Add `{value: tone}`; a value keeps one tone across the portal."""
    for value, tone in tones.items():
        if tone not in TONES:
            raise ValueError(f"Unknown badge tone {tone!r} for {value!r}; use one of {TONES}.")
        known = BADGE_TONES.setdefault(str(value), tone)
        if known != tone:
            raise BadgeToneConflictError(f"{value!r} is already a {known!r} badge, not {tone!r}.")


def badge_class(value: object) -> str:
    """The CSS class for a value's badge; "" (the plain badge) when it has no tone."""
    tone = BADGE_TONES.get(str(value), "")
    return f"badge-{tone}" if tone else ""
