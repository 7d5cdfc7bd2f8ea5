"""Who sees a deploy request: staff, the model's team, the requester, the environment's
approvers (reviewer and required teams); nobody else."""

from __future__ import annotations

import pytest

from apps.accounts.models import User
from apps.deployments.selectors import deploy_requests_visible_to
from tests.accounts.factories import MembershipFactory, TeamFactory, UserFactory
from tests.catalog.factories import ModelVersionFactory, RegisteredModelFactory
from tests.deployments.factories import (
    DeployRequestFactory,
    EnvironmentFactory,
    ProtectionRulesFactory,
)

pytestmark = pytest.mark.django_db


def member_of(slug: str) -> User:
    return MembershipFactory(team=TeamFactory(slug=slug), user=UserFactory(username=slug)).user


def test_visible_to_the_team_the_requester_approvers_and_staff_only() -> None:
    owner, reviewer, required, stranger = (
        member_of(slug) for slug in ("owners", "reviewers", "required", "strangers")
    )
    environment = EnvironmentFactory()
    rules = ProtectionRulesFactory(environment=environment, required_approvals=2)
    rules.reviewer_teams.set([reviewer.memberships.get().team])
    rules.required_teams.set([required.memberships.get().team])
    model = RegisteredModelFactory(owner_team=owner.memberships.get().team)
    requester = UserFactory(username="requester")
    deploy = DeployRequestFactory(
        environment=environment, version=ModelVersionFactory(model=model), requester=requester
    )
    DeployRequestFactory(requester=requester, succeeded=True)  # elsewhere: only its requester

    def sees(user: User) -> bool:
        return deploy_requests_visible_to(user).filter(pk=deploy.pk).exists()

    assert [sees(user) for user in (owner, reviewer, required, requester)] == [True] * 4
    assert sees(UserFactory(is_staff=True))
    assert not sees(stranger)
    assert deploy_requests_visible_to(stranger).count() == 0
