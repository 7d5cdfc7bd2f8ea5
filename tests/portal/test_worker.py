"""A real Celery worker process takes `portal.ping` off the broker (Redis in CI)."""

import pytest

from portal.celery import ping


@pytest.mark.worker
def test_real_worker_answers_ping(celery_worker_process) -> None:
    result = ping.apply_async(queue=celery_worker_process.queue)
    assert result.get(timeout=30) == "pong"
    assert celery_worker_process.wait_for_log(f"portal.ping[{result.id}] succeeded")
