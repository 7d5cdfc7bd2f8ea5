"""One long-lived cluster client per environment connection and process.

Workers look at rollouts every few seconds; a fresh client would re-read the kubeconfig and open
a new connection each time. The cache is keyed by the connection settings and the kubeconfig's
modification time, so editing the file or the environment takes effect at once. Time spent
waiting for the API server is counted per thread, so tasks can report the portal's own share.
"""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING, Any

from apps.deployments.connection import connection_of
from apps.deployments.kube.client import Connection, KubeClient

if TYPE_CHECKING:
    from apps.deployments.models import Environment

ENVIRONMENT_TTL = 5.0
_clients: dict[tuple[Connection, int, bool], KubeClient] = {}
_environments: dict[int, tuple[float, Environment]] = {}
_lock = threading.Lock()
_waited = threading.local()


class _TimedKubeClient(KubeClient):
    """A KubeClient that adds the time each call waits for the server to this thread's total."""

    def _call(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        start = time.perf_counter()
        try:
            return super()._call(*args, **kwargs)
        finally:
            _waited.seconds = getattr(_waited, "seconds", 0.0) + time.perf_counter() - start


def cluster_wait_seconds() -> float:
    """Seconds this thread has spent waiting on cluster calls so far (a running total)."""
    return float(getattr(_waited, "seconds", 0.0))


def _mtime(connection: Connection) -> int:
    if connection.in_cluster:
        return 0
    try:
        return connection.path.stat().st_mtime_ns
    except OSError:
        return -1


def client_for(environment: Environment, *, interactive: bool = False) -> KubeClient:
    """The shared client for an environment; never close it. Raises KubeConfigError.

    `interactive` clients give up sooner: a person is waiting for the answer.
    """
    connection = connection_of(environment)
    key = (connection, _mtime(connection), interactive)
    with _lock:
        client = _clients.get(key)
        if client is None:
            options: dict[str, Any] = {"backoff": 0.2, "max_backoff": 2.0}
            if interactive:
                options.update(attempts=2, timeout=(3.0, 10.0))
            client = _TimedKubeClient.connect(connection, **options)
            stale = [k for k in _clients if k[0] == connection and k[2] == interactive]
            for old in stale:
                _clients.pop(old).close()
            _clients[key] = client
    return client


def environment_of(environment_id: int) -> Environment:
    """An environment for watching a rollout, cached for a few seconds.

    A worker looks at each rollout every few seconds; the environment rarely changes, and an
    edit reaches rollouts already in progress within ENVIRONMENT_TTL seconds.
    """
    from apps.deployments.models import Environment

    now = time.monotonic()
    hit = _environments.get(environment_id)
    if hit is not None and now - hit[0] < ENVIRONMENT_TTL:
        return hit[1]
    environment = Environment.objects.select_related("protection").get(pk=environment_id)
    _environments[environment_id] = (now, environment)
    return environment


def forget_clients() -> None:
    """Drop every cached client and environment (tests restart clusters on new ports)."""
    with _lock:
        for client in _clients.values():
            client.close()
        _clients.clear()
        _environments.clear()
