"""Receiving Alertmanager's webhook (payload version 4): authenticate, validate, record, hand over.

Alertmanager signs nothing: its `http_config` sends `Authorization: Bearer <token>` or basic
auth, and the token (or the basic-auth password) must be ALERTMANAGER_WEBHOOK_TOKEN. A payload
that is accepted is stored as an `AlertDelivery` (only the fields the portal reads, validated),
answered with 202 at once, and applied by a task; beat re-drives what is not applied (the
durable hand-off, docs/architecture.md).
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from apps.incidents.models import AlertDelivery
from apps.incidents.services.alerts import FIRING, RESOLVED, parse_time
from apps.jobs.handoff import (
    REDRIVE_BATCH,
    enqueue_after_commit,
    grace_cutoff,
    redrive,
    window_start,
)

VERSION = "4"
STATUSES = (FIRING, RESOLVED)
GROUP_KEY_MAX = 1000  # AlertDelivery.group_key and Incident.alert_group_key
MAX_ALERTS = 1000
FINGERPRINT = re.compile(r"[0-9A-Za-z_-]{1,64}")
TEXT_MAX = 2000  # receiver, externalURL, generatorURL
MAX_ERRORS = 20  # field errors listed in one answer
KIND_ALERT_DELIVERY = "alert_delivery"


class AlertRejectedError(Exception):
    """The request is not an accepted Alertmanager notification; `status` is the answer."""

    def __init__(
        self, detail: str, status: int, code: str, errors: dict[str, list[str]] | None = None
    ) -> None:
        super().__init__(detail)
        self.detail, self.status, self.code, self.errors = detail, status, code, errors or {}


# --- authentication -------------------------------------------------------------------------------
def _presented_token(authorization: str) -> str:
    scheme, _, credentials = authorization.strip().partition(" ")
    if scheme.lower() == "bearer":
        return credentials.strip()
    if scheme.lower() == "basic":
        try:
            decoded = base64.b64decode(credentials.strip(), validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            return ""
        return decoded.partition(":")[2]
    return ""


def authenticate(headers: Mapping[str, str]) -> None:
    """Raise AlertRejectedError unless the request carries the configured token."""
    token = settings.ALERTMANAGER_WEBHOOK_TOKEN
    if not token:
        raise AlertRejectedError(
            "The Alertmanager receiver is not configured (ALERTMANAGER_WEBHOOK_TOKEN).",
            503,
            "not_configured",
        )
    presented = _presented_token(headers.get("Authorization", ""))
    if not presented or not hmac.compare_digest(presented.encode(), token.encode()):
        raise AlertRejectedError(
            "Send the receiver's token as a bearer token or as the basic-auth password.",
            401,
            "not_authenticated",
        )


# --- validation -----------------------------------------------------------------------------------
class _Errors:
    """Field errors under dotted names (`alerts.0.startsAt`), as the API's error body has them."""

    def __init__(self) -> None:
        self.by_field: dict[str, list[str]] = {}

    def add(self, field: str, message: str) -> None:
        if len(self.by_field) < MAX_ERRORS:
            self.by_field.setdefault(field, []).append(message)

    def raise_any(self) -> None:
        if not self.by_field:
            return
        field, messages = next(iter(self.by_field.items()))
        more = len(self.by_field) - 1
        detail = f"Not an Alertmanager webhook payload (version {VERSION}): {field}: {messages[0]}"
        if more:
            detail += f" (and {more} more field{'s' if more > 1 else ''})"
        raise AlertRejectedError(detail, 400, "invalid", self.by_field)


def _storable(text: str) -> bool:
    """Text the database can keep (no NUL, no lone surrogate)."""
    if "\x00" in text:
        return False
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True


def _text(errors: _Errors, field: str, value: Any, *, limit: int = TEXT_MAX) -> str:
    """An optional string field ("" when absent)."""
    if value is None:
        return ""
    if not isinstance(value, str) or not _storable(value):
        errors.add(field, "Must be a string.")
        return ""
    if len(value) > limit:
        errors.add(field, f"At most {limit} characters.")
        return ""
    return value


def _strings(errors: _Errors, field: str, value: Any, *, required: bool) -> dict[str, str]:
    """An object of strings (labels, annotations)."""
    if value is None and not required:
        return {}
    if not isinstance(value, dict):
        errors.add(field, "Must be an object of strings.")
        return {}
    if not all(
        isinstance(k, str) and isinstance(v, str) and _storable(k) and _storable(v)
        for k, v in value.items()
    ):
        errors.add(field, "Every key and value must be a string.")
        return {}
    return value


def _time(errors: _Errors, field: str, value: Any, *, required: bool) -> str:
    """An RFC 3339 time; Go's zero time only where it means "none" (a firing alert's end)."""
    if value is None and not required:
        return ""
    message = "Must be an RFC 3339 time, e.g. 2026-03-01T10:00:00Z."
    if not isinstance(value, str):
        errors.add(field, message)
        return ""
    try:
        at = parse_time(value)
    except ValueError:
        errors.add(field, message)
        return ""
    if at is None and required:
        errors.add(field, "Must be a real time, not the zero time.")
        return ""
    return value


