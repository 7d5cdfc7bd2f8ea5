"""Server-side apply and errors, through the real `kubernetes` client against the simulator."""

from __future__ import annotations

import json
import socket

import pytest
from kubernetes import client as k8s
from kubernetes.client.exceptions import ApiException

from apps.deployments.kube import manifests
from apps.deployments.kube.client import Connection, KubeClient, KubeError, KubeUnreachableError
from apps.simcluster.server import SimCluster, kubeconfig_for, write_kubeconfig
from tests.fixtures.cluster import NAMESPACE

MODEL = manifests.ModelRef("Churn", "1", "s3://artifacts/churn/1")
TARGET = manifests.Target(
    environment="dev",
    namespace=NAMESPACE,
    serving_kind=manifests.DEPLOYMENT,
    runtime_image="docker.io/seldonio/mlserver:1.6.1-mlflow",
)


def rendered(version: str = "1", image: str = TARGET.runtime_image) -> list[dict]:
    model = manifests.ModelRef("Churn", version, f"s3://artifacts/churn/{version}")
    target = manifests.Target(**{**vars(TARGET), "runtime_image": image})
    return manifests.render(model, target)


def test_apply_creates_the_objects(kube: KubeClient) -> None:
    deployment, service = (kube.apply(obj) for obj in rendered())
    assert deployment["metadata"]["generation"] == 1
    assert deployment["metadata"]["managedFields"][0]["manager"] == "modelport"
    assert deployment["metadata"]["managedFields"][0]["operation"] == "Apply"
    assert service["spec"]["clusterIP"]  # defaulted by the server
    live = kube.get("apps/v1", "Deployment", NAMESPACE, "churn")
    assert live["spec"]["template"]["spec"]["containers"][0]["image"] == TARGET.runtime_image


def test_reapply_without_change_keeps_generation_and_resource_version(kube: KubeClient) -> None:
    first = kube.apply(rendered()[0])
    again = kube.apply(rendered()[0])
    assert again["metadata"]["generation"] == first["metadata"]["generation"] == 1
    assert again["metadata"]["resourceVersion"] == first["metadata"]["resourceVersion"]


def test_changed_image_bumps_generation(kube: KubeClient) -> None:
    kube.apply(rendered()[0])
    changed = kube.apply(rendered(image="docker.io/seldonio/mlserver:1.7.0-mlflow")[0])
    assert changed["metadata"]["generation"] == 2
    image = changed["spec"]["template"]["spec"]["containers"][0]["image"]
    assert image == "docker.io/seldonio/mlserver:1.7.0-mlflow"


def test_label_only_change_does_not_bump_generation(kube: KubeClient) -> None:
    obj = rendered()[0]
    kube.apply(obj)
    obj["metadata"]["labels"]["team"] = "fraud"
    assert kube.apply(obj)["metadata"]["generation"] == 1


def test_conflicting_field_manager_gets_409_unless_forced(kube: KubeClient) -> None:
    kube.apply(rendered()[0])
    theirs = rendered(image="registry.example/hotfix:1")[0]
    with pytest.raises(KubeError) as caught:
        kube.apply(theirs, field_manager="kubectl-edit", force=False)
    assert caught.value.status == 409
    assert caught.value.reason == "Conflict"
    assert caught.value.message.startswith("Apply failed with 1 conflict")
    (cause,) = caught.value.details["causes"]
    assert cause["reason"] == "FieldManagerConflict"
    assert cause["field"] == '.spec.template.spec.containers[name="model-server"].image'
    forced = kube.apply(theirs, field_manager="kubectl-edit", force=True)
    assert (
        forced["spec"]["template"]["spec"]["containers"][0]["image"] == "registry.example/hotfix:1"
    )
    # Ownership moved: the portal's next apply without force now conflicts the other way.
    with pytest.raises(KubeError, match='conflict with "kubectl-edit"'):
        kube.apply(rendered()[0], force=False)


def test_fields_no_longer_applied_are_pruned(kube: KubeClient) -> None:
    obj = rendered()[0]
    obj["metadata"]["annotations"]["temporary"] = "yes"
    kube.apply(obj)
    del obj["metadata"]["annotations"]["temporary"]
    assert "temporary" not in kube.apply(obj)["metadata"]["annotations"]


def test_stale_resource_version_gets_409(kube: KubeClient) -> None:
    kube.apply(rendered()[0])
    apps = k8s.AppsV1Api(kube.api)
    stale = apps.read_namespaced_deployment("churn", NAMESPACE)
    apps.patch_namespaced_deployment("churn", NAMESPACE, {"spec": {"replicas": 2}})
    stale.spec.replicas = 3
    with pytest.raises(ApiException) as caught:
        apps.replace_namespaced_deployment("churn", NAMESPACE, stale)
    assert caught.value.body is not None
    body = json.loads(caught.value.body)
    assert caught.value.status == 409
    assert body["reason"] == "Conflict"
    assert body["message"] == (
        'Operation cannot be fulfilled on deployments.apps "churn": the object has been '
        "modified; please apply your changes to the latest version and try again"
    )
    assert apps.read_namespaced_deployment("churn", NAMESPACE).spec.replicas == 2


