"""Approval pages and API: inbox, request page, reviews over htmx, permissions, bad input."""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from django.core import mail
from django.test import Client
from django.utils import timezone

from apps.approvals import services
from apps.approvals.models import AliasPolicy, ApprovalRequest, Notification, Review
from apps.approvals.notifications import notify
from apps.audit.models import AuditEvent
from tests.accounts.factories import TeamFactory
from tests.api_errors import api_error
from tests.approvals.subject import two_of_risk
from tests.logs import log_lines

pytestmark = pytest.mark.django_db
HTMX = {"HX-Request": "true"}


@pytest.fixture
def approval(reviewers):
    return services.approval_request_open(
        kind="test",
        subject=TeamFactory(),
        revision="thing v1",
        title="Ship the thing",
        requester=reviewers["requester"],
        rules=two_of_risk(),
    )


def test_inbox_tabs(client: Client, reviewers, approval, django_assert_max_num_queries) -> None:
    client.force_login(reviewers["rae"])
    with django_assert_max_num_queries(12):
        waiting = client.get("/approvals/").content.decode()
    assert "Ship the thing" in waiting
    client.force_login(reviewers["outsider"])
    assert "Nothing is waiting for you." in client.get("/approvals/").content.decode()
    client.force_login(reviewers["requester"])
    assert "Ship the thing" not in client.get("/approvals/?tab=waiting").content.decode()
    assert "Ship the thing" in client.get("/approvals/?tab=mine").content.decode()
    partial = client.get("/approvals/?tab=all&state=pending", headers=HTMX).content.decode()
    assert partial.lstrip().startswith('<section class="card" id="results">')


def test_inbox_drops_a_request_once_reviewed(client: Client, reviewers, approval) -> None:
    services.approval_review_submit(
        approval=approval, reviewer=reviewers["rae"], decision="approve"
    )
    client.force_login(reviewers["rae"])
    assert "Ship the thing" not in client.get("/approvals/").content.decode()


def test_request_page_shows_progress_and_the_review_form_to_eligible_people(
    client: Client, reviewers, approval
) -> None:
    client.force_login(reviewers["rae"])
    html = client.get(f"/approvals/{approval.pk}/").content.decode()
    assert "0 of 2" in html and "2 more needed" in html
    assert "Submit review" in html
    client.force_login(reviewers["requester"])
    html = client.get(f"/approvals/{approval.pk}/").content.decode()
    assert "Submit review" not in html
    assert "someone else must review it" in html


def test_htmx_review_swaps_the_decision_panel(client: Client, reviewers, approval) -> None:
    client.force_login(reviewers["rae"])
    response = client.post(
        f"/approvals/{approval.pk}/review/",
        {"decision": "approve", "comment": "LGTM"},
        headers=HTMX,
    )
    html = response.content.decode()
    assert response.status_code == 200
    assert html.lstrip().startswith('<div id="decision" class="stack">')
    assert "1 of 2" in html and "You have reviewed this revision." in html


def test_review_form_errors_stay_in_the_panel(client: Client, reviewers, approval) -> None:
    client.force_login(reviewers["rae"])
    response = client.post(
        f"/approvals/{approval.pk}/review/", {"decision": "reject"}, headers=HTMX
    )
    assert "a rejection or a change request needs a comment" in response.content.decode()
    plain = client.post(
        f"/approvals/{approval.pk}/review/", {"decision": "approve", "comment": "x" * 1_000_001}
    )
    assert plain.status_code == 400
    assert not Review.objects.exists()


def test_outsider_review_is_refused_with_403(client: Client, reviewers, approval) -> None:
    client.force_login(reviewers["outsider"])
    response = client.post(f"/approvals/{approval.pk}/review/", {"decision": "approve"})
    assert response.status_code == 403
    assert not Review.objects.exists()


def test_review_on_a_closed_request_is_a_clear_error(client: Client, reviewers, approval) -> None:
    services.approval_request_cancel(approval=approval, actor=reviewers["requester"])
    client.force_login(reviewers["rae"])
    response = client.post(f"/approvals/{approval.pk}/review/", {"decision": "approve"})
    assert response.status_code == 400
    assert "This request is cancelled; it takes no more reviews." in response.content.decode()


