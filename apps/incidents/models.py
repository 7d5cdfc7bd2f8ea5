"""Incidents: what broke, who is on it, what happened when, and what changed before it."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import F, Q


class Severity(models.TextChoices):
    SEV1 = "sev1", "SEV1"
    SEV2 = "sev2", "SEV2"
    SEV3 = "sev3", "SEV3"
    SEV4 = "sev4", "SEV4"


# Shown beside the severity wherever people choose or read it.
SEVERITY_DEFINITIONS: dict[str, str] = {
    Severity.SEV1: "Critical: a production model is down or serving wrong answers to most "
    "users, or data is at risk. All hands, now; updates every 30 minutes.",
    Severity.SEV2: "Major: a production model is degraded for many users, or a key feature "
    "is unavailable. On-call and the owning team, now.",
    Severity.SEV3: "Minor: limited impact, a workaround exists, or only staging is affected. "
    "Handle within working hours.",
    Severity.SEV4: "Low: no user impact yet; a near miss or something to follow up.",
}
# The severities whose opening pages people and that incident-aware gates block on.
MAJOR_SEVERITIES = (Severity.SEV1, Severity.SEV2)


class IncidentStatus(models.TextChoices):
    DRAFT = "draft", "Draft"
    INVESTIGATING = "investigating", "Investigating"
    IDENTIFIED = "identified", "Identified"
    MONITORING = "monitoring", "Monitoring"
    RESOLVED = "resolved", "Resolved"
    CLOSED = "closed", "Closed"
    DISMISSED = "dismissed", "Dismissed"


_S = IncidentStatus
# Being worked on: the statuses people move between freely while the incident is live.
ACTIVE_STATUSES = (_S.INVESTIGATING, _S.IDENTIFIED, _S.MONITORING)
# Where each status may go next (a draft is confirmed or dismissed; resolved may reopen).
NEXT_STATUSES: dict[str, tuple[str, ...]] = {
    _S.DRAFT: (_S.INVESTIGATING, _S.DISMISSED),
    _S.INVESTIGATING: (_S.IDENTIFIED, _S.MONITORING, _S.RESOLVED),
    _S.IDENTIFIED: (_S.INVESTIGATING, _S.MONITORING, _S.RESOLVED),
    _S.MONITORING: (_S.INVESTIGATING, _S.IDENTIFIED, _S.RESOLVED),
    _S.RESOLVED: (_S.INVESTIGATING, _S.CLOSED),
    _S.CLOSED: (),
    _S.DISMISSED: (),
}
RESOLVED_STATUSES = (_S.RESOLVED, _S.CLOSED)


class IncidentSource(models.TextChoices):
    MANUAL = "manual", "Opened by a person"
    DEPLOY_FAILURE = "deploy_failure", "A failed rollout"
    ALERTMANAGER = "alertmanager", "Alertmanager"


class Role(models.TextChoices):
    COMMANDER = "commander", "Commander"
    SCRIBE = "scribe", "Scribe"
    COMMUNICATIONS = "communications", "Communications"


# The moments a review reads, in the order they happen; each may be corrected by a person.
MOMENTS = ("started_at", "detected_at", "acknowledged_at", "mitigated_at", "resolved_at")


class Incident(models.Model):
    """Something that went wrong in serving, from first sign to its review.

    Who may see it follows the teams owning the models it touches (staff and on-call see all);
    every change is a timeline entry and an audit event.
    """

    Severity = Severity
    Status = IncidentStatus
    Source = IncidentSource
    ACTIVE_STATUSES = ACTIVE_STATUSES

    title = models.CharField(max_length=200)
    summary = models.TextField(blank=True, max_length=20000)
    severity = models.CharField(max_length=4, choices=Severity.choices, default=Severity.SEV3)
    status = models.CharField(
        max_length=14, choices=IncidentStatus.choices, default=IncidentStatus.INVESTIGATING
    )
    source = models.CharField(
        max_length=16, choices=IncidentSource.choices, default=IncidentSource.MANUAL
    )

    environments = models.ManyToManyField(
        "deployments.Environment", related_name="incidents", blank=True
    )
    registered_models = models.ManyToManyField(
        "catalog.RegisteredModel", related_name="incidents", blank=True
    )
    releases = models.ManyToManyField("deployments.Release", related_name="incidents", blank=True)
    # Requests whose events join the timeline (a linked release's request, the failed rollout
    # of a draft, rollbacks started from the incident).
    deploy_requests = models.ManyToManyField(
        "deployments.DeployRequest", related_name="incidents", blank=True
    )

    commander = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    scribe = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    communications = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )

    started_at = models.DateTimeField()
    detected_at = models.DateTimeField()
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    mitigated_at = models.DateTimeField(null=True, blank=True)
    resolved_at = models.DateTimeField(null=True, blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)

    created_at = models.DateTimeField()
    # Null when the portal opened it (a failed rollout, an alert).
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    dismissed_reason = models.TextField(blank=True, max_length=2000)
    # Alertmanager's group key, for an incident an alert group opened (the group firing again
    # updates it while it is not closed).
    alert_group_key = models.CharField(max_length=1000, blank=True)

    class Meta:
        ordering = ["-started_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=IncidentStatus.values), name="incident_status_valid"
            ),
            models.CheckConstraint(
                condition=Q(severity__in=Severity.values), name="incident_severity_valid"
            ),
            models.CheckConstraint(
                condition=~Q(status__in=RESOLVED_STATUSES) | Q(resolved_at__isnull=False),
                name="incident_resolved_has_time",
            ),
            models.CheckConstraint(
                condition=~Q(status=IncidentStatus.DISMISSED) | ~Q(dismissed_reason=""),
                name="incident_dismissal_has_reason",
            ),
            *(
                models.CheckConstraint(
                    condition=Q(**{f"{moment}__isnull": True})
                    | Q(**{f"{moment}__gte": F("started_at")}),
                    name=f"incident_{moment.removesuffix('_at')}_after_start",
                )
                for moment in MOMENTS[1:]
            ),
        ]
        indexes = [
            models.Index(fields=["status", "-started_at"], name="incident_status_idx"),
            models.Index(
                fields=["alert_group_key"],
                name="incident_alert_group_idx",
                condition=~Q(alert_group_key=""),
            ),
        ]

    def __str__(self) -> str:
        return f"INC-{self.pk} {self.title}"

    @property
    def reference(self) -> str:
        return f"INC-{self.pk}"

    @property
    def is_draft(self) -> bool:
        return self.status == IncidentStatus.DRAFT

    @property
    def is_active(self) -> bool:
        return self.status in ACTIVE_STATUSES

    @property
    def is_open(self) -> bool:
        """Not over yet: a draft or being worked on."""
        return self.status == IncidentStatus.DRAFT or self.status in ACTIVE_STATUSES

    @property
    def next_statuses(self) -> tuple[str, ...]:
        return NEXT_STATUSES[self.status]

    @property
    def severity_definition(self) -> str:
        return SEVERITY_DEFINITIONS[self.severity]


class TimelineKind(models.TextChoices):
    OPENED = "opened", "Opened"
    NOTE = "note", "Note"
    STATUS = "status", "Status"
    SEVERITY = "severity", "Severity"
    ROLE = "role", "Role"
    CHANGE = "change", "Details changed"
    LINK = "link", "Linked"
    DEPLOY_EVENT = "deploy_event", "Deploy event"
    ROLLBACK = "rollback", "Rollback"
    ALERT_FIRING = "alert_firing", "Alert firing"
    ALERT_RESOLVED = "alert_resolved", "Alert resolved"


class TimelineEntry(models.Model):
    """One moment of an incident: a note, a change to it, or something seen elsewhere.

    Automatic entries carry a `key` (one row per source event, so seeing it twice adds nothing).
    """

    Kind = TimelineKind

    incident = models.ForeignKey(Incident, on_delete=models.CASCADE, related_name="timeline")
    at = models.DateTimeField()
    kind = models.CharField(max_length=16, choices=TimelineKind.choices)
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    author_label = models.CharField(max_length=150)
    # Markdown for notes (rendered sanitised); plain text for the rest.
    body = models.TextField(max_length=20000)
    data = models.JSONField(default=dict, blank=True)
    pinned = models.BooleanField(default=False)
    key = models.CharField(max_length=300, blank=True)

    class Meta:
        ordering = ["at", "id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(kind__in=TimelineKind.values), name="timeline_kind_valid"
            ),
            models.UniqueConstraint(
                fields=["incident", "key"], condition=~Q(key=""), name="timeline_key_unique"
            ),
        ]
        indexes = [models.Index(fields=["incident", "at"], name="timeline_incident_at_idx")]

    def __str__(self) -> str:
        return f"INC-{self.incident_id} {self.kind} {self.at:%Y-%m-%d %H:%M}"


class ChangeKind(models.TextChoices):
    DEPLOY = "deploy", "Deploy request"
    APPROVAL = "approval", "Approval"
    VERSION = "version", "New version"
    REGISTRY = "registry", "Registry event"
    FLAG = "flag", "Flag"


class LinkedChange(models.Model):
    """A change from "what changed before it" that someone tied to the incident."""

    Kind = ChangeKind

    incident = models.ForeignKey(Incident, on_delete=models.CASCADE, related_name="changes")
    kind = models.CharField(max_length=10, choices=ChangeKind.choices)
    object_id = models.PositiveBigIntegerField()
    label = models.CharField(max_length=300)
    happened_at = models.DateTimeField()
    linked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    linked_at = models.DateTimeField()

    class Meta:
        ordering = ["-happened_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["incident", "kind", "object_id"], name="linked_change_unique"
            ),
            models.CheckConstraint(
                condition=Q(kind__in=ChangeKind.values), name="linked_change_kind_valid"
            ),
        ]

    def __str__(self) -> str:
        return f"INC-{self.incident_id} ← {self.kind} {self.object_id}"


class AlertDelivery(models.Model):
    """One Alertmanager notification as received: the row is the truth until it is applied."""

    received_at = models.DateTimeField(db_index=True)
    group_key = models.CharField(max_length=1000)
    status = models.CharField(max_length=10)
    payload = models.JSONField()
    applied_at = models.DateTimeField(null=True, blank=True)
    incident = models.ForeignKey(
        Incident, null=True, blank=True, on_delete=models.SET_NULL, related_name="alert_deliveries"
    )
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["-received_at", "-id"]
        indexes = [
            models.Index(
                fields=["received_at"],
                name="alert_delivery_waiting_idx",
                condition=Q(applied_at__isnull=True),
            )
        ]

    def __str__(self) -> str:
        return f"alert group {self.group_key[:60]} ({self.status})"
