"""The one way to write the audit trail."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import structlog
from django.db import models, transaction

from apps.audit.models import AuditEvent

if TYPE_CHECKING:
    from django.contrib.auth.base_user import AbstractBaseUser


class AuditOutsideTransactionError(RuntimeError):
    """record() ran outside a transaction, so the event could outlive a rolled-back change."""


def record(
    actor: AbstractBaseUser | str | None,
    action: str,
    obj: models.Model | None = None,
    /,
    **data: Any,
) -> AuditEvent:
    """Write one audit event inside the caller's transaction (it rolls back with the change).

    `actor` is a user, or a string naming a system actor such as "scheduler".
    """
    if not transaction.get_connection().in_atomic_block:
        raise AuditOutsideTransactionError(
            f"audit.record({action!r}) must run inside the transaction of the change it records"
        )
    user = actor if actor is not None and not isinstance(actor, str) else None
    label = user.get_username() if user is not None else (actor or "system")
    event = AuditEvent(
        actor=user,
        actor_label=label,
        action=action,
        data=data,
        request_id=str(structlog.contextvars.get_contextvars().get("request_id", ""))[:64],
    )
    if obj is not None:
        event.object_type = obj._meta.label_lower
        event.object_id = str(obj.pk)
        event.object_repr = str(obj)[:200]
    event.save()
    return event