def test_cancel_is_for_the_requester(client: Client, reviewers, approval) -> None:
    client.force_login(reviewers["rae"])
    assert client.post(f"/approvals/{approval.pk}/cancel/").status_code == 403
    client.force_login(reviewers["requester"])
    client.post(f"/approvals/{approval.pk}/cancel/")
    approval.refresh_from_db()
    assert approval.state == "cancelled"


def test_unknown_request_is_404(client: Client, reviewers) -> None:
    client.force_login(reviewers["rae"])
    assert client.get("/approvals/999999/").status_code == 404


def test_api_review_and_read_back(client: Client, reviewers, approval) -> None:
    client.force_login(reviewers["rae"])
    created = client.post(
        f"/api/v1/approvals/{approval.pk}/review/",
        {"decision": "approve"},
        content_type="application/json",
    )
    assert created.status_code == 201
    body = created.json()
    assert body["progress"]["approvals"] == 1 and body["progress"]["approvals_needed"] == 2
    assert body["reviews"][0]["reviewer"] == "rae"
    twice = client.post(
        f"/api/v1/approvals/{approval.pk}/review/",
        {"decision": "approve"},
        content_type="application/json",
    )
    assert "already reviewed" in api_error(twice, 400)["detail"]
    waiting = client.get("/api/v1/approvals/", {"tab": "waiting"}).json()
    assert waiting["count"] == 0


def test_api_refuses_outsiders_and_bad_bodies(client: Client, reviewers, approval) -> None:
    client.force_login(reviewers["outsider"])
    denied = client.post(
        f"/api/v1/approvals/{approval.pk}/review/",
        {"decision": "approve"},
        content_type="application/json",
    )
    assert "Only members of risk, owners" in api_error(denied, 403, "permission_denied")["detail"]
    client.force_login(reviewers["rae"])
    bad = client.post(
        f"/api/v1/approvals/{approval.pk}/review/",
        {"decision": "yes please"},
        content_type="application/json",
    )
    assert "decision" in api_error(bad, 400, "invalid")["errors"]
    huge = client.post(
        f"/api/v1/approvals/{approval.pk}/review/",
        {"decision": "approve", "comment": "x" * (1024 * 1024)},
        content_type="application/json",
    )
    assert "comment" in api_error(huge, 400, "invalid")["errors"]
    api_error(client.post(f"/api/v1/approvals/{approval.pk}/cancel/"), 403, "permission_denied")


def test_notifications_email_reviewers_on_open_and_requester_on_decision(
    reviewers, approval, settings
) -> None:
    assert notify(approval_id=approval.pk, event="opened", channel="email") == 4
    recipients = sorted(message.to[0] for message in mail.outbox)
    assert recipients == [
        "olive@example.com",
        "rae@example.com",
        "ria@example.com",
        "rob@example.com",
    ]
    assert mail.outbox[0].subject == "[Modelport] Review requested: Ship the thing"
    assert f"/approvals/{approval.pk}/" in mail.outbox[0].body
    mail.outbox.clear()
    services.approval_request_cancel(approval=approval, actor=reviewers["requester"])
    approval.refresh_from_db()
    notify(approval_id=approval.pk, event="cancelled", channel="email")
    assert [m.to for m in mail.outbox] == [["req@example.com"]]


