"""Carrying requests out against the simulated cluster: success, failure and automatic rollback,
claims and tokens (a repeated task changes nothing), the sweeper, cancel and abort."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import time_machine
import yaml
from django.core.exceptions import ValidationError
from django.utils import timezone

from apps.audit.models import AuditEvent
from apps.deployments import services
from apps.deployments.kube.client import KubeClient
from apps.deployments.models import DeployEvent, DeployRequest, Environment, Release
from apps.deployments.planning import DeployOptions
from apps.deployments.services import (
    deploy_request_check,
    deploy_request_execute,
    deploy_sweep,
)
from apps.jobs.models import RedriveCount
from tests.deployments.support import (
    BAD_SOURCE,
    drive,
    drive_pair,
    environment_on,
    request_deploy,
    version,
)
from tests.fixtures.cluster import NAMESPACE

pytestmark = pytest.mark.django_db
State = DeployRequest.State


@pytest.fixture
def dev(kubeconfig):
    return environment_on(kubeconfig)


def live_deployment(kube: KubeClient, name: str = "fraud") -> dict[str, Any]:
    return kube.get("apps/v1", "Deployment", NAMESPACE, name)


def test_unprotected_request_is_queued_on_commit(
    dev, fraud, member, django_capture_on_commit_callbacks
) -> None:
    with django_capture_on_commit_callbacks() as callbacks:
        request = request_deploy(member, dev, fraud, 1)
    assert request.state == State.QUEUED
    assert request.queued_at is not None
    assert len(callbacks) == 1  # the execute task, sent only after commit
    assert request.plan[0]["action"] == "create"
    assert "kind: Deployment" in request.manifest
    labels = yaml.safe_load_all(request.manifest).__next__()["metadata"]["labels"]
    assert labels["modelport.dev/deploy-request"] == str(request.pk)


def test_request_rolls_out_and_records_the_release(sim, kube, dev, fraud, member) -> None:
    request = request_deploy(member, dev, fraud, 1)
    done = drive(sim, request.pk)
    assert done.state == State.SUCCEEDED, done.error
    assert done.applying_at and done.rolling_out_at and done.finished_at
    assert done.applying_at <= done.rolling_out_at <= done.finished_at
    assert done.cluster_revision == "1"
    release = Release.objects.get(environment=dev, model=fraud)
    assert (release.version.version, release.live_until, release.requested_by) == (1, None, "mo")
    assert release.deploy_request_id == request.pk
    labels = live_deployment(kube)["metadata"]["labels"]
    assert labels["modelport.dev/version"] == "1"
    actions = list(
        AuditEvent.objects.filter(object_type="deployments.deployrequest").values_list(
            "action", flat=True
        )
    )
    assert sorted(actions) == sorted(
        ["deploy.requested", "deploy.applying", "deploy.rolling_out", "deploy.succeeded"]
    )
    states = [e.data["to"] for e in done.events.filter(kind=DeployEvent.Kind.STATE)[1:]]
    assert states == ["applying", "rolling_out", "succeeded"]
    assert done.events.filter(kind=DeployEvent.Kind.KUBERNETES, message__contains="Scaled up")


def test_next_version_replaces_the_release(sim, kube, dev, fraud, member) -> None:
    first = drive(sim, request_deploy(member, dev, fraud, 1).pk)
    second = drive(sim, request_deploy(member, dev, fraud, 2).pk)
    assert second.state == State.SUCCEEDED
    old, new = Release.objects.filter(environment=dev, model=fraud).order_by("live_from")
    assert (old.version.version, new.version.version) == (1, 2)
    assert old.live_until == new.live_from and old.ended_by_id == second.pk
    assert new.deploy_request_id == second.pk and first.pk == old.deploy_request_id
    assert (
        live_deployment(kube)["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "2"
    )


def test_failed_rollout_rolls_back_to_the_live_release(sim, kube, dev, fraud, member) -> None:
    drive(sim, request_deploy(member, dev, fraud, 1).pk)
    broken = version(fraud, 3)
    broken.source = BAD_SOURCE
    broken.save()
    failing = request_deploy(member, dev, fraud, 3)
    ids = drive_pair(sim, dev, fraud)
    failing.refresh_from_db()
    assert failing.state == State.FAILED
    assert "exceeded its progress deadline" in failing.error
    assert "Back-off pulling image" in failing.error
    rollback = DeployRequest.objects.get(rollback_of=failing)
    assert ids == [failing.pk, rollback.pk]
    assert (rollback.kind, rollback.state, rollback.requester) == ("rollback", "succeeded", None)
    assert rollback.version.version == 1
    live = Release.objects.get(environment=dev, model=fraud, live_until__isnull=True)
    assert (live.version.version, live.deploy_request_id) == (1, rollback.pk)
    env = live_deployment(kube)["spec"]["template"]["spec"]["containers"][0]["env"]
    assert {"name": "MLSERVER_MODEL_URI", "value": "s3://models/fraud/1"} in env
    assert live_deployment(kube)["status"]["availableReplicas"] == 1


def test_failed_first_deploy_removes_what_it_created(sim, kube, dev, fraud, member) -> None:
    broken = version(fraud, 1)
    broken.source = BAD_SOURCE
    broken.save()
    failing = request_deploy(member, dev, fraud, 1)
    drive_pair(sim, dev, fraud)
    cleanup = DeployRequest.objects.get(rollback_of=failing)
    assert (cleanup.state, cleanup.removes_objects) == ("succeeded", True)
    assert kube.get_or_none("apps/v1", "Deployment", NAMESPACE, "fraud") is None
    assert kube.get_or_none("v1", "Service", NAMESPACE, "fraud") is None
    assert not Release.objects.filter(environment=dev).exists()


def test_failed_first_deploy_scales_to_zero_when_the_environment_says_so(
    sim, kube, kubeconfig, fraud, member
) -> None:
    zero = environment_on(kubeconfig, "zero", 11, without_previous_release="scale_to_zero")
    broken = version(fraud, 1)
    broken.source = BAD_SOURCE
    broken.save()
    failing = request_deploy(member, zero, fraud, 1)
    drive_pair(sim, zero, fraud)
    cleanup = DeployRequest.objects.get(rollback_of=failing)
    assert (cleanup.state, cleanup.removes_objects, cleanup.replicas) == ("succeeded", False, 0)
    assert live_deployment(kube)["spec"]["replicas"] == 0


def test_a_repeated_or_stale_task_applies_nothing(sim, dev, fraud, member) -> None:
    request = request_deploy(member, dev, fraud, 1)
    token = request.token
    assert deploy_request_execute(request.pk, token) == "applied"
    patches = [r for r in sim.requests if r[0] == "PATCH" and "dryRun" not in r[1]]
    assert deploy_request_execute(request.pk, token) == "stale"  # a second delivery
    request.refresh_from_db()
    assert deploy_request_check(request.pk, token) == "stale"  # a token from before the claim
    assert deploy_request_check(request.pk, request.token) == "progressing"
    assert deploy_request_check(request.pk, request.token - 1) == "stale"
    assert [r for r in sim.requests if r[0] == "PATCH" and "dryRun" not in r[1]] == patches
    assert request.attempts == 1


def test_sweeper_hands_a_silent_rollout_to_another_worker(
    sim, dev, fraud, member, django_capture_on_commit_callbacks, settings
) -> None:
    # Silent for longer than the heartbeat, yet not past the rollout's deadline (the
    # environment's 30 s plus DEPLOY_DEADLINE_MARGIN_SECONDS): the next worker can finish it.
    settings.DEPLOY_HEARTBEAT_SECONDS = 10
    silence = timedelta(seconds=settings.DEPLOY_HEARTBEAT_SECONDS + 1)
    with time_machine.travel(timezone.now(), tick=False) as clock:
        request = request_deploy(member, dev, fraud, 1)
        deploy_request_execute(request.pk, request.token)
        request.refresh_from_db()
        lost_token = request.token  # the check task that died with its worker
        assert deploy_sweep()["deploy_request"] == 0  # its heartbeat is fresh
        clock.shift(silence)  # and no worker looks at it meanwhile
        with django_capture_on_commit_callbacks() as callbacks:
            assert deploy_sweep()["deploy_request"] == 1
        assert len(callbacks) == 1
        request.refresh_from_db()
        assert request.token == lost_token + 1
        assert deploy_request_check(request.pk, lost_token) == "stale"  # if it ever comes back
        assert drive(sim, request.pk).state == State.SUCCEEDED
    assert request.events.filter(message__contains="the sweeper handed it").count() == 1


def test_sweeper_requeues_a_queued_request_whose_message_was_lost(
    dev, fraud, member, django_capture_on_commit_callbacks, settings
) -> None:
    silence = timedelta(seconds=settings.DEPLOY_HEARTBEAT_SECONDS + 1)
    with time_machine.travel(timezone.now(), tick=False) as clock:
        request = request_deploy(member, dev, fraud, 1)
        clock.shift(silence)  # the execute message never reaches a worker
        with django_capture_on_commit_callbacks() as callbacks:
            result = deploy_sweep()
    assert result == {"deploy_request": 1, "alias_move": 0}
    assert len(callbacks) == 1
    assert RedriveCount.objects.get(kind="deploy_request").total == 1
    assert deploy_request_execute(request.pk, request.token) == "stale"
    assert deploy_request_execute(request.pk, request.token + 1) == "applied"


def test_attempts_are_bounded(dev, fraud, member, settings) -> None:
    request = request_deploy(member, dev, fraud, 1)
    DeployRequest.objects.filter(pk=request.pk).update(
        state=State.APPLYING, attempts=settings.DEPLOY_MAX_ATTEMPTS
    )
    assert deploy_request_execute(request.pk, request.token) == "failed"
    request.refresh_from_db()
    assert request.state == State.FAILED
    assert "Gave up after 5 attempts" in request.error


def test_cluster_refusal_fails_with_the_api_message(sim, kubeconfig, fraud, member) -> None:
    missing = environment_on(kubeconfig, "nowhere", 12)
    missing.namespace = "does-not-exist"
    missing.save()
    request = request_deploy(member, missing, fraud, 1)
    done = drive(sim, request.pk)
    assert done.state == State.FAILED
    assert 'namespaces "does-not-exist" not found' in done.error


def test_transient_cluster_errors_are_retried(sim, dev, fraud, member, settings) -> None:
    request = request_deploy(member, dev, fraud, 1)
    sim.fail_next(503, times=8)  # more than the client's own retries
    assert deploy_request_execute(request.pk, request.token) == "retrying"
    request.refresh_from_db()
    assert (request.state, request.attempts) == (State.APPLYING, 1)
    assert request.events.filter(message__contains="trying again").exists()
    assert drive(sim, request.pk).state == State.SUCCEEDED


def test_cancel_before_apply_and_not_after(sim, dev, fraud, member) -> None:
    first = request_deploy(member, dev, fraud, 1)
    assert services.deploy_request_cancel(actor=member, deploy=first, reason="wrong version")
    first.refresh_from_db()
    assert (first.state, first.error) == ("cancelled", "Cancelled by mo: wrong version")
    assert deploy_request_execute(first.pk, first.token) == "stale"
    second = request_deploy(member, dev, fraud, 2)
    deploy_request_execute(second.pk, second.token)
    with pytest.raises(ValidationError, match="abort it to roll back instead"):
        services.deploy_request_cancel(actor=member, deploy=second)


def test_abort_after_apply_rolls_back(sim, kube, dev, fraud, member, outsider) -> None:
    drive(sim, request_deploy(member, dev, fraud, 1).pk)
    second = request_deploy(member, dev, fraud, 2)
    deploy_request_execute(second.pk, second.token)
    second.refresh_from_db()
    with pytest.raises(Exception, match="Only the model's team"):
        services.deploy_request_abort(actor=outsider, deploy=second)
    rollback = services.deploy_request_abort(actor=member, deploy=second, reason="latency")
    assert rollback is not None  # the rollback it started
    second.refresh_from_db()
    assert second.state == State.ROLLED_BACK
    assert deploy_request_check(second.pk, second.token - 1) == "stale"
    assert (rollback.kind, rollback.rollback_of_id, rollback.version.version) == (
        "rollback",
        second.pk,
        1,
    )
    assert drive(sim, rollback.pk).state == State.SUCCEEDED
    assert Release.objects.get(live_until__isnull=True).version.version == 1


def test_an_alias_that_cannot_move_is_retried_by_the_sweeper(
    sim, kubeconfig, fraud, member, settings
) -> None:
    settings.MLFLOW_TRACKING_URI = ""  # MLflow is not reachable from here
    dev = environment_on(kubeconfig, "dev", 10, mlflow_alias="dev")
    done = drive(sim, request_deploy(member, dev, fraud, 1).pk)
    assert done.state == State.SUCCEEDED  # the deploy itself is not undone
    release = Release.objects.get()
    assert (release.alias, release.alias_moved_at, release.alias_claimed_at) == ("dev", None, None)
    assert "MLFLOW_TRACKING_URI is not set" in release.alias_error
    assert done.events.filter(message__startswith="Could not move the MLflow alias @dev").exists()
    assert deploy_sweep()["alias_move"] == 0  # tried again, still failing, still pending
    assert done.events.filter(message__startswith="Could not move").count() == 2


def kserve_environment(kubeconfig: Path, name: str, order: int, mode: str) -> Environment:
    environment = environment_on(kubeconfig, name, order)
    environment.serving_kind = "kserve"
    environment.kserve_mode = mode
    environment.replicas, environment.max_replicas = 1, 2
    environment.save()
    return environment


def test_kserve_standard_waits_for_the_predictor_to_take_the_new_version(
    sim, kube, kubeconfig, fraud, member
) -> None:
    staging = kserve_environment(kubeconfig, "staging", 20, "Standard")
    first = drive(sim, request_deploy(member, staging, fraud, 1).pk)
    assert (first.state, first.status_reason) == ("succeeded", "InferenceService is Ready.")
    second = request_deploy(member, staging, fraud, 2)
    deploy_request_execute(second.pk, second.token)
    second.refresh_from_db()
    # Right after the apply the InferenceService is still Ready from v1: not a success yet.
    assert deploy_request_check(second.pk, second.token) == "progressing"
    second.refresh_from_db()
    assert second.status_reason == "Waiting for KServe to update the predictor."
    done = drive(sim, second.pk)
    assert done.state == "succeeded"
    predictor = kube.get("apps/v1", "Deployment", NAMESPACE, "fraud-predictor")
    annotations = predictor["spec"]["template"]["metadata"]["annotations"]
    assert annotations["serving.kserve.io/storage-initializer-sourceuri"] == "s3://models/fraud/2"
    assert Release.objects.get(live_until__isnull=True).version.version == 2


def test_knative_canary_succeeds_with_its_share_of_traffic(sim, kubeconfig, fraud, member) -> None:
    production = kserve_environment(kubeconfig, "production", 30, "Knative")
    drive(sim, request_deploy(member, production, fraud, 1).pk)
    options = DeployOptions.for_environment(production, canary_traffic_percent=20)
    canary = drive(sim, request_deploy(member, production, fraud, 2, options=options).pk)
    assert canary.state == "succeeded", canary.error
    assert (
        canary.status_reason
        == "Revision fraud-predictor-00002 is serving with 20 % of traffic (canary)."
    )
    assert canary.cluster_revision == "fraud-predictor-00002"
    live = Release.objects.get(live_until__isnull=True)
    assert (live.version.version, live.canary_traffic_percent) == (2, 20)
    # Promoting the same version to all traffic makes no new revision; it still completes.
    promote = drive(sim, request_deploy(member, production, fraud, 2).pk)
    assert (promote.state, promote.status_reason) == (
        "succeeded",
        "Revision fraud-predictor-00002 is serving.",
    )


def test_rollback_restores_exactly_what_ran_before(sim, kube, dev, fraud, member) -> None:
    drive(sim, request_deploy(member, dev, fraud, 1).pk)
    good_image = dev.runtime_image
    dev.runtime_image = "registry.example/mlserver:fail-imagepull"  # a bad settings change
    dev.save()
    failing = request_deploy(member, dev, fraud, 2)
    drive_pair(sim, dev, fraud)
    rollback = DeployRequest.objects.get(rollback_of=failing)
    assert rollback.state == State.SUCCEEDED, rollback.error
    container = live_deployment(kube)["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == good_image  # the manifest that ran, not today's settings
    labels = live_deployment(kube)["metadata"]["labels"]
    assert labels["modelport.dev/deploy-request"] == str(rollback.pk)


def test_the_finishing_look_writes_names_in_bounded_queries_and_clears_a_raised_flag(
    sim, dev, fraud, member, django_assert_max_num_queries
) -> None:
    fraud.flags = {"rollback-failed:dev": "Rollback #1 in dev failed."}
    fraud.save(update_fields=["flags"])
    request = request_deploy(member, dev, fraud, 1)
    deploy_request_execute(request.pk, DeployRequest.objects.get(pk=request.pk).token)
    sim.advance(60)  # long enough for the rollout to finish before the next look
    token = DeployRequest.objects.get(pk=request.pk).token
    # The claim, one read of the names, then one transaction: Kubernetes events, the state and
    # its event and audit row, which incidents follow the request (the transition hook), the
    # release ended and written, the flag locked, cleared, audited.
    with django_assert_max_num_queries(17):
        assert deploy_request_check(request.pk, token) == "succeeded"
    release = Release.objects.get(environment=dev, model=fraud)
    assert (release.requested_by, release.version.version, release.storage_uri) == (
        "mo",
        1,
        version(fraud, 1).source,
    )
    audit = AuditEvent.objects.get(action="deploy.succeeded")
    assert audit.object_repr == f"#{request.pk} fraud v1 → {dev.name}"
    fraud.refresh_from_db()
    assert "rollback-failed:dev" not in fraud.flags
    assert AuditEvent.objects.filter(action="model.flag_cleared").count() == 1
