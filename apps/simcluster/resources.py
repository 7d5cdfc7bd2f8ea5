"""The resource kinds the simulated API server serves, and its API error as a Status body."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class ResourceType:
    group: str
    version: str
    plural: str
    kind: str
    namespaced: bool = True
    # Built-in kinds merge lists such as containers by key; CRD lists are atomic.
    builtin: bool = True
    generation: bool = False
    short_names: tuple[str, ...] = ()
    verbs: tuple[str, ...] = ("create", "delete", "get", "list", "patch", "update")

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def qualified(self) -> str:
        """The name errors use: `deployments.apps`, `services`."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    @property
    def singular(self) -> str:
        return self.kind.lower()


TYPES = [
    ResourceType("", "v1", "namespaces", "Namespace", namespaced=False, short_names=("ns",)),
    ResourceType("", "v1", "services", "Service", short_names=("svc",)),
    ResourceType("", "v1", "events", "Event", short_names=("ev",)),
    ResourceType(
        "apps", "v1", "deployments", "Deployment", generation=True, short_names=("deploy",)
    ),
    ResourceType("apps", "v1", "replicasets", "ReplicaSet", generation=True, short_names=("rs",)),
    ResourceType(
        "serving.kserve.io",
        "v1beta1",
        "inferenceservices",
        "InferenceService",
        builtin=False,
        generation=True,
        short_names=("isvc",),
    ),
]
BY_PATH = {(t.group, t.version, t.plural): t for t in TYPES}
BY_KIND = {(t.api_version, t.kind): t for t in TYPES}


class SimApiError(Exception):
    """An API error, carried as the Status body a real server sends."""

    def __init__(
        self,
        code: int,
        reason: str,
        message: str,
        *,
        details: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.code, self.reason, self.message, self.details = code, reason, message, details or {}

    def body(self) -> dict[str, Any]:
        status = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        }
        if self.details:
            status["details"] = self.details
        return status


def not_found(rt: ResourceType, name: str) -> SimApiError:
    return SimApiError(
        404,
        "NotFound",
        f'{rt.qualified} "{name}" not found',
        details={"name": name, "group": rt.group, "kind": rt.plural},
    )
