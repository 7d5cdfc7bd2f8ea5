"""A real deploy worker, for tests that go end to end (with `running_cluster`).

Import the fixture into a test module (`from tests.deployments.worker_fixtures import …`); it is
not global because most tests drive requests in-process instead.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from apps.deployments.models import DeployRequest
from portal.celery import app as celery_app
from tests.fixtures.workers import WorkerProcess

# Look at rollouts every 0.2 s; a request silent for 2 s counts as stuck.
WORKER_ENV = {"DEPLOY_CHECK_INTERVAL_MS": "200", "DEPLOY_HEARTBEAT_SECONDS": "2"}


@pytest.fixture
def deploy_worker(transactional_db: None, tmp_path: Path) -> Iterator[WorkerProcess]:
    """A real worker on a queue of its own; tasks sent during the test go to it."""
    queue = f"modelport-test-{uuid.uuid4().hex[:10]}"
    process = WorkerProcess(queue=queue, log_dir=tmp_path, extra_env=WORKER_ENV)
    previous, celery_app.conf.task_default_queue = celery_app.conf.task_default_queue, queue
    process.start()
    try:
        yield process
    finally:
        celery_app.conf.task_default_queue = previous
        process.stop()


def wait_for(
    request_id: int, states: set[str], worker: WorkerProcess, timeout: float = 60
) -> DeployRequest:
    """Poll the row (the truth) until the request is in one of `states`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        request = DeployRequest.objects.get(pk=request_id)
        if request.state in states:
            return request
        time.sleep(0.1)
    raise AssertionError(f"#{request_id} is {request.state}, not {states}:\n{worker.log()}")
