"""Project-wide request plumbing."""

from collections.abc import Callable

import structlog
from django.contrib.auth.middleware import LoginRequiredMiddleware as DjangoLoginRequired
from django.http import HttpRequest, HttpResponse
from rest_framework.views import APIView


class LoginRequiredMiddleware(DjangoLoginRequired):
    """Every browser page needs a login unless marked `login_not_required`.

    API views are left to DRF, which authenticates bearer tokens and answers 401/403 in JSON
    instead of redirecting a script to the login page.
    """

    def process_view(self, request, view_func, view_args, view_kwargs):  # type: ignore[no-untyped-def]
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
