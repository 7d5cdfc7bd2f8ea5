"""Serializer building blocks shared by the apps' APIs."""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Any, ClassVar

from rest_framework import serializers

if TYPE_CHECKING:
    # The mixin goes before a Serializer in a class's bases; mypy checks it as one.
    _SerializerBase = serializers.Serializer[Any]
    _Fields = dict[str, serializers.Field[Any, Any, Any, Any]]
else:
    _SerializerBase = object


class FieldsOnceMixin(_SerializerBase):
    """Work a ModelSerializer's fields out from the model once per class, not per response.

    DRF rebuilds them from the model's metadata each time a serializer is made (about 2 ms for
    thirty fields on a small machine, on every answer); this keeps the first set as a template
    and gives each serializer a deep copy, as DRF itself does with declared fields. Only for
    serializers whose fields depend on neither the instance nor the request.
    """

    # Set on each class that uses the mixin (read through the class's own __dict__).
    _fields_template: ClassVar[_Fields]

    def get_fields(self) -> _Fields:
        cls = type(self)
        template: _Fields | None = cls.__dict__.get("_fields_template")
        if template is None:
            template = super().get_fields()
            cls._fields_template = template
        return copy.deepcopy(template)
