"""The one way to write the audit trail."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import structlog
from django.db import models, transaction

from apps.audit.models import AuditEvent

if TYPE_CHECKING:
    # The portal's user model (AUTH_USER_MODEL), which this lower layer may not import: the
    # django-stubs plugin resolves the alias to it.
    from django.contrib.auth.models import _User


class AuditOutsideTransactionError(RuntimeError):
    """record() ran outside a transaction, so the event could outlive a rolled-back change."""


def record(
    actor: _User | str | None,
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
    if actor is None or isinstance(actor, str):
        user, label = None, actor or "system"
    else:
        user, label = actor, actor.get_username()
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
