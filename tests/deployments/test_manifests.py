"""Rendering: deterministic, reviewed once as golden files, valid against real schemas."""

from __future__ import annotations

import json
from pathlib import Path

import kubernetes_validate
import pytest
import yaml
from jsonschema import Draft202012Validator
from referencing import Registry, Resource

from apps.deployments.kube import manifests
from apps.deployments.kube.manifests import ManifestError, ModelRef, RenderOptions, Target

# The Kubernetes version the portal targets; kubernetes-validate checks core kinds against it.
KUBERNETES_VERSION = "1.33.0"
HERE = Path(__file__).parent
GOLDEN = HERE / "golden"
MODEL = ModelRef(
    name="Fraud Scorer",
    version="7",
    storage_uri="s3://mlflow-artifacts/12/abc123/artifacts/model",
    run_id="abc123",
)
KSERVE = Target(
    environment="production",
    namespace="models-prod",
    serving_kind=manifests.KSERVE,
    kserve_mode=manifests.KNATIVE,
    replicas=2,
    max_replicas=4,
    cpu_request="500m",
    cpu_limit="2",
    memory_request="1Gi",
    memory_limit="2Gi",
    gpus=1,
)
PLAIN = Target(
    environment="dev",
    namespace="models-dev",
    serving_kind=manifests.DEPLOYMENT,
    runtime_image="docker.io/seldonio/mlserver:1.6.1-mlflow",
    progress_deadline_seconds=120,
)
OPTIONS = RenderOptions(deploy_request_id=42, canary_traffic_percent=10)


def kserve_validator() -> Draft202012Validator:
    definitions = (
        Path(kubernetes_validate.__file__).parent
        / "kubernetes-json-schema"
        / f"v{KUBERNETES_VERSION}-local-strict"
        / "_definitions.json"
    )
    registry = Registry().with_resource(
        "k8s-definitions.json", Resource.from_contents(json.loads(definitions.read_text()))
    )
    schema = json.loads((HERE / "schemas" / "kserve-inferenceservice-v1beta1.json").read_text())
    return Draft202012Validator(schema, registry=registry)


@pytest.mark.parametrize(
    ("target", "options", "golden"),
    [(KSERVE, OPTIONS, "inferenceservice.yaml"), (PLAIN, RenderOptions(42), "deployment.yaml")],
)
def test_render_matches_the_reviewed_golden_file(target, options, golden) -> None:
    text = manifests.to_yaml(manifests.render(MODEL, target, options))
    assert text == (GOLDEN / golden).read_text()


def test_render_is_byte_identical_for_the_same_input() -> None:
    first = manifests.to_yaml(manifests.render(MODEL, KSERVE, OPTIONS))
    second = manifests.to_yaml(manifests.render(ModelRef(**vars(MODEL)), KSERVE, OPTIONS))
    assert first.encode() == second.encode()


def test_plain_kind_objects_are_valid_kubernetes() -> None:
    objects = manifests.render(MODEL, PLAIN, RenderOptions(deploy_request_id=42))
    assert [obj["kind"] for obj in objects] == ["Deployment", "Service"]
    for obj in objects:
        kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)


def test_inference_service_is_valid_against_the_kserve_schema() -> None:
    (isvc,) = manifests.render(MODEL, KSERVE, OPTIONS)
    errors = [error.message for error in kserve_validator().iter_errors(isvc)]
    assert errors == []
    # The metadata is core Kubernetes; check it there too.
    kubernetes_validate.validate(
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": isvc["metadata"]},
        KUBERNETES_VERSION,
        strict=True,
    )


def test_kserve_schema_catches_a_misplaced_field() -> None:
    (isvc,) = manifests.render(MODEL, KSERVE, OPTIONS)
    isvc["spec"]["predictor"]["model"]["storageURI"] = "s3://typo"
    errors = [error.message for error in kserve_validator().iter_errors(isvc)]
    assert errors == ["Additional properties are not allowed ('storageURI' was unexpected)"]


def test_inference_service_shape_for_kserve_mlserver() -> None:
    (isvc,) = manifests.render(MODEL, KSERVE, OPTIONS)
    model = isvc["spec"]["predictor"]["model"]
    assert model["modelFormat"] == {"name": "mlflow"}
    assert model["protocolVersion"] == "v2"
    assert model["storageUri"] == MODEL.storage_uri
    assert model["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert isvc["spec"]["predictor"]["canaryTrafficPercent"] == 10
    assert isvc["metadata"]["labels"]["modelport.dev/deploy-request"] == "42"
    assert isvc["metadata"]["annotations"]["serving.kserve.io/deploymentMode"] == "Knative"


def test_deployment_carries_the_model_uri_and_a_stable_selector() -> None:
    deployment, service = manifests.render(MODEL, PLAIN)
    env = {
        item["name"]: item["value"]
        for item in deployment["spec"]["template"]["spec"]["containers"][0]["env"]
    }
    assert env["MLSERVER_MODEL_URI"] == MODEL.storage_uri
    assert deployment["spec"]["selector"]["matchLabels"] == {
        "app.kubernetes.io/name": "fraud-scorer"
    }
    assert service["spec"]["selector"] == deployment["spec"]["selector"]["matchLabels"]
    assert "modelport.dev/deploy-request" not in deployment["metadata"]["labels"]


@pytest.mark.parametrize(
    ("model", "target", "options", "message"),
    [
        (ModelRef("m", "1", ""), PLAIN, RenderOptions(), "has no artifact URI"),
        (MODEL, PLAIN, RenderOptions(canary_traffic_percent=10), "Knative mode"),
        (MODEL, KSERVE, RenderOptions(canary_traffic_percent=101), "from 0 to 100"),
        (MODEL, KSERVE, RenderOptions(replicas=9), r"maxReplicas \(4\) is below"),
        (MODEL, Target("dev", "ns", manifests.DEPLOYMENT), RenderOptions(), "runtime image"),
    ],
)
def test_render_refuses_inputs_that_cannot_work(model, target, options, message) -> None:
    with pytest.raises(ManifestError, match=message):
        manifests.render(model, target, options)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("Fraud Scorer", "fraud-scorer"),
        ("team/Model_v2", "team-model-v2"),
        ("2024 forecast", "m-2024-forecast"),
        ("x" * 80, "x" * 38 + "-d929cd"),
    ],
)
def test_object_name_is_a_dns_label(name: str, expected: str) -> None:
    assert manifests.object_name(name) == expected
    assert len(manifests.object_name(name)) <= manifests.MAX_NAME


def test_label_values_are_valid_for_any_version_text() -> None:
    value = manifests.label_value("v1.2 (candidate)/" + "y" * 80)
    kubernetes_validate.validate(
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "x", "labels": {"v": value}},
        },
        KUBERNETES_VERSION,
        strict=True,
    )
    assert yaml.safe_load(manifests.to_yaml([{"v": value}]))["v"] == value
