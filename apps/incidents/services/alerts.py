"""Applying an Alertmanager notification (an `AlertDelivery` row) to incidents.

A firing group opens an incident (SEV from its `severity` label, matched to environments and
models by its labels) or updates the one it opened while that is not closed or dismissed. Each
alert adds one timeline entry per (fingerprint, status, startsAt): Alertmanager's retries and
its `repeat_interval` notifications add nothing. A resolved alert is an entry, never a status
change: people resolve incidents.

Applying runs in one transaction that takes the delivery's row (skipping it when another
worker holds it) and sets `applied_at` with the incident's changes, so it is safe to run twice.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import structlog
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from apps.audit.services import record
from apps.catalog.models import RegisteredModel
from apps.deployments.kube.manifests import object_name
from apps.deployments.models import Environment, Release
from apps.deployments.selectors import environments_all, releases_live_at
from apps.incidents.models import (
    AlertDelivery,
    Incident,
    IncidentSource,
    IncidentStatus,
    Severity,
    TimelineKind,
)
from apps.incidents.services.incidents import Affected, incident_open
from apps.incidents.services.timeline import timeline_entry_add

log = structlog.get_logger(__name__)

ACTOR = "alertmanager"
FIRING, RESOLVED = "firing", "resolved"
# An incident in these no longer takes its group's alerts: the group firing again opens anew.
FINISHED = (IncidentStatus.CLOSED, IncidentStatus.DISMISSED)
# The `severity` label's usual words; sev1..sev4 are taken as they are, anything else is SEV3.
SEVERITY_WORDS: dict[str, str] = {
    "critical": Severity.SEV2,
    "warning": Severity.SEV3,
    "info": Severity.SEV4,
    **{value: value for value in Severity.values},
}
# RFC 3339 as Alertmanager (Go) writes it: seconds, up to nine fractional digits, an offset.
RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})")
# KServe names the Deployment under an InferenceService `<name>-predictor` (Knative mode:
# `<name>-predictor-00001-deployment`); alerts on it name the portal's object through that.
KSERVE_DEPLOYMENT = re.compile(r"(?P<name>.+)-predictor(-\d{5}-deployment)?")


def parse_time(text: str) -> datetime | None:
    """An RFC 3339 time; None for Go's zero time (an alert still firing has no end).
    Raises ValueError for anything else."""
    if not RFC3339.fullmatch(text):
        raise ValueError("not an RFC 3339 time")
    try:
        at = datetime.fromisoformat(text).astimezone(UTC)
    except OverflowError:
        return None  # the zero time with a positive offset, before year 1 in UTC
    return None if at.year == 1 else at


@dataclass(frozen=True)
class Alert:
    """One alert of a notification, as validated on intake."""

    status: str
    labels: dict[str, str]
    annotations: dict[str, str]
    starts_at: datetime
    ends_at: datetime | None
    fingerprint: str
    generator_url: str

    @classmethod
    def from_payload(cls, item: dict[str, Any]) -> Alert:
        starts_at = parse_time(item["startsAt"])
        return cls(
            status=item["status"],
            labels=item["labels"],
            annotations=item["annotations"],
            # A zero start never comes from Alertmanager; the epoch keeps the key stable.
            starts_at=starts_at or datetime(1970, 1, 1, tzinfo=UTC),
            ends_at=parse_time(item.get("endsAt", "")) if item.get("endsAt") else None,
            fingerprint=item["fingerprint"],
            generator_url=item.get("generatorURL", ""),
        )

    @property
    def key(self) -> str:
        """One timeline entry per alert, status and start (a flapping alert starts anew)."""
        return f"alert:{self.fingerprint}:{self.status}:{self.starts_at.isoformat()}"

    def describe(self) -> str:
        name = self.labels.get("alertname") or "Alert"
        summary = self.annotations.get("summary") or self.annotations.get("description", "")
        where = "/".join(
            value
            for value in (
                self.labels.get("namespace"),
                self.labels.get("inferenceservice") or self.labels.get("deployment"),
            )
            if value
        )
        words = f"{self.status.capitalize()}: {name}"
        if where:
            words += f" in {where}"
        return f"{words}. {summary}".strip() if summary else f"{words}."


def alerts_of(payload: dict[str, Any]) -> list[Alert]:
    return [Alert.from_payload(item) for item in payload["alerts"]]


# --- matching labels to environments and models ---------------------------------------------------
@dataclass
class Matched:
    environments: set[Environment]
    models: set[RegisteredModel]

    def words(self) -> list[str]:
        return [
            *(f"environment {e.name}" for e in sorted(self.environments, key=lambda e: e.name)),
            *(f"model {m.name}" for m in sorted(self.models, key=lambda m: m.name)),
        ]


def _object_label(labels: dict[str, str]) -> str:
    """The portal's object name an alert points at (an InferenceService or a Deployment)."""
    if labels.get("inferenceservice"):
        return labels["inferenceservice"]
    deployment = labels.get("deployment", "")
    kserve = KSERVE_DEPLOYMENT.fullmatch(deployment)
    return kserve.group("name") if kserve else deployment


