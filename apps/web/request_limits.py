"""Hostile headers and bodies are refused before anything reads them: a clear 4xx, never a 500.

The outermost middleware: a `Content-Length` that is not a number (which the metrics middleware
would trip over), a header value holding a NUL (no header may carry one, and some are stored:
`X-Request-ID`, `X-MLflow-Delivery-Id`), and a body over `DATA_UPLOAD_MAX_MEMORY_SIZE` where the
answer is a machine's (`/api/`, `/hooks/`: JSON 413, from the declared length, before the body is
read). A page's form too large is refused by the NUL check, the first to read a body (413).
"""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse

from apps.web.api_errors import error_body

MACHINE_PATHS = ("/api/", "/hooks/")


def _for_machines(request: HttpRequest) -> bool:
    return request.path.startswith(MACHINE_PATHS)


def refusal(request: HttpRequest, status: int, detail: str, code: str) -> HttpResponse:
    """The API's error body under /api/ and /hooks/, plain text elsewhere."""
    if _for_machines(request):
        return JsonResponse(error_body(detail, code), status=status)
    return HttpResponse(detail, status=status, content_type="text/plain; charset=utf-8")


def _too_large(request: HttpRequest) -> HttpResponse:
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    return refusal(request, 413, f"The body is larger than {limit:,} bytes.", "request_too_large")


class RequestLimitsMiddleware:
    """Refuse a request whose headers or size no honest client sends, before it is read."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        length = request.META.get("CONTENT_LENGTH", "")
        if length and not (length.isascii() and length.isdigit()):
            return refusal(
                request, 400, "Content-Length must be a whole number of bytes.", "bad_length"
            )
        if any(
            "\x00" in str(value) for key, value in request.META.items() if key.startswith("HTTP_")
        ):
            return refusal(
                request, 400, "A header holds a NUL character (\\u0000).", "nul_character"
            )
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        if _for_machines(request) and limit is not None and length and int(length) > limit:
            return _too_large(request)
        return self.get_response(request)
