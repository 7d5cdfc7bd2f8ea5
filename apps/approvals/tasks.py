"""Thin tasks around the approvals engine.

The effect and notification tasks are re-driven by beat (the durable hand-off), so they never
retry themselves: a transient failure ends the try with a log line and leaves the row not done,
and beat's next re-drive after the grace period (or the send lease) is the retry.
"""

from __future__ import annotations

import structlog
from celery import shared_task

log = structlog.get_logger(__name__)


@shared_task(name="approvals.effect")
def approval_effect_task(approval_id: int) -> bool:
    """Carry out an approved request's effect; safe to deliver twice. True when it ran."""
    from apps.approvals.registry import transient_errors
    from apps.approvals.services import approval_effect_run

    try:
        return approval_effect_run(approval_id=approval_id)
    except transient_errors() as exc:
        # `effect_done_at` stays empty: beat re-drives the effect after the grace period.
        log.warning(
            "approval_effect_failed", approval=approval_id, error=f"{type(exc).__name__}: {exc}"
        )
        return False


@shared_task(name="approvals.notify")
def approval_notify_task(notification_id: int) -> int:
    """Send one notification row; its claim keeps a duplicate delivery from sending twice.

    No retries of its own: a failed send keeps its claim for SEND_LEASE, then beat re-drives it.
    """
    from apps.approvals.notifications import notification_send

    return notification_send(notification_id=notification_id)


@shared_task(name="approvals.advance_due")
def approvals_advance_due_task() -> dict[str, int]:
    from apps.approvals.services import approvals_advance_due

    return approvals_advance_due()
