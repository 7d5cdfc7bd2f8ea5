"""Who may change what in the catalog. Every signed-in person may read it."""

from __future__ import annotations

import rules
from django.conf import settings
from django.contrib.auth.models import AnonymousUser

from apps.accounts.models import Membership, Team, User
from apps.catalog.models import RegisteredModel


@rules.predicate
def is_owning_team_member(user: User, model: RegisteredModel) -> bool:
    return (
        model.owner_team_id is not None
        and Membership.objects.filter(team_id=model.owner_team_id, user=user).exists()
    )


@rules.predicate
def is_owning_team_maintainer(user: User, model: RegisteredModel) -> bool:
    return (
        model.owner_team_id is not None
        and Membership.objects.filter(
            team_id=model.owner_team_id, user=user, role=Membership.Role.MAINTAINER
        ).exists()
    )


@rules.predicate
def is_card_reviewer(user: User) -> bool:
    return Membership.objects.filter(
        team__slug=settings.CATALOG_CARD_REVIEWER_TEAM, user=user
    ).exists()


can_edit_model_card = rules.is_authenticated & (rules.is_staff | is_owning_team_member)
can_review_model_card = rules.is_authenticated & (rules.is_staff | is_card_reviewer)
can_sync_registry = rules.is_staff


def teams_user_may_give_model_to(user: User | AnonymousUser, model: RegisteredModel) -> list[Team]:
    """Staff and the owning team's maintainers may hand a model to any team; when nobody owns
    it, a maintainer may claim it for a team they maintain."""
    if not user.is_authenticated:
        return []
    if user.is_staff or is_owning_team_maintainer(user, model):
        return list(Team.objects.order_by("name"))
    if model.owner_team_id is None:
        return list(
            Team.objects.filter(
                memberships__user=user, memberships__role=Membership.Role.MAINTAINER
            ).order_by("name")
        )
    return []
