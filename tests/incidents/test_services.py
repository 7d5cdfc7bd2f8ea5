"""The incident verbs: each change is one timeline entry and one audit event, in order."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.utils import timezone

from apps.audit.models import AuditEvent
from apps.incidents import services
from apps.incidents.models import Incident, IncidentStatus, Role, Severity, TimelineKind
from apps.incidents.services import Affected
from tests.database import assert_rejected_by_database
from tests.deployments.factories import DeployEventFactory, DeployRequestFactory, ReleaseFactory
from tests.incidents.factories import IncidentFactory, TimelineEntryFactory

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("offline")]


def _actions(incident: Incident) -> list[str]:
    return list(
        AuditEvent.objects.filter(object_type="incidents.incident", object_id=str(incident.pk))
        .order_by("id")
        .values_list("action", flat=True)
    )


def test_open_records_what_it_touches_on_the_timeline_and_in_the_audit(member, fraud, production):
    release = ReleaseFactory(
        deploy_request__environment=production,
        deploy_request__version=fraud.versions.get(version=2),
    )
    DeployEventFactory(request=release.deploy_request, message="Applied.")
    incident = services.incident_open(
        actor=member,
        title="Fraud scores are all zero",
        severity=Severity.SEV2,
        affected=Affected(releases=(release,)),
    )
    assert incident.status == IncidentStatus.INVESTIGATING
    assert set(incident.environments.all()) == {production}
    assert set(incident.registered_models.all()) == {fraud}
    assert set(incident.deploy_requests.all()) == {release.deploy_request}
    assert incident.acknowledged_at == incident.detected_at
    kinds = list(incident.timeline.values_list("kind", flat=True))
    assert sorted(kinds) == sorted([TimelineKind.OPENED, TimelineKind.DEPLOY_EVENT])
    opened = incident.timeline.get(kind=TimelineKind.OPENED)
    assert opened.body == (
        "Opened: SEV2, Fraud scores are all zero. Affects environment production, model fraud, "
        f"release {release}."
    )
    assert incident.timeline.get(kind=TimelineKind.DEPLOY_EVENT).body.endswith(": Applied.")
    assert _actions(incident) == ["incident.opened"]


def test_open_refuses_an_empty_title_and_a_start_in_the_future(member):
    with pytest.raises(ValidationError) as empty:
        services.incident_open(actor=member, title="  ")
    assert empty.value.message_dict == {"title": ["Say in a few words what is wrong."]}
    with pytest.raises(ValidationError) as future:
        services.incident_open(
            actor=member, title="x", started_at=timezone.now() + timedelta(hours=1)
        )
    assert future.value.message_dict == {"started_at": ["This is in the future."]}
    assert not Incident.objects.exists()


def test_status_moves_stamp_the_moments_a_review_reads(member, fraud):
    incident = IncidentFactory(registered_models=[fraud], draft=True)
    services.incident_status_set(actor=member, incident=incident, status="investigating")
    assert incident.acknowledged_at is not None
    services.incident_status_set(actor=member, incident=incident, status="monitoring")
    assert incident.mitigated_at is not None
    services.incident_status_set(actor=member, incident=incident, status="resolved", note="Fixed.")
    resolved_at = incident.resolved_at
    assert resolved_at is not None
    incident.refresh_from_db()
    assert incident.status == IncidentStatus.RESOLVED
    assert incident.resolved_at == resolved_at
    entries = list(
        incident.timeline.filter(kind=TimelineKind.STATUS).values_list("body", flat=True)
    )
    assert entries == [
        "Status: Draft → Investigating.",
        "Status: Investigating → Monitoring.",
        "Status: Monitoring → Resolved. Fixed.",
    ]
    assert _actions(incident) == ["incident.status_changed"] * 3
    services.incident_status_set(actor=member, incident=incident, status="investigating")
    assert incident.resolved_at is None


def test_a_status_move_from_the_wrong_status_changes_nothing(member, fraud):
    incident = IncidentFactory(registered_models=[fraud], resolved=True)
    with pytest.raises(ValidationError) as refused:
        services.incident_status_set(actor=member, incident=incident, status="monitoring")
    assert refused.value.message_dict == {
        "status": ["An incident that is resolved cannot move to monitoring."]
    }
    assert not incident.timeline.exists()
    assert _actions(incident) == []


def test_a_draft_is_dismissed_only_with_a_reason_which_is_kept(member, fraud):
    incident = IncidentFactory(registered_models=[fraud], draft=True)
    with pytest.raises(ValidationError):
        services.incident_dismiss(actor=member, incident=incident, reason=" ")
    services.incident_dismiss(actor=member, incident=incident, reason="A planned load test.")
    incident.refresh_from_db()
    assert incident.status == IncidentStatus.DISMISSED
    assert incident.dismissed_reason == "A planned load test."
    assert _actions(incident) == ["incident.dismissed"]
    with pytest.raises(ValidationError):
        services.incident_dismiss(actor=member, incident=incident, reason="again")


def test_severity_and_roles_are_timeline_entries(member, maintainer, fraud):
    incident = IncidentFactory(registered_models=[fraud], acknowledged_at=None)
    services.incident_severity_set(actor=member, incident=incident, severity=Severity.SEV1)
    services.incident_role_set(
        actor=member, incident=incident, role=Role.COMMANDER, person=maintainer
    )
    services.incident_role_set(actor=member, incident=incident, role=Role.SCRIBE, person=member)
    services.incident_role_set(actor=member, incident=incident, role=Role.SCRIBE, person=None)
    incident.refresh_from_db()
    assert (incident.severity, incident.commander, incident.scribe) == ("sev1", maintainer, None)
    assert incident.acknowledged_at is not None  # taking command acknowledges it
    bodies = list(incident.timeline.order_by("id").values_list("body", flat=True))
    assert bodies == [
        "Severity: SEV3 → SEV1.",
        "Commander: maya.",
        "Scribe: mo.",
        "Scribe: nobody (role released).",
    ]
    assert _actions(incident) == [
        "incident.severity_changed",
        *["incident.role_changed"] * 3,
    ]


def test_people_outside_the_models_teams_cannot_change_it(outsider, fraud):
    incident = IncidentFactory(registered_models=[fraud])
    with pytest.raises(PermissionDenied):
        services.incident_note_add(actor=outsider, incident=incident, body="hello")
    with pytest.raises(PermissionDenied):
        services.incident_status_set(actor=outsider, incident=incident, status="resolved")
    assert not incident.timeline.exists()


def test_on_call_and_staff_work_every_incident(on_call, staff, fraud):
    incident = IncidentFactory(registered_models=[fraud])
    services.incident_note_add(actor=on_call, incident=incident, body="On it.")
    services.incident_note_add(actor=staff, incident=incident, body="Me too.")
    assert incident.timeline.count() == 2


def test_notes_are_kept_as_written_and_pins_are_audited_once(member, fraud):
    incident = IncidentFactory(registered_models=[fraud])
    entry = services.incident_note_add(
        actor=member, incident=incident, body="**Cause**: <script>x</script>"
    )
    assert entry.body == "**Cause**: <script>x</script>"  # sanitised when shown
    services.timeline_entry_pin(actor=member, entry=entry, pinned=True)
    services.timeline_entry_pin(actor=member, entry=entry, pinned=True)
    entry.refresh_from_db()
    assert entry.pinned
    assert _actions(incident) == ["incident.note_added", "incident.entry_pinned"]


def test_moments_must_be_in_order(member, fraud):
    incident = IncidentFactory(registered_models=[fraud])
    with pytest.raises(ValidationError) as early:
        services.incident_update(
            actor=member,
            incident=incident,
            changes={"detected_at": incident.started_at - timedelta(minutes=1)},
        )
    assert early.value.message_dict == {"detected_at": ["This is before the incident was started."]}
    with pytest.raises(ValidationError) as unresolved:
        services.incident_update(
            actor=member, incident=incident, changes={"resolved_at": timezone.now()}
        )
    assert unresolved.value.message_dict == {"resolved_at": ["Resolve the incident first."]}
    services.incident_update(
        actor=member,
        incident=incident,
        changes={"started_at": incident.started_at - timedelta(minutes=10), "title": "New"},
    )
    assert incident.timeline.get().body.startswith("Changed started to ")
    assert _actions(incident) == ["incident.updated"]


def test_the_database_refuses_a_resolved_incident_without_its_time(fraud):
    assert_rejected_by_database(lambda: IncidentFactory(status="resolved", resolved_at=None))
    assert_rejected_by_database(lambda: IncidentFactory(status="dismissed"))


def test_deploy_events_are_copied_once(member, fraud, production):
    deploy = DeployRequestFactory(environment=production, version=fraud.versions.get(version=1))
    DeployEventFactory(request=deploy, message="Queued.")
    incident = services.incident_open(
        actor=member, title="x", affected=Affected(deploy_ids=(deploy.pk,))
    )
    services.deploy_events_copy([incident.pk], [deploy.pk])
    assert incident.timeline.filter(kind=TimelineKind.DEPLOY_EVENT).count() == 1


def test_a_pinned_entry_stays_pinned_when_others_are_added(member, fraud):
    incident = IncidentFactory(registered_models=[fraud])
    pinned = TimelineEntryFactory(incident=incident, pinned=True)
    services.incident_note_add(actor=member, incident=incident, body="later")
    pinned.refresh_from_db()
    assert pinned.pinned


def test_on_call_may_roll_back_any_model_and_outsiders_may_not(on_call, outsider, member, fraud):
    from apps.deployments.permissions import can_roll_back_release

    assert can_roll_back_release(on_call, fraud)
    assert can_roll_back_release(member, fraud)
    assert not can_roll_back_release(outsider, fraud)
