"""Render the Kubernetes objects that serve one model version in one environment.

Pure: plain dataclasses in, plain dicts (and YAML) out, no cluster and no database. The same input
always gives byte-identical YAML, so a rendered manifest can be stored, diffed and reviewed.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Any

import yaml

KSERVE = "kserve"
DEPLOYMENT = "deployment"
KNATIVE = "Knative"
STANDARD = "Standard"

PREFIX = "modelport.dev"
MANAGED_BY = "modelport"
MODEL_FORMAT = "mlflow"
# KServe's MLServer runtime declares only the v2 protocol; with the default v1 no runtime matches.
PROTOCOL_VERSION = "v2"
CONTAINER_NAME = "model-server"
HTTP_PORT = 8080
SERVICE_PORT = 80
READINESS_PATH = "/v2/health/ready"
# ISVC names get "-predictor-00001"-style suffixes on the cluster; keep room under 63.
MAX_NAME = 45


class ManifestError(ValueError):
    """The inputs cannot make a valid set of objects (the message says which and why)."""


@dataclass(frozen=True)
class ModelRef:
    """A model version to serve, as the catalog knows it."""

    name: str
    version: str
    storage_uri: str
    run_id: str = ""


@dataclass(frozen=True)
class Target:
    """Where and how to serve: an environment's settings as plain data."""

    environment: str
    namespace: str
    serving_kind: str = KSERVE
    kserve_mode: str = STANDARD
    runtime_image: str = ""
    replicas: int = 1
    max_replicas: int = 1
    cpu_request: str = "100m"
    cpu_limit: str = "1"
    memory_request: str = "512Mi"
    memory_limit: str = "1Gi"
    gpus: int = 0
    progress_deadline_seconds: int = 600


@dataclass(frozen=True)
class RenderOptions:
    """Per-deploy choices on top of the environment's defaults."""

    deploy_request_id: int | None = None
    canary_traffic_percent: int | None = None
    replicas: int | None = None


def object_name(model_name: str) -> str:
    """A DNS-1123 label for the model, stable across versions so each deploy updates one object."""
    slug = re.sub(r"[^a-z0-9]+", "-", model_name.lower()).strip("-")
    digest = hashlib.sha256(model_name.encode()).hexdigest()[:6]
    if not slug:
        return f"model-{digest}"
    if slug[0].isdigit():
        slug = f"m-{slug}"
    if len(slug) > MAX_NAME:
        slug = f"{slug[: MAX_NAME - 7].rstrip('-')}-{digest}"
    return slug


def label_value(text: str) -> str:
    """`text` fitted to a label value (63 chars of [A-Za-z0-9-_.], alphanumeric at both ends)."""
    value = re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-_.")
    if len(value) > 63:
        value = value[:56].rstrip("-_.") + "-" + hashlib.sha256(text.encode()).hexdigest()[:6]
    return value


def render(model: ModelRef, target: Target, options: RenderOptions | None = None) -> list[dict]:
    """The objects to apply, in apply order."""
    options = options or RenderOptions()
    _check(model, target, options)
    if target.serving_kind == KSERVE:
        return [_inference_service(model, target, options)]
    if target.serving_kind == DEPLOYMENT:
        return [_deployment(model, target, options), _service(model, target, options)]
    raise ManifestError(f"Unknown serving kind {target.serving_kind!r}.")


# libyaml's emitter when PyYAML has it (same output, about ten times faster).
SAFE_DUMPER = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def to_yaml(objects: list[dict]) -> str:
    """A multi-document YAML stream; keys keep the order they were built in."""
    return yaml.dump_all(
        objects,
        Dumper=SAFE_DUMPER,
        sort_keys=False,
        default_flow_style=False,
        explicit_start=True,
        width=100,
    )


def from_yaml(text: str) -> list[dict]:
    """The objects of a stream written by `to_yaml`."""
    return [obj for obj in yaml.load_all(text, Loader=SAFE_LOADER) if obj]


def _check(model: ModelRef, target: Target, options: RenderOptions) -> None:
    if not model.name.strip():
        raise ManifestError("The model has no name.")
    if not model.version.strip():
        raise ManifestError("The model version is empty.")
    if not model.storage_uri.strip():
        raise ManifestError(f"Model {model.name} version {model.version} has no artifact URI.")
    replicas = options.replicas if options.replicas is not None else target.replicas
    # Zero only when asked for explicitly (a rollback that scales a failed model down).
    if replicas < 0 or (replicas == 0 and options.replicas != 0):
        raise ManifestError("At least one replica is needed.")
    if target.max_replicas < replicas:
        raise ManifestError(
            f"maxReplicas ({target.max_replicas}) is below the replicas asked for ({replicas})."
        )
    canary = options.canary_traffic_percent
    if canary is not None:
        if not 0 <= canary <= 100:
            raise ManifestError("Canary traffic must be a percentage from 0 to 100.")
        if target.serving_kind != KSERVE or target.kserve_mode != KNATIVE:
            raise ManifestError("Canary traffic needs a KServe environment in Knative mode.")
    if target.serving_kind == DEPLOYMENT and not target.runtime_image:
        raise ManifestError("The Deployment + Service kind needs a runtime image.")


