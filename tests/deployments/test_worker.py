"""End to end with a REAL Celery worker process, the broker (Redis in CI), the database
(PostgreSQL in CI), a real MLflow server and the simulated cluster over HTTP.

- an unprotected request goes to succeeded; the Release and the MLflow alias move;
- an injected failure ends in failed and opens a draft incident, then an automatic rollback
  succeeds;
- a protected environment waits for approval first: filing sends no task that applies;
- the worker is SIGKILLed while a request is rolling out; a new worker and the sweeper finish
  it, with exactly one Release change and one alias move.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import pytest
from celery.signals import after_task_publish
from django.utils import timezone

from apps.approvals import services as approvals
from apps.audit.models import AuditEvent
from apps.catalog.models import RegisteredModel
from apps.catalog.sync import SyncMode, registry_sync
from apps.deployments.kube.client import Connection, KubeClient
from apps.deployments.kube.manifests import object_name
from apps.deployments.models import DeployRequest, Release
from apps.incidents.models import Incident
from apps.jobs.tasks import handoff_redrive_task
from apps.simcluster.controllers import Timing
from apps.simcluster.server import SimCluster
from tests.accounts.factories import MembershipFactory, TeamFactory, UserFactory
from tests.deployments.support import environment_on, request_deploy
from tests.deployments.worker_fixtures import WORKER_ENV, wait_for
from tests.fixtures.cluster import NAMESPACE
from tests.fixtures.workers import WorkerProcess
from tests.polling import wait_until

pytestmark = [pytest.mark.worker, pytest.mark.mlflow, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def cluster(running_cluster: SimCluster) -> SimCluster:
    return running_cluster


@pytest.fixture
def worker(mlflow_uri: str, deploy_worker: WorkerProcess) -> WorkerProcess:
    """The worker, started after MLflow so it is pointed at the same server."""
    return deploy_worker


@pytest.fixture
def fraud(registry_builder, mlflow_client, team) -> RegisteredModel:
    """A model in the real MLflow server: v1 and v2 healthy, v3 whose image never pulls."""
    name = registry_builder.model("fraud", tags={"portal.team": team.slug})
    registry_builder.version(name, metrics={"auc": 0.9})
    registry_builder.version(name, metrics={"auc": 0.91})
    mlflow_client.create_model_version(name, source=f"s3://models/{name}/fail-imagepull")
    registry_sync(mode=SyncMode.FULL)
    return RegisteredModel.objects.get(name=name)


@contextmanager
def tasks_sent() -> Iterator[list[tuple[str, str]]]:
    """The (name, id) of each Celery task this process sends inside the block."""
    sent: list[tuple[str, str]] = []

    def record(sender: str, headers: dict[str, Any], **kwargs: Any) -> None:
        sent.append((sender, headers["id"]))

    after_task_publish.connect(record, weak=False)
    try:
        yield sent
    finally:
        after_task_publish.disconnect(record)


def alias_moved(worker: WorkerProcess, release: Release) -> None:
    """Wait for the worker to move the release's MLflow alias (after the release is written)."""
    unmoved = Release.objects.filter(pk=release.pk, alias_moved_at__isnull=True)
    wait_until(lambda: not unmoved.exists(), timeout=10, explain=worker.log)


def alias_in_mlflow(mlflow_client, model: RegisteredModel, alias: str) -> int:
    return int(mlflow_client.get_model_version_by_alias(model.name, alias).version)


def test_unprotected_deploy_succeeds_moves_release_and_alias(
    cluster, worker, fraud, member, mlflow_client, tmp_path
) -> None:
    dev = environment_on(cluster.write_kubeconfig(tmp_path / "kubeconfig"), mlflow_alias="dev")
    request = request_deploy(member, dev, fraud, 1)
    done = wait_for(request.pk, {"succeeded", "failed"}, worker)
    assert done.state == "succeeded", done.error
    release = Release.objects.get(environment=dev, model=fraud, live_until__isnull=True)
    assert release.version.version == 1
    alias_moved(worker, release)
    assert alias_in_mlflow(mlflow_client, fraud, "dev") == 1
    assert fraud.aliases.get(alias="dev").version == 1  # the catalog's mirror too
    assert worker.wait_for_log("deploy_task_done")


