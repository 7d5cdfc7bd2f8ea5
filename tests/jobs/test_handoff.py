"""The durable hand-off: an enqueue after commit never fails the request; re-drives are counted."""

from __future__ import annotations

import pytest
from prometheus_client import REGISTRY

from apps.audit.services import record
from apps.jobs.handoff import enqueue_after_commit, enqueue_now, record_redrive
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


def test_redrives_are_counted_by_kind_from_the_audit_trail(django_user_model) -> None:
    from django.db import transaction

    team_user = django_user_model.objects.create(username="someone")
    before = REGISTRY.get_sample_value("modelport_redrives_total", {"kind": "deploy"}) or 0.0
    with transaction.atomic():
        record_redrive("deploy", team_user, state="queued")
        record_redrive("deploy", team_user, state="rolling_out")
        record_redrive("approval_effect", team_user)
        record("someone", "deploy.queued", team_user)  # not a re-drive
    assert REGISTRY.get_sample_value("modelport_redrives_total", {"kind": "deploy"}) == before + 2
    assert REGISTRY.get_sample_value("modelport_redrives_total", {"kind": "approval_effect"}) == 1.0
