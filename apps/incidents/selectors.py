"""Every read of incidents: lists, one incident's page, its timeline, what changed before it."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.contrib.auth.models import AnonymousUser
from django.db.models import Exists, OuterRef, Prefetch, Q, QuerySet
from django.urls import reverse

from apps.accounts.models import Membership, User
from apps.approvals import selectors as approval_selectors
from apps.approvals.promotions import KIND as PROMOTION_KIND
from apps.audit.selectors import audit_events_about
from apps.catalog import selectors as catalog_selectors
from apps.deployments.models import Release
from apps.deployments.selectors import deploy_requests_touching, releases_all, releases_live_at
from apps.deployments.services.deploys import APPROVAL_KIND as DEPLOY_APPROVAL_KIND
from apps.incidents.models import (
    ChangeKind,
    Incident,
    LinkedChange,
    TimelineEntry,
)
from apps.incidents.permissions import can_see_all_incidents

LIST_RELATED = ("commander", "created_by")


def incidents_visible_to(user: User | AnonymousUser) -> QuerySet[Incident]:
    """Incidents this person may see (permissions.py says who): staff and on-call all; others
    those touching their teams' models, those touching no model, and those they opened or
    hold a role in."""
    incidents = Incident.objects.select_related(*LIST_RELATED)
    if not user.is_authenticated:
        return incidents.none()
    if can_see_all_incidents(user):
        return incidents
    teams = Membership.objects.filter(user=user).values("team_id")
    touched = Incident.registered_models.through.objects.filter(incident_id=OuterRef("pk"))
    theirs = touched.filter(registeredmodel__owner_team_id__in=teams)
    return incidents.filter(
        Q(created_by=user)
        | Q(commander=user)
        | Q(scribe=user)
        | Q(communications=user)
        | ~Exists(touched)
        | Exists(theirs)
    )


def incidents_filtered(
    user: User | AnonymousUser,
    *,
    status: str = "",
    severity: str = "",
    environment: str = "",
    model: str = "",
    team: str = "",
    open_only: bool = False,
    since: datetime | None = None,
    until: datetime | None = None,
) -> QuerySet[Incident]:
    """The list, newest first, with what its rows show prefetched."""
    incidents = incidents_visible_to(user)
    if status:
        incidents = incidents.filter(status=status)
    if open_only:
        incidents = incidents.filter(status__in=(Incident.Status.DRAFT, *Incident.ACTIVE_STATUSES))
    if severity:
        incidents = incidents.filter(severity=severity)
    if environment:
        incidents = incidents.filter(environments__slug=environment)
    if model:
        incidents = incidents.filter(registered_models__name=model)
    if team:
        incidents = incidents.filter(registered_models__owner_team__slug=team)
    if since is not None:
        incidents = incidents.filter(started_at__gte=since)
    if until is not None:
        incidents = incidents.filter(started_at__lt=until)
    if environment or model or team:
        incidents = incidents.distinct()
    return incidents.prefetch_related("environments", "registered_models").order_by(
        "-started_at", "-id"
    )


def incident_for_page(user: User | AnonymousUser, pk: int) -> Incident | None:
    """One incident with what its page reads, or None when this person may not see it."""
    return (
        incidents_visible_to(user)
        .select_related("scribe", "communications")
        .prefetch_related(
            "environments",
            "registered_models__owner_team",
            Prefetch("releases", queryset=releases_all().order_by("-live_from")),
            Prefetch("changes", queryset=LinkedChange.objects.select_related("linked_by")),
        )
        .filter(pk=pk)
        .first()
    )


TIMELINE_FILTERS = {
    "notes": ("note",),
    "changes": ("opened", "status", "severity", "role", "change", "link"),
    "deploys": ("deploy_event", "rollback"),
    "alerts": ("alert_firing", "alert_resolved"),
}


def timeline_of(
    incident: Incident, *, show: str = "", pinned_only: bool = False
) -> QuerySet[TimelineEntry]:
    """The incident's timeline, oldest first; `show` is one of TIMELINE_FILTERS."""
    entries = incident.timeline.select_related("author")
    if show in TIMELINE_FILTERS:
        entries = entries.filter(kind__in=TIMELINE_FILTERS[show])
    if pinned_only:
        entries = entries.filter(pinned=True)
    return entries.order_by("at", "id")


