"""The incident's timeline: notes, pins, and entries copied from deploy requests it follows."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from apps.accounts.models import User
from apps.audit.services import record
from apps.deployments.models import DeployEvent
from apps.incidents.models import Incident, TimelineEntry, TimelineKind
from apps.incidents.permissions import can_work_incident

MAX_NOTE_CHARS = 20000
PORTAL = "portal"


def timeline_entry_add(
    incident: Incident,
    kind: str,
    body: str,
    *,
    actor: User | str | None,
    at: datetime | None = None,
    data: dict[str, Any] | None = None,
    key: str = "",
) -> TimelineEntry:
    """Add one entry (inside the caller's transaction); `actor` None or a string is the portal."""
    if actor is None or isinstance(actor, str):
        author, label = None, actor or PORTAL
    else:
        author, label = actor, actor.get_username()
    return TimelineEntry.objects.create(
        incident=incident,
        at=at or timezone.now(),
        kind=kind,
        author=author,
        author_label=label,
        body=body[:MAX_NOTE_CHARS],
        data=data or {},
        key=key,
    )


def incident_note_add(*, actor: User, incident: Incident, body: str) -> TimelineEntry:
    """A person's note on the timeline, in Markdown (shown sanitised)."""
    if not can_work_incident(actor, incident):
        raise PermissionDenied("Only the model's teams, on-call and staff can add notes.")
    text = body.strip()
    if not text:
        raise ValidationError({"body": ["Write something first."]})
    if len(text) > MAX_NOTE_CHARS:
        raise ValidationError({"body": [f"At most {MAX_NOTE_CHARS} characters."]})
    with transaction.atomic():
        entry = timeline_entry_add(incident, TimelineKind.NOTE, text, actor=actor)
        record(actor, "incident.note_added", incident, entry=entry.pk)
    return entry


def timeline_entry_pin(*, actor: User, entry: TimelineEntry, pinned: bool) -> TimelineEntry:
    """Mark an entry as a key moment (pinned entries lead the postmortem's timeline), or not."""
    incident = entry.incident
    if not can_work_incident(actor, incident):
        raise PermissionDenied("Only the model's teams, on-call and staff can pin entries.")
    with transaction.atomic():
        changed = (
            TimelineEntry.objects.filter(pk=entry.pk).exclude(pinned=pinned).update(pinned=pinned)
        )
        entry.pinned = pinned
        if changed:
            action = "incident.entry_pinned" if pinned else "incident.entry_unpinned"
            record(actor, action, incident, entry=entry.pk)
    return entry


# Which deploy events join an incident's timeline: what changed state, notes, and what went
# wrong; the routine progress lines stay on the request's own page.
_FOLLOWED_EVENTS = Q(kind__in=(DeployEvent.Kind.STATE, DeployEvent.Kind.NOTE)) | ~Q(
    level=DeployEvent.Level.INFO
)


def deploy_events_copy(incident_ids: Iterable[int], deploy_ids: Iterable[int]) -> None:
    """Copy the followed events of these requests into these incidents' timelines; an event
    already copied is skipped (its key), so this is safe to run again."""
    incident_ids, deploy_ids = list(incident_ids), list(deploy_ids)
    if not incident_ids or not deploy_ids:
        return
    events = list(
        DeployEvent.objects.filter(_FOLLOWED_EVENTS, request_id__in=deploy_ids)
        .select_related("request__model", "request__environment", "request__version")
        .order_by("at", "id")
    )
    rows = [
        TimelineEntry(
            incident_id=incident_id,
            at=event.at,
            kind=TimelineKind.DEPLOY_EVENT,
            author_label=PORTAL,
            body=f"#{event.request_id} {_deploy_label(event)}: {event.message}"[:MAX_NOTE_CHARS],
            data={
                "deploy_request": event.request_id,
                "level": event.level,
                "event_kind": event.kind,
            },
            key=f"deploy-event:{event.pk}",
        )
        for incident_id in incident_ids
        for event in events
    ]
    TimelineEntry.objects.bulk_create(rows, ignore_conflicts=True)


def _deploy_label(event: DeployEvent) -> str:
    deploy = event.request
    verb = "rollback" if deploy.is_rollback else "deploy"
    return f"{verb} of {deploy.model.name} v{deploy.version.version} in {deploy.environment.name}"