def alerts_match(alerts: list[Alert]) -> Matched:
    """Environments by the `namespace` label; models by the `model` label (the registered
    name) or by the `inferenceservice`/`deployment` label naming the object a live release
    runs as (within the alert's namespace when it has one, which also picks out the
    environment when several share that namespace)."""
    namespaces = {a.labels["namespace"] for a in alerts if a.labels.get("namespace")}
    by_namespace: dict[str, list[Environment]] = {}
    for environment in environments_all().filter(namespace__in=namespaces):
        by_namespace.setdefault(environment.namespace, []).append(environment)
    names = {a.labels["model"] for a in alerts if a.labels.get("model")}
    models = {m.name: m for m in RegisteredModel.objects.filter(name__in=names)}
    live: list[Release] = []
    if any(_object_label(a.labels) for a in alerts):
        live = list(releases_live_at())
    matched = Matched(environments=set(), models=set())
    for alert in alerts:
        candidates = by_namespace.get(alert.labels.get("namespace", ""), [])
        target = _object_label(alert.labels)
        releases = [
            release
            for release in live
            if target
            and object_name(release.model.name) == target
            and (not alert.labels.get("namespace") or release.environment in candidates)
        ]
        matched.environments.update(
            {release.environment for release in releases} if releases else candidates
        )
        matched.models.update(release.model for release in releases)
        if alert.labels.get("model") in models:
            matched.models.add(models[alert.labels["model"]])
    return matched


# --- applying -------------------------------------------------------------------------------------
def _lock_group(group_key: str) -> None:
    """Deliveries of one group are applied one at a time (two must not both open an incident).
    SQLite runs one writer at a time anyway."""
    if connection.vendor != "postgresql":
        return
    digest = hashlib.blake2b(f"alertmanager:{group_key}".encode(), digest_size=8).digest()
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [int.from_bytes(digest, signed=True)])


def severity_of(alerts: list[Alert]) -> str:
    """The most severe of the alerts' `severity` labels (SEV3 when none says)."""
    found = [
        SEVERITY_WORDS.get(a.labels.get("severity", "").strip().lower(), Severity.SEV3)
        for a in alerts
    ]
    return min(found, default=Severity.SEV3)


def title_of(payload: dict[str, Any], alerts: list[Alert]) -> str:
    common_annotations, common_labels = payload["commonAnnotations"], payload["commonLabels"]
    for text in (
        common_annotations.get("summary"),
        common_labels.get("alertname"),
        *(a.annotations.get("summary") for a in alerts),
        *(a.labels.get("alertname") for a in alerts),
    ):
        if text and str(text).strip():
            return str(text).strip()
    return "Alert from Alertmanager"


def _open(delivery: AlertDelivery, alerts: list[Alert], matched: Matched) -> Incident:
    payload = delivery.payload
    firing = [a for a in alerts if a.status == FIRING]
    now = timezone.now()
    labels = ", ".join(f"{k}={v}" for k, v in sorted(payload["groupLabels"].items()))
    note = f"Opened by Alertmanager (receiver {payload['receiver'] or 'unnamed'}"
    note += f", group {labels})." if labels else ")."
    return incident_open(
        actor=None,
        title=title_of(payload, firing),
        severity=severity_of(firing),
        affected=Affected(
            environments=tuple(sorted(matched.environments, key=lambda e: e.name)),
            registered_models=tuple(sorted(matched.models, key=lambda m: m.name)),
        ),
        # A sender's clock ahead of ours is not the incident starting in the future.
        started_at=min(min(a.starts_at for a in firing), now),
        status=IncidentStatus.INVESTIGATING,
        source=IncidentSource.ALERTMANAGER,
        alert_group_key=delivery.group_key,
        opened_note=note,
        data={
            "alert_delivery": delivery.pk,
            "receiver": payload["receiver"],
            "group_labels": payload["groupLabels"],
            "external_url": payload["externalURL"],
        },
    )


