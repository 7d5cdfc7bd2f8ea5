from __future__ import annotations

import hashlib
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth.models import AbstractUser
from django.db import models
from django.db.models import (
    BooleanField,
    CharField,
    DateTimeField,
    ManyToManyField,
    SlugField,
    TextField,
)
from django.utils import timezone

TOKEN_PREFIX = "mp_"  # noqa: S105  (marks the string as a Modelport token, not a secret)


class User(AbstractUser):
    """A person or a CI robot using the portal; team memberships say what they may touch."""

    class Meta(AbstractUser.Meta):
        ordering = ["username"]


class Team(models.Model):
    """A group that owns models and reviews changes; members have a role each."""

    # The fields by their own names, not `models.…`: to mypy, `models` in this class body can be
    # the reverse accessor of RegisteredModel.owner_team (related_name="models"), which the
    # django plugin adds to Team.
    slug = SlugField(max_length=60, unique=True)
    name = CharField(max_length=100, unique=True)
    description = TextField(blank=True, max_length=2000)
    # Its members see and work every incident, whatever models it touches.
    on_call = BooleanField(default=False)
    created_at = DateTimeField(auto_now_add=True)
    members = ManyToManyField(settings.AUTH_USER_MODEL, through="Membership", related_name="teams")

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Membership(models.Model):
    """A user's place in a team: members work in it, maintainers also manage it."""

    class Role(models.TextChoices):
        MEMBER = "member", "Member"
        MAINTAINER = "maintainer", "Maintainer"

    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships"
    )
    role = models.CharField(max_length=20, choices=Role.choices, default=Role.MEMBER)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["team__name", "user__username"]
        constraints = [
            models.UniqueConstraint(fields=["team", "user"], name="membership_unique_per_team"),
            models.CheckConstraint(
                condition=models.Q(role__in=["member", "maintainer"]),
                name="membership_role_valid",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.user} in {self.team} ({self.role})"


def hash_token(raw: str) -> str:
    """Tokens carry 256 random bits, so a fast hash is enough (unlike passwords)."""
    return hashlib.sha256(raw.encode()).hexdigest()


class ApiToken(models.Model):
    """A personal API token; only its hash and a short prefix are kept."""

    class Status(models.TextChoices):
        ACTIVE = "active", "Active"
        EXPIRED = "expired", "Expired"
        REVOKED = "revoked", "Revoked"

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens"
    )
    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=16, unique=True)
    token_hash = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.name} ({self.display_prefix})"

    @property
    def display_prefix(self) -> str:
        return f"{TOKEN_PREFIX}{self.prefix}…"

    @property
    def ends_at(self) -> datetime:
        """When it stops working: its expiry, or the cap on every token's life if sooner."""
        capped = self.created_at + timedelta(days=settings.API_TOKEN_MAX_DAYS)
        return min(self.expires_at, capped) if self.expires_at is not None else capped

    def status_at(self, now: datetime) -> ApiToken.Status:
        if self.revoked_at is not None:
            return self.Status.REVOKED
        if self.ends_at <= now:
            return self.Status.EXPIRED
        return self.Status.ACTIVE

    @property
    def status(self) -> ApiToken.Status:
        return self.status_at(timezone.now())
