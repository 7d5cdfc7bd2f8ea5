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


@pytest.fixture
def fraud(team):
    """A model with versions in the catalog (no MLflow); modules that need another override it."""
    from tests.deployments.support import model_with_versions

    return model_with_versions(team)


# End-to-end fixtures (a real worker) for the tests that need them.
from tests.deployments.worker_fixtures import deploy_worker  # noqa: E402, F401
