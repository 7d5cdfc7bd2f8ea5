"""The durable hand-off: an enqueue after commit never fails the request; re-drives are counted."""

from __future__ import annotations

import pytest
from prometheus_client import REGISTRY

from apps.jobs.handoff import count_redrives, enqueue_after_commit, enqueue_now
from apps.jobs.models import RedriveCount
from portal.celery import ping
from tests.fixtures.broker import celery_broker
from tests.fixtures.mlflow import free_port
from tests.fixtures.redis_server import RedisServer

pytestmark = pytest.mark.django_db


def failures(task: str) -> float:
    return REGISTRY.get_sample_value("modelport_enqueue_failures_total", {"task": task}) or 0.0


def test_a_broker_that_is_down_fails_the_send_logged_and_counted() -> None:
    before = failures(ping.name)
    with celery_broker(f"redis://127.0.0.1:{free_port()}/0"):
        assert enqueue_now(ping) is False
    assert failures(ping.name) == before + 1


def test_an_enqueue_after_commit_never_raises_into_the_request(
    django_capture_on_commit_callbacks,
) -> None:
    before = failures(ping.name)
    with celery_broker(f"redis://127.0.0.1:{free_port()}/0"):
        with django_capture_on_commit_callbacks(execute=True) as callbacks:
            enqueue_after_commit(ping)
        assert len(callbacks) == 1
    assert failures(ping.name) == before + 1


def test_a_broker_that_answers_takes_the_task(tmp_path) -> None:
    server = RedisServer(tmp_path)
    server.start()
    try:
        with celery_broker(server.url):
            assert enqueue_now(ping) is True
    finally:
        server.stop()


def test_redrives_are_counted_by_kind_and_exported() -> None:
    def exported(kind: str) -> float | None:
        return REGISTRY.get_sample_value("modelport_redrives_total", {"kind": kind})

    assert exported("deploy_request") is None
    count_redrives("deploy_request")
    count_redrives("deploy_request", 2)
    count_redrives("notification", 0)  # nothing re-driven: no row either
    assert exported("deploy_request") == 3.0
    assert exported("notification") is None
    assert RedriveCount.objects.get(kind="deploy_request").total == 3
