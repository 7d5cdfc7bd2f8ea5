"""Every read of environments, deploy requests and releases: for pages, the API and the verbs."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.contrib.auth.models import AnonymousUser
from django.db.models import Exists, OuterRef, Q, QuerySet

from apps.accounts.models import Membership, User
from apps.catalog.models import RegisteredModel
from apps.deployments import policy
from apps.deployments.models import DeployRequest, Environment, ProtectionRules, Release


def environments_all() -> QuerySet[Environment]:
    """Every environment in promotion order (dev first)."""
    return Environment.objects.order_by("order", "name")


def environment_by_slug(*, slug: str) -> QuerySet[Environment]:
    return Environment.objects.filter(slug=slug)


# --- deploy requests ------------------------------------------------------------------------------
# What a request's page, list row and API representation read besides the row itself.
REQUEST_RELATED = ("environment", "model", "model__owner_team", "version", "requester")


def deploy_requests_visible_to(user: User | AnonymousUser) -> QuerySet[DeployRequest]:
    """Requests this person may see: staff all; others their team's models, their own, and
    those in environments whose approvers (reviewer or required teams) they are among."""
    requests = DeployRequest.objects.select_related(*REQUEST_RELATED)
    if not user.is_authenticated:
        return requests.none()
    if user.is_staff:
        return requests
    teams = Membership.objects.filter(user=user).values("team_id")
    reviewer = ProtectionRules.reviewer_teams.through.objects.filter(
        protectionrules__environment_id=OuterRef("environment_id"), team_id__in=teams
    )
    # A required team reviews too (ApprovalRuleFields.to_rules), so it sees what it reviews.
    required = ProtectionRules.required_teams.through.objects.filter(
        protectionrules__environment_id=OuterRef("environment_id"), team_id__in=teams
    )
    return requests.filter(
        Q(requester=user) | Q(model__owner_team_id__in=teams) | Exists(reviewer) | Exists(required)
    )


def deploy_requests_touching(
    user: User | AnonymousUser,
    *,
    environment_ids: Collection[int],
    model_ids: Collection[int],
    start: datetime,
    end: datetime,
) -> QuerySet[DeployRequest]:
    """Requests this person may see in these environments or of these models, filed or
    finished between `start` and `end`."""
    where = Q(environment_id__in=environment_ids) | Q(model_id__in=model_ids)
    when = Q(created_at__range=(start, end)) | Q(finished_at__range=(start, end))
    return deploy_requests_visible_to(user).filter(where, when)


def deploy_request_for_response(pk: int) -> DeployRequest:
    """One request with what its API representation reads, without the visibility filter:
    for the answer to a verb whose service has just checked the caller's permission."""
    return DeployRequest.objects.select_related(*REQUEST_RELATED, "release").get(pk=pk)


def deploy_requests_filtered(
    user: User | AnonymousUser,
    *,
    state: str = "",
    environment: str = "",
    model: str = "",
    kind: str = "",
    requester: str = "",
    active: bool | None = None,
) -> QuerySet[DeployRequest]:
    requests = deploy_requests_visible_to(user)
    if state:
        requests = requests.filter(state=state)
    if environment:
        requests = requests.filter(environment__slug=environment)
    if model:
        requests = requests.filter(model__name__icontains=model)
    if kind:
        requests = requests.filter(kind=kind)
    if requester:
        requests = requests.filter(requester__username=requester)
    if active is True:
        requests = requests.filter(state__in=DeployRequest.ACTIVE_STATES)
    elif active is False:
        requests = requests.exclude(state__in=DeployRequest.ACTIVE_STATES)
    return requests.order_by("-created_at", "-id")


# --- releases -------------------------------------------------------------------------------------
def releases_all() -> QuerySet[Release]:
    return Release.objects.select_related(
        "environment", "model", "version", "deploy_request", "deploy_request__requester"
    )


def releases_live_at(at: datetime | None = None) -> QuerySet[Release]:
    """What was live at `at` (now when None): one row per (environment, model) at most."""
    releases = releases_all()
    if at is None:
        return releases.filter(live_until__isnull=True)
    return releases.filter(live_from__lte=at).filter(
        Q(live_until__isnull=True) | Q(live_until__gt=at)
    )


