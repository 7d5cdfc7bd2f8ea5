"""Thin Celery tasks: each loads by id or takes primitives, calls one service, is safe to repeat."""

from __future__ import annotations

from datetime import timedelta
from typing import TypedDict

import structlog
from celery import shared_task
from celery.signals import worker_init
from django.utils import timezone

from apps.catalog.registry import RegistryNotConfigured, RegistryUnavailable

log = structlog.get_logger(__name__)


class RetryOptions(TypedDict):
    """The shared_task options by which a task retries while MLflow is unavailable.

    Only for work no re-driver covers (the scheduled sync). A task beat re-drives (a webhook
    delivery) does not retry itself: beat is the retry.
    """

    autoretry_for: tuple[type[BaseException], ...]
    retry_backoff: int
    retry_backoff_max: int
    retry_jitter: bool
    max_retries: int


RETRY: RetryOptions = {
    "autoretry_for": (RegistryUnavailable,),
    "retry_backoff": 5,
    "retry_backoff_max": 300,
    "retry_jitter": True,
    "max_retries": 5,
}
DELIVERY_RETENTION = timedelta(days=7)


@worker_init.connect
def preload_mlflow_client(**kwargs: object) -> None:
    """Import the MLflow client (2-3 s cold) once, before the pool forks, not in the first task."""
    import mlflow.tracking  # noqa: F401


@shared_task(name="catalog.registry_sync", **RETRY)
def registry_sync_task(mode: str = "incremental", actor: str = "scheduler") -> dict[str, int] | str:
    from apps.catalog.models import WebhookDelivery
    from apps.catalog.sync import (
        SyncAlreadyRunningError,
        SyncMode,
        registry_fetch_runs,
        registry_sync,
    )

    try:
        counts = registry_sync(mode=SyncMode(mode), actor=actor)
    except SyncAlreadyRunningError:
        log.info("registry_sync_skipped", reason="another sync holds the lease")
        return "skipped"
    except RegistryNotConfigured:
        log.warning("registry_sync_skipped", reason="MLFLOW_TRACKING_URI is not set")
        return "not configured"
    while registry_fetch_runs(actor=actor):
        pass
    if mode == SyncMode.FULL:
        WebhookDelivery.objects.filter(received_at__lt=timezone.now() - DELIVERY_RETENTION).delete()
    return counts.as_dict()


@shared_task(name="catalog.registry_apply_delivery")
def registry_apply_delivery_task(delivery_id: int) -> str:
    """Apply one webhook delivery; with MLflow away it stays not applied for beat to re-drive."""
    from apps.catalog.models import WebhookDelivery
    from apps.catalog.sync import registry_sync_model

    delivery = WebhookDelivery.objects.filter(pk=delivery_id, applied_at__isnull=True).first()
    if delivery is None:
        return "already applied"
    try:
        registry_sync_model(name=delivery.model_name)
    except RegistryUnavailable as exc:
        log.warning(
            "registry_apply_delivery_failed",
            delivery=delivery_id,
            model=delivery.model_name,
            error=f"{type(exc).__name__}: {exc}",
        )
        return "not applied"
    WebhookDelivery.objects.filter(pk=delivery_id, applied_at__isnull=True).update(
        applied_at=timezone.now()
    )
    return "applied"