# --- what changed before it -----------------------------------------------------------------------
DEFAULT_WINDOW_HOURS = 24
MAX_WINDOW_HOURS = 24 * 14
RANKING_RULE = (
    "Most likely first: changes to one of its models in one of its environments, then those "
    "matching the model or the environment only, each nearest to the start first."
)
FLAG_ACTIONS = ("model.flag_raised",)


@dataclass(frozen=True)
class Change:
    """One thing that happened before the incident, as the panel lists it."""

    kind: str
    object_id: int
    at: datetime
    title: str
    detail: str
    url: str
    same_model: bool
    same_environment: bool
    linked: bool

    @property
    def score(self) -> int:
        return int(self.same_model) + int(self.same_environment)

    @property
    def match(self) -> str:
        if self.same_model and self.same_environment:
            return "same model and environment"
        return "same model" if self.same_model else "same environment"


@dataclass(frozen=True)
class ChangeWindow:
    start: datetime
    end: datetime
    hours: int
    changes: list[Change]
    rule: str = RANKING_RULE


@dataclass(frozen=True)
class _Scope:
    """What one "what changed" read looks at, and who is looking."""

    user: User
    start: datetime
    end: datetime
    env_ids: frozenset[int]
    env_slugs: frozenset[str]
    model_ids: frozenset[int]
    linked: frozenset[tuple[str, int]]

    def change(self, kind: str, pk: int, at: datetime, title: str, detail: str, url: str, *,
               model: bool, environment: bool) -> Change:  # fmt: skip
        linked = (kind, pk) in self.linked
        return Change(kind, pk, at, title, detail, url, model, environment, linked)

    def last_moment(self, finished: datetime | None, opened: datetime) -> datetime:
        """When a change happened for the panel: its end if that came before the incident."""
        return finished if finished is not None and finished <= self.end else opened


def what_changed(
    user: User, incident: Incident, *, hours: int = DEFAULT_WINDOW_HOURS
) -> ChangeWindow:
    """Deploys, approvals, registry events and flags for the incident's environments and
    models in the `hours` before it started, most likely first (RANKING_RULE)."""
    hours = max(1, min(hours, MAX_WINDOW_HOURS))
    environments = list(incident.environments.all())
    scope = _Scope(
        user=user,
        start=incident.started_at - timedelta(hours=hours),
        end=incident.started_at,
        env_ids=frozenset(e.pk for e in environments),
        env_slugs=frozenset(e.slug for e in environments),
        model_ids=frozenset(m.pk for m in incident.registered_models.all()),
        linked=frozenset(incident.changes.values_list("kind", "object_id")),
    )
    changes = [
        *_deploys(scope),
        *_approvals(scope),
        *_versions(scope),
        *_registry_events(scope),
        *_flags(scope),
    ]
    changes.sort(key=lambda change: (-change.score, scope.end - change.at))
    return ChangeWindow(start=scope.start, end=scope.end, hours=hours, changes=changes)


def _deploys(scope: _Scope) -> Iterator[Change]:
    deploys = deploy_requests_touching(
        scope.user,
        environment_ids=scope.env_ids,
        model_ids=scope.model_ids,
        start=scope.start,
        end=scope.end,
    )
    for deploy in deploys:
        verb = "Rollback" if deploy.is_rollback else "Deploy"
        yield scope.change(
            ChangeKind.DEPLOY,
            deploy.pk,
            scope.last_moment(deploy.finished_at, deploy.created_at),
            f"{verb} #{deploy.pk}: {deploy.model.name} v{deploy.version.version} → "
            f"{deploy.environment.name}",
            f"{deploy.get_state_display()} · by {deploy.requester_label}",
            reverse("deployments:request-detail", args=[deploy.pk]),
            model=deploy.model_id in scope.model_ids,
            environment=deploy.environment_id in scope.env_ids,
        )


