"""A cluster that stops answering: the rollout's deadline holds, the rollback it opens waits for
the cluster (past DEPLOY_MAX_ATTEMPTS) until it answers or a person aborts it; the request page
and the API say since when the cluster could not be read.

The simulated API server goes offline (`SimCluster.go_offline`: connection refused) and comes
back on the same port; time is frozen and moved by hand."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import time_machine
from django.core.exceptions import PermissionDenied, ValidationError
from django.test import Client
from django.utils import timezone

from apps.audit.models import AuditEvent
from apps.deployments import services
from apps.deployments.api.serializers import DeployRequestSerializer
from apps.deployments.clusters import client_for
from apps.deployments.models import DeployEvent, DeployRequest, Environment, Release
from apps.deployments.services import deploy_request_check, deploy_request_execute
from apps.simcluster.server import SimCluster
from tests.api_errors import api_error
from tests.deployments.factories import DeployRequestFactory
from tests.deployments.support import (
    drive,
    environment_on,
    model_with_versions,
    request_deploy,
    version,
)

pytestmark = pytest.mark.django_db
State = DeployRequest.State
HTMX: dict[str, Any] = {"HTTP_HX_REQUEST": "true"}
URL = "/api/v1/deploy-requests/"


@pytest.fixture
def dev(kubeconfig):
    environment = environment_on(kubeconfig)  # a 30 s progress deadline
    # The worker's client retries each call a few times; here without sleeping in between.
    client_for(environment).sleep = lambda seconds: None
    return environment


@pytest.fixture
def dev_offline(kubeconfig_file):
    """dev with no cluster behind it: reaching one fails the test."""
    return environment_on(kubeconfig_file)


def clock(moment: datetime) -> str:
    return f"{moment.astimezone(UTC):%H:%M:%S} UTC"


def panel(client: Client, request: DeployRequest) -> str:
    """The request page's status panel, as it polls."""
    response = client.get(f"/deployments/requests/{request.pk}/", **HTMX)
    assert response.status_code == 200
    return response.content.decode()


def audit_actions(request: DeployRequest) -> list[str]:
    rows = AuditEvent.objects.filter(
        object_type="deployments.deployrequest", object_id=str(request.pk)
    )
    return list(rows.order_by("occurred_at", "id").values_list("action", flat=True))


def rolling_out_v2(sim: SimCluster, dev: Environment, fraud, member) -> DeployRequest:
    """v1 live, then v2 applied and rolling out."""
    drive(sim, request_deploy(member, dev, fraud, 1).pk)
    second = request_deploy(member, dev, fraud, 2)
    assert deploy_request_execute(second.pk, second.token) == "applied"
    second.refresh_from_db()
    return second


