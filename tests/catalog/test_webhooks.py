"""The MLflow webhook receiver: signature, freshness, repeats, and the real end-to-end path."""

from __future__ import annotations

import json
import time
import uuid
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone
from prometheus_client import REGISTRY

from apps.catalog.models import ModelVersion, RegisteredModel, WebhookDelivery
from apps.catalog.registry import Registry
from apps.catalog.sync import SyncMode, registry_sync
from apps.catalog.webhooks import expected_signature, webhook_deliveries_redrive
from apps.jobs.models import RedriveCount
from tests.api_errors import api_error
from tests.fixtures.broker import celery_broker
from tests.fixtures.mlflow import free_port
from tests.logs import log_lines
from tests.polling import wait_until

SECRET = "test-webhook-secret"


@pytest.fixture(autouse=True)
def webhook_secret(settings):
    settings.MLFLOW_WEBHOOK_SECRET = SECRET


def signed_headers(
    body: bytes, *, secret: str = SECRET, timestamp: int | None = None, delivery_id: str = ""
) -> dict[str, str]:
    delivery_id = delivery_id or str(uuid.uuid4())
    stamp = str(int(time.time()) if timestamp is None else timestamp)
    return {
        "X-MLflow-Delivery-Id": delivery_id,
        "X-MLflow-Timestamp": stamp,
        "X-MLflow-Signature": expected_signature(secret, delivery_id, stamp, body),
    }


def payload(name: str = "fraud", entity: str = "model_version", action: str = "created") -> bytes:
    return json.dumps(
        {
            "entity": entity,
            "action": action,
            "timestamp": "2026-11-28T10:00:00+00:00",
            "data": {"name": name, "version": "3", "source": "s3://m/3"},
        }
    ).encode()


def post(client: Client, body: bytes, headers: dict[str, str]):
    return client.post("/hooks/mlflow/", body, content_type="application/json", headers=headers)


@pytest.mark.django_db
def test_valid_delivery_is_recorded_and_enqueued_once(
    client, django_capture_on_commit_callbacks
) -> None:
    body = payload()
    headers = signed_headers(body)
    with django_capture_on_commit_callbacks() as callbacks:
        response = post(client, body, headers)
    assert response.status_code == 202
    assert len(callbacks) == 1
    delivery = WebhookDelivery.objects.get()
    assert (delivery.entity, delivery.action, delivery.model_name) == (
        "model_version",
        "created",
        "fraud",
    )

    with django_capture_on_commit_callbacks() as callbacks:
        again = post(client, body, headers)
    assert again.status_code == 200
    assert again.json() == {"status": "duplicate"}
    assert callbacks == []
    assert WebhookDelivery.objects.count() == 1


def wrong_secret(body: bytes) -> tuple[bytes, dict[str, str]]:
    return body, signed_headers(body, secret="guess")


def tampered_body(body: bytes) -> tuple[bytes, dict[str, str]]:
    return payload(name="someone-elses-model"), signed_headers(body)


def stale(body: bytes) -> tuple[bytes, dict[str, str]]:
    return body, signed_headers(body, timestamp=int(time.time()) - 3600)


def from_the_future(body: bytes) -> tuple[bytes, dict[str, str]]:
    return body, signed_headers(body, timestamp=int(time.time()) + 3600)


def no_signature(body: bytes) -> tuple[bytes, dict[str, str]]:
    headers = signed_headers(body)
    del headers["X-MLflow-Signature"]
    return body, headers


def bad_timestamp(body: bytes) -> tuple[bytes, dict[str, str]]:
    return body, {**signed_headers(body), "X-MLflow-Timestamp": "yesterday"}


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("mutate", "status", "message"),
    [
        (wrong_secret, 401, "Signature does not match."),
        (tampered_body, 401, "Signature does not match."),
        (stale, 401, "Stale delivery"),
        (from_the_future, 401, "Stale delivery"),
        (no_signature, 401, "Missing MLflow signature"),
        (bad_timestamp, 400, "Malformed timestamp"),
    ],
)
def test_bad_or_replayed_deliveries_are_rejected_and_change_nothing(
    client, django_capture_on_commit_callbacks, mutate, status: int, message: str
) -> None:
    body, headers = mutate(payload())
    with django_capture_on_commit_callbacks() as callbacks:
        response = post(client, body, headers)
    assert message in api_error(response, status, "webhook_rejected")["detail"]
    assert callbacks == []
    assert not WebhookDelivery.objects.exists()


@pytest.mark.django_db
def test_receiver_without_a_secret_refuses_with_503(client, settings) -> None:
    settings.MLFLOW_WEBHOOK_SECRET = ""
    body = payload()
    response = post(client, body, signed_headers(body))
    api_error(response, 503, "webhook_rejected")


@pytest.mark.django_db
def test_prompt_events_are_acknowledged_and_ignored(client) -> None:
    body = payload(entity="prompt", action="created")
    response = post(client, body, signed_headers(body))
    assert response.status_code == 200
    assert response.json() == {"status": "ignored"}
    assert not WebhookDelivery.objects.exists()


@pytest.mark.django_db
def test_get_and_oversized_bodies_are_refused(client) -> None:
    api_error(client.get("/hooks/mlflow/"), 405, "method_not_allowed")
    big = b"{" + b" " * (1024 * 1024 + 10) + b"}"
    api_error(post(client, big, signed_headers(big)), 413, "request_too_large")