def _labels(model: ModelRef, target: Target, options: RenderOptions) -> dict[str, str]:
    labels = {
        "app.kubernetes.io/name": object_name(model.name),
        "app.kubernetes.io/managed-by": MANAGED_BY,
        f"{PREFIX}/model": label_value(model.name),
        f"{PREFIX}/version": label_value(model.version),
        f"{PREFIX}/environment": label_value(target.environment),
    }
    if options.deploy_request_id is not None:
        labels[f"{PREFIX}/deploy-request"] = str(options.deploy_request_id)
    return labels


def _annotations(model: ModelRef, target: Target, options: RenderOptions) -> dict[str, str]:
    # Labels must be short and restricted; annotations keep the exact values for people and tools.
    annotations = {
        f"{PREFIX}/model-name": model.name,
        f"{PREFIX}/model-version": model.version,
        f"{PREFIX}/storage-uri": model.storage_uri,
        f"{PREFIX}/environment": target.environment,
    }
    if model.run_id:
        annotations[f"{PREFIX}/run-id"] = model.run_id
    if options.deploy_request_id is not None:
        annotations[f"{PREFIX}/deploy-request"] = str(options.deploy_request_id)
    return annotations


def _resources(target: Target) -> dict[str, dict[str, str]]:
    requests = {"cpu": target.cpu_request, "memory": target.memory_request}
    limits = {"cpu": target.cpu_limit, "memory": target.memory_limit}
    if target.gpus:
        requests["nvidia.com/gpu"] = str(target.gpus)
        limits["nvidia.com/gpu"] = str(target.gpus)
    return {"requests": requests, "limits": limits}


def _metadata(model: ModelRef, target: Target, options: RenderOptions) -> dict[str, Any]:
    return {
        "name": object_name(model.name),
        "namespace": target.namespace,
        "labels": _labels(model, target, options),
        "annotations": _annotations(model, target, options),
    }


def _inference_service(model: ModelRef, target: Target, options: RenderOptions) -> dict:
    metadata = _metadata(model, target, options)
    metadata["annotations"]["serving.kserve.io/deploymentMode"] = target.kserve_mode
    if target.kserve_mode == KNATIVE:
        metadata["annotations"]["serving.knative.dev/progress-deadline"] = (
            f"{target.progress_deadline_seconds}s"
        )
    replicas = options.replicas if options.replicas is not None else target.replicas
    predictor: dict[str, Any] = {
        "minReplicas": replicas,
        "maxReplicas": max(target.max_replicas, replicas),
    }
    if options.canary_traffic_percent is not None:
        predictor["canaryTrafficPercent"] = options.canary_traffic_percent
    predictor["model"] = {
        "modelFormat": {"name": MODEL_FORMAT},
        "protocolVersion": PROTOCOL_VERSION,
        "storageUri": model.storage_uri,
        "resources": _resources(target),
    }
    return {
        "apiVersion": "serving.kserve.io/v1beta1",
        "kind": "InferenceService",
        "metadata": metadata,
        "spec": {"predictor": predictor},
    }


def _selector(model: ModelRef) -> dict[str, str]:
    # A Deployment's selector is immutable: only the stable name goes in it, never the version.
    return {"app.kubernetes.io/name": object_name(model.name)}


def _deployment(model: ModelRef, target: Target, options: RenderOptions) -> dict:
    pod_labels = {
        **_selector(model),
        "app.kubernetes.io/managed-by": MANAGED_BY,
        f"{PREFIX}/model": label_value(model.name),
        f"{PREFIX}/version": label_value(model.version),
        f"{PREFIX}/environment": label_value(target.environment),
    }
    pod_annotations = {
        f"{PREFIX}/model-version": model.version,
        f"{PREFIX}/storage-uri": model.storage_uri,
    }
    replicas = options.replicas if options.replicas is not None else target.replicas
    container = {
        "name": CONTAINER_NAME,
        "image": target.runtime_image,
        "env": [
            {"name": "MLSERVER_MODEL_NAME", "value": object_name(model.name)},
            {"name": "MLSERVER_MODEL_VERSION", "value": model.version},
            {"name": "MLSERVER_MODEL_URI", "value": model.storage_uri},
            {"name": "MLSERVER_MODEL_IMPLEMENTATION", "value": "mlserver_mlflow.MLflowRuntime"},
            {"name": "MLSERVER_HTTP_PORT", "value": str(HTTP_PORT)},
        ],
        "ports": [{"name": "http", "containerPort": HTTP_PORT, "protocol": "TCP"}],
        "readinessProbe": {
            "httpGet": {"path": READINESS_PATH, "port": "http"},
            "periodSeconds": 5,
            "failureThreshold": 3,
        },
        "resources": _resources(target),
    }
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": _metadata(model, target, options),
        "spec": {
            "replicas": replicas,
            "progressDeadlineSeconds": target.progress_deadline_seconds,
            "revisionHistoryLimit": 10,
            "selector": {"matchLabels": _selector(model)},
            # Surge instead of dropping pods: serving capacity never dips during a rollout.
            "strategy": {
                "type": "RollingUpdate",
                "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": 0},
            },
            "template": {
                "metadata": {"labels": pod_labels, "annotations": pod_annotations},
                "spec": {"containers": [container]},
            },
        },
    }


def _service(model: ModelRef, target: Target, options: RenderOptions) -> dict:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _metadata(model, target, options),
        "spec": {
            "type": "ClusterIP",
            "selector": _selector(model),
            "ports": [
                {"name": "http", "port": SERVICE_PORT, "targetPort": "http", "protocol": "TCP"}
            ],
        },
    }
