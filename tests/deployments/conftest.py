"""The simulated cluster, reached through the real `kubernetes` client, for every test here."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from apps.deployments.kube.client import Connection, KubeClient
from apps.deployments.kube.sim.controllers import Timing
from apps.deployments.kube.sim.server import SimCluster

NAMESPACE = "models"
READONLY_TOKEN = "readonly-token"


@pytest.fixture
def sim() -> Iterator[SimCluster]:
    """A fresh simulated API server with a manual clock: time moves only on `advance`."""
    with SimCluster(
        manual_clock=True,
        namespaces=(NAMESPACE,),
        timing=Timing(pod_startup=5),
        readonly_tokens=frozenset({READONLY_TOKEN}),
    ) as cluster:
        yield cluster


@pytest.fixture
def kubeconfig(sim: SimCluster, tmp_path: Path) -> Path:
    return sim.write_kubeconfig(tmp_path / "kubeconfig")


@pytest.fixture
def kube(kubeconfig: Path) -> Iterator[KubeClient]:
    with KubeClient.connect(Connection(str(kubeconfig)), backoff=0.001) as client:
        yield client


@pytest.fixture(autouse=True)
def _fresh_cluster_clients() -> Iterator[None]:
    """Each test starts its own simulated cluster; drop clients cached for the last one."""
    yield
    from apps.deployments.clusters import forget_clients

    forget_clients()


# End-to-end fixtures (a running simulated cluster, a real worker) for the tests that need them.
from tests.deployments.worker_fixtures import deploy_worker, running_cluster  # noqa: E402, F401
