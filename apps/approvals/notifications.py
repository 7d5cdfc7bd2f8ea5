"""Tell people about requests: e-mail to reviewers and requester, and an optional chat webhook.

Each message is a Notification row written with the change (the durable hand-off): a worker
sends it after the commit, claiming it first so two never send it at once. A failure never
touches the request itself, and the task does not retry it: the claim is kept for SEND_LEASE,
after which beat re-drives the row (beat is the retry), so each try is one send, SEND_LEASE apart.
"""

from __future__ import annotations

import smtplib
from datetime import datetime, timedelta

import requests
import structlog
from django.conf import settings
from django.core.mail import send_mass_mail
from django.db.models import F, Q
from django.urls import reverse
from django.utils import timezone

from apps.accounts.models import User
from apps.approvals.models import ApprovalRequest, Notification
from apps.approvals.rules import Rules
from apps.jobs.handoff import REDRIVE_BATCH, grace_cutoff, redrive

log = structlog.get_logger(__name__)
CHAT_TIMEOUT_SECONDS = 5
# How long a worker's claim on a notification holds: past it, another may send it. A failed
# send keeps its claim, so this is also how long beat waits before trying again.
SEND_LEASE = timedelta(minutes=5)
# What a mail server or chat webhook that is away or refusing raises: the try ends, logged.
SEND_ERRORS: tuple[type[Exception], ...] = (
    smtplib.SMTPException,
    OSError,
    requests.RequestException,
)
KIND_NOTIFICATION = "notification"


def _reviewers(approval: ApprovalRequest) -> list[User]:
    rules = Rules.from_json(approval.rules)
    return list(
        User.objects.filter(is_active=True, memberships__team__slug__in=rules.reviewer_teams)
        .exclude(pk=approval.requester_id)
        .exclude(email="")
        .distinct()
        .order_by("username")
    )


def message_for(approval: ApprovalRequest, event: str) -> tuple[str, str, list[str]]:
    """Subject, body and e-mail recipients for an event."""
    url = settings.PORTAL_BASE_URL + reverse("approvals:request-detail", args=[approval.pk])
    if event == "opened":
        recipients = [user.email for user in _reviewers(approval)]
        subject = f"[Modelport] Review requested: {approval.title}"
        body = (
            f"{approval.requester.get_username()} asks for your review of:\n\n"
            f"  {approval.title}\n\nReview it here: {url}\n"
        )
    else:
        recipients = [approval.requester.email] if approval.requester.email else []
        subject = f"[Modelport] {approval.get_state_display()}: {approval.title}"
        body = f"Your request was {approval.state}.\n\n{approval.decision_note}\n\n{url}\n"
    return subject, body, recipients


def notify(*, approval_id: int, event: str, channel: str) -> int:
    """Send one event on one channel ("email" or "chat"); returns how many messages went out.

    Channels are separate tasks, so a chat outage retried does not send the e-mails twice.
    """
    approval = ApprovalRequest.objects.select_related("requester").filter(pk=approval_id).first()
    if approval is None:
        return 0
    subject, body, recipients = message_for(approval, event)
    if channel == "chat":
        if not settings.APPROVALS_CHAT_WEBHOOK_URL:
            return 0
        response = requests.post(
            settings.APPROVALS_CHAT_WEBHOOK_URL,
            json={"text": f"{subject}\n{body}"},
            timeout=CHAT_TIMEOUT_SECONDS,
            allow_redirects=False,
        )
        response.raise_for_status()
        sent = 1
    else:
        sent = send_mass_mail(
            [(subject, body, settings.DEFAULT_FROM_EMAIL, [to]) for to in recipients],
            fail_silently=False,
        )
    log.info("approval_notified", approval=approval_id, about=event, channel=channel, sent=sent)
    return sent


def _sendable(now: datetime) -> Q:
    """Not sent, not given up on, and nobody is sending it now."""
    return Q(sent_at__isnull=True, attempts__lt=Notification.MAX_ATTEMPTS) & (
        Q(claimed_at__isnull=True) | Q(claimed_at__lt=now - SEND_LEASE)
    )


def notification_send(*, notification_id: int) -> int:
    """Claim a notification, send it, mark it sent; how many messages went out (0: not ours,
    or the send failed).

    A failure keeps the claim (`claimed_at` stays the time of this try), so neither beat nor a
    duplicate delivery tries again before SEND_LEASE has passed; a channel that is away (one of
    SEND_ERRORS) ends the try with a log line, anything else is raised.
    """
    now = timezone.now()
    claimed = Notification.objects.filter(_sendable(now), pk=notification_id).update(
        claimed_at=now, attempts=F("attempts") + 1
    )
    if not claimed:
        return 0
    note = Notification.objects.get(pk=notification_id)
    try:
        sent = notify(approval_id=note.approval_id, event=note.event, channel=note.channel)
    except Exception as exc:
        error = f"{type(exc).__name__}: {exc}"
        Notification.objects.filter(pk=notification_id).update(last_error=error[:2000])
        if not isinstance(exc, SEND_ERRORS):
            raise
        log.warning(
            "notification_send_failed",
            notification=notification_id,
            channel=note.channel,
            attempt=note.attempts,
            max_attempts=Notification.MAX_ATTEMPTS,
            error=error,
        )
        return 0
    Notification.objects.filter(pk=notification_id).update(
        sent_at=timezone.now(), claimed_at=None, last_error=""
    )
    return sent


def notifications_redrive(now: datetime) -> int:
    """For beat: notifications not sent after the grace period, handed to a worker again."""
    from apps.approvals.tasks import approval_notify_task

    waiting = list(
        Notification.objects.filter(_sendable(now), created_at__lt=grace_cutoff(now))
        .order_by("created_at")
        .values_list("pk", flat=True)[:REDRIVE_BATCH]
    )
    return redrive(KIND_NOTIFICATION, approval_notify_task, waiting)
