"""The durable hand-off: an enqueue after commit never fails the request; re-drives are counted."""

from __future__ import annotations

from datetime import datetime

import pytest
from prometheus_client import REGISTRY

from apps.jobs.handoff import (
    REDRIVERS,
    Redriver,
    count_redrives,
    enqueue_after_commit,
    enqueue_now,
    redrive_all,
)
from apps.jobs.models import RedriveCount
from portal.celery import ping
from tests.fixtures.broker import celery_broker
from tests.fixtures.mlflow import free_port
from tests.fixtures.redis_server import RedisServer
from tests.logs import log_lines

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


def test_one_failing_redriver_is_logged_and_the_others_still_run(monkeypatch) -> None:
    kinds = sorted(REDRIVERS)  # the kinds the apps registered, in the order beat runs them
    assert len(kinds) >= 3, kinds
    broken = kinds[1]  # kinds run both before and after it
    ran: list[str] = []

    def handing_over(kind: str, number: int) -> Redriver:
        def redriver(now: datetime) -> int:
            ran.append(kind)
            return number

        return redriver

    def failing(now: datetime) -> int:
        ran.append(broken)
        raise RuntimeError("the re-drive query failed")

    for number, kind in enumerate(kinds, start=1):
        monkeypatch.setitem(
            REDRIVERS, kind, failing if kind == broken else handing_over(kind, number)
        )
    with log_lines() as logged:
        counts = redrive_all()

    assert ran == kinds  # every re-driver ran, the ones after the failing one too
    assert counts == {kind: 0 if kind == broken else n for n, kind in enumerate(kinds, start=1)}
    [failure] = logged.of("redrive_failed")
    assert (failure["kind"], failure["level"]) == (broken, "error")
    assert "RuntimeError: the re-drive query failed" in failure["exception"]
    [redriven] = logged.of("handoff_redriven")
    assert {kind: redriven[kind] for kind in kinds} == counts
