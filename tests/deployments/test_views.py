"""Environment pages: everyone reads, staff write, forms show errors, htmx gets the partial."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.test import Client

from apps.audit.models import AuditEvent
from apps.deployments.models import Environment
from tests.deployments.factories import EnvironmentFactory

pytestmark = pytest.mark.django_db

FORM = {
    "name": "QA",
    "slug": "",
    "order": "15",
    "description": "",
    "connection": "kubeconfig",
    "kubeconfig_path": "",
    "kube_context": "",
    "namespace": "models-qa",
    "serving_kind": "kserve",
    "kserve_mode": "Standard",
    "runtime_image": "",
    "replicas": "1",
    "max_replicas": "2",
    "cpu_request": "100m",
    "cpu_limit": "1",
    "memory_request": "512Mi",
    "memory_limit": "1Gi",
    "gpus": "0",
    "progress_deadline_seconds": "600",
}


def test_list_shows_environments_and_the_simulated_badge(
    client: Client, member, kubeconfig_file: Path, django_assert_max_num_queries
) -> None:
    for order in range(30):
        EnvironmentFactory(order=order, kubeconfig_path=str(kubeconfig_file))
    client.force_login(member)
    with django_assert_max_num_queries(8):
        response = client.get("/deployments/environments/")
    html = response.content.decode()
    assert response.status_code == 200
    assert html.count('<span class="badge badge-info"') == 25  # one page
    assert "simulated cluster" in html
    assert "Simulated cluster." in html  # the banner
    assert "New environment" not in html


def test_list_for_staff_offers_creation(client: Client, staff) -> None:
    client.force_login(staff)
    assert b"New environment" in client.get("/deployments/environments/").content


def test_create_by_staff_saves_and_redirects(client: Client, staff) -> None:
    client.force_login(staff)
    response = client.post("/deployments/environments/new/", FORM)
    assert response.status_code == 302
    assert response["Location"] == "/deployments/environments/qa/"
    assert Environment.objects.get().namespace == "models-qa"
    assert AuditEvent.objects.get(action__startswith="environment.").action == "environment.created"


def test_create_form_errors_are_shown_and_nothing_is_saved(client: Client, staff) -> None:
    client.force_login(staff)
    bad = {**FORM, "namespace": "Not A Namespace", "cpu_request": "4", "cpu_limit": "1"}
    response = client.post("/deployments/environments/new/", bad)
    html = response.content.decode()
    assert response.status_code == 400
    assert "Kubernetes DNS-1123 label" in html
    assert "The request cannot be larger than the limit." in html
    assert not Environment.objects.exists()


@pytest.mark.parametrize(
    "path", ["/deployments/environments/new/", "/deployments/environments/dev/edit/"]
)
def test_non_staff_cannot_open_or_post_write_pages(client: Client, member, path: str) -> None:
    EnvironmentFactory(name="dev")
    client.force_login(member)
    assert client.get(path).status_code == 403
    assert client.post(path, FORM).status_code == 403
    assert Environment.objects.count() == 1


def test_edit_saves_changes_and_keeps_the_header_on_errors(client: Client, staff) -> None:
    environment = EnvironmentFactory(name="dev", serving_kind="kserve", runtime_image="")
    client.force_login(staff)
    data = {**FORM, "name": "dev", "slug": "dev", "order": str(environment.order), "replicas": "2"}
    assert client.post("/deployments/environments/dev/edit/", data).status_code == 302
    environment.refresh_from_db()
    assert environment.replicas == 2
    response = client.post("/deployments/environments/dev/edit/", {**data, "name": ""})
    assert response.status_code == 400
    assert "<h1>Edit dev</h1>" in response.content.decode()


def test_detail_is_readable_by_members_without_the_test_button(client: Client, member) -> None:
    EnvironmentFactory(name="dev")
    client.force_login(member)
    response = client.get("/deployments/environments/dev/")
    assert response.status_code == 200
    assert b"Test connection" not in response.content
    assert client.get("/deployments/environments/nope/").status_code == 404


def test_test_connection_without_htmx_renders_the_page_with_the_reason(
    client: Client, staff
) -> None:
    EnvironmentFactory(name="dev", kubeconfig_path="/nonexistent/config")
    client.force_login(staff)
    response = client.post("/deployments/environments/dev/test-connection/")
    html = response.content.decode()
    assert "<html" in html
    assert "Cannot read kubeconfig /nonexistent/config" in html


def test_test_connection_is_staff_only(client: Client, member) -> None:
    EnvironmentFactory(name="dev")
    client.force_login(member)
    assert client.post("/deployments/environments/dev/test-connection/").status_code == 403