def releases_filtered(
    *, at: datetime | None = None, live: bool = False, environment: str = "", model: str = ""
) -> QuerySet[Release]:
    """Releases for the API: all of them, the live ones, or those live at `at`."""
    releases = releases_live_at(at) if at is not None or live else releases_all()
    if environment:
        releases = releases.filter(environment__slug=environment)
    if model:
        releases = releases.filter(model__name=model)
    return releases.order_by("-live_from", "-id")


def releases_of_model(model: RegisteredModel, *, limit: int = 60) -> list[Release]:
    return list(releases_all().filter(model=model).order_by("-live_from", "-id")[:limit])


# --- the matrix -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class MatrixCell:
    environment: Environment
    release: Release | None
    active: DeployRequest | None = None


@dataclass
class MatrixRow:
    model: RegisteredModel
    cells: list[MatrixCell] = field(default_factory=list)


@dataclass
class Matrix:
    environments: list[Environment]
    rows: list[MatrixRow]


def matrix_models(
    *, at: datetime | None = None, search: str = "", team: str = ""
) -> QuerySet[RegisteredModel]:
    """Models with something live (at `at`) in any environment, by name: the matrix's rows."""
    live = releases_live_at(at).filter(model_id=OuterRef("pk"))
    models = RegisteredModel.objects.select_related("owner_team").filter(Exists(live))
    if search:
        models = models.filter(name__icontains=search)
    if team:
        models = models.filter(owner_team__slug=team)
    return models.order_by("name")


def matrix_for(models: list[RegisteredModel], *, at: datetime | None = None) -> Matrix:
    """One row per model, one cell per environment: the release live then (or None)."""
    environments = list(environments_all())
    ids = [model.pk for model in models]
    by_pair: dict[tuple[int, int], Release] = {
        (release.model_id, release.environment_id): release
        for release in releases_live_at(at).filter(model_id__in=ids)
    }
    active: dict[int, dict[int, DeployRequest]] = defaultdict(dict)
    if at is None:
        for request in DeployRequest.objects.filter(
            model_id__in=ids, state__in=DeployRequest.ACTIVE_STATES
        ).select_related("version"):
            active[request.model_id][request.environment_id] = request
    rows = [
        MatrixRow(
            model=model,
            cells=[
                MatrixCell(env, by_pair.get((model.pk, env.pk)), active[model.pk].get(env.pk))
                for env in environments
            ],
        )
        for model in models
    ]
    return Matrix(environments=environments, rows=rows)


# --- reads the verbs share ----------------------------------------------------------------------
def deploy_request_active(environment: Environment, model_id: int) -> DeployRequest | None:
    """The one request for this pair still waiting, queued or running, if any."""
    return (
        DeployRequest.objects.filter(
            environment=environment, model_id=model_id, state__in=DeployRequest.ACTIVE_STATES
        )
        .select_related("version", "requester")
        .first()
    )


def release_live(environment_id: int, model_id: int) -> Release | None:
    """What is live for this pair now."""
    return (
        Release.objects.filter(
            environment_id=environment_id, model_id=model_id, live_until__isnull=True
        )
        .select_related("version", "deploy_request")
        .first()
    )


def release_last_good(release: Release) -> Release | None:
    """The newest earlier release of another version here that stayed live long enough."""
    minimum = timedelta(minutes=policy.rules_of(release.environment).rollback_min_live_minutes)
    earlier = (
        Release.objects.filter(
            environment_id=release.environment_id,
            model_id=release.model_id,
            live_from__lt=release.live_from,
            live_until__isnull=False,
        )
        .exclude(version_id=release.version_id)
        .exclude(deploy_request__removes_objects=True)
        .select_related("version", "deploy_request")
        .order_by("-live_from", "-id")
    )
    for candidate in earlier[:200]:
        ended = candidate.live_until  # never None here: the query asks for ended releases
        if ended is not None and ended - candidate.live_from >= minimum:
            return candidate
    return None
