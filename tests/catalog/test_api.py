"""Catalog API: reads for everyone signed in, writes under the same rules as the pages."""

from __future__ import annotations

import pytest
from django.test import Client

from apps.catalog.models import ModelCard
from tests.api_errors import api_error
from tests.catalog.factories import (
    ModelAliasFactory,
    ModelCardFactory,
    ModelVersionFactory,
    RegisteredModelFactory,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def api(client: Client, outsider) -> Client:
    client.force_login(outsider)
    return client


def test_models_list_filters_and_bounded_queries(api, team, django_assert_max_num_queries) -> None:
    for index in range(120):
        model = RegisteredModelFactory(
            owner_team=team if index % 2 else None, tags={"tier": str(index % 3)}
        )
        ModelAliasFactory(model=model, alias="champion")
    with django_assert_max_num_queries(6):
        body = api.get("/api/v1/models/", {"page_size": 100}).json()
    assert body["count"] == 120
    assert len(body["results"]) == 100
    assert body["results"][0]["aliases"] == [{"alias": "champion", "version": 1}]
    assert api.get("/api/v1/models/", {"team": "fraud"}).json()["count"] == 60
    assert api.get("/api/v1/models/", {"tag": "tier=2"}).json()["count"] == 40
    assert api.get("/api/v1/models/", {"search": "model-00"}).json()["count"] >= 1
    first = body["results"][0]["name"]
    assert [m["name"] for m in api.get("/api/v1/models/", {"name": first}).json()["results"]] == [
        first
    ]


def test_model_detail_includes_card_summary(api) -> None:
    card = ModelCardFactory(status="approved", approved_at="2026-11-01T00:00:00Z")
    body = api.get(f"/api/v1/models/{card.model_id}/").json()
    assert body["card"]["status"] == "approved"
    api_error(api.get("/api/v1/models/999999/"), 404, "not_found")


def test_versions_filter_by_alias_returns_the_version_holding_it(api) -> None:
    model = RegisteredModelFactory(name="fraud")
    ModelVersionFactory(model=model, version=1, tags={"validation_status": "passed"})
    ModelVersionFactory(model=model, version=2)
    ModelAliasFactory(model=model, alias="champion", version=2)
    held = api.get("/api/v1/versions/", {"alias": "champion"}).json()["results"]
    assert [(v["model"], v["version"]) for v in held] == [("fraud", 2)]
    tagged = api.get("/api/v1/versions/", {"tag": "validation_status=passed"}).json()["results"]
    assert [v["version"] for v in tagged] == [1]
    assert api.get("/api/v1/versions/", {"name": "fraud"}).json()["count"] == 2


def test_card_read_write_and_transitions_over_the_api(client: Client, team, member, staff) -> None:
    model = RegisteredModelFactory(owner_team=team)
    client.force_login(member)
    api_error(client.get(f"/api/v1/models/{model.pk}/card/"), 404, "not_found")
    written = client.put(
        f"/api/v1/models/{model.pk}/card/",
        {"content": "## Intended use\nPayments.", "risk": "low"},
        content_type="application/json",
    )
    assert written.status_code == 200 and written.json()["status"] == "draft"
    bad = client.put(
        f"/api/v1/models/{model.pk}/card/", {"risk": "extreme"}, content_type="application/json"
    )
    assert "risk" in api_error(bad, 400, "invalid")["errors"]
    assert client.post(f"/api/v1/models/{model.pk}/card/submit/").json()["status"] == "in_review"
    api_error(client.post(f"/api/v1/models/{model.pk}/card/approve/"), 403, "permission_denied")
    client.force_login(staff)
    assert client.post(f"/api/v1/models/{model.pk}/card/approve/").json()["status"] == "approved"
    again = client.post(f"/api/v1/models/{model.pk}/card/approve/")
    assert "Only a card in review" in api_error(again, 400, "invalid")["detail"]


def test_card_write_refused_to_outsiders(api, team) -> None:
    model = RegisteredModelFactory(owner_team=team)
    response = api.put(
        f"/api/v1/models/{model.pk}/card/",
        {"content": "x", "risk": "low"},
        content_type="application/json",
    )
    api_error(response, 403, "permission_denied")
    assert not ModelCard.objects.exists()


def test_owner_put_refused_to_non_maintainers(client: Client, team, member) -> None:
    model = RegisteredModelFactory(owner_team=team)
    client.force_login(member)
    response = client.put(
        f"/api/v1/models/{model.pk}/owner/", {"team": "fraud"}, content_type="application/json"
    )
    api_error(response, 403, "permission_denied")


def test_sync_state_and_sync_now(
    api, staff, client: Client, django_capture_on_commit_callbacks
) -> None:
    state = api.get("/api/v1/sync-state/").json()
    assert state["last_sync_at"] is None and state["running"] is False
    api_error(api.post("/api/v1/sync-state/run/"), 403, "permission_denied")
    client.force_login(staff)
    with django_capture_on_commit_callbacks() as callbacks:
        assert client.post("/api/v1/sync-state/run/").status_code == 202
    assert len(callbacks) == 1


def test_catalog_api_needs_authentication(client: Client) -> None:
    api_error(client.get("/api/v1/models/"), 401, "not_authenticated")
    api_error(client.get("/api/v1/versions/"), 401, "not_authenticated")


def test_fast_list_rows_equal_the_serializers_output(team) -> None:
    from apps.catalog import selectors
    from apps.catalog.api.serializers import (
        LIST_FIELDS,
        RegisteredModelSerializer,
        model_list_rows,
    )

    owned = RegisteredModelFactory(owner_team=team, tags={"portal.team": "fraud", "tier": "1"})
    RegisteredModelFactory(owner_tag="ghost-team", is_deleted=True, mlflow_updated_at=None)
    ModelAliasFactory(model=owned, alias="champion", version=3)
    ModelAliasFactory(model=owned, alias="challenger", version=4)
    models = selectors.models_filtered(include_deleted=True)
    fast = model_list_rows(list(models.values(*LIST_FIELDS)))
    slow = RegisteredModelSerializer(models, many=True).data
    assert fast == [dict(row) for row in slow]


def test_nul_characters_in_filters_are_a_400(api) -> None:
    RegisteredModelFactory(name="fraud")
    for param in ("search", "team", "tag", "alias", "name"):
        response = api.get("/api/v1/models/", {param: "fr\x00aud"})
        assert "NUL character" in api_error(response, 400, "nul_character")["detail"]
    api_error(api.get("/api/v1/versions/", {"tag": "a\x00=b"}), 400, "nul_character")
