"""Thin tasks around the approvals engine."""

from __future__ import annotations

from celery import Task, shared_task


@shared_task(name="approvals.effect", bind=True, max_retries=8)
def approval_effect_task(self: Task[[int], bool], approval_id: int) -> bool:
    """Carry out an approved request's effect; safe to deliver twice."""
    from apps.approvals.registry import transient_errors
    from apps.approvals.services import approval_effect_run

    try:
        return approval_effect_run(approval_id=approval_id)
    except transient_errors() as exc:
        raise self.retry(exc=exc, countdown=min(300, 5 * 2**self.request.retries)) from exc


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
