"""The signed-in user, typed as the portal's User for the views that hand it to a service.

Browser views take an `AuthedHttpRequest`: `LoginRequiredMiddleware` lets no anonymous request
reach them unless they are marked `login_not_required`. API views ask `signed_in_user(request)`;
DRF's default permission (IsAuthenticated) has refused anonymous requests already, so the 401
it raises is a safety net, not a path.
"""

from __future__ import annotations

from rest_framework.exceptions import NotAuthenticated
from rest_framework.request import Request

from apps.accounts.models import User
from apps.web.http import HtmxHttpRequest


class AuthedHttpRequest(HtmxHttpRequest):
    """A browser request whose user has signed in."""

    user: User


def signed_in_user(request: Request) -> User:
    """The API request's user; NotAuthenticated (401) when nobody signed in."""
    user = request.user
    if not isinstance(user, User):
        raise NotAuthenticated()
    return user
