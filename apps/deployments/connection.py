"""“Test connection”: ask an environment's cluster what it says, and explain any failure plainly.

A read: it changes nothing on the cluster or in the portal, so it writes no audit event.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from django.conf import settings

from apps.deployments.kube import manifests
from apps.deployments.kube.client import (
    Connection,
    KubeClient,
    KubeConfigError,
    KubeError,
    KubeUnreachableError,
    describe_cluster,
)

if TYPE_CHECKING:
    from apps.deployments.models import Environment

OK = "ok"
FAILED = "failed"
SKIPPED = "skipped"
VERBS = ("get", "create", "patch", "delete")


@dataclass(frozen=True)
class Check:
    """One question put to the cluster and its answer."""

    name: str
    outcome: str
    detail: str


@dataclass
class ConnectionReport:
    """Everything "test connection" learnt, in the order it asked."""

    server: str = ""
    context: str = ""
    version: str = ""
    simulated: bool = False
    checks: list[Check] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return bool(self.checks) and all(check.outcome == OK for check in self.checks)

    @property
    def summary(self) -> str:
        failed = [check for check in self.checks if check.outcome == FAILED]
        if not failed:
            return "Connected: the cluster answered every check."
        return failed[0].detail


def connection_of(environment: Environment) -> Connection:
    """The client-side connection settings, falling back to $KUBECONFIG for a blank path."""
    if environment.connection == environment.Connection.IN_CLUSTER:
        return Connection(in_cluster=True)
    return Connection(
        kubeconfig_path=environment.kubeconfig_path or settings.KUBECONFIG,
        context=environment.kube_context,
    )


def _resources(environment: Environment) -> list[tuple[str, str]]:
    if environment.serving_kind == manifests.KSERVE:
        return [("serving.kserve.io", "inferenceservices")]
    return [("apps", "deployments"), ("", "services")]


def environment_connection_test(
    *, environment: Environment, client: KubeClient | None = None
) -> ConnectionReport:
    """Load the credentials, then ask for the version, the namespace and the permissions."""
    connection = connection_of(environment)
    info = describe_cluster(connection)
    report = ConnectionReport(server=info.server, context=info.context, simulated=info.simulated)
    if client is None:
        try:
            # Few, quick attempts: a person is waiting for this answer.
            client = KubeClient.connect(connection, attempts=2, backoff=0.2, timeout=(3.0, 10.0))
        except KubeConfigError as exc:
            report.checks.append(Check("Credentials", FAILED, exc.message))
            return report
    report.checks.append(Check("Credentials", OK, f"Context “{info.context or 'in-cluster'}”."))
    try:
        with client:
            _ask(client, environment, report)
    except KubeUnreachableError as exc:
        report.checks.append(Check("Server", FAILED, exc.message))
    except KubeError as exc:
        report.checks.append(Check("Server", FAILED, _explain(exc)))
    return report


def _ask(client: KubeClient, environment: Environment, report: ConnectionReport) -> None:
    version = client.version()
    report.version = version.get("gitVersion", "")
    report.simulated = report.simulated or "simulated" in report.version
    report.checks.append(
        Check("Server", OK, f"{client.server} answered: Kubernetes {report.version}.")
    )
    namespace = environment.namespace
    try:
        client.read_namespace(namespace)
    except KubeError as exc:
        if not exc.not_found:
            raise
        report.checks.append(
            Check(
                "Namespace",
                FAILED,
                f"Namespace “{namespace}” does not exist on this cluster "
                f"(the API server said: {exc.message}). Create it, or fix the environment.",
            )
        )
        return
    report.checks.append(Check("Namespace", OK, f"Namespace “{namespace}” exists."))
    if environment.serving_kind == manifests.KSERVE and not client.api_group_served(
        "serving.kserve.io/v1beta1"
    ):
        report.checks.append(
            Check(
                "KServe",
                FAILED,
                "The cluster does not serve serving.kserve.io/v1beta1: KServe is not installed.",
            )
        )
        return
    denied = []
    for group, resource in _resources(environment):
        for verb in VERBS:
            allowed, reason = client.can_i(
                verb=verb, group=group, resource=resource, namespace=namespace
            )
            if not allowed:
                qualified = f"{resource}.{group}" if group else resource
                denied.append(f"{verb} {qualified}{f' ({reason})' if reason else ''}")
    if denied:
        report.checks.append(
            Check("Permissions", FAILED, f"These credentials may not: {', '.join(denied)}.")
        )
    else:
        names = ", ".join(resource for _, resource in _resources(environment))
        report.checks.append(
            Check("Permissions", OK, f"May {', '.join(VERBS)} {names} in “{namespace}”.")
        )


def _explain(exc: KubeError) -> str:
    if exc.status == 401:
        return f"The cluster refused the credentials (401 Unauthorized): {exc.message}"
    if exc.status == 403:
        return f"The credentials lack permission (403 Forbidden): {exc.message}"
    return f"The API server answered {exc.status} {exc.reason}: {exc.message}"
