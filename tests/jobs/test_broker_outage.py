"""The broker goes away and comes back: nothing promised is lost, nothing is done twice.

A Redis of this test's own is the broker (never the machine's shared one), with a real worker
and a real beat on it, a real MLflow server and the simulated cluster. While the broker is down,
filing a deploy, the deciding approval of a protected one and a signed MLflow webhook each get
their normal answer; once it is back, beat's re-drive hands each to the worker, and every piece
of work is carried out exactly once.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.conf import settings
from django.test import Client
from django.utils import timezone

from apps.approvals.models import ApprovalRequest
from apps.audit.models import AuditEvent
from apps.catalog.models import ModelVersion, RegisteredModel, WebhookDelivery
from apps.catalog.sync import SyncMode, registry_sync
from apps.catalog.webhooks import expected_signature
from apps.deployments.models import DeployRequest, Release
from apps.jobs.models import RedriveCount
from apps.simcluster.server import SimCluster
from portal.celery import app as celery_app
from tests.accounts.factories import MembershipFactory, TeamFactory, UserFactory
from tests.deployments.support import environment_on
from tests.deployments.worker_fixtures import WORKER_ENV
from tests.fixtures.broker import celery_broker
from tests.fixtures.redis_server import RedisServer
from tests.fixtures.workers import BeatProcess, WorkerProcess
from tests.polling import wait_until

pytestmark = [pytest.mark.worker, pytest.mark.mlflow, pytest.mark.django_db(transaction=True)]

REDRIVE_SECONDS = 2
OUTAGE_ENV = {
    **WORKER_ENV,  # looks every 0.2 s; a request silent for 2 s counts as stuck
    "HANDOFF_GRACE_SECONDS": "1",
    "HANDOFF_REDRIVE_SECONDS": str(REDRIVE_SECONDS),
}
STEPS = ("deploy.requested", "deploy.applying", "deploy.rolling_out", "deploy.succeeded")


class Stack:
    """The worker and beat on the private broker, and this process sending to it too."""

    def __init__(self, broker: RedisServer, worker: WorkerProcess, beat: BeatProcess) -> None:
        self.broker, self.worker, self.beat = broker, worker, beat

    def logs(self) -> str:
        return f"worker:\n{self.worker.log()}\nbeat:\n{self.beat.log()}"


@pytest.fixture
def stack(mlflow_uri: str, own_redis: RedisServer, tmp_path: Path) -> Iterator[Stack]:
    queue = f"modelport-outage-{uuid.uuid4().hex[:10]}"
    env = {**OUTAGE_ENV, "CELERY_BROKER_URL": own_redis.url}
    worker = WorkerProcess(queue=queue, log_dir=tmp_path, extra_env=env)
    beat = BeatProcess(queue=queue, log_dir=tmp_path, extra_env=env)
    previous_queue = celery_app.conf.task_default_queue
    with celery_broker(own_redis.url):
        celery_app.conf.task_default_queue = queue
        worker.start()
        beat.start()
        try:
            yield Stack(own_redis, worker, beat)
        finally:
            beat.stop()
            worker.stop()
            celery_app.conf.task_default_queue = previous_queue


def signed_webhook(client: Client, name: str, version: int) -> int:
    body = json.dumps(
        {
            "entity": "model_version",
            "action": "created",
            "timestamp": timezone.now().isoformat(),
            "data": {"name": name, "version": str(version)},
        }
    ).encode()
    delivery, stamp = str(uuid.uuid4()), str(int(time.time()))
    secret = settings.MLFLOW_WEBHOOK_SECRET
    headers = {
        "X-MLflow-Delivery-Id": delivery,
        "X-MLflow-Timestamp": stamp,
        "X-MLflow-Signature": expected_signature(secret, delivery, stamp, body),
    }
    response = client.post("/hooks/mlflow/", body, content_type="application/json", headers=headers)
    return response.status_code


def test_work_promised_while_the_broker_is_down_is_done_once_it_is_back(
    stack: Stack, running_cluster: SimCluster, registry_builder, mlflow_client, tmp_path
) -> None:
    team = TeamFactory(slug="fraud")
    member = MembershipFactory(team=team, user=UserFactory(username="mo")).user
    risk = TeamFactory(slug="risk")
    reviewer = MembershipFactory(team=risk, user=UserFactory(username="rae")).user
    name = registry_builder.model("fraud", tags={"portal.team": team.slug})
    for _ in range(2):
        registry_builder.version(name, metrics={"auc": 0.9})
    registry_sync(mode=SyncMode.FULL)
    model = RegisteredModel.objects.get(name=name)
    kubeconfig = running_cluster.write_kubeconfig(tmp_path / "kubeconfig")
    environment_on(kubeconfig, "dev", 10, mlflow_alias="dev")
    environment_on(
        kubeconfig, "prod", 30, mlflow_alias="prod", required_approvals=1, reviewer_teams=[risk]
    )
    filer, approver = Client(), Client()
    filer.force_login(member)
    approver.force_login(reviewer)
    waiting = filer.post(
        "/api/v1/deploy-requests/",
        {"model": name, "version": 2, "environment": "prod"},
        content_type="application/json",
    )
    assert waiting.json()["state"] == "pending_approval", waiting.json()
    approval_id = waiting.json()["approval"]
    new_version = registry_builder.version(name)

    stack.broker.stop()
    filed = filer.post(
        "/api/v1/deploy-requests/",
        {"model": name, "version": 1, "environment": "dev"},
        content_type="application/json",
    )
    assert filed.status_code == 201, filed.content
    assert filed.json()["state"] == "queued"
    reviewed = approver.post(
        f"/api/v1/approvals/{approval_id}/review/",
        {"decision": "approve"},
        content_type="application/json",
    )
    assert reviewed.status_code == 201, reviewed.content
    assert reviewed.json()["state"] == "approved"
    assert signed_webhook(Client(), name, new_version) == 202
    # Nothing could be handed over: all of it waits in the rows.
    assert DeployRequest.objects.get(pk=waiting.json()["id"]).state == "pending_approval"
    assert WebhookDelivery.objects.get().applied_at is None

    stack.broker.start()
    back, back_at = time.monotonic(), timezone.now()
    deploys = [filed.json()["id"], waiting.json()["id"]]
    done = DeployRequest.objects.filter(pk__in=deploys, state="succeeded")
    moved = Release.objects.filter(deploy_request__in=deploys, alias_moved_at__isnull=False)
    applied = WebhookDelivery.objects.filter(applied_at__isnull=False)
    wait_until(
        lambda: done.count() == 2 and moved.count() == 2 and applied.exists(),
        timeout=120,
        explain=stack.logs,
    )
    took = time.monotonic() - back
    handed = {
        "queued deploy taken": DeployRequest.objects.get(pk=deploys[0]).applying_at,
        "approval effect run": ApprovalRequest.objects.get(pk=approval_id).effect_done_at,
        "delivery applied": WebhookDelivery.objects.get().applied_at,
    }
    seconds = {what: f"{(at - back_at).total_seconds():.1f} s" for what, at in handed.items() if at}
    # Figures for the record (`-s` shows them), not a timed assertion.
    print(
        f"\nre-drive period {REDRIVE_SECONDS} s; after the broker came back: {seconds}; "
        f"last work done after {took:.1f} s"
    )

    # Each carried out, once.
    for deploy_id in deploys:
        actions = list(
            AuditEvent.objects.filter(
                object_type="deployments.deployrequest", object_id=str(deploy_id)
            ).values_list("action", flat=True)
        )
        assert [actions.count(step) for step in STEPS] == [1, 1, 1, 1], actions
        assert Release.objects.filter(deploy_request_id=deploy_id).count() == 1
    queued = AuditEvent.objects.filter(action="deploy.queued").values_list("object_id", flat=True)
    assert list(queued) == [str(waiting.json()["id"])]  # by the approval's effect, once
    approval = ApprovalRequest.objects.get(pk=approval_id)
    assert approval.effect_done_at is not None
    assert AuditEvent.objects.filter(action="approval.approved").count() == 1
    moves = AuditEvent.objects.filter(action="alias.moved", object_id=str(model.pk))
    assert sorted(event.data["alias"] for event in moves) == ["dev", "prod"]
    assert ModelVersion.objects.filter(model=model, version=new_version).exists()
    assert WebhookDelivery.objects.count() == 1
    assert int(mlflow_client.get_model_version_by_alias(name, "prod").version) == 2
    # The re-drive handed over what was promised: the queued deploy, the approval's effect,
    # the webhook delivery.
    redriven = dict(RedriveCount.objects.values_list("kind", "total"))
    assert redriven.get("deploy_request", 0) >= 1, redriven
    assert redriven.get("approval_effect", 0) >= 1, redriven
    assert redriven.get("webhook_delivery", 0) >= 1, redriven