def _alert(errors: _Errors, index: int, item: Any) -> dict[str, Any]:
    field = f"alerts.{index}"
    if not isinstance(item, dict):
        errors.add(field, "Must be an object.")
        return {}
    if item.get("status") not in STATUSES:
        errors.add(f"{field}.status", "Must be “firing” or “resolved”.")
    fingerprint = item.get("fingerprint")
    if not (isinstance(fingerprint, str) and FINGERPRINT.fullmatch(fingerprint)):
        errors.add(f"{field}.fingerprint", "Must be Alertmanager's fingerprint (hex, ≤64).")
    return {
        "status": item.get("status"),
        "labels": _strings(errors, f"{field}.labels", item.get("labels"), required=True),
        "annotations": _strings(
            errors, f"{field}.annotations", item.get("annotations"), required=True
        ),
        "startsAt": _time(errors, f"{field}.startsAt", item.get("startsAt"), required=True),
        "endsAt": _time(errors, f"{field}.endsAt", item.get("endsAt"), required=False),
        "generatorURL": _text(errors, f"{field}.generatorURL", item.get("generatorURL")),
        "fingerprint": fingerprint,
    }


def _reject_constant(name: str) -> float:
    raise ValueError(f"{name} is not JSON")


def parse(body: bytes) -> dict[str, Any]:
    """The notification in `body`, reduced to the fields the portal reads; raises
    AlertRejectedError (400) naming every field that is wrong."""
    try:
        payload = json.loads(body, parse_constant=_reject_constant)
    except (ValueError, RecursionError):
        raise AlertRejectedError("The body is not JSON.", 400, "invalid") from None
    if not isinstance(payload, dict):
        raise AlertRejectedError("The body must be a JSON object.", 400, "invalid")
    errors = _Errors()
    if payload.get("version") != VERSION:
        errors.add("version", f'Must be "{VERSION}" (Alertmanager\'s webhook payload version).')
    group_key = payload.get("groupKey")
    if not (isinstance(group_key, str) and group_key.strip() and _storable(group_key)):
        errors.add("groupKey", "Must be a non-empty string.")
    elif len(group_key) > GROUP_KEY_MAX:
        errors.add("groupKey", f"At most {GROUP_KEY_MAX} characters.")
    if payload.get("status") not in STATUSES:
        errors.add("status", "Must be “firing” or “resolved”.")
    truncated = payload.get("truncatedAlerts", 0)
    if isinstance(truncated, bool) or not isinstance(truncated, int) or truncated < 0:
        errors.add("truncatedAlerts", "Must be a whole number.")
    items = payload.get("alerts")
    if not isinstance(items, list) or not items:
        errors.add("alerts", "Must be a non-empty list of alerts.")
        items = []
    elif len(items) > MAX_ALERTS:
        errors.add("alerts", f"At most {MAX_ALERTS} alerts (set max_alerts in Alertmanager).")
        items = []
    cleaned = {
        "version": VERSION,
        "groupKey": group_key,
        "status": payload.get("status"),
        "receiver": _text(errors, "receiver", payload.get("receiver")),
        "externalURL": _text(errors, "externalURL", payload.get("externalURL")),
        "truncatedAlerts": truncated,
        **{
            name: _strings(errors, name, payload.get(name), required=False)
            for name in ("groupLabels", "commonLabels", "commonAnnotations")
        },
        "alerts": [_alert(errors, index, item) for index, item in enumerate(items)],
    }
    errors.raise_any()
    return cleaned


# --- recording and handing over -------------------------------------------------------------------
def alert_delivery_accept(payload: dict[str, Any]) -> AlertDelivery:
    """Record a validated notification and hand it to a worker once the row commits.

    The row is the truth (`applied_at` its done marker): a broker that is away fails nothing,
    and beat re-drives it. Not audited itself: the incident changes it leads to are.
    """
    from apps.incidents.tasks import alert_delivery_apply_task

    with transaction.atomic():
        delivery = AlertDelivery.objects.create(
            received_at=timezone.now(),
            group_key=payload["groupKey"],
            status=payload["status"],
            payload=payload,
        )
        enqueue_after_commit(alert_delivery_apply_task, delivery.pk)
    return delivery


def alert_deliveries_redrive(now: datetime) -> int:
    """For beat: notifications not applied after the grace period (the broker was away when
    they came, their task was lost, or applying failed), handed to a worker again."""
    from apps.incidents.tasks import alert_delivery_apply_task

    waiting = list(
        AlertDelivery.objects.filter(
            applied_at__isnull=True,
            received_at__lt=grace_cutoff(now),
            received_at__gte=window_start(now),
        )
        .order_by("received_at")
        .values_list("pk", flat=True)[:REDRIVE_BATCH]
    )
    return redrive(KIND_ALERT_DELIVERY, alert_delivery_apply_task, waiting)
