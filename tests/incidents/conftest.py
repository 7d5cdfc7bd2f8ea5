"""Incident tests: a model owned by the `fraud` team, an environment, and on-call people."""

from __future__ import annotations

import pytest

from tests.accounts.factories import MembershipFactory, TeamFactory, UserFactory


@pytest.fixture
def fraud(team):
    from tests.deployments.support import model_with_versions

    return model_with_versions(team)


@pytest.fixture
def production(db):
    from tests.deployments.factories import EnvironmentFactory, ProtectionRulesFactory

    environment = EnvironmentFactory(name="production", slug="production", order=30)
    ProtectionRulesFactory(environment=environment)
    return environment


@pytest.fixture
def on_call(db):
    """A member of the on-call team (no model of its own)."""
    team = TeamFactory(slug="sre", name="SRE", on_call=True)
    return MembershipFactory(team=team, user=UserFactory(username="oncall")).user
