"""`Authorization: Bearer mp_…` for the API."""

from __future__ import annotations

from typing import TYPE_CHECKING

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.exceptions import AuthenticationFailed
from rest_framework.request import Request

from apps.accounts.models import ApiToken, User
from apps.accounts.services import TokenInvalidError, api_token_authenticate

if TYPE_CHECKING:
    # Not at run time: this module loads with DRF's settings, before drf-spectacular's views.
    from drf_spectacular.openapi import AutoSchema


class BearerTokenAuthentication(BaseAuthentication):
    """Personal API tokens; a bad token is a 401 naming why, never a silent anonymous request."""

    def authenticate(self, request: Request) -> tuple[User, ApiToken] | None:
        parts = get_authorization_header(request).split()
        if not parts or parts[0].lower() != b"bearer":
            return None
        if len(parts) != 2:
            raise AuthenticationFailed("Malformed Authorization header: use 'Bearer <token>'.")
        try:
            raw = parts[1].decode("ascii")
        except UnicodeDecodeError:
            raise AuthenticationFailed("Invalid token.") from None
        try:
            return api_token_authenticate(raw=raw)
        except TokenInvalidError as exc:
            raise AuthenticationFailed(str(exc)) from None

    def authenticate_header(self, request: Request) -> str:
        return 'Bearer realm="modelport"'


class BearerTokenScheme(OpenApiAuthenticationExtension):
    target_class = "apps.accounts.authentication.BearerTokenAuthentication"
    name = "bearerAuth"

    def get_security_definition(self, auto_schema: AutoSchema) -> dict[str, str]:
        return {"type": "http", "scheme": "bearer", "description": "A personal API token (mp_…)."}
