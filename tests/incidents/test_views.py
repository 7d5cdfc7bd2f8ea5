"""The incident pages: list, open, the incident page and what people do on it."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from apps.audit.models import AuditEvent
from apps.incidents.models import Incident, LinkedChange, TimelineKind
from tests.accounts.factories import UserFactory
from tests.deployments.factories import DeployRequestFactory
from tests.incidents.factories import IncidentFactory, TimelineEntryFactory

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("offline")]
HTMX = {"HTTP_HX_REQUEST": "true"}


def test_the_list_shows_what_each_person_may_see_in_bounded_queries(
    client, member, outsider, fraud, production, django_assert_max_num_queries
):
    for number in range(30):
        IncidentFactory(title=f"Team incident {number}", registered_models=[fraud],
                        environments=[production])  # fmt: skip
    IncidentFactory(title="Platform-wide outage", started_at=timezone.now() - timedelta(days=2))
    client.force_login(member)
    with django_assert_max_num_queries(12):
        page = client.get(reverse("incidents:incident-list"))
    assert page.status_code == 200
    assert page.content.count(b"Team incident") == 25  # one page
    client.force_login(outsider)
    theirs = client.get(reverse("incidents:incident-list")).content.decode()
    assert "Team incident" not in theirs
    assert "Platform-wide outage" in theirs


def test_another_teams_member_gets_404_on_a_private_incident(client, outsider, fraud):
    incident = IncidentFactory(registered_models=[fraud])
    client.force_login(outsider)
    for name in ("incidents:incident-detail", "incidents:incident-timeline"):
        assert client.get(reverse(name, args=[incident.pk])).status_code == 404
    note = client.post(reverse("incidents:incident-note", args=[incident.pk]), {"body": "x"})
    assert note.status_code == 404
    assert not incident.timeline.exists()


def test_opening_an_incident_from_the_form(client, member, fraud, production):
    client.force_login(member)
    url = reverse("incidents:incident-open")
    assert client.get(url).status_code == 200
    bad = client.post(url, {"title": "", "severity": "sev2", "models": "fraud, nope"})
    assert bad.status_code == 400
    assert "No model named nope." in bad.content.decode()
    assert not Incident.objects.exists()
    made = client.post(
        url,
        {"title": "Scores all zero", "severity": "sev2", "models": "fraud",
         "environments": [production.pk], "summary": "Since 14:00"},
    )  # fmt: skip
    incident = Incident.objects.get()
    assert made.status_code == 302
    assert made["Location"] == reverse("incidents:incident-detail", args=[incident.pk])
    assert (incident.severity, incident.created_by) == ("sev2", member)
    assert set(incident.registered_models.all()) == {fraud}
    page = client.get(made["Location"]).content.decode()
    assert "Scores all zero" in page
    assert "Opened: SEV2, Scores all zero." in page


def test_a_note_by_htmx_comes_back_in_the_page_and_is_sanitised(client, member, fraud):
    incident = IncidentFactory(registered_models=[fraud])
    client.force_login(member)
    answer = client.post(
        reverse("incidents:incident-note", args=[incident.pk]),
        {"body": "**Rolled back** <script>alert(1)</script>"},
        **HTMX,
    )
    html = answer.content.decode()
    assert answer.status_code == 200
    assert '<div id="incident"' in html
    assert "<strong>Rolled back</strong>" in html
    assert "<script>alert(1)</script>" not in html
    assert "Note added." in html


def test_status_buttons_move_it_and_a_wrong_move_says_why(client, member, fraud):
    incident = IncidentFactory(registered_models=[fraud])
    client.force_login(member)
    url = reverse("incidents:incident-status", args=[incident.pk])
    assert client.post(url, {"status": "resolved"}).status_code == 302
    incident.refresh_from_db()
    assert incident.status == "resolved"
    wrong = client.post(url, {"status": "monitoring"}, **HTMX)
    assert wrong.status_code == 400
    assert "An incident that is resolved cannot move to monitoring." in wrong.content.decode()


def test_pinning_from_the_page(client, member, fraud):
    incident = IncidentFactory(registered_models=[fraud])
    entry = TimelineEntryFactory(incident=incident)
    client.force_login(member)
    url = reverse("incidents:timeline-entry-pin", args=[incident.pk, entry.pk])
    client.post(url, {"pinned": "1"}, **HTMX)
    entry.refresh_from_db()
    assert entry.pinned
    pinned = client.get(
        reverse("incidents:incident-timeline", args=[incident.pk]), {"pinned": "1"}, **HTMX
    ).content.decode()
    assert entry.body in pinned


def test_the_timeline_stops_polling_once_the_incident_is_over(client, member, fraud):
    incident = IncidentFactory(registered_models=[fraud], resolved=True)
    client.force_login(member)
    url = reverse("incidents:incident-timeline", args=[incident.pk])
    answer = client.get(url, HTTP_HX_REQUEST="true", HTTP_HX_TRIGGER_NAME="poll")
    assert answer.status_code == 286


def test_what_changed_lists_a_deploy_and_links_it_in_one_click(client, member, fraud, production):
    incident = IncidentFactory(registered_models=[fraud], environments=[production])
    deploy = DeployRequestFactory(
        environment=production,
        version=fraud.versions.get(version=2),
        succeeded=True,
        created_at=incident.started_at - timedelta(hours=2),
    )
    client.force_login(member)
    page = client.get(reverse("incidents:incident-detail", args=[incident.pk])).content.decode()
    assert f"Deploy #{deploy.pk}: fraud v2 → production" in page
    assert "same model and environment" in page
    answer = client.post(
        reverse("incidents:incident-link", args=[incident.pk]),
        {"kind": "deploy", "object_id": deploy.pk},
        **HTMX,
    )
    assert answer.status_code == 200
    link = LinkedChange.objects.get()
    assert (link.kind, link.object_id, link.linked_by) == ("deploy", deploy.pk, member)
    assert incident.deploy_requests.filter(pk=deploy.pk).exists()
    assert incident.timeline.filter(kind=TimelineKind.LINK).count() == 1
    again = client.post(
        reverse("incidents:incident-link", args=[incident.pk]),
        {"kind": "deploy", "object_id": deploy.pk},
        **HTMX,
    )
    assert again.status_code == 400
    assert "It is already linked." in again.content.decode()


def test_a_draft_is_confirmed_or_dismissed_with_a_reason(client, member, fraud):
    draft = IncidentFactory(registered_models=[fraud], draft=True)
    client.force_login(member)
    page = client.get(reverse("incidents:incident-detail", args=[draft.pk])).content.decode()
    assert "A draft, opened by the portal." in page
    url = reverse("incidents:incident-dismiss", args=[draft.pk])
    empty = client.post(url, {"reason": ""}, **HTMX)
    assert empty.status_code == 400
    client.post(url, {"reason": "Load test"})
    draft.refresh_from_db()
    assert (draft.status, draft.dismissed_reason) == ("dismissed", "Load test")
    assert AuditEvent.objects.filter(action="incident.dismissed").count() == 1


def test_roles_are_given_by_username(client, member, fraud):
    incident = IncidentFactory(registered_models=[fraud])
    UserFactory(username="cara")
    client.force_login(member)
    url = reverse("incidents:incident-role", args=[incident.pk])
    unknown = client.post(url, {"role": "commander", "person": "nobody"}, **HTMX)
    assert "Nobody is called nobody." in unknown.content.decode()
    client.post(url, {"role": "commander", "person": "cara"})
    incident.refresh_from_db()
    assert incident.commander is not None and incident.commander.username == "cara"
