from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict
from datetime import datetime, timedelta
from typing import Any

import factory
from django.utils import timezone

from apps.deployments import planning
from apps.deployments.kube import diff
from apps.deployments.models import (
    DeployEvent,
    DeployRequest,
    Environment,
    ProtectionRules,
    Release,
)
from apps.deployments.planning import DeployOptions
from tests.accounts.factories import UserFactory
from tests.catalog.factories import ModelVersionFactory


class EnvironmentFactory(factory.django.DjangoModelFactory[Environment]):
    class Meta:
        model = Environment

    name = factory.Sequence(lambda n: f"env-{n}")
    slug = factory.LazyAttribute(lambda env: env.name)
    order = factory.Sequence(lambda n: 100 + n)
    namespace = "models"
    serving_kind = Environment.ServingKind.DEPLOYMENT
    runtime_image = "docker.io/seldonio/mlserver:1.6.1-mlflow"


class ProtectionRulesFactory(factory.django.DjangoModelFactory[ProtectionRules]):
    """Unprotected by default, and moving no MLflow alias (most tests run without MLflow)."""

    class Meta:
        model = ProtectionRules
        skip_postgeneration_save = True

    environment = factory.SubFactory(EnvironmentFactory)
    mlflow_alias = ""
    rollback_min_live_minutes = 0

    @factory.post_generation
    def reviewer_teams(self, create, teams, **kwargs):
        if create and teams:
            self.reviewer_teams.set(teams)


# Deploy requests ----------------------------------------------------------------------------------

State = DeployRequest.State

# How far apart the factories put a request's timestamps.
STEP = timedelta(minutes=1)

# The timestamps a request in each state has, in the order they were stamped. Failed and rolled
# back requests got as far as rolling out; a cancelled one was cancelled while it waited for
# approval; a rejected one never left approval.
STAMPED: dict[str, tuple[str, ...]] = {
    State.PENDING_APPROVAL: (),
    State.QUEUED: ("queued_at",),
    State.APPLYING: ("queued_at", "applying_at"),
    State.ROLLING_OUT: ("queued_at", "applying_at", "rolling_out_at"),
    State.SUCCEEDED: ("queued_at", "applying_at", "rolling_out_at", "finished_at"),
    State.FAILED: ("queued_at", "applying_at", "rolling_out_at", "finished_at"),
    State.ROLLED_BACK: ("queued_at", "applying_at", "rolling_out_at", "finished_at"),
    State.CANCELLED: ("finished_at",),
    State.REJECTED: ("finished_at",),
}


def _stamp(field: str) -> factory.LazyAttribute:
    """`field` one STEP after the stamp before it, or None when the state never set it."""

    def at(request: Any) -> datetime | None:
        stamped = STAMPED[request.state]
        if field not in stamped:
            return None
        return request.created_at + STEP * (stamped.index(field) + 1)

    return factory.LazyAttribute(at)


def _planned_on_an_empty_cluster(request: Any) -> list[dict[str, str]]:
    """The plan filing makes where nothing is live yet: every rendered object is created. The
    text shows the rendered objects, without the defaults a server's dry run would add."""
    objects = planning.render(request.environment, request.version, request.options)
    return [asdict(diff.diff_objects(None, obj)) for obj in objects]


def _require_same(kwargs: dict[str, Any], source: str, fields: Iterable[str]) -> None:
    """Refuse a row that contradicts its source (e.g. a model that is not its version's)."""
    for name in fields:
        if kwargs[name] != getattr(kwargs[source], name):
            raise ValueError(f"{name} must be {source}.{name}: pass {source}= instead.")


