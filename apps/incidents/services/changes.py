"""Tying a change from "what changed before it" to the incident, and acting from it."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from apps.accounts.models import User
from apps.audit.services import record
from apps.deployments.models import DeployRequest, Release
from apps.deployments.services import release_rollback
from apps.incidents.models import ChangeKind, Incident, LinkedChange, TimelineKind
from apps.incidents.permissions import can_work_incident
from apps.incidents.selectors import MAX_WINDOW_HOURS, what_changed
from apps.incidents.services.timeline import deploy_events_copy, timeline_entry_add


def incident_change_link(
    *, actor: User, incident: Incident, kind: str, object_id: int
) -> LinkedChange:
    """Link one change listed before the incident; a deploy request's events then join the
    timeline. Only changes to its models and environments, in the two weeks before it started
    and visible to `actor`, can be linked."""
    if not can_work_incident(actor, incident):
        raise PermissionDenied("Only the model's teams, on-call and staff can link changes.")
    if kind not in ChangeKind.values:
        raise ValidationError({"kind": [f"Choose one of {', '.join(ChangeKind.values)}."]})
    window = what_changed(actor, incident, hours=MAX_WINDOW_HOURS)
    change = next((c for c in window.changes if c.kind == kind and c.object_id == object_id), None)
    if change is None:
        raise ValidationError(
            {
                "object_id": [
                    f"No {ChangeKind(kind).label.lower()} #{object_id} touched this incident's "
                    f"models or environments in the {MAX_WINDOW_HOURS // 24} days before it "
                    "started."
                ]
            }
        )
    now = timezone.now()
    try:
        with transaction.atomic():
            link = LinkedChange.objects.create(
                incident=incident,
                kind=kind,
                object_id=object_id,
                label=change.title[:300],
                happened_at=change.at,
                linked_by=actor,
                linked_at=now,
            )
            if kind == ChangeKind.DEPLOY:
                incident.deploy_requests.add(object_id)
                deploy_events_copy([incident.pk], [object_id])
            timeline_entry_add(
                incident,
                TimelineKind.LINK,
                f"Linked {change.title} ({change.at:%Y-%m-%d %H:%M} UTC).",
                actor=actor,
                data={"kind": kind, "object_id": object_id, "url": change.url},
            )
            record(actor, "incident.change_linked", incident, kind=kind, object_id=object_id)
    except IntegrityError:
        raise ValidationError({"object_id": ["It is already linked."]}) from None
    return link


def incident_change_unlink(*, actor: User, link: LinkedChange) -> None:
    incident = link.incident
    if not can_work_incident(actor, incident):
        raise PermissionDenied("Only the model's teams, on-call and staff can unlink changes.")
    with transaction.atomic():
        if not LinkedChange.objects.filter(pk=link.pk).delete()[0]:
            return
        timeline_entry_add(
            incident,
            TimelineKind.LINK,
            f"Unlinked {link.label}.",
            actor=actor,
            data={"kind": link.kind, "object_id": link.object_id, "unlinked": True},
        )
        record(
            actor, "incident.change_unlinked", incident, kind=link.kind, object_id=link.object_id
        )


def incident_rollback(
    *, actor: User, incident: Incident, release: Release, reason: str = ""
) -> DeployRequest:
    """“Roll back to last good” for a release the incident touches, through the deploy-request
    service (audited there, approval only where the environment's emergency rule says so); the
    rollback joins the timeline and its events follow."""
    if not can_work_incident(actor, incident):
        raise PermissionDenied("Only the model's teams, on-call and staff can act here.")
    touches = incident.releases.filter(pk=release.pk).exists() or (
        incident.environments.filter(pk=release.environment_id).exists()
        and incident.registered_models.filter(pk=release.model_id).exists()
    )
    if not touches:
        raise ValidationError(
            {"release": ["This release is not one the incident touches; link it first."]}
        )
    note = f"From {incident.reference}" + (f": {reason.strip()}" if reason.strip() else ".")
    # Its own transaction (the service asks the cluster for a plan first, outside one).
    rollback = release_rollback(actor=actor, release=release, reason=note)
    with transaction.atomic():
        incident.releases.add(release)
        incident.deploy_requests.add(rollback.pk, release.deploy_request_id)
        waiting = rollback.state == DeployRequest.State.PENDING_APPROVAL
        timeline_entry_add(
            incident,
            TimelineKind.ROLLBACK,
            f"Rollback #{rollback.pk} started: {release.model.name} in "
            f"{release.environment.name} back to v{rollback.version.version}"
            + (" (waiting for approval)." if waiting else "."),
            actor=actor,
            data={"deploy_request": rollback.pk, "release": release.pk},
            key=f"rollback:{rollback.pk}",
        )
        deploy_events_copy([incident.pk], [rollback.pk])
        record(
            actor,
            "incident.rollback_started",
            incident,
            deploy_request=rollback.pk,
            release=release.pk,
        )
    return rollback
