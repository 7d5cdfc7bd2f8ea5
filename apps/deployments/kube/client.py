"""One environment's cluster, through the official `kubernetes` client.

Objects go in and come out as plain dicts (the API's own JSON), so manifests, status and diff never
depend on the client's model classes. Every failure becomes a `KubeError` that keeps what the API
server said (its Status reason, message and code), and transient failures are retried with backoff.
"""

from __future__ import annotations

import builtins
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import urllib3
import yaml
from kubernetes import client as k8s
from kubernetes import config as k8s_config
from kubernetes.client.exceptions import ApiException
from kubernetes.config.incluster_config import InClusterConfigLoader

FIELD_MANAGER = "modelport"
APPLY_PATCH = "application/apply-patch+yaml"
# A kubeconfig cluster carrying this extension is the project's simulated API server.
SIMULATED_EXTENSION = "modelport.dev/simulated-cluster"
DEFAULT_KUBECONFIG = "~/.kube/config"
RETRIABLE_STATUS = {429, 500, 502, 503, 504}
SERVICE_ACCOUNT_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"


class KubeError(Exception):
    """A cluster call failed; `status`, `reason` and `message` are the API server's own words."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        reason: str = "",
        details: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.reason = reason
        self.details = details or {}

    @property
    def not_found(self) -> bool:
        return self.status == 404

    @property
    def conflict(self) -> bool:
        return self.status == 409

    @classmethod
    def from_api_exception(cls, exc: ApiException) -> KubeError:
        try:
            body = json.loads(exc.body or "")
        except ValueError:
            body = None
        if isinstance(body, dict) and body.get("kind") == "Status":
            return cls(
                body.get("message") or f"HTTP {exc.status}",
                status=body.get("code") or exc.status,
                reason=body.get("reason", ""),
                details=body.get("details") or {},
            )
        return cls(
            f"HTTP {exc.status} {exc.reason or ''}".strip(), status=exc.status, reason="Unknown"
        )


class KubeConfigError(KubeError):
    """The connection settings cannot be turned into a client (file, context, in-cluster files)."""


class KubeUnreachableError(KubeError):
    """No HTTP answer: refused, timed out, reset or a TLS failure, after the retries."""


@dataclass(frozen=True)
class Connection:
    """How to reach a cluster: a kubeconfig file and context, or the pod's service account."""

    kubeconfig_path: str = ""
    context: str = ""
    in_cluster: bool = False

    @property
    def path(self) -> Path:
        return Path(self.kubeconfig_path or DEFAULT_KUBECONFIG).expanduser()


@dataclass(frozen=True)
class ClusterInfo:
    """What a kubeconfig says about the cluster, read from the file without calling it."""

    server: str = ""
    context: str = ""
    simulated: bool = False
    problem: str = ""


def describe_cluster(connection: Connection) -> ClusterInfo:
    """The server and context a connection points at, and whether it is the simulated cluster."""
    if connection.in_cluster:
        return ClusterInfo(server="in-cluster (service account)", context="")
    try:
        mtime = connection.path.stat().st_mtime_ns
    except OSError:
        return ClusterInfo(problem=f"No kubeconfig file at {connection.path}.")
    return _describe_cached(str(connection.path), connection.context, mtime)


@lru_cache(maxsize=64)
def _describe_cached(path: str, context: str, mtime: int) -> ClusterInfo:
    try:
        _, cluster, name = _select_context(Path(path), context)
    except KubeConfigError as exc:
        return ClusterInfo(problem=exc.message)
    extensions = cluster.get("extensions") or []
    simulated = any(item.get("name") == SIMULATED_EXTENSION for item in extensions)
    return ClusterInfo(server=cluster.get("server", ""), context=name, simulated=simulated)


def _select_context(path: Path, context: str) -> tuple[dict, dict, str]:
    """The kubeconfig, its chosen cluster entry and the context name, with clear errors."""
    try:
        config = yaml.safe_load(path.read_text()) or {}
    except OSError as exc:
        raise KubeConfigError(f"Cannot read kubeconfig {path}: {exc.strerror}.") from None
    except yaml.YAMLError as exc:
        raise KubeConfigError(f"Kubeconfig {path} is not valid YAML: {exc}.") from None
    if not isinstance(config, dict):
        raise KubeConfigError(f"Kubeconfig {path} is not a kubeconfig (no mapping at the top).")
    contexts = {
        item.get("name"): item.get("context") or {} for item in config.get("contexts") or []
    }
    name = context or config.get("current-context") or ""
    if not name:
        raise KubeConfigError(f"Kubeconfig {path} sets no current-context; name a context.")
    if name not in contexts:
        known = ", ".join(sorted(str(n) for n in contexts)) or "none"
        raise KubeConfigError(f"Context “{name}” is not in {path}; it has: {known}.")
    clusters = {
        item.get("name"): item.get("cluster") or {} for item in config.get("clusters") or []
    }
    cluster_name = contexts[name].get("cluster")
    if cluster_name not in clusters:
        raise KubeConfigError(
            f"Context “{name}” in {path} names cluster “{cluster_name}”, which is not defined."
        )
    return config, clusters[cluster_name], name


