import pytest
from django.test import Client

from apps.audit.services import record
from tests.catalog.factories import ModelAliasFactory, RegisteredModelFactory

pytestmark = pytest.mark.django_db


def test_dashboard_shows_my_teams_models_and_activity_in_bounded_queries(
    client: Client, team, member, django_assert_max_num_queries
) -> None:
    for index in range(20):
        model = RegisteredModelFactory(owner_team=team, name=f"team-model-{index:02d}")
        ModelAliasFactory(model=model, alias="champion")
    RegisteredModelFactory(name="someone-elses")
    record(member, "model_card.updated", None)
    client.force_login(member)
    with django_assert_max_num_queries(10):
        html = client.get("/").content.decode()
    assert html.count("team-model-") == 8  # the newest few, not all twenty
    assert "someone-elses" not in html
    assert "model_card.updated" in html


def test_dashboard_without_teams_says_how_to_join(client: Client, outsider) -> None:
    client.force_login(outsider)
    html = client.get("/").content.decode()
    assert "You are not in a team yet." in html
    assert "None of your teams owns a model yet." in html
