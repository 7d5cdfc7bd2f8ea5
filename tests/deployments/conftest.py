"""Deploy tests: cluster clients are cached per kubeconfig, so each test starts without them."""

from __future__ import annotations

from collections.abc import Iterator

import pytest


@pytest.fixture(autouse=True)
def _fresh_cluster_clients() -> Iterator[None]:
    """Each test that needs a cluster starts its own; drop clients cached for the last one."""
    yield
    from apps.deployments.clusters import forget_clients

    forget_clients()


# End-to-end fixtures (a real worker) for the tests that need them.
from tests.deployments.worker_fixtures import deploy_worker  # noqa: E402, F401
