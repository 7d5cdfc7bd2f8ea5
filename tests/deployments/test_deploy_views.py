"""Deploy pages: the self-service form (htmx fields, preview), the request page that polls
itself until done, the matrix with time travel, rollback confirmation, protection and freezes.

The preview, filing and rolling back go to the simulated cluster (`dev`); the other pages are
rendered from rows the factories make (`dev_offline`)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from apps.audit.models import AuditEvent
from apps.deployments.models import DeployRequest, Release
from apps.deployments.templatetags.deploy_extras import took
from tests.deployments.factories import DeployEventFactory, DeployRequestFactory, ReleaseFactory
from tests.deployments.support import (
    drive,
    environment_on,
    model_with_versions,
    request_deploy,
    v2_live_after_v1,
    version,
)

pytestmark = pytest.mark.django_db
HTMX: dict[str, Any] = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture
def dev(kubeconfig):
    """dev on the simulated cluster."""
    return environment_on(kubeconfig, "dev", 10)


@pytest.fixture
def dev_offline(kubeconfig_file):
    """dev with no cluster behind it: reaching one fails the test."""
    return environment_on(kubeconfig_file, "dev", 10)


def form_data(model, **overrides) -> dict:
    return {
        "model": model.pk,
        "version": "2",
        "environment": "dev",
        "options_for": "dev",
        "replicas": "1",
        "cpu_request": "100m",
        "cpu_limit": "1",
        "memory_request": "512Mi",
        "memory_limit": "1Gi",
        "reason": "",
        **overrides,
    }


def test_form_prefills_from_the_environment_and_refreshes_by_htmx(
    client: Client, dev_offline, fraud, member
) -> None:
    client.force_login(member)
    page = client.get("/deployments/requests/new/", {"model": fraud.pk})
    html = page.content.decode()
    assert page.status_code == 200
    assert 'name="replicas" value="1"' in html
    assert '<option value="3" selected>v3' in html  # newest first, chosen
    assert "No approval needed" in html
    partial = client.get(
        "/deployments/requests/new/", {"q": "fra", "refresh": "model"}, **HTMX
    ).content.decode()
    assert partial.strip().startswith('<div id="deploy-fields"')
    assert f'<option value="{fraud.pk}" selected>fraud' in partial


def test_preview_shows_the_diff_and_rules_without_changing_anything(
    client: Client, dev, fraud, member
) -> None:
    client.force_login(member)
    html = client.post(
        "/deployments/requests/new/preview/", form_data(fraud), **HTMX
    ).content.decode()
    assert html.strip().startswith('<section class="card spaced" id="preview"')
    assert "planned Deployment/fraud" in html
    assert "No approval needed" in html
    assert not DeployRequest.objects.exists()
    bad = client.post(
        "/deployments/requests/new/preview/", form_data(fraud, version="9"), **HTMX
    ).content.decode()
    assert "fraud has no version 9." in bad


def test_filing_redirects_to_the_request_and_a_second_one_names_the_first(
    client: Client, dev, fraud, member
) -> None:
    client.force_login(member)
    response = client.post("/deployments/requests/new/", form_data(fraud))
    request = DeployRequest.objects.get()
    assert response.status_code == 302
    assert response["Location"] == f"/deployments/requests/{request.pk}/"
    again = client.post("/deployments/requests/new/", form_data(fraud, version="1"))
    assert again.status_code == 409
    assert f"fraud already has an active request in dev: #{request.pk}" in again.content.decode()
    assert DeployRequest.objects.count() == 1


def test_request_page_polls_while_active(
    client: Client, dev_offline, fraud, member, django_assert_max_num_queries
) -> None:
    client.force_login(member)
    request = DeployRequestFactory(
        planned=True, environment=dev_offline, version=version(fraud, 1), requester=member
    )
    DeployEventFactory(request=request)
    page = client.get(f"/deployments/requests/{request.pk}/").content.decode()
    assert 'hx-trigger="every 2s"' in page
    assert "Planned Deployment/fraud".lower() in page.lower()
    with django_assert_max_num_queries(12):
        panel = client.get(f"/deployments/requests/{request.pk}/", **HTMX)
    assert panel.status_code == 200
    assert panel.content.decode().strip().startswith('<section class="card" id="status-panel"')


def test_request_page_stops_polling_when_done(client: Client, dev_offline, fraud, member) -> None:
    client.force_login(member)
    request = DeployRequestFactory(
        succeeded=True,
        planned=True,
        environment=dev_offline,
        version=version(fraud, 1),
        requester=member,
    )
    ReleaseFactory(deploy_request=request)  # what it put live
    final = client.get(f"/deployments/requests/{request.pk}/", **HTMX)
    assert final.status_code == 286  # htmx stops polling
    body = final.content.decode()
    assert 'data-state="succeeded"' in body
    assert "hx-trigger" not in body
    assert "Roll back to last good" in body


def test_request_page_is_404_for_people_who_may_not_see_it(
    client: Client, dev_offline, fraud, member, outsider
) -> None:
    request = DeployRequestFactory(
        environment=dev_offline, version=version(fraud, 1), requester=member
    )
    client.force_login(outsider)
    assert client.get(f"/deployments/requests/{request.pk}/").status_code == 404
    assert client.post(f"/deployments/requests/{request.pk}/cancel/").status_code == 404


def test_cancel_from_the_page(client: Client, dev_offline, fraud, member) -> None:
    client.force_login(member)
    request = DeployRequestFactory(
        environment=dev_offline, version=version(fraud, 1), requester=member
    )
    response = client.post(f"/deployments/requests/{request.pk}/cancel/", {"reason": "typo"})
    assert response.status_code == 302
    request.refresh_from_db()
    assert request.state == "cancelled"


def test_request_list_filters(
    client: Client, dev_offline, fraud, member, django_assert_max_num_queries
) -> None:
    client.force_login(member)
    DeployRequestFactory(environment=dev_offline, version=version(fraud, 1), requester=member)
    with django_assert_max_num_queries(8):
        html = client.get("/deployments/requests/", {"show": "active"}).content.decode()
    assert "fraud</strong> v1" in html
    empty = client.get("/deployments/requests/", {"state": "failed"}, **HTMX).content.decode()
    assert "No request matches these filters." in empty


def test_matrix_shows_who_and_when_and_travels_in_time(
    client: Client, kubeconfig_file, dev_offline, fraud, member, django_assert_max_num_queries
) -> None:
    environment_on(kubeconfig_file, "production", 30)
    v2_live_after_v1(dev_offline, fraud, member, ago=timedelta(hours=3))
    for number in range(30):  # more models live: the page stays within its query budget
        other = model_with_versions(None, 1, name=f"other-{number:02d}")
        ReleaseFactory(
            deploy_request__environment=dev_offline, deploy_request__version=version(other, 1)
        )
    client.force_login(member)
    with django_assert_max_num_queries(10):
        html = client.get("/deployments/", {"q": "fraud"}).content.decode()
    assert "What is live where" in html
    assert 'class="version-pill">v2</a>' in html
    assert "by mo" in html
    at = (timezone.now() - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M")
    past = client.get("/deployments/", {"at": at, "q": "fraud"}, **HTMX).content.decode()
    assert "Showing what was live on" in past
    assert 'class="version-pill">v1</a>' in past
    with django_assert_max_num_queries(10):
        page = client.get("/deployments/").content.decode()
    assert page.count('class="version-pill"') == 25  # one page of models


def test_rollback_page_asks_for_a_confirmation(client: Client, dev_offline, fraud, member) -> None:
    live = v2_live_after_v1(dev_offline, fraud, member, ago=timedelta(hours=1))
    client.force_login(member)
    page = client.get(f"/deployments/releases/{live.pk}/rollback/").content.decode()
    assert "Confirm: roll back to v1" in page
    assert "emergency rollbacks skip approval" in page
    assert DeployRequest.objects.filter(kind="rollback").count() == 0


def test_confirmed_rollback_is_filed(client: Client, sim, dev, fraud, member) -> None:
    drive(sim, request_deploy(member, dev, fraud, 1).pk)
    drive(sim, request_deploy(member, dev, fraud, 2).pk)
    live = Release.objects.get(live_until__isnull=True)
    client.force_login(member)
    response = client.post(f"/deployments/releases/{live.pk}/rollback/", {"reason": "errors"})
    rollback = DeployRequest.objects.get(kind="rollback")
    assert response["Location"] == f"/deployments/requests/{rollback.pk}/"


def test_model_page_has_the_environments_card(client: Client, dev_offline, fraud, member) -> None:
    ReleaseFactory(
        deploy_request__environment=dev_offline,
        deploy_request__version=version(fraud, 1),
        deploy_request__requester=member,
    )
    client.force_login(member)
    html = client.get(f"/catalog/models/{fraud.pk}/").content.decode()
    assert '<section class="card" id="environments">' in html
    assert "<strong>v1</strong>" in html
    assert f"/deployments/requests/new/?model={fraud.pk}" in html


def test_staff_edit_protection_rules_and_freeze(
    client: Client, dev_offline, staff, member, team
) -> None:
    client.force_login(member)
    assert client.get("/deployments/environments/dev/protection/").status_code == 403
    client.force_login(staff)
    data = {
        "required_approvals": "1",
        "reviewer_teams": [team.pk],
        "wait_minutes": "0",
        "expires_after_hours": "72",
        "deny_windows": "Fri 16:00-Mon 08:00",
        "window_timezone": "Europe/Berlin",
        "soak_minutes": "0",
        "rollback_min_live_minutes": "30",
        "without_previous_release": "delete",
        "mlflow_alias": "dev",
        "allow_emergency_rollback": "on",
    }
    bad = client.post("/deployments/environments/dev/protection/", {**data, "deny_windows": "x"})
    assert bad.status_code == 400
    assert "“x” is not “Fri 16:00-Mon 08:00”" in bad.content.decode()
    saved = client.post("/deployments/environments/dev/protection/", data)
    assert saved.status_code == 302
    dev_offline.protection.refresh_from_db()
    assert (dev_offline.protection.required_approvals, dev_offline.protection.window_timezone) == (
        1,
        "Europe/Berlin",
    )
    event = AuditEvent.objects.get(action="environment.protection_updated")
    assert event.data["changes"]["reviewer_teams"] == [[], ["fraud"]]
    frozen = client.post("/deployments/environments/dev/freezes/", {"reason": "Audit week"})
    assert frozen.status_code == 302
    page = client.get("/deployments/environments/dev/").content.decode()
    assert "Audit week" in page
    assert "1 approval(s) from fraud; never the requester." in page


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0, "0 s"), (59, "59 s"), (60, "1 min"), (185, "3 min 5 s"), (7440, "2 h 4 min")],
)
def test_durations_read_as_people_say_them(seconds, text) -> None:
    start = timezone.now()
    assert took(start, start + timedelta(seconds=seconds)) == text
    assert took(start, None) == "—"


def test_a_null_character_in_the_form_is_a_400(client: Client, dev_offline, fraud, member) -> None:
    client.force_login(member)
    response = client.post("/deployments/requests/new/", form_data(fraud, environment="d\x00v"))
    assert response.status_code == 400
    assert "NUL character" in response.content.decode()
    assert not DeployRequest.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("trait", "expected"),
    [
        ("queued", [("Requested", "done"), ("Queued", "current"), ("Applying", "todo")]),
        ("rolling_out", [("Applying", "done"), ("Rolling out", "current"), ("Finished", "todo")]),
        ("succeeded", [("Rolling out", "done"), ("Succeeded", "done")]),
        ("failed", [("Rolling out", "done"), ("Failed", "failed")]),
        ("cancelled", [("Queued", "skipped"), ("Cancelled", "ended")]),
    ],
)
def test_progress_steps_say_where_a_request_is_and_how_it_ended(
    trait: str, expected: list[tuple[str, str]]
) -> None:
    from apps.deployments.views.requests import _steps

    steps = [(label, status) for label, status, _ in _steps(DeployRequestFactory(**{trait: True}))]
    labels = {label for label, _ in expected}
    assert [step for step in steps if step[0] in labels] == expected