def test_chat_failure_is_retried_and_never_touches_the_request(
    reviewers, approval, settings, monkeypatch, django_capture_on_commit_callbacks
) -> None:
    import requests

    from apps.approvals.notifications import SEND_LEASE, notifications_redrive
    from apps.approvals.tasks import approval_notify_task

    # The e-mail to reviewers that opening the request wrote: as if it went out.
    assert Notification.objects.update(sent_at=timezone.now()) == 1
    settings.APPROVALS_CHAT_WEBHOOK_URL = "http://127.0.0.1:9/hook"  # nothing listens on port 9
    attempts = []
    real_post = requests.post

    def counting_post(*args, **kwargs):
        attempts.append(args[0])
        return real_post(*args, **kwargs)

    monkeypatch.setattr(requests, "post", counting_post)
    note = Notification.objects.create(
        approval=approval, event="opened", channel="chat", created_at=timezone.now()
    )
    # The task does not retry (beat is the retry): one try is one send.
    with log_lines() as logged:
        result = approval_notify_task.apply(args=(note.pk,))
    assert (result.state, result.result) == ("SUCCESS", 0)
    assert len(attempts) == 1
    approval.refresh_from_db()
    assert approval.state == "pending"
    assert not mail.outbox  # the chat channel never sends the e-mails
    note.refresh_from_db()
    assert note.sent_at is None
    assert note.attempts == 1
    assert note.claimed_at is not None  # the failed try keeps its claim for SEND_LEASE
    assert note.last_error.startswith("ConnectionError: ")
    [failure] = logged.of("notification_send_failed")
    assert (failure["notification"], failure["channel"], failure["attempt"]) == (note.pk, "chat", 1)
    assert failure["error"].startswith("ConnectionError: ")

    # Beat leaves it alone while the claim holds, though the grace period is long past...
    past_grace = note.created_at + timedelta(seconds=settings.HANDOFF_GRACE_SECONDS + 1)
    lease_ends = note.claimed_at + SEND_LEASE
    assert past_grace < lease_ends
    with django_capture_on_commit_callbacks() as callbacks:
        assert notifications_redrive(timezone.now()) == 0
        assert notifications_redrive(past_grace) == 0
        assert notifications_redrive(lease_ends - timedelta(seconds=1)) == 0
    assert callbacks == []
    # ...and hands it to a worker again once the lease has run out.
    after_lease = lease_ends + timedelta(seconds=1)
    with django_capture_on_commit_callbacks() as callbacks:
        assert notifications_redrive(after_lease) == 1
    assert len(callbacks) == 1
    # That try is the second send, and holds a new claim.
    with time_machine.travel(after_lease, tick=False), log_lines() as logged:
        assert approval_notify_task.apply(args=(note.pk,)).result == 0
    assert len(attempts) == 2
    note.refresh_from_db()
    assert (note.attempts, note.claimed_at, note.sent_at) == (2, after_lease, None)
    assert notifications_redrive(after_lease + timedelta(seconds=1)) == 0
    [failure] = logged.of("notification_send_failed")
    assert (failure["notification"], failure["attempt"]) == (note.pk, 2)


def test_staff_manage_policies_with_form_errors(client: Client, reviewers, staff) -> None:
    client.force_login(reviewers["rae"])
    assert client.post("/approvals/policies/new/", {"alias_pattern": "prod"}).status_code == 403
    client.force_login(staff)
    bad = client.post(
        "/approvals/policies/new/",
        {
            "alias_pattern": "champion",
            "required_approvals": 2,
            "wait_minutes": 0,
            "expires_after_hours": 72,
            "required_tags": "validation_status",
            "metric_rules": "auc sideways",
        },
    )
    assert bad.status_code == 400
    html = bad.content.decode()
    assert "is not key=value" in html and "is not “metric higher|lower [tolerance]”" in html
    assert "Say who may approve" in html
    risk = TeamFactory._meta.model.objects.get(slug="risk")
    good = client.post(
        "/approvals/policies/new/",
        {
            "alias_pattern": "champion",
            "required_approvals": 2,
            "reviewer_teams": [risk.pk],
            "wait_minutes": 0,
            "expires_after_hours": 72,
            "required_tags": "validation_status=passed",
            "metric_rules": "auc higher 0.01",
        },
    )
    assert good.status_code == 302
    assert AliasPolicy.objects.get().reviewer_teams.get() == risk
    assert AuditEvent.objects.filter(action="alias_policy.created").count() == 1


def test_promote_page_rejects_unknown_versions_and_bad_aliases(
    client: Client, reviewers, staff
) -> None:
    from tests.catalog.factories import RegisteredModelFactory

    model = RegisteredModelFactory()
    client.force_login(staff)
    response = client.post(f"/approvals/promote/{model.pk}/", {"alias": "champion", "version": 7})
    assert response.status_code == 400
    assert f"{model.name} has no version 7." in response.content.decode()
    bad = client.post(f"/approvals/promote/{model.pk}/", {"alias": "no spaces!", "version": 1})
    assert bad.status_code == 400 and "Letters, digits" in bad.content.decode()
    assert not ApprovalRequest.objects.exists()


def test_dashboard_lists_requests_waiting_for_my_review(client: Client, reviewers) -> None:
    services.approval_request_open(
        kind="test",
        subject=TeamFactory(),
        revision="r1",
        title="Please look",
        requester=reviewers["requester"],
        rules=two_of_risk(),
    )
    client.force_login(reviewers["rae"])
    assert "Please look" in client.get("/").content.decode()
    client.force_login(reviewers["outsider"])
    assert "Waiting for your review" not in client.get("/").content.decode()
