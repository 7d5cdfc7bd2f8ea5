"""Catalog verbs that write back to a real MLflow server."""

from __future__ import annotations

import pytest
from django.test import Client

from apps.audit.models import AuditEvent
from apps.catalog.models import RegisteredModel
from apps.catalog.services import model_owner_set
from apps.catalog.sync import SyncMode, registry_sync
from tests.accounts.factories import TeamFactory
from tests.api_errors import api_error

pytestmark = [pytest.mark.mlflow, pytest.mark.django_db]


def test_owner_change_is_written_to_mlflow_and_mirrored(
    mlflow_uri, registry_builder, mlflow_client, team, maintainer
) -> None:
    name = registry_builder.model("owned", tags={"portal.team": "fraud"})
    registry_sync(mode=SyncMode.FULL)
    other = TeamFactory(slug="ranking", name="Ranking")
    model = RegisteredModel.objects.get(name=name)
    model_owner_set(actor=maintainer, model=model, team=other)
    assert mlflow_client.get_registered_model(name).tags["portal.team"] == "ranking"
    model.refresh_from_db()
    assert (model.owner_team, model.tags["portal.team"]) == (other, "ranking")
    event = AuditEvent.objects.get(action="model.owner_changed")
    assert event.data == {"team": "ranking", "previous": "fraud"}
    assert registry_sync(mode=SyncMode.FULL).changed == 0  # the mirror already agrees


def test_owner_change_over_htmx_shows_the_result_in_place(
    client: Client, mlflow_uri, registry_builder, team, maintainer
) -> None:
    name = registry_builder.model("claim-me", tags={"portal.team": "fraud"})
    registry_sync(mode=SyncMode.FULL)
    TeamFactory(slug="ranking", name="Ranking")
    model = RegisteredModel.objects.get(name=name)
    client.force_login(maintainer)
    response = client.post(
        f"/catalog/models/{model.pk}/owner/", {"team": "ranking"}, headers={"HX-Request": "true"}
    )
    html = response.content.decode()
    assert html.lstrip().startswith('<section class="card" id="owner">')
    assert "Ranking" in html and "written to MLflow" in html


def test_owner_change_when_mlflow_is_down_changes_nothing(
    flaky_mlflow, registry_builder, team, maintainer, monkeypatch, client: Client
) -> None:
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    name = registry_builder.model("unreachable", tags={"portal.team": "fraud"})
    registry_sync(mode=SyncMode.FULL)
    TeamFactory(slug="ranking", name="Ranking")
    model = RegisteredModel.objects.get(name=name)
    flaky_mlflow.stop()
    client.force_login(maintainer)
    response = client.post(f"/catalog/models/{model.pk}/owner/", {"team": "ranking"})
    assert response.status_code == 400
    assert "Nothing changed" in response.content.decode()
    model.refresh_from_db()
    assert model.owner_team == team
    assert not AuditEvent.objects.filter(action="model.owner_changed").exists()
    api = client.put(
        f"/api/v1/models/{model.pk}/owner/", {"team": "ranking"}, content_type="application/json"
    )
    body = api_error(api, 503, "registry_unavailable")
    assert body["detail"].startswith("Nothing was changed: ")
