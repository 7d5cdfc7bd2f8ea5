"""/api/v1/environments/: everyone signed in reads, staff write, bounded queries."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.test import Client

from apps.audit.models import AuditEvent
from apps.deployments.models import Environment
from tests.api_errors import api_error
from tests.deployments.factories import EnvironmentFactory

pytestmark = pytest.mark.django_db

URL = "/api/v1/environments/"
NEW = {"name": "QA", "order": 15, "namespace": "models-qa", "serving_kind": "kserve"}


def test_anonymous_callers_get_401(client: Client) -> None:
    api_error(client.get(URL), 401, "not_authenticated")


def test_members_read_a_paginated_list_in_bounded_queries(
    client: Client, member, kubeconfig_file: Path, django_assert_max_num_queries
) -> None:
    for order in range(60):
        EnvironmentFactory(order=order, kubeconfig_path=str(kubeconfig_file))
    client.force_login(member)
    with django_assert_max_num_queries(5):
        body = client.get(URL).json()
    assert body["count"] == 60
    assert len(body["results"]) == 50
    assert body["results"][0]["cluster"]["simulated"] is True
    assert body["results"][0]["cluster"]["server"].startswith("http://127.0.0.1:")
    second = client.get(URL, {"page": 2, "page_size": 10}).json()
    assert [env["order"] for env in second["results"]] == list(range(10, 20))


def test_staff_create_with_generated_slug(client: Client, staff) -> None:
    client.force_login(staff)
    response = client.post(URL, NEW, content_type="application/json")
    assert response.status_code == 201
    assert response.json()["slug"] == "qa"
    assert AuditEvent.objects.get(action__startswith="environment.").action == "environment.created"


def test_members_cannot_write(client: Client, member) -> None:
    EnvironmentFactory(name="dev")
    client.force_login(member)
    api_error(client.post(URL, NEW, content_type="application/json"), 403, "permission_denied")
    response = client.patch(f"{URL}dev/", {"replicas": 3}, content_type="application/json")
    body = api_error(response, 403, "permission_denied")
    assert body == {
        "detail": "Only staff can change environments.",
        "code": "permission_denied",
        "errors": {},
    }
    api_error(client.post(f"{URL}dev/test-connection/"), 403)


def test_invalid_settings_are_a_400_naming_the_field(client: Client, staff) -> None:
    client.force_login(staff)
    response = client.post(
        URL,
        {**NEW, "memory_request": "2Gi", "memory_limit": "1Gi"},
        content_type="application/json",
    )
    body = api_error(response, 400, "invalid")
    assert body["errors"] == {"memory_request": ["The request cannot be larger than the limit."]}
    assert body["detail"] == "memory_request: The request cannot be larger than the limit."
    assert not Environment.objects.exists()


def test_duplicate_order_is_a_400(client: Client, staff) -> None:
    EnvironmentFactory(order=15)
    client.force_login(staff)
    response = client.post(URL, NEW, content_type="application/json")
    assert "order" in api_error(response, 400, "invalid")["errors"]


def test_staff_patch_updates_and_audits(client: Client, staff) -> None:
    EnvironmentFactory(name="dev", replicas=1, max_replicas=4)
    client.force_login(staff)
    response = client.patch(f"{URL}dev/", {"replicas": 3}, content_type="application/json")
    assert response.status_code == 200
    assert response.json()["replicas"] == 3
    assert AuditEvent.objects.get(action__startswith="environment.").data == {
        "changes": {"replicas": [1, 3]}
    }


def test_patch_checks_invariants_against_the_saved_values(client: Client, staff) -> None:
    EnvironmentFactory(name="dev", replicas=1, max_replicas=2)
    client.force_login(staff)
    response = client.patch(f"{URL}dev/", {"replicas": 3}, content_type="application/json")
    assert "max_replicas" in api_error(response, 400, "invalid")["errors"]