def test_missing_namespace_is_404_with_the_api_message(kube: KubeClient) -> None:
    obj = rendered()[0]
    obj["metadata"]["namespace"] = "nowhere"
    with pytest.raises(KubeError) as caught:
        kube.apply(obj)
    assert (caught.value.status, caught.value.reason) == (404, "NotFound")
    assert str(caught.value) == 'namespaces "nowhere" not found'


def test_invalid_object_is_422_with_causes(kube: KubeClient) -> None:
    obj = rendered()[0]
    obj["spec"]["selector"]["matchLabels"] = {"app": "other"}
    with pytest.raises(KubeError) as caught:
        kube.apply(obj)
    assert (caught.value.status, caught.value.reason) == (422, "Invalid")
    assert caught.value.details["causes"][0]["field"] == "spec.template.metadata.labels"


def test_kserve_webhook_denial_is_403(kube: KubeClient) -> None:
    target = manifests.Target(environment="dev", namespace=NAMESPACE)
    (isvc,) = manifests.render(MODEL, target)
    isvc["spec"]["predictor"]["model"]["protocolVersion"] = "v1"
    with pytest.raises(KubeError) as caught:
        kube.apply(isvc)
    assert caught.value.status == 403
    assert "no runtime found" in caught.value.message


def test_dry_run_changes_nothing(kube: KubeClient) -> None:
    planned = kube.apply(rendered()[0], dry_run=True)
    assert planned["spec"]["revisionHistoryLimit"] == 10
    assert kube.get_or_none("apps/v1", "Deployment", NAMESPACE, "churn") is None


def test_delete_removes_the_object_and_its_replica_sets(sim: SimCluster, kube: KubeClient) -> None:
    kube.apply(rendered()[0])
    sim.advance(2)
    assert kube.list("apps/v1", "ReplicaSet", NAMESPACE)
    assert kube.delete("apps/v1", "Deployment", NAMESPACE, "churn") is True
    assert kube.delete("apps/v1", "Deployment", NAMESPACE, "churn") is False
    assert kube.list("apps/v1", "ReplicaSet", NAMESPACE) == []


def test_server_errors_are_retried_with_backoff(sim: SimCluster, kube: KubeClient) -> None:
    delays: list[float] = []
    kube.sleep = delays.append
    sim.fail_next(503, times=2)
    assert kube.version()["gitVersion"].endswith("simulated")
    assert delays == [0.001, 0.002]


def test_too_many_requests_is_retried(sim: SimCluster, kube: KubeClient) -> None:
    kube.sleep = lambda _: None
    sim.fail_next(429)
    assert kube.read_namespace(NAMESPACE)["metadata"]["name"] == NAMESPACE


def test_client_errors_are_not_retried(sim: SimCluster, kube: KubeClient) -> None:
    before = len(sim.requests)
    with pytest.raises(KubeError):
        kube.get("apps/v1", "Deployment", NAMESPACE, "missing")
    assert len(sim.requests) == before + 1


def test_persistent_server_errors_give_up_with_the_status(
    sim: SimCluster, kube: KubeClient
) -> None:
    kube.sleep = lambda _: None
    sim.fail_next(500, times=kube.attempts)
    with pytest.raises(KubeError) as caught:
        kube.version()
    assert (caught.value.status, caught.value.reason) == (500, "InternalError")


def test_unreachable_server_is_retried_then_reported(tmp_path) -> None:
    with socket.socket() as probe:  # a port nothing listens on once closed
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config = write_kubeconfig(
        tmp_path / "config", kubeconfig_for(f"http://127.0.0.1:{port}", token="t")
    )
    client = KubeClient.connect(Connection(str(config)), sleep=lambda _: None)
    with pytest.raises(KubeUnreachableError, match="connection refused"):
        client.version()


def test_events_are_listed_for_one_object(sim: SimCluster, kube: KubeClient) -> None:
    kube.apply(rendered()[0])
    sim.advance(3)
    events = kube.list_events(NAMESPACE, involved_name="churn")
    assert [event["reason"] for event in events] == ["ScalingReplicaSet"]
    assert events[0]["involvedObject"]["kind"] == "Deployment"


def test_typed_client_models_accept_the_simulator_responses(
    sim: SimCluster, kube: KubeClient
) -> None:
    for obj in rendered():
        kube.apply(obj)
    sim.advance(10)
    # Client 37 validates responses with pydantic: these fail on a malformed object.
    apps, core = k8s.AppsV1Api(kube.api), k8s.CoreV1Api(kube.api)
    deployment = apps.read_namespaced_deployment("churn", NAMESPACE)
    assert deployment.status is not None
    assert deployment.status.available_replicas == 1
    replica_set = apps.list_namespaced_replica_set(NAMESPACE).items[0]
    assert replica_set.metadata is not None
    assert replica_set.metadata.annotations
    service = core.read_namespaced_service("churn", NAMESPACE)
    assert service.spec is not None and service.spec.ports
    assert service.spec.ports[0].port == 80
    assert core.list_namespaced_event(NAMESPACE).items
    assert k8s.VersionApi(kube.api).get_code().git_version.startswith("v1.33")