def test_cluster_gone_fails_the_rollout_at_its_deadline_and_the_rollback_waits_for_it(
    sim, dev, fraud, member, client, settings
) -> None:
    client.force_login(member)
    deadline = timedelta(seconds=30 + settings.DEPLOY_DEADLINE_MARGIN_SECONDS)
    with time_machine.travel(timezone.now(), tick=False) as travel:
        second = rolling_out_v2(sim, dev, fraud, member)
        assert second.rolling_out_at is not None
        fails_at = second.rolling_out_at + deadline
        sim.go_offline()
        travel.shift(5)
        lost_at = timezone.now()
        assert deploy_request_check(second.pk, second.token) == "progressing"
        second.refresh_from_db()
        assert (second.state, second.cluster_unreachable_since) == (State.ROLLING_OUT, lost_at)
        assert second.status_reason.startswith("Cannot read the rollout: Cannot reach")
        assert second.status_reason.endswith(f"(unreachable since {clock(lost_at)})")
        assert (
            f"Cluster unreachable since {clock(lost_at)}; the rollout fails at {clock(fails_at)} "
            "if it stays so." in panel(client, second)
        )

        # Later looks before the deadline: still rolling out, still unreachable since then.
        travel.move_to(fails_at)
        assert deploy_request_check(second.pk, second.token) == "progressing"
        second.refresh_from_db()
        assert (second.state, second.cluster_unreachable_since) == (State.ROLLING_OUT, lost_at)
        cannot_read = second.events.filter(message__startswith="Cannot read the rollout")
        assert [e.level for e in cannot_read] == [DeployEvent.Level.WARNING]  # said once

        # Past the deadline and margin, with the cluster still gone: failed, rollback opened.
        travel.shift(1)
        assert deploy_request_check(second.pk, second.token) == "failed"
        second.refresh_from_db()
        assert second.state == State.FAILED
        assert (
            f"cluster unreachable since {lost_at.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC"
            in second.error
        )
        assert f"The deadline ({deadline.seconds} s, at {clock(fails_at)}) passed" in second.error
        assert second.cluster_unreachable_since == lost_at  # kept: it is why it failed
        assert audit_actions(second) == [
            "deploy.requested",
            "deploy.applying",
            "deploy.rolling_out",
            "deploy.failed",
        ]
        rollback = DeployRequest.objects.get(rollback_of=second)
        assert (rollback.kind, rollback.state, rollback.requester) == ("rollback", "queued", None)

        # The rollback keeps trying the cluster past DEPLOY_MAX_ATTEMPTS; it does not fail.
        for _ in range(settings.DEPLOY_MAX_ATTEMPTS + 2):
            rollback.refresh_from_db()
            assert deploy_request_execute(rollback.pk, rollback.token) == "retrying"
            travel.shift(60)
        rollback.refresh_from_db()
        assert (rollback.state, rollback.attempts) == (
            State.APPLYING,
            settings.DEPLOY_MAX_ATTEMPTS + 2,
        )
        waiting_since = rollback.cluster_unreachable_since
        assert waiting_since is not None and rollback.waiting_for_cluster and rollback.abortable
        assert rollback.events.filter(message__contains="keeps trying until the cluster").exists()
        page = panel(client, rollback)
        assert (
            f"Cluster unreachable since {clock(waiting_since)}; retrying until the cluster "
            "answers; abort to stop." in page
        )
        assert "Abort rollback" in page

        # The cluster answers again: the rollback goes through and v1 is live.
        sim.go_online()
        done = drive(sim, rollback.pk)
    assert done.state == State.SUCCEEDED, done.error
    assert done.cluster_unreachable_since is None
    assert Release.objects.get(live_until__isnull=True).version.version == 1
    assert audit_actions(done) == [
        "deploy.rollback_requested",
        *["deploy.applying"] * (settings.DEPLOY_MAX_ATTEMPTS + 3),
        "deploy.rolling_out",
        "deploy.succeeded",
    ]
    assert (
        "Cluster unreachable"
        not in client.get(f"/deployments/requests/{done.pk}/").content.decode()
    )


def test_a_look_that_reads_again_clears_the_outage(sim, dev, fraud, member) -> None:
    second = rolling_out_v2(sim, dev, fraud, member)
    sim.go_offline()
    assert deploy_request_check(second.pk, second.token) == "progressing"
    lost = DeployRequest.objects.get(pk=second.pk)
    assert lost.cluster_unreachable_since is not None
    sim.go_online()
    assert deploy_request_check(lost.pk, lost.token) == "progressing"
    found = DeployRequest.objects.get(pk=second.pk)
    assert (found.state, found.cluster_unreachable_since) == (State.ROLLING_OUT, None)
    assert found.events.filter(message__startswith="Cannot read the rollout").count() == 1
    assert drive(sim, second.pk).state == State.SUCCEEDED


def test_a_deploy_apply_still_gives_up_after_max_attempts(sim, dev, fraud, member, settings):
    request = request_deploy(member, dev, fraud, 1)
    sim.go_offline()
    for _ in range(settings.DEPLOY_MAX_ATTEMPTS - 1):
        request.refresh_from_db()
        assert deploy_request_execute(request.pk, request.token) == "retrying"
    request.refresh_from_db()
    assert request.cluster_unreachable_since is not None
    assert not request.abortable  # only a rollback waits for a person
    assert deploy_request_execute(request.pk, request.token) == "failed"


