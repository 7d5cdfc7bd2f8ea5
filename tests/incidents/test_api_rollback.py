"""A rollback started from an incident through the API, planned against the simulated cluster."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from django.test import Client

from apps.deployments.models import DeployRequest
from apps.incidents.models import TimelineKind
from tests.api_errors import api_error
from tests.deployments.support import environment_on, v2_live_after_v1
from tests.incidents.factories import IncidentFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fresh_cluster_clients() -> Iterator[None]:
    """Cluster clients are cached per kubeconfig: drop this test's once it is done."""
    yield
    from apps.deployments.clusters import forget_clients

    forget_clients()


def test_rollback_from_the_incident_files_a_rollback_request(sim, kubeconfig, member, fraud):
    live_env = environment_on(kubeconfig, "live", 30)
    release = v2_live_after_v1(live_env, fraud, member, ago=timedelta(hours=2))
    incident = IncidentFactory(registered_models=[fraud], environments=[live_env])
    api = Client()
    api.force_login(member)
    url = f"/api/v1/incidents/{incident.pk}/rollback/"
    response = api.post(
        url, {"release": release.pk, "reason": "scores at zero"}, content_type="application/json"
    )
    assert response.status_code == 201, response.json()
    body = response.json()
    rollback = DeployRequest.objects.get(pk=body["id"])
    assert (rollback.kind, rollback.version.version) == ("rollback", 1)
    assert body == {
        "id": rollback.pk,
        "state": "queued",
        "done": False,
        "url": f"/api/v1/deploy-requests/{rollback.pk}/",
        "web_url": f"/deployments/requests/{rollback.pk}/",
    }
    reason = api.get(body["url"]).json()["reason"]
    assert reason.endswith(f"From {incident.reference}: scores at zero")
    detail = api.get(f"/api/v1/incidents/{incident.pk}/").json()
    assert rollback.pk in detail["deploy_requests"]
    assert incident.timeline.filter(kind=TimelineKind.ROLLBACK).count() == 1
    again = api.post(url, {"release": release.pk}, content_type="application/json")
    assert api_error(again, 409, "active_request")["active_request"] == rollback.pk