def load_api_client(connection: Connection) -> k8s.ApiClient:
    """A fresh ApiClient for one connection; never the process-wide default configuration."""
    configuration = k8s.Configuration()
    try:
        if connection.in_cluster:
            InClusterConfigLoader(
                token_filename=f"{SERVICE_ACCOUNT_DIR}/token",
                cert_filename=f"{SERVICE_ACCOUNT_DIR}/ca.crt",
            ).load_and_set(configuration)
        else:
            _select_context(connection.path, connection.context)
            k8s_config.load_kube_config(
                config_file=str(connection.path),
                context=connection.context or None,
                client_configuration=configuration,
                persist_config=False,
            )
    except k8s_config.ConfigException as exc:
        raise KubeConfigError(f"Cannot use the cluster settings: {exc}") from None
    # Retries are ours (below), with backoff and only for transient failures.
    configuration.retries = 0
    return k8s.ApiClient(configuration)


@dataclass(frozen=True)
class _Kind:
    group: str
    version: str
    plural: str
    namespaced: bool = True


KINDS: dict[tuple[str, str], _Kind] = {
    ("apps/v1", "Deployment"): _Kind("apps", "v1", "deployments"),
    ("apps/v1", "ReplicaSet"): _Kind("apps", "v1", "replicasets"),
    ("v1", "Service"): _Kind("", "v1", "services"),
    ("v1", "Namespace"): _Kind("", "v1", "namespaces", namespaced=False),
    ("serving.kserve.io/v1beta1", "InferenceService"): _Kind(
        "serving.kserve.io", "v1beta1", "inferenceservices"
    ),
}


