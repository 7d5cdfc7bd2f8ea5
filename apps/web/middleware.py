"""Project-wide request plumbing."""

import json
from collections.abc import Callable
from typing import Any
from urllib.parse import unquote_plus

import structlog
from django.conf import settings
from django.contrib.auth.middleware import LoginRequiredMiddleware as DjangoLoginRequired
from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest, JsonResponse
from django.http.response import HttpResponseBase
from rest_framework.views import APIView

from apps.web.api_errors import error_body
from apps.web.request_limits import refusal


class LoginRequiredMiddleware(DjangoLoginRequired):
    """Every browser page needs a login unless marked `login_not_required`.

    API views are left to DRF, which authenticates bearer tokens and answers 401/403 in JSON
    instead of redirecting a script to the login page.
    """

    def process_view(
        self,
        request: HttpRequest,
        view_func: Callable[..., HttpResponseBase],
        view_args: tuple[Any, ...],
        view_kwargs: dict[str, Any],
    ) -> HttpResponseBase | None:
        view_class = getattr(view_func, "cls", None)
        if isinstance(view_class, type) and issubclass(view_class, APIView):
            return None
        return super().process_view(request, view_func, view_args, view_kwargs)


class RequestIdHeaderMiddleware:
    """Echo the request id that every log line and audit event carries, for support requests."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        request_id = structlog.contextvars.get_contextvars().get("request_id")
        if request_id:
            response["X-Request-ID"] = request_id
        return response


NUL_REFUSED = "The request contains a NUL character (\\u0000), which no field accepts."


def _holds_nul(value: object) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_holds_nul(key) or _holds_nul(item) for key, item in value.items())
    if isinstance(value, list):
        return any(_holds_nul(item) for item in value)
    return False


def request_holds_nul(request: HttpRequest) -> bool:
    """True when the path, query string or a form or JSON body carries a NUL character."""
    if "\x00" in request.path or "\x00" in unquote_plus(request.META.get("QUERY_STRING", "")):
        return True
    if request.method in ("GET", "HEAD", "OPTIONS"):
        return False
    content_type = request.content_type or ""
    if content_type == "application/x-www-form-urlencoded":
        return "\x00" in unquote_plus(request.body.decode("latin-1"))
    if content_type == "multipart/form-data":
        # Uploaded files may hold any bytes; only the text fields reach a query.
        return _holds_nul(dict(request.POST.lists()))
    if content_type.endswith("json"):
        body = request.body
        if b"\x00" in body:
            return True
        if b"\\u0000" not in body:
            return False
        try:
            return _holds_nul(json.loads(body))
        except ValueError:
            return False  # the parser answers malformed JSON with its own 400
    return False


class RejectNulCharactersMiddleware:
    """Answer 400 to any input holding a NUL character, before it reaches a view.

    PostgreSQL refuses NUL in text, so a NUL that slipped past a form or serializer (a slug
    lookup, a query filter, a JSON key) would end as a 500. No legitimate input carries one.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        try:
            holds_nul = request_holds_nul(request)
        except RequestDataTooBig:
            return refusal(
                request,
                413,
                f"The body is larger than {settings.DATA_UPLOAD_MAX_MEMORY_SIZE:,} bytes.",
                "request_too_large",
            )
        if holds_nul:
            if request.path.startswith("/api/"):
                return JsonResponse(error_body(NUL_REFUSED, "nul_character"), status=400)
            return HttpResponseBadRequest(NUL_REFUSED, content_type="text/plain")
        return self.get_response(request)
