"""Verbs on users, teams and tokens; each runs in a transaction and writes one audit event."""

from __future__ import annotations

import secrets
from datetime import timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.text import slugify

from apps.accounts.models import TOKEN_PREFIX, ApiToken, Membership, Team, User, hash_token
from apps.audit.services import record

TOKEN_TOUCH_INTERVAL = timedelta(minutes=1)


class TokenInvalidError(Exception):
    """The bearer token is unknown, expired, revoked, or its user is disabled."""


@transaction.atomic
def team_create(*, actor: User, name: str, slug: str = "", description: str = "") -> Team:
    """Create a team; the creator is not made a member (staff create teams for others)."""
    team = Team(name=name.strip(), slug=slug or slugify(name), description=description)
    team.full_clean()
    team.save()
    record(actor, "team.created", team, name=team.name, slug=team.slug)
    return team


@transaction.atomic
def team_member_add(
    *, actor: User, team: Team, user: User, role: str = Membership.Role.MEMBER
) -> Membership:
    """Add a user to a team with a role."""
    if Membership.objects.filter(team=team, user=user).exists():
        raise ValidationError(f"{user.username} is already a member of {team.name}.")
    membership = Membership(team=team, user=user, role=role)
    membership.full_clean()
    try:
        with transaction.atomic():
            membership.save()
    except IntegrityError:
        # A concurrent add won the race; the unique constraint is the real guard.
        raise ValidationError(f"{user.username} is already a member of {team.name}.") from None
    record(actor, "team.member_added", team, username=user.username, role=role)
    return membership


@transaction.atomic
def team_member_set_role(*, actor: User, membership: Membership, role: str) -> Membership:
    """Change a member's role; a team keeps at least one maintainer."""
    membership = Membership.objects.select_for_update().get(pk=membership.pk)
    if membership.role == role:
        return membership
    if role not in Membership.Role.values:
        raise ValidationError(f"Unknown role {role!r}.")
    _keep_one_maintainer(membership)
    previous = membership.role
    membership.role = role
    membership.save(update_fields=["role"])
    record(
        actor,
        "team.member_role_changed",
        membership.team,
        username=membership.user.username,
        role=role,
        previous_role=previous,
    )
    return membership


@transaction.atomic
def team_member_remove(*, actor: User, membership: Membership) -> None:
    """Remove a user from a team; a team keeps at least one maintainer."""
    membership = Membership.objects.select_for_update().get(pk=membership.pk)
    _keep_one_maintainer(membership)
    team, username = membership.team, membership.user.username
    membership.delete()
    record(actor, "team.member_removed", team, username=username)


def _keep_one_maintainer(membership: Membership) -> None:
    if membership.role != Membership.Role.MAINTAINER:
        return
    # Lock every maintainer row so two concurrent demotions cannot both pass this check.
    maintainers = list(
        Membership.objects.select_for_update()
        .filter(team_id=membership.team_id, role=Membership.Role.MAINTAINER)
        .values_list("pk", flat=True)
    )
    if maintainers == [membership.pk]:
        raise ValidationError("A team needs at least one maintainer; add another one first.")


@transaction.atomic
def api_token_create(*, user: User, name: str, expires_in_days: int) -> tuple[ApiToken, str]:
    """Create a token and return it with the raw secret, which is never stored or shown again.

    Every token expires, within API_TOKEN_MAX_DAYS: a leaked one cannot become permanent."""
    longest = settings.API_TOKEN_MAX_DAYS
    if not 1 <= expires_in_days <= longest:
        raise ValidationError({"expires_in_days": f"A token lives between 1 and {longest} days."})
    prefix = secrets.token_hex(4)
    raw = f"{TOKEN_PREFIX}{prefix}_{secrets.token_urlsafe(32)}"
    now = timezone.now()
    token = ApiToken(
        user=user,
        name=name.strip(),
        prefix=prefix,
        token_hash=hash_token(raw),
        created_at=now,
        expires_at=now + timedelta(days=expires_in_days),
    )
    token.full_clean()
    token.save()
    record(
        user,
        "api_token.created",
        token,
        name=token.name,
        prefix=token.prefix,
        expires_at=token.expires_at,
    )
    return token, raw


@transaction.atomic
def api_token_revoke(*, actor: User, token: ApiToken) -> ApiToken:
    """Revoke a token; revoking twice is a no-op that writes nothing."""
    revoked = ApiToken.objects.filter(pk=token.pk, revoked_at__isnull=True).update(
        revoked_at=timezone.now()
    )
    token.refresh_from_db(fields=["revoked_at"])
    if revoked:
        record(actor, "api_token.revoked", token, name=token.name, prefix=token.prefix)
    return token


def api_token_authenticate(*, raw: str) -> tuple[User, ApiToken]:
    """The user and token a bearer secret belongs to; raises TokenInvalidError with the reason."""
    if not raw.startswith(TOKEN_PREFIX) or len(raw) > 200:
        raise TokenInvalidError("Invalid token.")
    token = ApiToken.objects.select_related("user").filter(token_hash=hash_token(raw)).first()
    if token is None:
        raise TokenInvalidError("Invalid token.")
    now = timezone.now()
    status = token.status_at(now)
    if status == ApiToken.Status.REVOKED:
        raise TokenInvalidError("Token has been revoked.")
    if status == ApiToken.Status.EXPIRED:
        raise TokenInvalidError("Token has expired.")
    if not token.user.is_active:
        raise TokenInvalidError("User account is disabled.")
    # Record use at most once a minute: a busy CI token should not write on every request.
    # Not audited: last-used time is telemetry, not a change anyone made.
    if token.last_used_at is None or now - token.last_used_at > TOKEN_TOUCH_INTERVAL:
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
    return token.user, token