@dataclass
class KubeClient:
    """Calls to one cluster. Safe to retry: apply, get and delete are idempotent."""

    api: k8s.ApiClient
    attempts: int = 4
    backoff: float = 0.25
    max_backoff: float = 4.0
    timeout: tuple[float, float] = (5.0, 30.0)
    sleep: Callable[[float], None] = field(default=time.sleep, repr=False)

    @classmethod
    def connect(cls, connection: Connection, **options: Any) -> KubeClient:
        return cls(load_api_client(connection), **options)

    def close(self) -> None:
        self.api.close()

    def __enter__(self) -> KubeClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def server(self) -> str:
        return str(self.api.configuration.host)

    # --- the verbs ----------------------------------------------------------------------------

    def apply(
        self,
        obj: dict[str, Any],
        *,
        dry_run: bool = False,
        force: bool = True,
        field_manager: str = FIELD_MANAGER,
    ) -> dict[str, Any]:
        """Server-side apply; creates when missing. `force` takes fields other managers own."""
        kind = _kind_of(obj)
        meta = obj.get("metadata") or {}
        path = self._item_path(kind, meta.get("namespace", ""), meta["name"])
        query = [("fieldManager", field_manager), ("force", "true" if force else "false")]
        if dry_run:
            query.append(("dryRun", "All"))
        return self._call("PATCH", path, query=query, body=obj, content_type=APPLY_PATCH)

    def get(self, api_version: str, kind: str, namespace: str, name: str) -> dict[str, Any]:
        spec = _kind(api_version, kind)
        return self._call("GET", self._item_path(spec, namespace, name))

    def get_or_none(
        self, api_version: str, kind: str, namespace: str, name: str
    ) -> dict[str, Any] | None:
        try:
            return self.get(api_version, kind, namespace, name)
        except KubeError as exc:
            if exc.not_found:
                return None
            raise

    def list(
        self, api_version: str, kind: str, namespace: str, *, label_selector: str = ""
    ) -> list[dict[str, Any]]:
        spec = _kind(api_version, kind)
        query = [("labelSelector", label_selector)] if label_selector else []
        return self._call("GET", self._collection_path(spec, namespace), query=query)["items"]

    def delete(self, api_version: str, kind: str, namespace: str, name: str) -> bool:
        """Delete with background propagation; False if it was already gone."""
        spec = _kind(api_version, kind)
        try:
            self._call(
                "DELETE",
                self._item_path(spec, namespace, name),
                query=[("propagationPolicy", "Background")],
            )
        except KubeError as exc:
            if exc.not_found:
                return False
            raise
        return True

    # `builtins.list` below: in this class, `list` is the method above.
    def list_events(
        self, namespace: str, *, involved_name: str = ""
    ) -> builtins.list[dict[str, Any]]:
        """Events in the namespace, oldest first; narrowed to one object's name when given."""
        query = [("fieldSelector", f"involvedObject.name={involved_name}")] if involved_name else []
        items = self._call("GET", f"/api/v1/namespaces/{namespace}/events", query=query)["items"]
        return sorted(items, key=_event_time)

    def version(self) -> dict[str, Any]:
        return self._call("GET", "/version")

    def read_namespace(self, name: str) -> dict[str, Any]:
        return self._call("GET", f"/api/v1/namespaces/{name}")

    def api_group_served(self, group_version: str) -> bool:
        """Whether the server knows an API group version (e.g. KServe's CRD is installed)."""
        try:
            self._call("GET", f"/apis/{group_version}")
        except KubeError as exc:
            if exc.not_found:
                return False
            raise
        return True

    def can_i(self, *, verb: str, group: str, resource: str, namespace: str) -> tuple[bool, str]:
        """A SelfSubjectAccessReview: may these credentials do `verb` on `resource` here?"""
        review = {
            "apiVersion": "authorization.k8s.io/v1",
            "kind": "SelfSubjectAccessReview",
            "spec": {
                "resourceAttributes": {
                    "verb": verb,
                    "group": group,
                    "resource": resource,
                    "namespace": namespace,
                }
            },
        }
        result = self._call(
            "POST", "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews", body=review
        )
        status = result.get("status") or {}
        return bool(status.get("allowed")), status.get("reason", "")

    # --- plumbing -----------------------------------------------------------------------------

    @staticmethod
    def _collection_path(spec: _Kind, namespace: str) -> str:
        root = f"/apis/{spec.group}/{spec.version}" if spec.group else f"/api/{spec.version}"
        if spec.namespaced:
            return f"{root}/namespaces/{namespace}/{spec.plural}"
        return f"{root}/{spec.plural}"

    def _item_path(self, spec: _Kind, namespace: str, name: str) -> str:
        return f"{self._collection_path(spec, namespace)}/{name}"

    def _call(
        self,
        method: str,
        path: str,
        *,
        query: builtins.list[tuple[str, str]] | None = None,
        body: Any = None,
        content_type: str = "application/json",
    ) -> dict[str, Any]:
        headers = {"Accept": "application/json", "Content-Type": content_type}
        # The client's own serializer and transport: auth headers, TLS and tokens as configured.
        _, url, headers, body, _ = self.api.param_serialize(
            method=method,
            resource_path=path,
            query_params=query or [],
            header_params=headers,
            body=body,
            auth_settings=["BearerToken"],
        )
        delay = self.backoff
        for attempt in range(1, self.attempts + 1):
            try:
                response = self.api.call_api(
                    method, url, header_params=headers, body=body, _request_timeout=self.timeout
                )
                response.read()
            except ApiException as exc:  # TLS failures arrive as status 0
                if attempt == self.attempts:
                    raise KubeUnreachableError(
                        f"Cannot reach {self.server}: {exc.reason}", reason="Unreachable"
                    ) from None
            except urllib3.exceptions.HTTPError as exc:
                if attempt == self.attempts:
                    raise KubeUnreachableError(
                        f"Cannot reach {self.server}: {_describe_network_error(exc)}",
                        reason="Unreachable",
                    ) from None
            else:
                if 200 <= response.status < 300:
                    return json.loads(response.data or b"{}")
                error = KubeError.from_api_exception(
                    ApiException(
                        status=response.status, reason=response.reason, body=_text(response)
                    )
                )
                if response.status not in RETRIABLE_STATUS or attempt == self.attempts:
                    raise error
                retry_after = response.getheader("Retry-After")
                if retry_after and retry_after.isdigit():
                    delay = max(delay, float(retry_after))
            self.sleep(min(delay, self.max_backoff))
            delay *= 2
        raise AssertionError("unreachable: the loop returns or raises")  # pragma: no cover


def _text(response: Any) -> str:
    return (response.data or b"").decode("utf-8", "replace")


def _describe_network_error(exc: urllib3.exceptions.HTTPError) -> str:
    reason = getattr(exc, "reason", None) or exc
    text = str(reason)
    if "Connection refused" in text:
        return "connection refused (is the API server running and the address right?)"
    if isinstance(reason, urllib3.exceptions.TimeoutError) or "timed out" in text:
        return "timed out"
    if "Name or service not known" in text or "nodename nor servname" in text:
        return "unknown host name"
    return text


def _kind(api_version: str, kind: str) -> _Kind:
    try:
        return KINDS[(api_version, kind)]
    except KeyError:
        raise KubeError(f"The portal does not handle {kind} ({api_version}).") from None


def _kind_of(obj: dict[str, Any]) -> _Kind:
    return _kind(obj.get("apiVersion", ""), obj.get("kind", ""))


def _event_time(event: dict[str, Any]) -> str:
    return (
        event.get("lastTimestamp")
        or event.get("eventTime")
        or (event.get("metadata") or {}).get("creationTimestamp")
        or ""
    )
