"""Shared pieces of the simulated controllers: failure injection, conditions, timing."""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from typing import Any

from apps.simcluster.resources import BY_KIND

IMAGE_PULL = "imagepull"
CRASH_LOOP = "crashloop"
DEADLINE = "deadline"
FAILURES = (IMAGE_PULL, CRASH_LOOP, DEADLINE)
FAIL_ANNOTATION = "sim.modelport.dev/fail"
REVISION = "deployment.kubernetes.io/revision"
REVISION_HISTORY = "deployment.kubernetes.io/revision-history"
MODE = "serving.kserve.io/deploymentMode"
RUNTIME_IMAGE = "docker.io/seldonio/mlserver:1.6.1"
STORAGE_INITIALIZER = "kserve/storage-initializer:v0.15.2"
DEPLOYMENT = BY_KIND[("apps/v1", "Deployment")]
REPLICA_SET = BY_KIND[("apps/v1", "ReplicaSet")]
SERVICE = BY_KIND[("v1", "Service")]
ISVC = BY_KIND[("serving.kserve.io/v1beta1", "InferenceService")]


@dataclass(frozen=True)
class Timing:
    """Simulated seconds for the things that take time on a cluster."""

    pod_startup: float = 6.0
    # A crash-looping model server is declared failed to load after this many restarts.
    crash_restarts: int = 3


def injected_failure(obj: Any) -> str | None:
    """The failure an object asks for, from its annotations or a marker in any string in it."""
    text = json.dumps(obj, sort_keys=True)
    for failure in FAILURES:
        if f"fail-{failure}" in text or f'"{FAIL_ANNOTATION}": "{failure}"' in text:
            return failure
    return None


def set_condition(
    status: dict[str, Any], kind: str, value: str, reason: str, message: str, now: str
) -> None:
    """Set a condition, keeping lastTransitionTime unless its status flips."""
    conditions = status.setdefault("conditions", [])
    for condition in conditions:
        if condition["type"] == kind:
            if condition["status"] != value:
                condition["lastTransitionTime"] = now
            if "lastUpdateTime" in condition and (
                condition["reason"] != reason or condition["status"] != value
            ):
                condition["lastUpdateTime"] = now
            condition.update(status=value, reason=reason, message=message)
            return
    conditions.append(
        {
            "type": kind,
            "status": value,
            "reason": reason,
            "message": message,
            "lastTransitionTime": now,
        }
    )


def condition(status: dict[str, Any], kind: str) -> dict[str, Any]:
    return next((c for c in status.get("conditions") or [] if c["type"] == kind), {})


def template_hash(template: Any) -> str:
    return hashlib.sha256(json.dumps(template, sort_keys=True).encode()).hexdigest()[:10]


def scale(value: Any, total: int, *, up: bool) -> int:
    if isinstance(value, str) and value.endswith("%"):
        exact = total * int(value[:-1]) / 100
        return math.ceil(exact) if up else math.floor(exact)
    return int(value or 0)


def owner_ref(owner: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": owner["apiVersion"],
        "kind": owner["kind"],
        "name": owner["metadata"]["name"],
        "uid": owner["metadata"]["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }


def seconds(text: str) -> float:
    text = text.strip()
    units = {"s": 1, "m": 60, "h": 3600}
    if text and text[-1] in units:
        return float(text[:-1]) * units[text[-1]]
    return float(text or 600)