class DeployRequestFactory(factory.django.DjangoModelFactory[DeployRequest]):
    """A request as the services leave it: queued by default (what an unprotected environment
    files), any other state with a trait (`succeeded=True`, `rollback=True`, …) or `state=`.

    The timestamps follow the state (see STAMPED), STEP apart, the last one now; `model` is the
    version's; the options are the environment's defaults, or `options=DeployOptions(...)`.
    The plan is empty unless `planned=True`: then it is what filing plans on an empty cluster.
    """

    class Meta:
        model = DeployRequest

    class Params:
        options = factory.LazyAttribute(lambda o: DeployOptions.for_environment(o.environment))

        pending_approval = factory.Trait(state=State.PENDING_APPROVAL)
        queued = factory.Trait(state=State.QUEUED)
        applying = factory.Trait(state=State.APPLYING)
        rolling_out = factory.Trait(state=State.ROLLING_OUT)
        succeeded = factory.Trait(state=State.SUCCEEDED, status_reason="All replicas are ready.")
        failed = factory.Trait(
            state=State.FAILED, error="The rollout did not finish before its deadline."
        )
        rolled_back = factory.Trait(state=State.ROLLED_BACK, error="Aborted during the rollout.")
        cancelled = factory.Trait(state=State.CANCELLED)
        rejected = factory.Trait(state=State.REJECTED, error="Rejected by a reviewer.")
        rollback = factory.Trait(kind=DeployRequest.Kind.ROLLBACK, reason="Going back.")
        planned = factory.Trait(plan=factory.LazyAttribute(_planned_on_an_empty_cluster))

    environment = factory.SubFactory(EnvironmentFactory)
    version = factory.SubFactory(ModelVersionFactory)
    model = factory.SelfAttribute("version.model")
    kind = DeployRequest.Kind.DEPLOY
    state = State.QUEUED
    requester = factory.SubFactory(UserFactory)

    replicas = factory.SelfAttribute("options.replicas")
    cpu_request = factory.SelfAttribute("options.cpu_request")
    cpu_limit = factory.SelfAttribute("options.cpu_limit")
    memory_request = factory.SelfAttribute("options.memory_request")
    memory_limit = factory.SelfAttribute("options.memory_limit")
    canary_traffic_percent = factory.SelfAttribute("options.canary_traffic_percent")

    # One claim of the apply step once a worker got that far.
    attempts = factory.LazyAttribute(lambda o: int("applying_at" in STAMPED[o.state]))
    created_at = factory.LazyAttribute(lambda o: timezone.now() - STEP * len(STAMPED[o.state]))
    queued_at = _stamp("queued_at")
    applying_at = _stamp("applying_at")
    rolling_out_at = _stamp("rolling_out_at")
    finished_at = _stamp("finished_at")
    # Every transition touches the heartbeat: the last stamp, so no active row looks stale.
    heartbeat_at = factory.LazyAttribute(lambda o: o.created_at + STEP * len(STAMPED[o.state]))

    @classmethod
    def _adjust_kwargs(cls, **kwargs: Any) -> dict[str, Any]:
        _require_same(kwargs, "version", ["model"])
        return kwargs


class ReleaseFactory(factory.django.DjangoModelFactory[Release]):
    """What a succeeded request put live: live by default, `ended=True` for history.

    Where and what come from the request (pass `deploy_request=`, or
    `deploy_request__environment=` and `deploy_request__version=`); `ended_by` stays empty.
    """

    class Meta:
        model = Release

    class Params:
        ended = factory.Trait(
            live_until=factory.LazyAttribute(lambda o: max(o.live_from, timezone.now()))
        )

    deploy_request = factory.SubFactory(DeployRequestFactory, succeeded=True)
    environment = factory.SelfAttribute("deploy_request.environment")
    model = factory.SelfAttribute("deploy_request.model")
    version = factory.SelfAttribute("deploy_request.version")
    storage_uri = factory.SelfAttribute("version.source")
    replicas = factory.SelfAttribute("deploy_request.replicas")
    canary_traffic_percent = factory.SelfAttribute("deploy_request.canary_traffic_percent")
    requested_by = factory.LazyAttribute(lambda o: o.deploy_request.requester_label)
    live_from = factory.LazyAttribute(lambda o: o.deploy_request.finished_at or timezone.now())
    live_until = None

    @classmethod
    def _adjust_kwargs(cls, **kwargs: Any) -> dict[str, Any]:
        _require_same(kwargs, "deploy_request", ["environment", "model", "version"])
        return kwargs


class DeployEventFactory(factory.django.DjangoModelFactory[DeployEvent]):
    """A state note on a (queued) request; `kubernetes=True` for a cluster event with its key."""

    class Meta:
        model = DeployEvent

    class Params:
        kubernetes = factory.Trait(
            kind=DeployEvent.Kind.KUBERNETES,
            level=DeployEvent.Level.WARNING,
            message="Back-off pulling image",
            key=factory.Sequence(lambda n: f"kube-event-{n}"),
        )

    request = factory.SubFactory(DeployRequestFactory)
    at = factory.LazyFunction(timezone.now)
    kind = DeployEvent.Kind.STATE
    level = DeployEvent.Level.INFO
    message = factory.LazyAttribute(lambda o: f"{o.request.get_state_display()}.")