def _link_matched(incident: Incident, matched: Matched) -> list[str]:
    """Add the environments and models this delivery names that the incident lacks."""
    known_envs = set(incident.environments.values_list("pk", flat=True))
    known_models = set(incident.registered_models.values_list("pk", flat=True))
    new = Matched(
        environments={e for e in matched.environments if e.pk not in known_envs},
        models={m for m in matched.models if m.pk not in known_models},
    )
    added = new.words()
    if not added:
        return []
    incident.environments.add(*new.environments)
    incident.registered_models.add(*new.models)
    timeline_entry_add(
        incident,
        TimelineKind.CHANGE,
        "Now affects " + ", ".join(added) + " (from the alerts' labels).",
        actor=ACTOR,
        data={"fields": [], "added": added},
    )
    return added


def _add_entries(incident: Incident, alerts: list[Alert], received_at: datetime) -> list[Alert]:
    """One timeline entry per alert not seen before (its key); returns those added."""
    seen = set(
        incident.timeline.filter(key__in=[a.key for a in alerts]).values_list("key", flat=True)
    )
    added: list[Alert] = []
    for alert in alerts:
        if alert.key in seen:
            continue
        seen.add(alert.key)
        at = alert.starts_at if alert.status == FIRING else (alert.ends_at or received_at)
        kind = TimelineKind.ALERT_FIRING if alert.status == FIRING else TimelineKind.ALERT_RESOLVED
        data = {
            "labels": alert.labels,
            "annotations": alert.annotations,
            "fingerprint": alert.fingerprint,
            "generatorURL": alert.generator_url,
        }
        try:
            with transaction.atomic():  # a savepoint: an entry already there adds nothing
                timeline_entry_add(
                    incident, kind, alert.describe(), actor=ACTOR, at=at, data=data, key=alert.key
                )
        except IntegrityError:
            continue
        added.append(alert)
    return added


def _apply(delivery: AlertDelivery) -> Incident | None:
    """The incident this delivery opened or updated (None: resolved alerts of no incident)."""
    alerts = alerts_of(delivery.payload)
    incident = (
        Incident.objects.filter(alert_group_key=delivery.group_key)
        .exclude(status__in=FINISHED)
        .order_by("-started_at", "-id")
        .first()
    )
    if incident is None and not any(a.status == FIRING for a in alerts):
        return None
    matched = alerts_match(alerts)
    added: list[str] = []
    if incident is None:
        incident = _open(delivery, alerts, matched)
    else:
        added = _link_matched(incident, matched)
    entries = _add_entries(incident, alerts, delivery.received_at)
    if added or entries:
        record(
            ACTOR,
            "incident.alerts_received",
            incident,
            firing=sum(a.status == FIRING for a in entries),
            resolved=sum(a.status == RESOLVED for a in entries),
            delivery=delivery.pk,
            added=added,
        )
    return incident


def alert_delivery_apply(*, delivery_id: int) -> bool:
    """Apply one recorded notification; False when it is applied already or another worker
    is applying it. An error leaves it not applied (with the error kept) for beat to re-drive."""
    try:
        with transaction.atomic():
            delivery = (
                AlertDelivery.objects.select_for_update(skip_locked=True)
                .filter(pk=delivery_id, applied_at__isnull=True)
                .first()
            )
            if delivery is None:
                return False
            _lock_group(delivery.group_key)
            incident = _apply(delivery)
            AlertDelivery.objects.filter(pk=delivery.pk).update(
                applied_at=timezone.now(), incident=incident, error=""
            )
    except Exception as exc:
        AlertDelivery.objects.filter(pk=delivery_id, applied_at__isnull=True).update(
            error=f"{type(exc).__name__}: {exc}"[:2000]
        )
        raise
    return True
