"""Request typing and htmx rendering shared by every app's views.

The request of a view that needs the signed-in user is `apps.accounts.http.AuthedHttpRequest`
(its `user` is the portal's User, which this package may not import).
"""

from typing import Any

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django_htmx.middleware import HtmxDetails


class HtmxHttpRequest(HttpRequest):
    """A request through django-htmx's middleware; `user` may still be anonymous."""

    htmx: HtmxDetails


def render_page_or_partial(
    request: HtmxHttpRequest,
    template: str,
    partial: str,
    context: dict[str, Any],
    *,
    status: int = 200,
) -> HttpResponse:
    """The whole page for a normal request; only `template#partial` for an htmx swap."""
    if request.htmx and not request.htmx.boosted:
        template = f"{template}#{partial}"
    return render(request, template, context, status=status)
