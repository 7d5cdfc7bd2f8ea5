"""Drift: the portal notices when the cluster or the MLflow alias no longer matches the release."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from apps.audit.models import AuditEvent
from apps.catalog.models import RegisteredModel
from apps.deployments.drift import drift_check
from apps.deployments.kube.client import KubeClient
from apps.deployments.models import Release
from tests.catalog.factories import ModelAliasFactory
from tests.deployments.support import drive, environment_on, model_with_versions, request_deploy
from tests.fixtures.cluster import NAMESPACE

pytestmark = pytest.mark.django_db


@pytest.fixture
def live(sim, kubeconfig, team, member):
    dev = environment_on(kubeconfig, "dev", 10)
    fraud = model_with_versions(team)
    drive(sim, request_deploy(member, dev, fraud, 2).pk)
    return Release.objects.select_related("model").get(environment=dev, model=fraud)


def tamper(kube: KubeClient, uri: str, label: str = "9") -> None:
    """Someone edits the Deployment with kubectl, behind the portal's back."""
    live = kube.get("apps/v1", "Deployment", NAMESPACE, "fraud")
    changed: dict[str, Any] = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": "fraud",
            "namespace": NAMESPACE,
            "labels": {"modelport.dev/version": label},
        },
        "spec": {"template": copy.deepcopy(live["spec"]["template"])},
    }
    changed["spec"]["selector"] = live["spec"]["selector"]
    for variable in changed["spec"]["template"]["spec"]["containers"][0]["env"]:
        if variable["name"] == "MLSERVER_MODEL_URI":
            variable["value"] = uri
    kube.apply(changed, field_manager="kubectl", force=True)


def test_a_matching_release_is_healthy_and_unflagged(live) -> None:
    assert drift_check() == {"checked": 1, "drifted": 0, "unreachable": 0}
    live.refresh_from_db()
    assert (live.health, live.drift) == ("healthy", [])
    assert live.checked_at is not None
    assert RegisteredModel.objects.get(pk=live.model_id).flags == {}


def test_an_object_changed_behind_the_portals_back_is_flagged_then_cleared(sim, kube, live) -> None:
    tamper(kube, "s3://somewhere/else")
    sim.advance(10)
    assert drift_check()["drifted"] == 1
    live.refresh_from_db()
    assert live.drift == [
        "Deployment/fraud serves s3://somewhere/else, not s3://models/fraud/2.",
        "Deployment/fraud is labelled version 9, not 2.",
    ]
    flags = RegisteredModel.objects.get(pk=live.model_id).flags
    assert flags["drift:dev"].startswith("Drift in dev: Deployment/fraud serves s3://somewhere")
    assert drift_check()["drifted"] == 1  # unchanged: no second audit event
    assert AuditEvent.objects.filter(action="model.flag_raised").count() == 1
    tamper(kube, "s3://models/fraud/2", label="2")  # put back as it was
    drift_check()
    live.refresh_from_db()
    assert live.drift == []
    assert "drift:dev" not in RegisteredModel.objects.get(pk=live.model_id).flags
    assert AuditEvent.objects.filter(action="model.flag_cleared").count() == 1


def test_a_deleted_object_is_missing(kube, live) -> None:
    kube.delete("apps/v1", "Deployment", NAMESPACE, "fraud")
    drift_check()
    live.refresh_from_db()
    assert live.health == "missing"
    assert live.drift == ["Deployment/fraud is missing from namespace models."]


def test_an_mlflow_alias_pointing_elsewhere_is_drift(live) -> None:
    Release.objects.filter(pk=live.pk).update(alias="dev", alias_moved_at=live.live_from)
    ModelAliasFactory(model=live.model, alias="dev", version=1)
    drift_check()
    live.refresh_from_db()
    assert live.drift == ["MLflow alias @dev points at v1, not v2."]


def test_an_unreachable_cluster_is_reported_not_flagged(sim, live) -> None:
    sim.fail_next(503, times=20)
    assert drift_check()["unreachable"] == 1
    live.refresh_from_db()
    assert live.health == "unreachable"
    assert RegisteredModel.objects.get(pk=live.model_id).flags == {}
