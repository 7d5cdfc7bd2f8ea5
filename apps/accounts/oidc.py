"""Sign-in through the company's identity provider (mozilla-django-oidc), when OIDC_* is set."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from mozilla_django_oidc.auth import OIDCAuthenticationBackend

from apps.accounts.models import User
from apps.audit.services import record


class PortalOIDCBackend(OIDCAuthenticationBackend):
    """Matches people by e-mail and names new accounts after their preferred username."""

    @transaction.atomic
    def create_user(self, claims: dict[str, Any]) -> User:
        email = claims.get("email", "")
        base = claims.get("preferred_username") or email.split("@")[0] or "user"
        username = base
        suffix = 1
        while User.objects.filter(username=username).exists():
            suffix += 1
            username = f"{base}{suffix}"
        user = User.objects.create_user(
            username=username,
            email=email,
            first_name=claims.get("given_name", ""),
            last_name=claims.get("family_name", ""),
        )
        record("oidc", "user.created", user, username=username, email=email)
        return user

    def update_user(self, user: User, claims: dict[str, Any]) -> User:
        user.first_name = claims.get("given_name", user.first_name)
        user.last_name = claims.get("family_name", user.last_name)
        user.save(update_fields=["first_name", "last_name"])
        return user