def test_aborting_a_rollback_that_waits_ends_it_failed_and_flags_the_model(
    sim, dev, fraud, member, outsider
) -> None:
    second = rolling_out_v2(sim, dev, fraud, member)
    sim.go_offline()
    rollback = services.deploy_request_abort(actor=member, deploy=second, reason="p99 up")
    assert rollback is not None
    with pytest.raises(ValidationError, match="Nothing was applied yet"):
        services.deploy_request_abort(actor=member, deploy=rollback)  # queued, not waiting
    assert deploy_request_execute(rollback.pk, rollback.token) == "retrying"
    rollback.refresh_from_db()
    assert rollback.waiting_for_cluster
    retry_token = rollback.token  # the retry the worker scheduled
    with pytest.raises(PermissionDenied):
        services.deploy_request_abort(actor=outsider, deploy=rollback)

    assert services.deploy_request_abort(actor=member, deploy=rollback, reason="gone") is None
    rollback.refresh_from_db()
    assert (rollback.state, rollback.error) == (State.FAILED, "Aborted by mo: gone")
    assert rollback.finished_at is not None
    assert not DeployRequest.objects.filter(rollback_of=rollback).exists()  # no other rollback
    assert DeployRequest.objects.filter(state__in=DeployRequest.ACTIVE_STATES).count() == 0
    fraud.refresh_from_db()
    assert fraud.flags["rollback-failed:dev"].startswith(f"Rollback #{rollback.pk} in dev failed")
    assert "Aborted by mo: gone" in fraud.flags["rollback-failed:dev"]
    assert audit_actions(rollback) == [
        "deploy.rollback_requested",
        "deploy.applying",
        "deploy.failed",
    ]
    aborted = AuditEvent.objects.get(action="deploy.failed", object_id=str(rollback.pk))
    assert (aborted.actor_label, aborted.data["aborted"]) == ("mo", True)
    states = [e.data["to"] for e in rollback.events.filter(kind=DeployEvent.Kind.STATE)[1:]]
    assert states == ["applying", "failed"]
    assert rollback.events.filter(message__startswith="This rollback failed").exists()
    # The retry that was scheduled finds the row fenced; a second abort is refused.
    assert deploy_request_execute(rollback.pk, retry_token) == "stale"
    with pytest.raises(ValidationError, match="already failed"):
        services.deploy_request_abort(actor=member, deploy=rollback)


def test_aborting_a_rolling_out_rollback_starts_no_other(sim, dev, fraud, member) -> None:
    second = rolling_out_v2(sim, dev, fraud, member)
    rollback = services.deploy_request_abort(actor=member, deploy=second)
    assert rollback is not None
    assert deploy_request_execute(rollback.pk, rollback.token) == "applied"
    rollback.refresh_from_db()
    assert rollback.abortable and not rollback.waiting_for_cluster
    assert services.deploy_request_abort(actor=member, deploy=rollback) is None
    rollback.refresh_from_db()
    assert (rollback.state, rollback.error) == (State.FAILED, "Aborted by mo.")
    assert not DeployRequest.objects.filter(rollback_of=rollback).exists()


def test_a_rolling_out_rollback_keeps_looking_past_its_deadline_while_unreachable(
    sim, dev, fraud, member, settings
) -> None:
    with time_machine.travel(timezone.now(), tick=False) as travel:
        second = rolling_out_v2(sim, dev, fraud, member)
        rollback = services.deploy_request_abort(actor=member, deploy=second)
        assert rollback is not None
        assert deploy_request_execute(rollback.pk, rollback.token) == "applied"
        sim.go_offline()
        travel.shift(30 + settings.DEPLOY_DEADLINE_MARGIN_SECONDS + 60)
        rollback.refresh_from_db()
        assert deploy_request_check(rollback.pk, rollback.token) == "progressing"
        rollback.refresh_from_db()
        assert rollback.state == State.ROLLING_OUT and rollback.cluster_unreachable_since
        sim.advance(30)  # the cluster went on meanwhile; the portal could not see it
        sim.go_online()
        assert deploy_request_check(rollback.pk, rollback.token) == "succeeded"
    rollback.refresh_from_db()
    assert rollback.cluster_unreachable_since is None


# --- the page and the API, on rows ----------------------------------------------------------------
def waiting_rollback(environment: Environment, fraud, requester, **fields) -> DeployRequest:
    """A rollback whose apply has been retrying for three minutes (as rows, no cluster)."""
    fields.setdefault("cluster_unreachable_since", timezone.now() - timedelta(minutes=3))
    return DeployRequestFactory(
        rollback=True,
        applying=True,
        environment=environment,
        version=version(fraud, 1),
        requester=requester,
        **fields,
    )


