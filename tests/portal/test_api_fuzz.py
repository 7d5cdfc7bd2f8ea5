"""Schemathesis against the OpenAPI schema: generated requests, valid and not, never get a 5xx."""

from __future__ import annotations

import pytest
import schemathesis
from drf_spectacular.generators import SchemaGenerator
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error

from apps.accounts.services import api_token_create
from tests.accounts.factories import MembershipFactory, TeamFactory, UserFactory
from tests.catalog.factories import ModelAliasFactory, ModelVersionFactory, RegisteredModelFactory

# Revoking the token the run itself authenticates with would end the run early.
SKIPPED = {("DELETE", "/api/v1/tokens/{id}/")}


# Built in-process from the same generator that serves /api/schema/ (no request, no login).
schema = schemathesis.openapi.from_dict(SchemaGenerator().get_schema(request=None, public=True))


@pytest.fixture
def staff_token(transactional_db) -> str:
    """A staff member in a team that owns a model with versions and aliases."""
    team = TeamFactory(slug="fuzz", name="Fuzz")
    user = MembershipFactory(
        team=team, user=UserFactory(username="fuzzer", is_staff=True), role="maintainer"
    ).user
    model = RegisteredModelFactory(owner_team=team)
    for number in (1, 2):
        ModelVersionFactory(model=model, version=number, run_metrics={"auc": 0.9})
    ModelAliasFactory(model=model, alias="champion", version=1)
    _, raw = api_token_create(user=user, name="fuzz", expires_in_days=1)
    return raw


@schema.parametrize()
@settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck))
def test_api_never_answers_with_a_server_error(case, live_server, staff_token) -> None:
    if (case.method.upper(), case.path) in SKIPPED:
        pytest.skip("would revoke the token the run uses")
    case.call_and_validate(
        base_url=live_server.url,
        headers={"Authorization": f"Bearer {staff_token}"},
        checks=[not_a_server_error],
    )
