"""Tell people about requests: e-mail to reviewers and requester, and an optional chat webhook.

Runs in a task after the change committed; a failure here is retried by the task and never
touches the request itself.
"""

from __future__ import annotations

import requests
import structlog
from django.conf import settings
from django.core.mail import send_mass_mail
from django.urls import reverse

from apps.accounts.models import User
from apps.approvals.models import ApprovalRequest
from apps.approvals.rules import Rules

log = structlog.get_logger(__name__)
CHAT_TIMEOUT_SECONDS = 5


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
