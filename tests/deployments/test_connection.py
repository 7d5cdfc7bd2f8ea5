"""“Test connection” gives a clear reason for each way a connection fails."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from django.test import Client

from apps.audit.models import AuditEvent
from apps.deployments.connection import FAILED, OK, ConnectionReport, environment_connection_test
from apps.simcluster.server import SimCluster, kubeconfig_for, write_kubeconfig
from tests.deployments.factories import EnvironmentFactory
from tests.fixtures.cluster import NAMESPACE, READONLY_TOKEN

pytestmark = pytest.mark.django_db


def outcomes(report: ConnectionReport) -> list[tuple[str, str]]:
    return [(check.name, check.outcome) for check in report.checks]


def test_working_connection_reports_version_namespace_and_permissions(kubeconfig: Path) -> None:
    environment = EnvironmentFactory(kubeconfig_path=str(kubeconfig), namespace=NAMESPACE)
    report = environment_connection_test(environment=environment)
    assert report.ok
    assert report.simulated
    assert report.version == "v1.33.0-modelport-simulated"
    assert outcomes(report) == [
        ("Credentials", OK),
        ("Server", OK),
        ("Namespace", OK),
        ("Permissions", OK),
    ]
    assert (
        report.checks[-1].detail
        == "May get, create, patch, delete deployments, services in “models”."
    )


def test_wrong_context_names_the_contexts_there_are(kubeconfig: Path) -> None:
    environment = EnvironmentFactory(kubeconfig_path=str(kubeconfig), kube_context="prod-eu")
    report = environment_connection_test(environment=environment)
    assert not report.ok
    assert outcomes(report) == [("Credentials", FAILED)]
    assert (
        report.summary == f"Context “prod-eu” is not in {kubeconfig}; it has: modelport-simulated."
    )


def test_missing_kubeconfig_file_is_named(tmp_path: Path) -> None:
    environment = EnvironmentFactory(kubeconfig_path=str(tmp_path / "nope"))
    report = environment_connection_test(environment=environment)
    assert report.summary.startswith(f"Cannot read kubeconfig {tmp_path / 'nope'}")


def test_unreachable_server_says_so(tmp_path: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    path = write_kubeconfig(
        tmp_path / "config", kubeconfig_for(f"http://127.0.0.1:{port}", token="t")
    )
    report = environment_connection_test(environment=EnvironmentFactory(kubeconfig_path=str(path)))
    assert outcomes(report) == [("Credentials", OK), ("Server", FAILED)]
    assert report.summary == (
        f"Cannot reach http://127.0.0.1:{port}: connection refused "
        "(is the API server running and the address right?)"
    )


def test_missing_namespace_quotes_the_api_server(kubeconfig: Path) -> None:
    environment = EnvironmentFactory(kubeconfig_path=str(kubeconfig), namespace="models-qa")
    report = environment_connection_test(environment=environment)
    assert outcomes(report)[-1] == ("Namespace", FAILED)
    assert report.summary == (
        "Namespace “models-qa” does not exist on this cluster (the API server said: "
        'namespaces "models-qa" not found). Create it, or fix the environment.'
    )


def test_read_only_credentials_are_reported_as_missing_permissions(
    sim: SimCluster, tmp_path: Path
) -> None:
    path = sim.write_kubeconfig(tmp_path / "config")
    write_kubeconfig(path, sim.kubeconfig(token=READONLY_TOKEN))
    environment = EnvironmentFactory(
        kubeconfig_path=str(path), namespace=NAMESPACE, serving_kind="kserve", runtime_image=""
    )
    report = environment_connection_test(environment=environment)
    assert outcomes(report)[-1] == ("Permissions", FAILED)
    assert report.summary.startswith("These credentials may not: create inferenceservices.serving")


def test_rejected_token_is_explained(sim: SimCluster, tmp_path: Path) -> None:
    path = write_kubeconfig(tmp_path / "config", sim.kubeconfig(token="stolen"))
    report = environment_connection_test(environment=EnvironmentFactory(kubeconfig_path=str(path)))
    assert report.summary == "The cluster refused the credentials (401 Unauthorized): Unauthorized"


# --- through the API and the environment page (staff only) ----------------------------------------
def test_test_connection_action_reports_the_checks(client: Client, staff, kubeconfig: Path) -> None:
    EnvironmentFactory(name="dev", kubeconfig_path=str(kubeconfig), namespace="absent")
    client.force_login(staff)
    body = client.post("/api/v1/environments/dev/test-connection/").json()
    assert body["ok"] is False
    assert body["simulated"] is True
    assert [check["outcome"] for check in body["checks"]] == ["ok", "ok", "failed"]
    assert body["summary"].startswith("Namespace “absent” does not exist")


def test_test_connection_htmx_returns_only_the_panel(
    client: Client, staff, kubeconfig: Path
) -> None:
    EnvironmentFactory(name="dev", kubeconfig_path=str(kubeconfig), namespace="models")
    client.force_login(staff)
    response = client.post(
        "/deployments/environments/dev/test-connection/", headers={"HX-Request": "true"}
    )
    html = response.content.decode()
    assert response.status_code == 200
    assert html.lstrip().startswith('<section class="card spaced" id="connection-panel">')
    assert "<html" not in html
    assert "Connected: the cluster answered every check." in html
    assert "v1.33.0-modelport-simulated" in html
    assert not AuditEvent.objects.filter(action__startswith="environment.").exists()  # a read
