"""Reads of the audit trail."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime
from typing import TYPE_CHECKING

from django.db import models

from apps.audit.models import AuditEvent

if TYPE_CHECKING:
    # The portal's user model (AUTH_USER_MODEL), which this lower layer may not import: the
    # django-stubs plugin resolves the alias to it.
    from django.contrib.auth.models import _User


def audit_events_filtered(
    *,
    actor: str = "",
    action: str = "",
    object_type: str = "",
    object_id: str = "",
) -> models.QuerySet[AuditEvent]:
    """Newest first; `action` matches a prefix so "team." finds every team change."""
    events = AuditEvent.objects.all()
    if actor:
        events = events.filter(actor_label=actor)
    if action:
        events = events.filter(action__startswith=action)
    if object_type:
        events = events.filter(object_type=object_type)
    if object_id:
        events = events.filter(object_id=object_id)
    return events


def audit_events_by(user: _User) -> models.QuerySet[AuditEvent]:
    return AuditEvent.objects.filter(actor=user)


def audit_actions() -> list[str]:
    """Every action name seen, for the filter's suggestions."""
    return list(AuditEvent.objects.order_by().values_list("action", flat=True).distinct()[:200])


def audit_events_about(
    *,
    object_type: str,
    object_ids: Collection[int],
    actions: Collection[str],
    start: datetime,
    end: datetime,
) -> models.QuerySet[AuditEvent]:
    """Events of these actions on these objects between `start` and `end`, newest first."""
    return AuditEvent.objects.filter(
        object_type=object_type,
        object_id__in=[str(pk) for pk in object_ids],
        action__in=actions,
        occurred_at__range=(start, end),
    )
