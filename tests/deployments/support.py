"""Helpers for deploy tests: an environment on the simulated cluster, a model with versions,
running a request's worker steps in this process while the simulated clock moves, and a release
history made of rows for tests that need no cluster."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from django.utils import timezone

from apps.accounts.models import User
from apps.catalog.models import ModelVersion, RegisteredModel
from apps.deployments import selectors, services
from apps.deployments.models import DeployRequest, Environment, Release
from apps.deployments.planning import DeployOptions
from apps.deployments.services import deploy_request_check, deploy_request_execute
from apps.simcluster.server import SimCluster
from tests.catalog.factories import ModelVersionFactory, RegisteredModelFactory
from tests.deployments.factories import (
    DeployRequestFactory,
    EnvironmentFactory,
    ProtectionRulesFactory,
    ReleaseFactory,
)
from tests.fixtures.cluster import NAMESPACE

BAD_SOURCE = "s3://models/broken/fail-imagepull"


def environment_on(kubeconfig: Path, name: str = "dev", order: int = 10, **rules) -> Environment:
    """A Deployment + Service environment on the simulated cluster, with a 30 s deadline (its
    kubeconfig from `kubeconfig`, or from `kubeconfig_file` where no cluster may be reached)."""
    environment = EnvironmentFactory(
        name=name,
        slug=name,
        order=order,
        namespace=NAMESPACE,
        kubeconfig_path=str(kubeconfig),
        progress_deadline_seconds=30,
    )
    ProtectionRulesFactory(environment=environment, **rules)
    return environment


def model_with_versions(team, count: int = 3, name: str = "fraud", **metrics) -> RegisteredModel:
    model = RegisteredModelFactory(name=name, owner_team=team)
    for number in range(1, count + 1):
        ModelVersionFactory(
            model=model,
            version=number,
            source=f"s3://models/{name}/{number}",
            run_metrics={key: values[number - 1] for key, values in metrics.items()},
        )
    return model


def version(model: RegisteredModel, number: int) -> ModelVersion:
    return ModelVersion.objects.select_related("model").get(model=model, version=number)


def request_deploy(actor, environment: Environment, model: RegisteredModel, number: int, **kw):
    options = kw.pop("options", None) or DeployOptions.for_environment(environment)
    return services.deploy_request_create(
        actor=actor, environment=environment, version=version(model, number), options=options, **kw
    )


def v2_live_after_v1(
    environment: Environment, model: RegisteredModel, requester: User, *, ago: timedelta
) -> Release:
    """As rows, no cluster: v1 went live `ago` ago (give or take the minutes its request took),
    then v2 replaced it a moment ago. Returns v2's live release."""
    pair = {"environment": environment, "requester": requester}
    first = DeployRequestFactory(
        succeeded=True, version=version(model, 1), created_at=timezone.now() - ago, **pair
    )
    second = DeployRequestFactory(succeeded=True, version=version(model, 2), **pair)
    ReleaseFactory(deploy_request=first, live_until=second.finished_at, ended_by=second)
    return ReleaseFactory(deploy_request=second)


def drive(sim: SimCluster, request_id: int, *, step: float = 5, limit: int = 200) -> DeployRequest:
    """Run the worker's steps for one request until it finishes (or waits for a person)."""
    for _ in range(limit):
        request = DeployRequest.objects.get(pk=request_id)
        if request.done or request.state == DeployRequest.State.PENDING_APPROVAL:
            return request
        if request.state in (DeployRequest.State.QUEUED, DeployRequest.State.APPLYING):
            outcome = deploy_request_execute(request.pk, request.token)
            if outcome == "held":
                return request
        else:
            sim.advance(step)
            deploy_request_check(request.pk, request.token)
    raise AssertionError(f"request {request_id} did not finish: {request.state}")


def drive_pair(sim: SimCluster, environment: Environment, model: RegisteredModel) -> list[int]:
    """Drive every request of the pair (a failure's automatic rollback too); their ids in order."""
    seen: list[int] = []
    while True:
        active = selectors.deploy_request_active(environment, model.pk)
        if active is None or active.state == DeployRequest.State.PENDING_APPROVAL:
            return seen
        seen.append(active.pk)
        drive(sim, active.pk)