def test_injected_failure_fails_then_rolls_back_automatically(
    cluster, worker, fraud, member, mlflow_client, tmp_path
) -> None:
    dev = environment_on(cluster.write_kubeconfig(tmp_path / "kubeconfig"), mlflow_alias="dev")
    first = request_deploy(member, dev, fraud, 2)
    wait_for(first.pk, {"succeeded"}, worker)
    broken = request_deploy(member, dev, fraud, 3)
    failed = wait_for(broken.pk, {"failed", "succeeded"}, worker)
    assert failed.state == "failed"
    assert "progress deadline" in failed.error
    rollback = DeployRequest.objects.get(rollback_of=broken)
    assert rollback.kind == "rollback" and rollback.requester is None
    assert wait_for(rollback.pk, {"succeeded", "failed"}, worker).state == "succeeded"
    live = Release.objects.get(environment=dev, model=fraud, live_until__isnull=True)
    assert (live.version.version, live.deploy_request_id) == (2, rollback.pk)
    assert alias_in_mlflow(mlflow_client, fraud, "dev") == 2
    # The failure opened a draft incident for on-call, following the request and its rollback.
    draft = Incident.objects.get(deploy_requests=broken)
    assert (draft.status, draft.source) == ("draft", "deploy_failure")
    assert set(draft.deploy_requests.all()) == {broken, rollback}
    assert draft.timeline.filter(body__contains=f"#{rollback.pk} rollback of {fraud.name}").exists()


def test_protected_environment_waits_for_approval(cluster, worker, fraud, member, tmp_path) -> None:
    risk = TeamFactory(slug="risk")
    approvers = [
        MembershipFactory(team=risk, user=UserFactory(username=f"r{i}")).user for i in (1, 2)
    ]
    prod = environment_on(
        cluster.write_kubeconfig(tmp_path / "kubeconfig"),
        "production",
        30,
        required_approvals=2,
        reviewer_teams=[risk],
    )
    with tasks_sent() as sent:
        request = request_deploy(member, prod, fraud, 1)
    # A worker is running, yet filing asks it to apply nothing: it only tells the reviewers.
    # Once the worker has run what was sent, the request still waits.
    names = [name for name, _ in sent]
    assert names and set(names) == {"approvals.notify"}, names
    for name, task_id in sent:
        assert worker.wait_for_log(f"Task {name}[{task_id}] succeeded"), worker.log()
    request.refresh_from_db()
    assert (request.state, request.applying_at) == ("pending_approval", None)
    for person in approvers:
        approvals.approval_review_submit(
            approval=request.approval, reviewer=person, decision="approve"
        )
    done = wait_for(request.pk, {"succeeded", "failed"}, worker)
    assert done.state == "succeeded", done.error
    assert Release.objects.get(deploy_request=done).approved_by == ["r1", "r2"]


def test_worker_killed_while_rolling_out_is_finished_by_a_new_worker_and_the_sweeper(
    worker, fraud, member, mlflow_client, tmp_path, settings
) -> None:
    with SimCluster(
        manual_clock=True, namespaces=(NAMESPACE,), timing=Timing(pod_startup=5)
    ) as sim:
        kubeconfig = sim.write_kubeconfig(tmp_path / "kubeconfig")
        dev = environment_on(kubeconfig, mlflow_alias="dev")
        request = request_deploy(member, dev, fraud, 1)
        # Time stands still on the cluster, so the rollout stays in progress while we kill.
        wait_for(request.pk, {"rolling_out"}, worker)
        assert worker.wait_for_log("outcome=progressing")  # it has looked at least once
        worker.kill()
        before = DeployRequest.objects.get(pk=request.pk)
        assert before.state == "rolling_out"
        sim.advance(30)  # the pods come up while no worker is looking
        worker.start()
        # Nobody looks at the rollout now: wait until its heartbeat is older than the worker's
        # DEPLOY_HEARTBEAT_SECONDS, which is what the sweeper looks for.
        silent = timedelta(seconds=int(WORKER_ENV["DEPLOY_HEARTBEAT_SECONDS"]))
        stale = DeployRequest.objects.filter(pk=request.pk, state="rolling_out")
        wait_until(
            lambda: stale.filter(heartbeat_at__lt=timezone.now() - silent).exists(),
            timeout=30,
            explain=worker.log,
        )
        handoff_redrive_task.delay()
        done = wait_for(request.pk, {"succeeded", "failed"}, worker)
        assert done.state == "succeeded", done.error
        assert done.events.filter(message__contains="the sweeper handed it").count() == 1
        assert Release.objects.filter(environment=dev, model=fraud).count() == 1
        release = Release.objects.get(environment=dev, model=fraud)
        alias_moved(worker, release)
        moves = AuditEvent.objects.filter(action="alias.moved", object_id=str(fraud.pk))
        assert moves.count() == 1
        assert alias_in_mlflow(mlflow_client, fraud, "dev") == 1
        with KubeClient.connect(Connection(str(kubeconfig))) as kube:
            live = kube.get("apps/v1", "Deployment", NAMESPACE, object_name(fraud.name))
        # Applied once: one rollout, one revision.
        assert live["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "1"
        assert live["metadata"]["generation"] == 1
