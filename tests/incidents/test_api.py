"""/api/v1/incidents/: what on-call scripts and CI use, on rows the factories make (no cluster,
no MLflow). Every read is scoped to who may see the incident; every change goes through a verb."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from apps.audit.models import AuditEvent
from apps.incidents.models import Incident, LinkedChange, TimelineKind
from tests.api_errors import api_error
from tests.deployments.factories import DeployRequestFactory, EnvironmentFactory, ReleaseFactory
from tests.deployments.support import model_with_versions
from tests.incidents.factories import IncidentFactory, TimelineEntryFactory

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("offline")]

URL = "/api/v1/incidents/"


def signed_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def post(client: Client, url: str, body: dict):
    return client.post(url, body, content_type="application/json")


def patch(client: Client, url: str, body: dict):
    return client.patch(url, body, content_type="application/json")


def _actions(incident_id: int) -> list[str]:
    return list(
        AuditEvent.objects.filter(object_type="incidents.incident", object_id=str(incident_id))
        .order_by("id")
        .values_list("action", flat=True)
    )


def _ids(response) -> list[int]:
    assert response.status_code == 200, response.content[:500]
    return [row["id"] for row in response.json()["results"]]


def _live_release(model, environment):
    return ReleaseFactory(
        deploy_request__environment=environment,
        deploy_request__version=model.versions.get(version=2),
    )


# --- open and read --------------------------------------------------------------------------------
def test_anonymous_callers_get_401(client) -> None:
    api_error(client.get(URL), 401, "not_authenticated")
    api_error(post(client, URL, {"title": "x"}), 401, "not_authenticated")


def test_open_writes_the_audit_event_and_the_first_timeline_entry(
    member, maintainer, fraud, production
) -> None:
    release = _live_release(fraud, production)
    started = timezone.now() - timedelta(minutes=30)
    response = post(
        signed_in(member),
        URL,
        {
            "title": "Fraud scores are all zero",
            "severity": "sev2",
            "summary": "Since the 14:00 deploy.",
            "environments": ["production"],
            "models": ["fraud"],
            "releases": [release.pk],
            "started_at": started.isoformat(),
            "commander": "maya",
        },
    )
    assert response.status_code == 201, response.json()
    body = response.json()
    incident = Incident.objects.get()
    assert body["id"] == incident.pk
    assert (body["status"], body["severity"], body["source"]) == ("investigating", "sev2", "manual")
    assert body["severity_definition"].startswith("Major:")
    assert (body["environments"], body["models"]) == (["production"], ["fraud"])
    shown = body["releases"][0]
    assert (shown["id"], shown["model"], shown["version"], shown["environment"]) == (
        release.pk,
        "fraud",
        2,
        "production",
    )
    assert shown["live"] is True
    assert body["deploy_requests"] == [release.deploy_request_id]
    assert body["roles"] == {"commander": "maya", "scribe": None, "communications": None}
    assert (body["created_by"], body["web_url"]) == ("mo", f"/incidents/{incident.pk}/")
    assert body["acknowledged_at"] == body["detected_at"]
    assert _actions(incident.pk) == ["incident.opened"]
    timeline = signed_in(member).get(f"{URL}{incident.pk}/timeline/").json()["results"]
    assert [entry["kind"] for entry in timeline] == ["opened"]
    assert timeline[0]["body"].startswith("Opened: SEV2, Fraud scores are all zero.")
    assert timeline[0]["author"] == "mo"


def test_open_names_what_it_does_not_know(member, fraud, production) -> None:
    api = signed_in(member)
    unknown = {
        "environments": (["production", "moon"], "No environment “moon”."),
        "models": (["fraud", "fruad"], "No model “fruad” in the catalog."),
        "releases": ([999999], "No release #999999."),
        "commander": ("nobody", "Nobody is called “nobody”."),
    }
    for field, (value, message) in unknown.items():
        refused = post(api, URL, {"title": "Slow", field: value})
        assert api_error(refused, 400, "invalid")["errors"] == {field: [message]}
    future = (timezone.now() + timedelta(hours=2)).isoformat()
    later = post(api, URL, {"title": "Slow", "started_at": future})
    assert api_error(later, 400)["errors"] == {"started_at": ["This is in the future."]}
    untitled = post(api, URL, {"title": " "})
    assert "title" in api_error(untitled, 400)["errors"]
    assert not Incident.objects.exists()


def test_the_list_filters(member, team, fraud, production) -> None:
    churn = model_with_versions(team, name="churn")
    staging = EnvironmentFactory(name="staging", slug="staging", order=20)
    now = timezone.now()
    old = IncidentFactory(
        registered_models=[fraud],
        environments=[production],
        resolved=True,
        severity="sev1",
        started_at=now - timedelta(days=3),
    )
    draft = IncidentFactory(registered_models=[churn], environments=[staging], draft=True)
    live = IncidentFactory(registered_models=[fraud, churn], environments=[production])
    api = signed_in(member)
    assert _ids(api.get(URL)) == [live.pk, draft.pk, old.pk]
    assert _ids(api.get(URL, {"status": "resolved"})) == [old.pk]
    assert _ids(api.get(URL, {"severity": "sev1"})) == [old.pk]
    assert _ids(api.get(URL, {"environment": "production"})) == [live.pk, old.pk]
    assert _ids(api.get(URL, {"model": "churn"})) == [live.pk, draft.pk]
    assert _ids(api.get(URL, {"team": "fraud"})) == [live.pk, draft.pk, old.pk]
    assert _ids(api.get(URL, {"team": "other"})) == []
    assert _ids(api.get(URL, {"open": "true"})) == [live.pk, draft.pk]
    since = (now - timedelta(days=1)).isoformat()
    assert _ids(api.get(URL, {"since": since})) == [live.pk, draft.pk]
    assert _ids(api.get(URL, {"until": since})) == [old.pk]
    bad = api_error(api.get(URL, {"since": "yesterday"}), 400, "invalid")
    assert list(bad["errors"]) == ["since"]


def test_the_list_shows_only_what_the_caller_may_see(outsider, member, on_call, fraud) -> None:
    theirs = IncidentFactory(registered_models=[fraud])
    platform = IncidentFactory()  # touches no model yet: everyone's
    assert _ids(signed_in(outsider).get(URL)) == [platform.pk]
    assert set(_ids(signed_in(member).get(URL))) == {theirs.pk, platform.pk}
    assert set(_ids(signed_in(on_call).get(URL))) == {theirs.pk, platform.pk}
    detail = signed_in(outsider).get(f"{URL}{platform.pk}/")
    assert detail.status_code == 200


def test_the_list_reads_30_rows_in_bounded_queries(
    member, fraud, production, django_assert_max_num_queries
) -> None:
    commander = member
    for _ in range(30):
        IncidentFactory(registered_models=[fraud], environments=[production], commander=commander)
    api = signed_in(member)
    with django_assert_max_num_queries(7):
        body = api.get(URL).json()
    assert body["count"] == 30
    assert {(row["models"][0], row["commander"]) for row in body["results"]} == {("fraud", "mo")}


def test_the_detail_shows_roles_moments_and_linked_changes(
    member, maintainer, staff, fraud, production
) -> None:
    release = _live_release(fraud, production)
    incident = IncidentFactory(
        registered_models=[fraud],
        environments=[production],
        resolved=True,
        commander=maintainer,
        scribe=member,
        created_by=staff,
    )
    incident.releases.add(release)
    LinkedChange.objects.create(
        incident=incident,
        kind="deploy",
        object_id=release.deploy_request_id,
        label="Deploy #1",
        happened_at=incident.started_at - timedelta(minutes=5),
        linked_by=member,
        linked_at=timezone.now(),
    )
    body = signed_in(member).get(f"{URL}{incident.pk}/").json()
    assert body["reference"] == f"INC-{incident.pk}"
    assert body["next_statuses"] == ["investigating", "closed"]
    assert body["roles"] == {"commander": "maya", "scribe": "mo", "communications": None}
    assert body["created_by"] == "sam"
    assert body["resolved_at"] is not None and body["closed_at"] is None
    assert [r["id"] for r in body["releases"]] == [release.pk]
    assert [(c["kind"], c["object_id"], c["linked_by"]) for c in body["changes"]] == [
        ("deploy", release.deploy_request_id, "mo")
    ]


# --- 404 for what the caller may not see ----------------------------------------------------------
ROUTES = [
    ("get", "", None),
    ("patch", "", {"title": "Mine now"}),
    ("post", "status/", {"status": "resolved"}),
    ("post", "dismiss/", {"reason": "no"}),
    ("post", "severity/", {"severity": "sev1"}),
    ("post", "roles/", {"role": "commander", "person": "olga"}),
    ("get", "timeline/", None),
    ("post", "timeline/", {"body": "hello"}),
    ("post", "timeline/{entry}/pin/", {"pinned": True}),
    ("get", "changes/", None),
    ("post", "links/", {"kind": "deploy", "object_id": 1}),
    ("delete", "links/{link}/", None),
    ("post", "rollback/", {"release": 1}),
]


@pytest.mark.parametrize(("method", "path", "body"), ROUTES)
def test_another_teams_incident_is_404_on_every_route(
    outsider, fraud, method: str, path: str, body: dict | None
) -> None:
    incident = IncidentFactory(registered_models=[fraud])
    entry = TimelineEntryFactory(incident=incident)
    link = LinkedChange.objects.create(
        incident=incident,
        kind="deploy",
        object_id=1,
        label="Deploy #1",
        happened_at=incident.started_at,
        linked_at=timezone.now(),
    )
    url = f"{URL}{incident.pk}/" + path.format(entry=entry.pk, link=link.pk)
    call = getattr(signed_in(outsider), method)
    response = call(url, body, content_type="application/json") if body else call(url)
    api_error(response, 404, "not_found")
    assert _actions(incident.pk) == []


def test_an_entry_or_link_of_another_incident_is_404(member, fraud) -> None:
    incident = IncidentFactory(registered_models=[fraud])
    elsewhere = TimelineEntryFactory(incident=IncidentFactory(registered_models=[fraud]))
    api = signed_in(member)
    pin = post(api, f"{URL}{incident.pk}/timeline/{elsewhere.pk}/pin/", {"pinned": True})
    api_error(pin, 404, "not_found")
    api_error(api.delete(f"{URL}{incident.pk}/links/12345/"), 404, "not_found")
    api_error(api.get(f"{URL}999999/"), 404, "not_found")


# Who may see an incident may work it (permissions.py: the same people), so there is no 403
# for a visible incident; the verbs' own PermissionDenied is tested in test_services.py.


# --- the verbs ------------------------------------------------------------------------------------
def test_status_moves_and_a_move_from_the_wrong_status_is_400(member, fraud) -> None:
    incident = IncidentFactory(registered_models=[fraud], draft=True)
    api = signed_in(member)
    status_url = f"{URL}{incident.pk}/status/"
    confirmed = post(api, status_url, {"status": "investigating"})
    assert confirmed.status_code == 200, confirmed.json()
    assert confirmed.json()["status"] == "investigating"
    assert confirmed.json()["acknowledged_at"] is not None
    monitoring = post(api, status_url, {"status": "monitoring", "note": "Rolled back."})
    assert monitoring.json()["mitigated_at"] is not None
    resolved = post(api, status_url, {"status": "resolved"}).json()
    assert resolved["status"] == "resolved"
    assert resolved["next_statuses"] == ["investigating", "closed"]
    refused = api_error(post(api, status_url, {"status": "monitoring"}), 400, "invalid")
    assert refused["errors"] == {
        "status": ["An incident that is resolved cannot move to monitoring."]
    }
    unknown = api_error(post(api, status_url, {"status": "sleeping"}), 400)
    assert unknown["errors"] == {"status": ["Unknown status."]}
    dismissed = api_error(post(api, status_url, {"status": "dismissed"}), 400)
    assert dismissed["errors"] == {"status": ["Dismiss a draft with a reason instead."]}
    bodies = list(incident.timeline.filter(kind=TimelineKind.STATUS).values_list("body", flat=True))
    assert bodies == [
        "Status: Draft → Investigating.",
        "Status: Investigating → Monitoring. Rolled back.",
        "Status: Monitoring → Resolved.",
    ]
    assert _actions(incident.pk) == ["incident.status_changed"] * 3


def test_a_draft_is_dismissed_with_a_reason_and_not_without(member, fraud) -> None:
    draft = IncidentFactory(registered_models=[fraud], draft=True)
    api = signed_in(member)
    url = f"{URL}{draft.pk}/dismiss/"
    without = api_error(post(api, url, {}), 400, "invalid")
    assert without["errors"] == {"reason": ["Say why this is not an incident."]}
    dismissed = post(api, url, {"reason": "A planned load test."})
    assert dismissed.status_code == 200
    assert (dismissed.json()["status"], dismissed.json()["dismissed_reason"]) == (
        "dismissed",
        "A planned load test.",
    )
    again = api_error(post(api, url, {"reason": "again"}), 400)
    assert again["errors"] == {"status": ["Only a draft can be dismissed."]}
    assert _actions(draft.pk) == ["incident.dismissed"]


def test_severity_and_roles(member, maintainer, fraud) -> None:
    incident = IncidentFactory(registered_models=[fraud])
    api = signed_in(member)
    severity = post(api, f"{URL}{incident.pk}/severity/", {"severity": "sev1"})
    assert severity.json()["severity"] == "sev1"
    api_error(post(api, f"{URL}{incident.pk}/severity/", {"severity": "sev9"}), 400)
    roles_url = f"{URL}{incident.pk}/roles/"
    given = post(api, roles_url, {"role": "commander", "person": "maya"})
    assert given.json()["roles"]["commander"] == "maya"
    released = post(api, roles_url, {"role": "commander", "person": None})
    assert released.json()["roles"]["commander"] is None
    nobody = api_error(post(api, roles_url, {"role": "scribe", "person": "ghost"}), 400)
    assert nobody["errors"] == {"person": ["Nobody is called “ghost”."]}
    no_role = api_error(post(api, roles_url, {"role": "chef", "person": "maya"}), 400)
    assert no_role["errors"] == {"role": ["Choose one of commander, scribe, communications."]}
    assert _actions(incident.pk) == ["incident.severity_changed", *["incident.role_changed"] * 2]


def test_patch_changes_details_and_adds_what_it_touches(member, team, fraud, production) -> None:
    churn = model_with_versions(team, name="churn")
    incident = IncidentFactory(registered_models=[fraud])
    api = signed_in(member)
    earlier = incident.started_at - timedelta(minutes=10)
    changed = patch(
        api,
        f"{URL}{incident.pk}/",
        {
            "title": "Scores drift",
            "started_at": earlier.isoformat(),
            "environments": ["production"],
            "models": ["churn"],
        },
    )
    assert changed.status_code == 200, changed.json()
    body = changed.json()
    assert body["title"] == "Scores drift"
    assert (body["environments"], sorted(body["models"])) == (["production"], ["churn", "fraud"])
    assert set(incident.registered_models.all()) == {fraud, churn}
    early = (incident.started_at - timedelta(hours=1)).isoformat()
    refused = api_error(patch(api, f"{URL}{incident.pk}/", {"detected_at": early}), 400)
    assert refused["errors"] == {"detected_at": ["This is before the incident was started."]}
    unresolved = patch(api, f"{URL}{incident.pk}/", {"resolved_at": timezone.now().isoformat()})
    assert api_error(unresolved, 400)["errors"] == {"resolved_at": ["Resolve the incident first."]}
    assert _actions(incident.pk) == ["incident.updated"]


def test_notes_pins_and_the_timeline_filters(member, fraud) -> None:
    incident = IncidentFactory(registered_models=[fraud])
    api = signed_in(member)
    timeline_url = f"{URL}{incident.pk}/timeline/"
    note = post(api, timeline_url, {"body": "**Cause**: a bad feature flag."})
    assert note.status_code == 201, note.json()
    assert (note.json()["kind"], note.json()["pinned"]) == ("note", False)
    api_error(post(api, timeline_url, {"body": "  "}), 400)
    post(api, f"{URL}{incident.pk}/severity/", {"severity": "sev2"})
    TimelineEntryFactory(incident=incident, kind=TimelineKind.DEPLOY_EVENT, author_label="portal")
    pinned = post(api, f"{timeline_url}{note.json()['id']}/pin/", {"pinned": True})
    assert pinned.json()["pinned"] is True
    everything = api.get(timeline_url).json()
    assert [e["kind"] for e in everything["results"]] == ["note", "severity", "deploy_event"]
    assert [e["kind"] for e in api.get(timeline_url, {"show": "notes"}).json()["results"]] == [
        "note"
    ]
    assert [e["kind"] for e in api.get(timeline_url, {"show": "changes"}).json()["results"]] == [
        "severity"
    ]
    assert [e["kind"] for e in api.get(timeline_url, {"show": "deploys"}).json()["results"]] == [
        "deploy_event"
    ]
    only_pinned = api.get(timeline_url, {"pinned": "true"}).json()
    assert [e["id"] for e in only_pinned["results"]] == [note.json()["id"]]
    second_page = api.get(timeline_url, {"page_size": 2, "page": 2}).json()
    assert (second_page["count"], len(second_page["results"])) == (3, 1)
    unpinned = post(api, f"{timeline_url}{note.json()['id']}/pin/", {"pinned": False})
    assert unpinned.json()["pinned"] is False
    assert _actions(incident.pk) == [
        "incident.note_added",
        "incident.severity_changed",
        "incident.entry_pinned",
        "incident.entry_unpinned",
    ]


# --- what changed before it -----------------------------------------------------------------------
@pytest.fixture
def incident_with_changes(member, team, fraud, production):
    """An incident on fraud in production; deploys before it: one of fraud in production three
    hours before, one of churn in production an hour before, one of fraud 30 hours before."""
    churn = model_with_versions(team, name="churn")
    incident = IncidentFactory(registered_models=[fraud], environments=[production])
    start = incident.started_at
    pair = {"environment": production, "requester": member, "succeeded": True}
    same_pair = DeployRequestFactory(
        version=fraud.versions.get(version=2), created_at=start - timedelta(hours=3), **pair
    )
    same_env = DeployRequestFactory(
        version=churn.versions.get(version=1), created_at=start - timedelta(hours=1), **pair
    )
    outside = DeployRequestFactory(
        version=fraud.versions.get(version=1), created_at=start - timedelta(hours=30), **pair
    )
    return incident, same_pair, same_env, outside


def test_what_changed_ranks_the_deploys_in_the_window(member, incident_with_changes) -> None:
    incident, same_pair, same_env, outside = incident_with_changes
    api = signed_in(member)
    window = api.get(f"{URL}{incident.pk}/changes/").json()
    assert window["hours"] == 24
    assert window["end"] == api.get(f"{URL}{incident.pk}/").json()["started_at"]
    assert "Most likely first" in window["rule"]
    assert [(c["kind"], c["object_id"], c["match"]) for c in window["changes"]] == [
        ("deploy", same_pair.pk, "same model and environment"),
        ("deploy", same_env.pk, "same environment"),
    ]
    first = window["changes"][0]
    assert first["url"] == f"/deployments/requests/{same_pair.pk}/"
    assert first["title"].startswith(f"Deploy #{same_pair.pk}: fraud v2 → production")
    assert first["linked"] is False
    wider = api.get(f"{URL}{incident.pk}/changes/", {"hours": 48}).json()
    assert outside.pk in [c["object_id"] for c in wider["changes"]]
    bad = api_error(api.get(f"{URL}{incident.pk}/changes/", {"hours": "lots"}), 400)
    assert list(bad["errors"]) == ["hours"]


def test_link_and_unlink_a_change(member, incident_with_changes) -> None:
    incident, same_pair, _, _ = incident_with_changes
    api = signed_in(member)
    links_url = f"{URL}{incident.pk}/links/"
    linked = post(api, links_url, {"kind": "deploy", "object_id": same_pair.pk})
    assert linked.status_code == 201, linked.json()
    assert (linked.json()["kind"], linked.json()["linked_by"]) == ("deploy", "mo")
    again = api_error(post(api, links_url, {"kind": "deploy", "object_id": same_pair.pk}), 400)
    assert again["errors"] == {"object_id": ["It is already linked."]}
    unknown = api_error(post(api, links_url, {"kind": "deploy", "object_id": 999999}), 400)
    assert list(unknown["errors"]) == ["object_id"]
    window = api.get(f"{URL}{incident.pk}/changes/").json()
    assert window["changes"][0]["linked"] is True
    detail = api.get(f"{URL}{incident.pk}/").json()
    assert same_pair.pk in detail["deploy_requests"]
    unlinked = api.delete(f"{links_url}{linked.json()['id']}/")
    assert unlinked.status_code == 204
    api_error(api.delete(f"{links_url}{linked.json()['id']}/"), 404, "not_found")
    assert _actions(incident.pk) == ["incident.change_linked", "incident.change_unlinked"]


# --- rollback -------------------------------------------------------------------------------------
def test_rollback_refuses_a_release_the_incident_does_not_touch(member, team, fraud, production):
    churn = model_with_versions(team, name="churn")
    elsewhere = _live_release(churn, production)
    incident = IncidentFactory(registered_models=[fraud], environments=[production])
    api = signed_in(member)
    refused = api_error(post(api, f"{URL}{incident.pk}/rollback/", {"release": elsewhere.pk}), 400)
    assert refused["errors"] == {
        "release": ["This release is not one the incident touches; link it first."]
    }
    missing = api_error(post(api, f"{URL}{incident.pk}/rollback/", {"release": 999999}), 400)
    assert missing["errors"] == {"release": ["No release #999999."]}
    assert _actions(incident.pk) == []


def test_the_schema_documents_every_incident_route(member) -> None:
    schema = signed_in(member).get("/api/schema/", {"format": "json"}).json()
    paths = {path for path in schema["paths"] if path.startswith(URL)}
    assert paths == {
        URL,
        f"{URL}{{id}}/",
        f"{URL}{{id}}/status/",
        f"{URL}{{id}}/dismiss/",
        f"{URL}{{id}}/severity/",
        f"{URL}{{id}}/roles/",
        f"{URL}{{id}}/timeline/",
        f"{URL}{{id}}/timeline/{{entry_id}}/pin/",
        f"{URL}{{id}}/changes/",
        f"{URL}{{id}}/links/",
        f"{URL}{{id}}/links/{{link_id}}/",
        f"{URL}{{id}}/rollback/",
    }
    rollback = schema["paths"][f"{URL}{{id}}/rollback/"]["post"]["responses"]
    assert {"201", "400", "403", "404", "409"} <= set(rollback)
