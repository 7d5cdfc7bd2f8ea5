"""Receiving MLflow's model-registry webhooks: verify, refuse repeats, record, hand to a task.

MLflow signs `"{delivery_id}.{timestamp}.{body}"` with HMAC-SHA256 and sends
`X-MLflow-Signature: v1,<base64>`, `X-MLflow-Timestamp` (Unix seconds) and `X-MLflow-Delivery-Id`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction

from apps.catalog.models import WebhookDelivery
from apps.jobs.handoff import (
    REDRIVE_BATCH,
    enqueue_after_commit,
    enqueue_now,
    grace_cutoff,
    redrive,
    window_start,
)

SIGNATURE_HEADER = "X-MLflow-Signature"
TIMESTAMP_HEADER = "X-MLflow-Timestamp"
DELIVERY_HEADER = "X-MLflow-Delivery-Id"
DELIVERY_ID_MAX = 64  # WebhookDelivery.delivery_id's length
SIGNATURE_VERSION = "v1"
# Events about models; prompt events and anything else are acknowledged and ignored.
MODEL_ENTITIES = {"registered_model", "model_version", "model_version_tag", "model_version_alias"}


class WebhookRejectedError(Exception):
    """The delivery is not from MLflow, or too old; `status` is the HTTP code to answer."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class AcceptedDelivery:
    delivery: WebhookDelivery | None
    duplicate: bool
    ignored: bool


def expected_signature(secret: str, delivery_id: str, timestamp: str, body: bytes) -> str:
    signed = f"{delivery_id}.{timestamp}.".encode() + body
    digest = hmac.new(secret.encode(), signed, hashlib.sha256).digest()
    return f"{SIGNATURE_VERSION},{base64.b64encode(digest).decode()}"


def verify(headers: Mapping[str, str], body: bytes, *, now: float | None = None) -> dict[str, Any]:
    """The parsed payload of a genuine, fresh delivery; raises WebhookRejectedError otherwise."""
    secret = settings.MLFLOW_WEBHOOK_SECRET
    if not secret:
        raise WebhookRejectedError(
            "Webhook receiver is not configured (MLFLOW_WEBHOOK_SECRET).", 503
        )
    delivery_id = headers.get(DELIVERY_HEADER, "")
    timestamp = headers.get(TIMESTAMP_HEADER, "")
    signature = headers.get(SIGNATURE_HEADER, "")
    if not (delivery_id and timestamp and signature):
        raise WebhookRejectedError(
            "Missing MLflow signature, timestamp or delivery id header.", 401
        )
    # Stored as the delivery's key, so read like body text: bounded, printable, whole.
    if len(delivery_id) > DELIVERY_ID_MAX or not delivery_id.isprintable():
        raise WebhookRejectedError(
            f"Malformed delivery id header: at most {DELIVERY_ID_MAX} printable characters.", 400
        )
    if not (timestamp.isascii() and timestamp.isdigit()):
        raise WebhookRejectedError("Malformed timestamp header.", 400)
    age = (time.time() if now is None else now) - int(timestamp)
    if abs(age) > settings.MLFLOW_WEBHOOK_MAX_AGE_SECONDS:
        raise WebhookRejectedError(
            f"Stale delivery: timestamp is {int(age)} s away from now "
            f"(allowed ±{settings.MLFLOW_WEBHOOK_MAX_AGE_SECONDS} s).",
            401,
        )
    wanted = expected_signature(secret, delivery_id, timestamp, body)
    if not hmac.compare_digest(wanted.encode(), signature.encode()):
        raise WebhookRejectedError("Signature does not match.", 401)
    try:
        payload = json.loads(body)
    except ValueError:
        raise WebhookRejectedError("Body is not JSON.", 400) from None
    if not isinstance(payload, dict) or not isinstance(payload.get("data"), dict):
        raise WebhookRejectedError("Body has no 'data' object.", 400)
    return payload


def webhook_delivery_accept(*, delivery_id: str, payload: dict[str, Any]) -> AcceptedDelivery:
    """Record a verified delivery once and enqueue its application when the row commits.

    The row is the truth (`applied_at` its done marker): a broker that is away fails nothing,
    MLflow's redelivery of one not applied yet asks a worker again, and beat re-drives the rest.
    Not audited itself: the catalog change it leads to is (by the task that applies it).
    """
    from apps.catalog.tasks import registry_apply_delivery_task

    entity, action = str(payload.get("entity", "")), str(payload.get("action", ""))
    if entity not in MODEL_ENTITIES:
        return AcceptedDelivery(delivery=None, duplicate=False, ignored=True)
    name = str(payload["data"].get("name", ""))[:256]
    try:
        with transaction.atomic():
            delivery = WebhookDelivery.objects.create(
                delivery_id=delivery_id,
                entity=entity[:40],
                action=action[:20],
                model_name=name,
                payload=payload,
            )
            enqueue_after_commit(registry_apply_delivery_task, delivery.pk)
    except IntegrityError:
        earlier = WebhookDelivery.objects.filter(
            delivery_id=delivery_id, applied_at__isnull=True
        ).first()
        if earlier is not None:
            enqueue_now(registry_apply_delivery_task, earlier.pk)
        return AcceptedDelivery(delivery=earlier, duplicate=True, ignored=False)
    return AcceptedDelivery(delivery=delivery, duplicate=False, ignored=False)


KIND_DELIVERY = "webhook_delivery"


def webhook_deliveries_redrive(now: datetime) -> int:
    """For beat: deliveries not applied after the grace period (the broker was away when they
    came, or their task was lost), handed to a worker again."""
    from apps.catalog.tasks import registry_apply_delivery_task

    waiting = list(
        WebhookDelivery.objects.filter(
            applied_at__isnull=True,
            received_at__lt=grace_cutoff(now),
            received_at__gte=window_start(now),
        )
        .order_by("received_at")
        .values_list("pk", flat=True)[:REDRIVE_BATCH]
    )
    return redrive(KIND_DELIVERY, registry_apply_delivery_task, waiting)
