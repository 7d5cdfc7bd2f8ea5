"""Failed rollouts open draft incidents; requests an incident follows feed its timeline."""

from __future__ import annotations

import pytest

from apps.audit.models import AuditEvent
from apps.deployments.models import DeployRequest
from apps.deployments.services import deploy_request_fail
from apps.deployments.services.transitions import deploy_request_transition
from apps.incidents.models import Incident, IncidentSource, IncidentStatus, TimelineKind
from tests.deployments.factories import DeployRequestFactory, ReleaseFactory
from tests.incidents.factories import IncidentFactory

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("offline")]


def test_a_failed_rollout_opens_a_draft_with_the_request_the_diff_and_the_approvers(
    fraud, production
):
    v1, v2 = fraud.versions.get(version=1), fraud.versions.get(version=2)
    v1.run_params, v1.run_metrics = {"depth": "4", "seed": "1"}, {"auc": 0.91}
    v1.save()
    v2.run_params, v2.run_metrics = {"depth": "8", "seed": "1"}, {"auc": 0.85}
    v2.save()
    ReleaseFactory(deploy_request__environment=production, deploy_request__version=v1)
    deploy = DeployRequestFactory(environment=production, version=v2, rolling_out=True)

    deploy_request_fail(deploy, deploy.token, "Back-off pulling image")

    incident = Incident.objects.get()
    assert incident.status == IncidentStatus.DRAFT
    assert incident.source == IncidentSource.DEPLOY_FAILURE
    assert incident.severity == "sev3"
    assert incident.title == "Rollout of fraud v2 in production failed"
    assert incident.created_by is None
    assert incident.started_at == deploy.rolling_out_at
    assert set(incident.deploy_requests.all()) == {deploy}
    assert set(incident.registered_models.all()) == {fraud}
    assert set(incident.environments.all()) == {production}
    opened = incident.timeline.get(kind=TimelineKind.OPENED)
    assert opened.body == (
        "Opened as a draft: SEV3, Rollout of fraud v2 in production failed. Deploy request "
        f"#{deploy.pk} failed: Back-off pulling image v1 was live before. Affects environment "
        "production, model fraud."
    )
    assert opened.data["diff"] == {
        "params": [["depth", "4", "8"]],
        "metrics": [["auc", 0.91, 0.85]],
    }
    assert opened.data["approvers"] == []
    states = incident.timeline.filter(kind=TimelineKind.DEPLOY_EVENT).values_list("body", flat=True)
    assert [body.split(": ", 1)[1] for body in states] == ["Failed: Back-off pulling image"]
    assert AuditEvent.objects.filter(action="incident.opened", actor_label="portal").count() == 1


def test_the_automatic_rollback_is_followed_by_the_draft(fraud, production):
    deploy = DeployRequestFactory(
        environment=production, version=fraud.versions.get(version=2), rolling_out=True
    )
    deploy_request_fail(deploy, deploy.token, "Crash loop")
    rollback = DeployRequest.objects.get(rollback_of=deploy)
    incident = Incident.objects.get()

    deploy_request_transition(
        rollback,
        to=DeployRequest.State.APPLYING,
        from_states=(DeployRequest.State.QUEUED,),
        actor="deploy-worker",
        message="Applying the rollback.",
    )
    assert set(incident.deploy_requests.all()) == {deploy, rollback}
    bodies = list(
        incident.timeline.filter(kind=TimelineKind.DEPLOY_EVENT, data__deploy_request=rollback.pk)
        .order_by("at", "id")
        .values_list("body", flat=True)
    )
    assert [body.split(": ", 1)[1] for body in bodies][-1] == "Applying the rollback."
    assert len(bodies) == 2  # its opening note and the move to applying
    assert Incident.objects.count() == 1


def test_a_failure_already_tied_to_an_open_incident_joins_it(fraud, production):
    deploy = DeployRequestFactory(
        environment=production, version=fraud.versions.get(version=2), rolling_out=True
    )
    incident = IncidentFactory(registered_models=[fraud])
    incident.deploy_requests.add(deploy)
    deploy_request_fail(deploy, deploy.token, "OOMKilled")
    assert Incident.objects.count() == 1
    assert incident.timeline.filter(body__endswith="Failed: OOMKilled").exists()


def test_a_failed_rollback_with_no_incident_opens_a_sev2_draft(fraud, production):
    rollback = DeployRequestFactory(
        environment=production, version=fraud.versions.get(version=1), rolling_out=True,
        rollback=True,
    )  # fmt: skip
    deploy_request_fail(rollback, rollback.token, "Cluster says no")
    incident = Incident.objects.get()
    assert (incident.severity, incident.title) == (
        "sev2",
        "Rollback of fraud v1 in production failed",
    )
