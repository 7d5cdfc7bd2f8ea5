"""Form plumbing shared by every app."""

from typing import Any

from django import forms


class PlainLabelsMixin:
    """Labels without Django's trailing colon, matching the hand-written ones in templates."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("label_suffix", "")
        super().__init__(*args, **kwargs)


def form_field[F: forms.Field](form: forms.BaseForm, name: str, kind: type[F]) -> F:
    """The form's own copy of a declared field, as the kind it was declared (to set its
    choices or queryset per request); TypeError when it is not one."""
    field = form.fields[name]
    if not isinstance(field, kind):
        raise TypeError(f"Field {name!r} is a {type(field).__name__}, not a {kind.__name__}.")
    return field
