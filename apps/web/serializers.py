"""Serializer building blocks shared by the apps' APIs."""

from __future__ import annotations

import copy
from typing import Any


class FieldsOnceMixin:
    """Work a ModelSerializer's fields out from the model once per class, not per response.

    DRF rebuilds them from the model's metadata each time a serializer is made (about 2 ms for
    thirty fields on a small machine, on every answer); this keeps the first set as a template
    and gives each serializer a deep copy, as DRF itself does with declared fields. Only for
    serializers whose fields depend on neither the instance nor the request.
    """

    def get_fields(self) -> dict[str, Any]:
        cls = type(self)
        template = cls.__dict__.get("_fields_template")
        if template is None:
            template = super().get_fields()  # type: ignore[misc]
            cls._fields_template = template  # type: ignore[attr-defined]
        return copy.deepcopy(template)
