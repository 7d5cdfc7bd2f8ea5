"""Thin tasks around the approvals engine."""

from __future__ import annotations

import smtplib

import requests
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


@shared_task(
    name="approvals.notify",
    autoretry_for=(smtplib.SMTPException, OSError, requests.RequestException),
    retry_backoff=10,
    retry_backoff_max=600,
    retry_jitter=True,
    max_retries=5,
)
def approval_notify_task(notification_id: int) -> int:
    """Send one notification row; its claim keeps a duplicate delivery from sending twice."""
    from apps.approvals.notifications import notification_send

    return notification_send(notification_id=notification_id)


@shared_task(name="approvals.advance_due")
def approvals_advance_due_task() -> dict[str, int]:
    from apps.approvals.services import approvals_advance_due

    return approvals_advance_due()
