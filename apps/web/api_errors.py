"""The API's one error path: every error becomes one body shape, with the status it means.

    {"detail": "<one sentence>", "code": "<stable code>", "errors": {"<field>": ["…"]}}

`detail` is for people, `code` for programs, `errors` holds field errors under the field that
is wrong (nested fields dotted: `options.replicas`, list items by index). A refusal that carries
more (`PayloadValidationError.payload()`) adds its keys beside these three. Views and
serializers raise; nothing else converts errors.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.core.exceptions import PermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404
from rest_framework import exceptions, serializers
from rest_framework.response import Response
from rest_framework.settings import api_settings
from rest_framework.views import exception_handler as drf_exception_handler
from rest_framework.views import set_rollback

from apps.web.errors import PayloadValidationError, UpstreamError

NON_FIELD = api_settings.NON_FIELD_ERRORS_KEY


class ErrorSerializer(serializers.Serializer[dict[str, Any]]):
    """Every API error body (documentation only: the handler builds the bodies)."""

    detail = serializers.CharField(help_text="What went wrong, in one sentence for people.")
    code = serializers.CharField(help_text="A stable code for programs, e.g. `not_found`.")
    # DRF's metaclass moves declared fields off the class, so `Serializer.errors` stays a property.
    errors = serializers.DictField(  # type: ignore[assignment]  # stubs: metaclass not modelled
        child=serializers.ListField(child=serializers.CharField()),
        help_text="Field errors under the field that is wrong; empty when none is.",
    )


def error_body(
    detail: str, code: str, errors: Mapping[str, list[str]] | None = None
) -> dict[str, Any]:
    """The body every API error has (also used outside DRF, e.g. by middleware)."""
    return {"detail": detail, "code": code, "errors": dict(errors or {})}


def _flatten(value: Any, prefix: str, into: dict[str, list[str]]) -> None:
    """DRF's nested error detail as {dotted field: [messages]}."""
    if isinstance(value, Mapping):
        for key, item in value.items():
            _flatten(item, f"{prefix}.{key}" if prefix else str(key), into)
    elif isinstance(value, list) and any(isinstance(item, Mapping | list) for item in value):
        for index, item in enumerate(value):
            _flatten(item, f"{prefix}.{index}" if prefix else str(index), into)
    elif isinstance(value, list):
        into.setdefault(prefix or NON_FIELD, []).extend(str(item) for item in value)
    else:
        into.setdefault(prefix or NON_FIELD, []).append(str(value))


def _validation_body(detail: Any, code: str | None = None) -> dict[str, Any]:
    """A 400's body: general messages make the sentence, field messages stay by field."""
    messages: dict[str, list[str]] = {}
    _flatten(detail, "", messages)
    general = messages.pop(NON_FIELD, [])
    if general:
        sentence = " ".join(general)
        # A service's own code for its refusal ("already_reviewed"), else "invalid".
        codes = detail.get(NON_FIELD, []) if isinstance(detail, Mapping) else detail
        code = code or next((str(c.code) for c in codes if getattr(c, "code", None)), None)
    elif messages:
        field, found = next(iter(messages.items()))
        more = len(messages) - 1
        sentence = f"{field}: {found[0]}" + (f" (and {more} more fields)" if more else "")
    else:
        sentence = "Invalid input."
    return error_body(sentence, code or "invalid", messages)


def api_exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """REST_FRAMEWORK["EXCEPTION_HANDLER"]: map each error to its status and the one shape."""
    if isinstance(exc, PayloadValidationError):
        set_rollback()
        body = _validation_body(serializers.as_serializer_error(exc), exc.default_code)
        body.update(exc.payload())
        return Response(body, status=exc.status_code)
    if isinstance(exc, DjangoValidationError):
        exc = exceptions.ValidationError(serializers.as_serializer_error(exc))
    if isinstance(exc, UpstreamError):
        set_rollback()
        return Response(
            error_body(f"Nothing was changed: {exc}", exc.default_code), status=exc.status_code
        )
    if isinstance(exc, Http404):
        exc = exceptions.NotFound(*exc.args)
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied(str(exc) or None)
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    assert isinstance(exc, exceptions.APIException)
    if isinstance(exc, exceptions.ValidationError):
        response.data = _validation_body(exc.detail)
    else:
        code = exc.get_codes()
        response.data = error_body(
            str(exc.detail), code if isinstance(code, str) else str(exc.default_code)
        )
    return response
