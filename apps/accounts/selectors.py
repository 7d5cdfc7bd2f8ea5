"""Reads of users, teams and tokens."""

from __future__ import annotations

from django.db.models import Count, Prefetch, QuerySet

from apps.accounts.models import ApiToken, Membership, Team, User


def teams_with_counts() -> QuerySet[Team]:
    return Team.objects.annotate(member_count=Count("memberships")).order_by("name")


def team_with_members(*, slug: str) -> QuerySet[Team]:
    return Team.objects.filter(slug=slug).prefetch_related(
        Prefetch(
            "memberships",
            queryset=Membership.objects.select_related("user").order_by("user__username"),
        )
    )


def memberships_of(user: User) -> QuerySet[Membership]:
    return Membership.objects.filter(user=user).select_related("team").order_by("team__name")


def team_slugs_of(user: User) -> list[str]:
    """The slugs of the teams this person belongs to, sorted."""
    return sorted(Membership.objects.filter(user=user).values_list("team__slug", flat=True))


def api_tokens_of(user: User) -> QuerySet[ApiToken]:
    return ApiToken.objects.filter(user=user)