@pytest.mark.mlflow
@pytest.mark.worker
def test_mlflow_webhook_reaches_the_catalog(
    mlflow_uri, registry_builder, live_server, celery_worker_process, settings
) -> None:
    """MLflow → HMAC-signed POST → receiver → Celery task on a real worker → catalog row.
    (How fast is the benchmark's question: bench_catalog.py reports the latency.)"""
    settings.PORTAL_BASE_URL = live_server.url
    name = registry_builder.model("hooked")
    registry_sync(mode=SyncMode.FULL)
    registry = Registry()
    hook_id, _ = registry.ensure_webhook(url=f"{live_server.url}/hooks/mlflow/", secret=SECRET)
    # MLflow reads its webhooks through a cache (MLFLOW_WEBHOOK_CACHE_TTL=1 on this server) that
    # nothing outside the server can see: an event within the second would miss the new hook.
    time.sleep(1.5)
    try:
        registry_builder.version(name, metrics={"auc": 0.9})
        applied = WebhookDelivery.objects.filter(model_name=name, applied_at__isnull=False)
        wait_until(applied.exists, timeout=30, explain=celery_worker_process.log)
        version = ModelVersion.objects.get(model__name=name, version=1)
        assert RegisteredModel.objects.get(name=name).latest_version == 1
        assert version.run_metrics == {"auc": 0.9}  # the task read the run too
    finally:
        registry._client.delete_webhook(hook_id)


@pytest.mark.django_db
def test_a_get_is_a_json_405(client) -> None:
    response = client.get("/hooks/mlflow/")
    api_error(response, 405, "method_not_allowed")
    assert response["Allow"] == "POST"


@pytest.mark.django_db
def test_a_delivery_id_that_could_not_be_stored_whole_is_a_400(client) -> None:
    body = payload()
    too_long = signed_headers(body, delivery_id="d" * 65)
    assert (
        "delivery id" in api_error(post(client, body, too_long), 400, "webhook_rejected")["detail"]
    )
    assert not WebhookDelivery.objects.exists()


@pytest.mark.django_db
def test_with_the_broker_away_a_delivery_is_kept_and_its_redelivery_tries_again(
    client, django_capture_on_commit_callbacks
) -> None:
    def failures() -> float:
        labels = {"task": "catalog.registry_apply_delivery"}
        return REGISTRY.get_sample_value("modelport_enqueue_failures_total", labels) or 0.0

    body = payload()
    headers = signed_headers(body)
    before = failures()
    with celery_broker(f"redis://127.0.0.1:{free_port()}/0"):
        with django_capture_on_commit_callbacks(execute=True):
            first = post(client, body, headers)
        assert first.status_code == 202  # kept, though handing it to a worker failed
        again = post(client, body, headers)  # MLflow delivers it again
    assert (again.status_code, again.json()) == (200, {"status": "duplicate"})
    assert WebhookDelivery.objects.get().applied_at is None
    assert failures() == before + 2  # the first hand-off and the redelivery's both tried


@pytest.mark.django_db
def test_beat_redrives_deliveries_not_applied_after_the_grace_period(
    client, settings, django_capture_on_commit_callbacks
) -> None:
    body = payload()
    post(client, body, signed_headers(body))
    delivery = WebhookDelivery.objects.get()
    with django_capture_on_commit_callbacks() as callbacks:
        assert webhook_deliveries_redrive(timezone.now()) == 0  # within the grace period
    assert callbacks == []
    later = delivery.received_at + timedelta(seconds=settings.HANDOFF_GRACE_SECONDS + 1)
    with django_capture_on_commit_callbacks() as callbacks:
        assert webhook_deliveries_redrive(later) == 1
    assert len(callbacks) == 1
    assert RedriveCount.objects.get(kind="webhook_delivery").total == 1
    WebhookDelivery.objects.filter(pk=delivery.pk).update(applied_at=timezone.now())
    assert webhook_deliveries_redrive(later) == 0  # done rows are left alone


@pytest.mark.django_db
def test_a_delivery_tried_while_mlflow_is_away_is_left_for_beat(
    client, settings, monkeypatch, django_capture_on_commit_callbacks
) -> None:
    from apps.catalog.tasks import registry_apply_delivery_task

    body = payload(name="fraud")
    post(client, body, signed_headers(body))
    delivery = WebhookDelivery.objects.get()
    settings.MLFLOW_TRACKING_URI = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")

    with log_lines() as logged:
        result = registry_apply_delivery_task.apply(args=(delivery.pk,))

    # One try, no retry of its own (beat is the retry): the delivery stays not applied.
    assert (result.state, result.result) == ("SUCCESS", "not applied")
    delivery.refresh_from_db()
    assert delivery.applied_at is None
    [failure] = logged.of("registry_apply_delivery_failed")
    assert (failure["delivery"], failure["model"]) == (delivery.pk, "fraud")
    assert failure["error"].startswith("RegistryUnavailable: ")
    with django_capture_on_commit_callbacks() as callbacks:
        assert webhook_deliveries_redrive(timezone.now()) == 0  # within the grace period
    assert callbacks == []
    later = delivery.received_at + timedelta(seconds=settings.HANDOFF_GRACE_SECONDS + 1)
    with django_capture_on_commit_callbacks() as callbacks:
        assert webhook_deliveries_redrive(later) == 1
    assert len(callbacks) == 1
