"""What the simulated API server refuses (422 Invalid, 403 from the KServe webhook) and defaults.

A subset of the real rules: the ones a portal bug or a bad environment setting would hit.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from apps.simcluster.resources import ResourceType

DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
WEBHOOK = 'admission webhook "inferenceservice.kserve-webhook-server.validator" denied the request'
# Framework shorthands (predictor.sklearn, …) are the other way to name an implementation.
IMPLEMENTATIONS = (
    "model", "sklearn", "xgboost", "tensorflow", "pytorch", "triton", "onnx", "pmml",
    "lightgbm", "paddle", "huggingface",
)  # fmt: skip


def _invalid(rt: ResourceType, name: str, causes: list[tuple[str, str, str]]) -> Exception:
    from apps.simcluster.resources import SimApiError

    text = ", ".join(f"{field}: {message}" for _, field, message in causes)
    return SimApiError(
        422,
        "Invalid",
        f'{rt.kind}.{rt.group or "core"} "{name}" is invalid: {text}'.replace(".core ", " "),
        details={
            "name": name,
            "group": rt.group,
            "kind": rt.kind,
            "causes": [
                {"reason": reason, "message": message, "field": field}
                for reason, field, message in causes
            ],
        },
    )


def check(rt: ResourceType, obj: dict[str, Any]) -> None:
    """Raise the API's 422 (or the webhook's 403) for an object a real server would refuse."""
    name = (obj.get("metadata") or {}).get("name") or ""
    causes: list[tuple[str, str, str]] = []
    pattern, limit = (
        (DNS_LABEL, 63) if rt.kind in {"Namespace", "Service"} else (DNS_SUBDOMAIN, 253)
    )
    if rt.kind == "Event":
        pattern = re.compile(r".+")
    if not name:
        causes.append(("FieldValueRequired", "metadata.name", "Required value: name is required"))
    elif not pattern.match(name) or len(name) > limit:
        causes.append(
            (
                "FieldValueInvalid",
                "metadata.name",
                f'Invalid value: "{name}": a lowercase RFC 1123 '
                f"{'label' if limit == 63 else 'subdomain'} must consist of lower case "
                "alphanumeric characters or '-', and must start and end with an alphanumeric "
                "character",
            )
        )
    spec = obj.get("spec") or {}
    if rt.kind in {"Deployment", "ReplicaSet"}:
        causes += _workload_causes(spec)
    elif rt.kind == "Service":
        if not spec.get("ports") and spec.get("type", "ClusterIP") != "ExternalName":
            causes.append(("FieldValueRequired", "spec.ports", "Required value"))
    elif rt.kind == "InferenceService" and not isinstance(spec.get("predictor"), dict):
        causes.append(("FieldValueRequired", "spec.predictor", "Required value"))
    if causes:
        raise _invalid(rt, name, causes)
    if rt.kind == "InferenceService":
        _kserve_webhook(spec["predictor"])


def _workload_causes(spec: dict[str, Any]) -> list[tuple[str, str, str]]:
    causes = []
    selector = (spec.get("selector") or {}).get("matchLabels") or {}
    template = spec.get("template") or {}
    labels = (template.get("metadata") or {}).get("labels") or {}
    if not selector:
        causes.append(("FieldValueRequired", "spec.selector", "Required value"))
    elif any(labels.get(key) != value for key, value in selector.items()):
        causes.append(
            (
                "FieldValueInvalid",
                "spec.template.metadata.labels",
                f"Invalid value: {labels}: `selector` does not match template `labels`",
            )
        )
    containers = (template.get("spec") or {}).get("containers") or []
    if not containers:
        causes.append(("FieldValueRequired", "spec.template.spec.containers", "Required value"))
    for index, container in enumerate(containers):
        for field in ("name", "image"):
            if not container.get(field):
                causes.append(
                    (
                        "FieldValueRequired",
                        f"spec.template.spec.containers[{index}].{field}",
                        "Required value",
                    )
                )
    if (spec.get("replicas") or 0) < 0:
        causes.append(
            (
                "FieldValueInvalid",
                "spec.replicas",
                "Invalid value: must be greater than or equal to 0",
            )
        )
    return causes


def _kserve_webhook(predictor: dict[str, Any]) -> None:
    from apps.simcluster.resources import SimApiError

    def deny(message: str) -> SimApiError:
        return SimApiError(403, "Forbidden", f"{WEBHOOK}: {message}")

    named = [key for key in IMPLEMENTATIONS if key in predictor]
    if len(named) + bool(predictor.get("containers")) != 1:
        raise deny("exactly one predictor implementation must be specified")
    low, high = predictor.get("minReplicas"), predictor.get("maxReplicas")
    if low is not None and low < 0:
        raise deny("MinReplicas cannot be less than 0")
    if low is not None and high not in (None, 0) and low > high:
        raise deny("MinReplicas cannot be greater than MaxReplicas")
    canary = predictor.get("canaryTrafficPercent")
    if canary is not None and not 0 <= canary <= 100:
        raise deny("CanaryTrafficPercent must be between 0 and 100")
    model = predictor.get("model") or {}
    fmt = (model.get("modelFormat") or {}).get("name")
    if fmt == "mlflow" and model.get("protocolVersion", "v1") != "v2" and not model.get("runtime"):
        raise deny(
            "no runtime found to support predictor with model type: {mlflow <nil>} "
            f"and protocol version {model.get('protocolVersion', 'v1')}"
        )


def apply_defaults(rt: ResourceType, obj: dict[str, Any]) -> None:
    """The defaults the real API server fills in, so dry-run results and diffs look real."""
    spec = obj.get("spec")
    if rt.kind == "Deployment" and isinstance(spec, dict):
        spec.setdefault("replicas", 1)
        spec.setdefault("revisionHistoryLimit", 10)
        spec.setdefault("progressDeadlineSeconds", 600)
        strategy = spec.setdefault("strategy", {})
        strategy.setdefault("type", "RollingUpdate")
        if strategy["type"] == "RollingUpdate":
            rolling = strategy.setdefault("rollingUpdate", {})
            rolling.setdefault("maxSurge", "25%")
            rolling.setdefault("maxUnavailable", "25%")
        _pod_defaults((spec.get("template") or {}).get("spec"))
    elif rt.kind == "Service" and isinstance(spec, dict):
        spec.setdefault("type", "ClusterIP")
        spec.setdefault("sessionAffinity", "None")
        if spec["type"] != "ExternalName":
            name = (obj.get("metadata") or {}).get("name", "")
            spec.setdefault("clusterIP", f"10.96.{sum(map(ord, name)) % 250}.{len(name) + 10}")
            spec.setdefault("clusterIPs", [spec["clusterIP"]])
        for port in spec.get("ports") or []:
            port.setdefault("protocol", "TCP")
            port.setdefault("targetPort", port.get("port"))


def _pod_defaults(pod_spec: Any) -> None:
    if not isinstance(pod_spec, dict):
        return
    pod_spec.setdefault("restartPolicy", "Always")
    pod_spec.setdefault("terminationGracePeriodSeconds", 30)
    pod_spec.setdefault("dnsPolicy", "ClusterFirst")
    for container in pod_spec.get("containers") or []:
        container.setdefault("terminationMessagePath", "/dev/termination-log")
        container.setdefault("imagePullPolicy", "IfNotPresent")
        for port in container.get("ports") or []:
            port.setdefault("protocol", "TCP")
