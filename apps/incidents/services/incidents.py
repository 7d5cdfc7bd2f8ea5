"""Opening an incident and changing it: status, severity, roles, details, what it touches.

Each verb runs in one transaction, adds its timeline entry and writes one audit event. Status
moves are conditional updates (the WHERE clause is the guard), so two people moving the same
incident at once cannot both win.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone

from apps.accounts.models import User
from apps.audit.services import record
from apps.catalog.models import RegisteredModel
from apps.deployments.models import Environment, Release
from apps.incidents.models import (
    MOMENTS,
    NEXT_STATUSES,
    Incident,
    IncidentSource,
    IncidentStatus,
    Role,
    Severity,
    TimelineKind,
)
from apps.incidents.permissions import can_open_incident, can_work_incident
from apps.incidents.services.timeline import deploy_events_copy, timeline_entry_add

# A clock a little ahead of ours is not an error; an incident that starts tomorrow is.
CLOCK_SKEW = timedelta(minutes=5)


@dataclass(frozen=True)
class Affected:
    """What an incident touches; a release brings its environment, model and request along."""

    environments: tuple[Environment, ...] = ()
    registered_models: tuple[RegisteredModel, ...] = ()
    releases: tuple[Release, ...] = ()
    deploy_ids: tuple[int, ...] = field(default=())

    def all_environments(self) -> set[Environment]:
        return {*self.environments, *(release.environment for release in self.releases)}

    def all_models(self) -> set[RegisteredModel]:
        return {*self.registered_models, *(release.model for release in self.releases)}


def _check_moments(moments: dict[str, datetime | None], now: datetime) -> None:
    """Moments happen in order (started ≤ detected ≤ acknowledged ≤ mitigated ≤ resolved) and
    not in the future."""
    errors: dict[str, list[str]] = {}
    earlier: tuple[str, datetime] | None = None
    for name in MOMENTS:
        value = moments.get(name)
        if value is None:
            continue
        if value > now + CLOCK_SKEW:
            errors[name] = ["This is in the future."]
        elif earlier is not None and value < earlier[1]:
            before = earlier[0].removesuffix("_at").replace("_", " ")
            errors[name] = [f"This is before the incident was {before}."]
        earlier = (name, value)
    if errors:
        raise ValidationError(errors)


def _link_affected(incident: Incident, affected: Affected) -> list[str]:
    """Add what `affected` names; returns what was new, in words, for the timeline."""
    added: list[str] = []
    known_envs = set(incident.environments.values_list("pk", flat=True))
    known_models = set(incident.registered_models.values_list("pk", flat=True))
    known_releases = set(incident.releases.values_list("pk", flat=True))
    new_envs = [e for e in affected.all_environments() if e.pk not in known_envs]
    new_models = [m for m in affected.all_models() if m.pk not in known_models]
    new_releases = [r for r in affected.releases if r.pk not in known_releases]
    incident.environments.add(*new_envs)
    incident.registered_models.add(*new_models)
    incident.releases.add(*new_releases)
    added += [f"environment {e.name}" for e in sorted(new_envs, key=lambda e: e.name)]
    added += [f"model {m.name}" for m in sorted(new_models, key=lambda m: m.name)]
    added += [f"release {r}" for r in new_releases]
    deploy_ids = {*affected.deploy_ids, *(r.deploy_request_id for r in new_releases)}
    if deploy_ids:
        incident.deploy_requests.add(*deploy_ids)
        deploy_events_copy([incident.pk], deploy_ids)
    return added


def incident_open(
    *,
    actor: User | None,
    title: str,
    severity: str = Severity.SEV3,
    summary: str = "",
    affected: Affected = Affected(),
    started_at: datetime | None = None,
    detected_at: datetime | None = None,
    commander: User | None = None,
    status: str = IncidentStatus.INVESTIGATING,
    source: str = IncidentSource.MANUAL,
    alert_group_key: str = "",
    opened_note: str = "",
    data: dict[str, Any] | None = None,
) -> Incident:
    """Open an incident (a draft when the portal opens it for on-call to confirm).

    `actor` None is the portal itself (a failed rollout, an alert). Runs in the caller's
    transaction when there is one.
    """
    if actor is not None and not can_open_incident(actor):
        raise PermissionDenied("Sign in to open an incident.")
    now = timezone.now()
    title = title.strip()
    if not title:
        raise ValidationError({"title": ["Say in a few words what is wrong."]})
    if severity not in Severity.values:
        raise ValidationError({"severity": [f"Choose one of {', '.join(Severity.labels)}."]})
    started_at = started_at or detected_at or now
    _check_moments({"started_at": started_at}, now)
    detected_at = detected_at or max(started_at, now)
    _check_moments({"started_at": started_at, "detected_at": detected_at}, now)
    with transaction.atomic():
        incident = Incident.objects.create(
            title=title[:200],
            summary=summary,
            severity=severity,
            status=status,
            source=source,
            started_at=started_at,
            detected_at=detected_at,
            # Opened by a person on duty: someone is on it from the start.
            acknowledged_at=detected_at if actor is not None else None,
            created_at=now,
            created_by=actor,
            commander=commander,
            alert_group_key=alert_group_key,
        )
        added = _link_affected(incident, affected)
        opened = "Opened as a draft" if status == IncidentStatus.DRAFT else "Opened"
        words = [f"{opened}: {incident.get_severity_display()}, {title}."]
        if opened_note:
            words.append(opened_note)
        if added:
            words.append("Affects " + ", ".join(added) + ".")
        timeline_entry_add(
            incident,
            TimelineKind.OPENED,
            " ".join(words),
            actor=actor or "portal",
            at=now,
            data=data or {},
        )
        record(
            actor or "portal",
            "incident.opened",
            incident,
            severity=severity,
            status=status,
            source=source,
            affects=added,
        )
    return incident


def _require_work(actor: User, incident: Incident) -> None:
    if not can_work_incident(actor, incident):
        raise PermissionDenied(
            "Only the model's teams, on-call and staff can change this incident."
        )


def incident_status_set(
    *, actor: User | str, incident: Incident, status: str, note: str = ""
) -> Incident:
    """Move the incident to `status` (NEXT_STATUSES says from where), stamping the moments a
    review reads: acknowledged on the first move a person makes, mitigated on monitoring,
    resolved and closed on theirs; reopening clears resolved."""
    if isinstance(actor, User):
        _require_work(actor, incident)
    if status not in IncidentStatus.values:
        raise ValidationError({"status": ["Unknown status."]})
    if status == IncidentStatus.DISMISSED:
        raise ValidationError({"status": ["Dismiss a draft with a reason instead."]})
    allowed_from = [old for old, nexts in NEXT_STATUSES.items() if status in nexts]
    now = timezone.now()
    values: dict[str, Any] = {"status": status}
    if isinstance(actor, User) and incident.acknowledged_at is None:
        values["acknowledged_at"] = max(now, incident.detected_at)
    if status == IncidentStatus.MONITORING and incident.mitigated_at is None:
        values["mitigated_at"] = now
    if status == IncidentStatus.RESOLVED:
        values["resolved_at"] = now
        if incident.mitigated_at is None:
            values["mitigated_at"] = now
    if status == IncidentStatus.CLOSED:
        values["closed_at"] = now
    if status in Incident.ACTIVE_STATUSES:
        values["resolved_at"] = None
        values["closed_at"] = None
    previous = incident.status
    with transaction.atomic():
        changed = Incident.objects.filter(pk=incident.pk, status__in=allowed_from).update(**values)
        if not changed:
            incident.refresh_from_db(fields=["status"])
            raise ValidationError(
                {
                    "status": [
                        f"An incident that is {incident.get_status_display().lower()} cannot "
                        f"move to {IncidentStatus(status).label.lower()}."
                    ]
                }
            )
        for name, value in values.items():
            setattr(incident, name, value)
        text = f"Status: {IncidentStatus(previous).label} → {IncidentStatus(status).label}."
        if note.strip():
            text += f" {note.strip()}"
        timeline_entry_add(
            incident,
            TimelineKind.STATUS,
            text,
            actor=actor,
            data={"from": previous, "to": status},
        )
        record(actor, "incident.status_changed", incident, previous=previous, status=status)
    return incident


def incident_dismiss(*, actor: User, incident: Incident, reason: str) -> Incident:
    """Dismiss a draft the portal opened: not an incident after all. The reason is kept."""
    _require_work(actor, incident)
    reason = reason.strip()
    if not reason:
        raise ValidationError({"reason": ["Say why this is not an incident."]})
    with transaction.atomic():
        changed = Incident.objects.filter(pk=incident.pk, status=IncidentStatus.DRAFT).update(
            status=IncidentStatus.DISMISSED, dismissed_reason=reason[:2000]
        )
        if not changed:
            raise ValidationError({"status": ["Only a draft can be dismissed."]})
        incident.status, incident.dismissed_reason = IncidentStatus.DISMISSED, reason[:2000]
        timeline_entry_add(incident, TimelineKind.STATUS, f"Dismissed: {reason}", actor=actor)
        record(actor, "incident.dismissed", incident, reason=reason[:500])
    return incident


def incident_severity_set(*, actor: User | str, incident: Incident, severity: str) -> Incident:
    if isinstance(actor, User):
        _require_work(actor, incident)
    if severity not in Severity.values:
        raise ValidationError({"severity": [f"Choose one of {', '.join(Severity.labels)}."]})
    previous = incident.severity
    if previous == severity:
        return incident
    with transaction.atomic():
        Incident.objects.filter(pk=incident.pk).update(severity=severity)
        incident.severity = severity
        timeline_entry_add(
            incident,
            TimelineKind.SEVERITY,
            f"Severity: {Severity(previous).label} → {Severity(severity).label}.",
            actor=actor,
            data={"from": previous, "to": severity},
        )
        record(actor, "incident.severity_changed", incident, previous=previous, severity=severity)
    return incident


def incident_role_set(
    *, actor: User, incident: Incident, role: str, person: User | None
) -> Incident:
    """Give a role (commander, scribe, communications) to a person, or take it back (None)."""
    _require_work(actor, incident)
    if role not in Role.values:
        raise ValidationError({"role": [f"Choose one of {', '.join(Role.values)}."]})
    if person is not None and not person.is_active:
        raise ValidationError({"person": [f"{person.get_username()} is deactivated."]})
    previous_id = getattr(incident, f"{role}_id")
    if previous_id == (person.pk if person else None):
        return incident
    values: dict[str, Any] = {role: person}
    if role == Role.COMMANDER and person is not None and incident.acknowledged_at is None:
        values["acknowledged_at"] = max(timezone.now(), incident.detected_at)
    with transaction.atomic():
        Incident.objects.filter(pk=incident.pk).update(**values)
        for name, value in values.items():
            setattr(incident, name, value)
        label = Role(role).label
        text = (
            f"{label}: {person.get_username()}." if person else f"{label}: nobody (role released)."
        )
        timeline_entry_add(
            incident,
            TimelineKind.ROLE,
            text,
            actor=actor,
            data={"role": role, "person": person.get_username() if person else None},
        )
        record(
            actor,
            "incident.role_changed",
            incident,
            role=role,
            person=person.get_username() if person else None,
        )
    return incident


EDITABLE_FIELDS = ("title", "summary", *MOMENTS)


def incident_update(
    *,
    actor: User,
    incident: Incident,
    changes: dict[str, Any],
    affected: Affected = Affected(),
) -> Incident:
    """Change the title, summary or the review's moments, and add what it touches."""
    _require_work(actor, incident)
    unknown = set(changes) - set(EDITABLE_FIELDS)
    if unknown:
        raise ValidationError({name: ["This cannot be changed here."] for name in sorted(unknown)})
    if "title" in changes and not str(changes["title"]).strip():
        raise ValidationError({"title": ["Say in a few words what is wrong."]})
    moments = {name: changes.get(name, getattr(incident, name)) for name in MOMENTS}
    if moments["started_at"] is None:
        raise ValidationError({"started_at": ["An incident has a start."]})
    if moments["detected_at"] is None:
        raise ValidationError({"detected_at": ["An incident was detected at some time."]})
    resolved = incident.status in (IncidentStatus.RESOLVED, IncidentStatus.CLOSED)
    if resolved and moments["resolved_at"] is None:
        raise ValidationError({"resolved_at": ["A resolved incident keeps its resolution time."]})
    if not resolved and moments["resolved_at"] is not None:
        raise ValidationError({"resolved_at": ["Resolve the incident first."]})
    _check_moments(moments, timezone.now())
    changed = {name: value for name, value in changes.items() if getattr(incident, name) != value}
    with transaction.atomic():
        if changed:
            Incident.objects.filter(pk=incident.pk).update(**changed)
            for name, value in changed.items():
                setattr(incident, name, value)
        added = _link_affected(incident, affected)
        if not changed and not added:
            return incident
        words = []
        if changed:
            words.append("Changed " + ", ".join(_field_words(changed)) + ".")
        if added:
            words.append("Now affects " + ", ".join(added) + ".")
        timeline_entry_add(
            incident,
            TimelineKind.CHANGE,
            " ".join(words),
            actor=actor,
            data={"fields": sorted(changed), "added": added},
        )
        record(
            actor,
            "incident.updated",
            incident,
            fields=sorted(changed),
            added=added,
            **{name: value for name, value in changed.items() if name != "summary"},
        )
    return incident


def _field_words(changed: dict[str, Any]) -> Iterable[str]:
    for name, value in changed.items():
        if name == "summary":
            yield "the summary"
        elif name == "title":
            yield f"the title to “{value}”"
        else:
            label = name.removesuffix("_at").replace("_", " ")
            yield f"{label} to {value:%Y-%m-%d %H:%M} UTC" if value else f"{label} (cleared)"
