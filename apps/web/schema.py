"""OpenAPI schema generation: every operation documents the one error body it may answer with."""

from __future__ import annotations

from typing import Any

from drf_spectacular.openapi import AutoSchema
from drf_spectacular.utils import Direction

from apps.web.api_errors import ErrorSerializer

# Which errors an operation can answer, beside any it declares itself.
ALWAYS = ("401", "403")
WRITES = ("POST", "PUT", "PATCH", "DELETE")


class PortalAutoSchema(AutoSchema):
    """drf-spectacular's schema, plus the error responses DRF views give without declaring them."""

    def _get_response_bodies(self, direction: Direction = "response") -> dict[str, Any]:
        responses = super()._get_response_bodies(direction)
        codes = list(ALWAYS)
        if self.method in WRITES:
            codes.append("400")
        if self._is_detail_operation():
            codes.append("404")
        for code in codes:
            body = self._get_response_for_code(ErrorSerializer, code)  # type: ignore[no-untyped-call]  # drf-spectacular: unannotated
            responses.setdefault(code, body)
        return responses

    def _is_detail_operation(self) -> bool:
        return "{" in self.path
