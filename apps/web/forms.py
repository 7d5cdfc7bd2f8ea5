"""Form plumbing shared by every app."""

from typing import Any


class PlainLabelsMixin:
    """Labels without Django's trailing colon, matching the hand-written ones in templates."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("label_suffix", "")
        super().__init__(*args, **kwargs)