# An approval decided in the window may be about a deploy filed a while before it.
APPROVAL_LEAD = timedelta(days=7)


def _approvals(scope: _Scope) -> Iterator[Change]:
    deploy_ids = deploy_requests_touching(
        scope.user,
        environment_ids=scope.env_ids,
        model_ids=scope.model_ids,
        start=scope.start - APPROVAL_LEAD,
        end=scope.end,
    ).values("pk")
    subjects = {
        DEPLOY_APPROVAL_KIND: deploy_ids,
        PROMOTION_KIND: approval_selectors.promotion_ids_of_models(scope.model_ids),
    }
    approvals = approval_selectors.approvals_about(
        scope.user, subjects=subjects, start=scope.start, end=scope.end
    )
    for approval in approvals:
        yield scope.change(
            ChangeKind.APPROVAL,
            approval.pk,
            scope.last_moment(approval.decided_at, approval.created_at),
            f"Approval #{approval.pk}: {approval.title}",
            f"{approval.get_state_display()} · asked by {approval.requester.get_username()}",
            reverse("approvals:request-detail", args=[approval.pk]),
            model=True,
            environment=False,
        )


def _versions(scope: _Scope) -> Iterator[Change]:
    versions = catalog_selectors.versions_registered_between(
        model_ids=scope.model_ids, start=scope.start, end=scope.end
    )
    for version in versions:
        yield scope.change(
            ChangeKind.VERSION,
            version.pk,
            version.mlflow_created_at or scope.end,
            f"New version: {version.model.name} v{version.version}",
            f"registered in MLflow by {version.created_by or 'unknown'}",
            reverse("catalog:version-detail", args=[version.model_id, version.version]),
            model=True,
            environment=False,
        )


def _registry_events(scope: _Scope) -> Iterator[Change]:
    events = catalog_selectors.registry_events_between(
        model_ids=scope.model_ids, start=scope.start, end=scope.end
    )
    for event in events:
        yield scope.change(
            ChangeKind.REGISTRY,
            event.pk,
            event.at,
            f"{event.model.name}: {event.detail}",
            f"{event.get_kind_display()} in MLflow",
            reverse("catalog:model-detail", args=[event.model_id]),
            model=True,
            environment=False,
        )


def _flags(scope: _Scope) -> Iterator[Change]:
    """Warnings raised on the models: drift (`drift:<env>`), alias moves made in MLflow
    without approval (`alias:<name>`), failed rollbacks."""
    raised = audit_events_about(
        object_type="catalog.registeredmodel",
        object_ids=scope.model_ids,
        actions=FLAG_ACTIONS,
        start=scope.start,
        end=scope.end,
    )
    for audit in raised:
        key = str(audit.data.get("key", ""))
        yield scope.change(
            ChangeKind.FLAG,
            audit.pk,
            audit.occurred_at,
            f"{audit.object_repr}: {audit.data.get('message', '')}",
            f"flag {key} raised by {audit.actor_label}",
            reverse("catalog:model-detail", args=[int(audit.object_id)]),
            model=True,
            environment=key.partition(":")[2] in scope.env_slugs,
        )


def incident_live_releases(incident: Incident) -> list[Release]:
    """What is live now where the incident is: its linked releases that are still live, and
    the live release of each of its models in each of its environments (what a rollback from
    the incident can go back from)."""
    env_ids = [e.pk for e in incident.environments.all()]
    model_ids = [m.pk for m in incident.registered_models.all()]
    linked = [r.pk for r in incident.releases.all()]
    return list(
        releases_live_at()
        .filter(Q(pk__in=linked) | Q(environment_id__in=env_ids, model_id__in=model_ids))
        .order_by("environment__order", "model__name")
    )
