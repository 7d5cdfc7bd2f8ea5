"""Thin tasks around incidents.

Applying an Alertmanager notification is re-driven by beat (the durable hand-off), so it never
retries itself: a failure ends the try with a log line and leaves the delivery not applied, and
beat's next re-drive after the grace period is the retry.
"""

from __future__ import annotations

import structlog
from celery import shared_task

log = structlog.get_logger(__name__)


@shared_task(name="incidents.alert_delivery_apply")
def alert_delivery_apply_task(delivery_id: int) -> bool:
    """Apply one Alertmanager notification; safe to deliver twice. True when it applied."""
    from apps.incidents.services.alerts import alert_delivery_apply

    try:
        return alert_delivery_apply(delivery_id=delivery_id)
    except Exception as exc:
        # The delivery keeps its error and stays not applied: beat re-drives it.
        log.exception(
            "alert_delivery_apply_failed",
            delivery=delivery_id,
            error=f"{type(exc).__name__}: {exc}",
        )
        return False