def test_the_api_exposes_since_when_the_cluster_cannot_be_read(
    client, dev_offline, fraud, member
) -> None:
    client.force_login(member)
    rollback = waiting_rollback(dev_offline, fraud, member)
    body = client.get(f"{URL}{rollback.pk}/").json()
    assert body["cluster_unreachable_since"] is not None
    since = rollback.cluster_unreachable_since
    assert since is not None
    assert datetime.fromisoformat(body["cluster_unreachable_since"]) == since
    listed = client.get(URL).json()["results"][0]
    assert listed["cluster_unreachable_since"] == body["cluster_unreachable_since"]
    assert DeployRequestSerializer().fields["cluster_unreachable_since"].read_only
    schema = client.get("/api/schema/", {"format": "json"}).json()
    field = schema["components"]["schemas"]["DeployRequest"]["properties"][
        "cluster_unreachable_since"
    ]
    assert (field["readOnly"], field["nullable"]) == (True, True)


def test_the_api_aborts_a_waiting_rollback_and_refuses_otherwise(
    client, dev_offline, fraud, member, outsider, team
) -> None:
    client.force_login(member)
    other = model_with_versions(team, name="churn")
    applying_deploy = DeployRequestFactory(
        applying=True,
        environment=dev_offline,
        version=version(other, 1),
        requester=member,
        cluster_unreachable_since=timezone.now(),
    )
    refused = api_error(client.post(f"{URL}{applying_deploy.pk}/abort/"), 400)
    assert "being applied this second" in refused["detail"]

    rollback = waiting_rollback(dev_offline, fraud, member)
    client.force_login(outsider)
    assert client.post(f"{URL}{rollback.pk}/abort/").status_code == 404  # cannot see it
    client.force_login(member)
    aborted = client.post(
        f"{URL}{rollback.pk}/abort/", {"reason": "by hand"}, content_type="application/json"
    )
    assert aborted.status_code == 200, aborted.content
    assert (aborted.json()["id"], aborted.json()["state"]) == (rollback.pk, "failed")
    assert aborted.json()["error"] == "Aborted by mo: by hand"
    assert DeployRequest.objects.filter(model=fraud).count() == 1  # no other rollback
    again = api_error(client.post(f"{URL}{rollback.pk}/abort/"), 400)
    assert "already failed" in again["detail"]


def test_a_rollback_being_applied_without_an_outage_cannot_be_aborted(
    client, dev_offline, fraud, member
) -> None:
    client.force_login(member)
    rollback = waiting_rollback(dev_offline, fraud, member, cluster_unreachable_since=None)
    assert not rollback.abortable
    refused = api_error(client.post(f"{URL}{rollback.pk}/abort/"), 400)
    assert "waits for the cluster" in refused["detail"]
    assert "Abort rollback" not in panel(client, rollback)
    rollback.refresh_from_db()
    assert rollback.state == State.APPLYING


def test_the_page_warns_and_offers_the_abort_while_a_rollback_waits(
    client, dev_offline, fraud, member
) -> None:
    client.force_login(member)
    rollback = waiting_rollback(dev_offline, fraud, member)
    since = rollback.cluster_unreachable_since
    assert since is not None
    page = client.get(f"/deployments/requests/{rollback.pk}/").content.decode()
    assert (
        f"Cluster unreachable since {clock(since)}; retrying until the cluster answers; "
        "abort to stop." in page
    )
    response = client.post(f"/deployments/requests/{rollback.pk}/abort/", {"reason": "gone"})
    assert response.status_code == 302
    assert response["Location"] == f"/deployments/requests/{rollback.pk}/"
    rollback.refresh_from_db()
    assert rollback.state == State.FAILED
    final = client.get(f"/deployments/requests/{rollback.pk}/", **HTMX)
    assert final.status_code == 286  # done: the panel stops polling
    body = final.content.decode()
    assert "Cluster unreachable" not in body
    assert "Aborted by mo: gone" in body


def test_the_page_says_when_an_unreadable_rollout_fails(
    client, dev_offline, fraud, member, settings
) -> None:
    client.force_login(member)
    request = DeployRequestFactory(
        rolling_out=True,
        environment=dev_offline,
        version=version(fraud, 1),
        requester=member,
        cluster_unreachable_since=timezone.now(),
    )
    assert request.rolling_out_at is not None and request.cluster_unreachable_since is not None
    fails_at = request.rolling_out_at + timedelta(
        seconds=30 + settings.DEPLOY_DEADLINE_MARGIN_SECONDS
    )
    assert (
        f"Cluster unreachable since {clock(request.cluster_unreachable_since)}; "
        f"the rollout fails at {clock(fails_at)} if it stays so." in panel(client, request)
    )
    assert "Abort and roll back" in panel(client, request)
