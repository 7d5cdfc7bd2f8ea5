"""The review engine: quorum, separation of duties, timers, checks, revisions, exactly-once."""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from django.core.exceptions import PermissionDenied, ValidationError
from django.utils import timezone

from apps.approvals import selectors as approval_selectors
from apps.approvals import services
from apps.approvals.models import ApprovalRequest, Review
from apps.approvals.registry import SubjectKind, register_subject
from apps.approvals.rules import CheckSpec
from apps.approvals.services import ApprovalClosedError
from apps.audit.models import AuditEvent
from tests.accounts.factories import TeamFactory
from tests.approvals.subject import check_flag, record_effect, recorded_effects, two_of_risk
from tests.logs import log_lines

pytestmark = pytest.mark.django_db


def open_request(requester, rules, revision="thing v1"):
    subject = TeamFactory()  # any model row can be a subject
    return services.approval_request_open(
        kind="test",
        subject=subject,
        revision=revision,
        title="Test change",
        requester=requester,
        rules=rules,
    )


def approve(request, reviewer, comment=""):
    return services.approval_review_submit(
        approval=request, reviewer=reviewer, decision="approve", comment=comment
    )


def state(request) -> str:
    request.refresh_from_db()
    return request.state


def test_quorum_of_two(reviewers, django_capture_on_commit_callbacks) -> None:
    request = open_request(reviewers["requester"], two_of_risk())
    approve(request, reviewers["rae"])
    assert state(request) == "pending"
    with django_capture_on_commit_callbacks() as callbacks:
        approve(request, reviewers["rob"])
    assert state(request) == "approved"
    assert request.decision_note == "Approved by rae, rob."
    assert len(callbacks) == 2  # the effect task, and the requester's e-mail
    assert recorded_effects == []  # the effect runs in a worker, after commit
    services.approval_effect_run(approval_id=request.pk)
    assert recorded_effects == [request.pk]
    assert (
        AuditEvent.objects.filter(action="approval.approved", object_id=str(request.pk)).count()
        == 1
    )


def test_requester_cannot_review_their_own_request(reviewers) -> None:
    request = open_request(reviewers["requester"], two_of_risk())
    with pytest.raises(PermissionDenied, match="someone else must review"):
        approve(request, reviewers["requester"])
    assert not Review.objects.exists()


def test_reviewer_outside_the_eligible_teams_is_refused(reviewers) -> None:
    request = open_request(reviewers["requester"], two_of_risk())
    with pytest.raises(PermissionDenied, match="Only members of risk, owners may review"):
        approve(request, reviewers["outsider"])


def test_requester_team_can_be_barred(reviewers) -> None:
    request = open_request(reviewers["requester"], two_of_risk(bar_requester_team=True))
    with pytest.raises(PermissionDenied, match="requester's team"):
        approve(request, reviewers["olive"])  # olive shares the `owners` team with the requester


def test_a_reviewer_cannot_review_twice(reviewers) -> None:
    request = open_request(reviewers["requester"], two_of_risk())
    approve(request, reviewers["rae"])
    with pytest.raises(ValidationError, match="already reviewed"):
        approve(request, reviewers["rae"])
    assert state(request) == "pending"


def test_required_team_must_be_among_the_approvers(reviewers) -> None:
    request = open_request(reviewers["requester"], two_of_risk(required_teams=("owners",)))
    approve(request, reviewers["rae"])
    approve(request, reviewers["rob"])
    assert state(request) == "pending"
    assert (
        "an approval from team owners is required"
        in approval_selectors.approval_progress(request).blockers
    )
    approve(request, reviewers["olive"])
    assert state(request) == "approved"


def test_a_reject_by_an_eligible_reviewer_rejects(reviewers) -> None:
    request = open_request(reviewers["requester"], two_of_risk())
    approve(request, reviewers["rae"])
    services.approval_review_submit(
        approval=request, reviewer=reviewers["rob"], decision="reject", comment="No."
    )
    assert state(request) == "rejected"
    assert request.decision_note == "Rejected by rob: No."
    with pytest.raises(ApprovalClosedError, match="takes no more reviews"):
        approve(request, reviewers["ria"])


def test_rejection_and_changes_need_a_comment_and_comments_are_bounded(reviewers) -> None:
    request = open_request(reviewers["requester"], two_of_risk())
    with pytest.raises(ValidationError, match="needs a comment"):
        services.approval_review_submit(
            approval=request, reviewer=reviewers["rae"], decision="reject"
        )
    with pytest.raises(ValidationError, match="at most 10,000 characters"):
        approve(request, reviewers["rae"], comment="x" * 1_000_000)
    with pytest.raises(ValidationError, match="Unknown decision"):
        services.approval_review_submit(
            approval=request, reviewer=reviewers["rae"], decision="maybe"
        )
    assert not Review.objects.exists()


def test_requested_changes_block_until_the_subject_changes(reviewers) -> None:
    request = open_request(reviewers["requester"], two_of_risk())
    services.approval_review_submit(
        approval=request, reviewer=reviewers["rae"], decision="request_changes", comment="Retrain."
    )
    approve(request, reviewers["rob"])
    approve(request, reviewers["ria"])
    assert state(request) == "pending"
    assert "rae requested changes" in approval_selectors.approval_progress(request).blockers


def test_a_new_revision_dismisses_earlier_reviews(reviewers) -> None:
    request = open_request(reviewers["requester"], two_of_risk(), revision="model@champion → v5")
    approve(request, reviewers["rae"])
    services.approval_subject_revise(
        approval=request,
        revision="model@champion → v6",
        title="v6 instead",
        actor=reviewers["requester"],
    )
    review = Review.objects.get()
    assert review.dismissed_at is not None
    assert "changed from model@champion → v5 to model@champion → v6" in review.dismissed_reason
    approve(request, reviewers["rob"])
    assert state(request) == "pending"  # rae's earlier approval no longer counts
    approve(request, reviewers["rae"])  # and rae may review the new revision
    assert state(request) == "approved"


def test_a_failing_required_check_blocks_until_rerun(reviewers) -> None:
    check_flag["check_passes"] = False
    request = open_request(reviewers["requester"], two_of_risk(checks=(CheckSpec("flag_check"),)))
    approve(request, reviewers["rae"])
    approve(request, reviewers["rob"])
    assert state(request) == "pending"
    assert (
        "required check flag_check fails" in approval_selectors.approval_progress(request).blockers
    )
    check_flag["check_passes"] = True
    services.approval_checks_rerun(approval=request, actor=reviewers["requester"])
    assert state(request) == "approved"
    assert AuditEvent.objects.filter(action="approval.checks_run").count() == 2


def test_an_advisory_check_does_not_block(reviewers) -> None:
    check_flag["check_passes"] = False
    request = open_request(
        reviewers["requester"], two_of_risk(checks=(CheckSpec("flag_check", required=False),))
    )
    approve(request, reviewers["rae"])
    approve(request, reviewers["rob"])
    assert state(request) == "approved"


def test_unknown_check_fails_closed(reviewers) -> None:
    request = open_request(
        reviewers["requester"], two_of_risk(checks=(CheckSpec("no_such_check"),))
    )
    check = approval_selectors.approval_progress(request).checks[0]
    assert check.passed is False and "No check named 'no_such_check'" in check.detail


def test_wait_timer_holds_completion_until_it_runs_out(reviewers) -> None:
    start = timezone.now()
    with time_machine.travel(start, tick=False):
        request = open_request(reviewers["requester"], two_of_risk(wait_minutes=30))
        approve(request, reviewers["rae"])
        approve(request, reviewers["rob"])
        assert state(request) == "pending"
        assert (
            "the wait timer has 30 min left"
            in approval_selectors.approval_progress(request).blockers
        )
    with time_machine.travel(start + timedelta(minutes=31), tick=False):
        assert services.approvals_advance_due() == {"looked_at": 1, "closed": 1}
        assert state(request) == "approved"


def test_expiry_closes_the_request_and_refuses_late_reviews(reviewers) -> None:
    start = timezone.now()
    with time_machine.travel(start, tick=False):
        request = open_request(reviewers["requester"], two_of_risk(expires_after_hours=1))
        approve(request, reviewers["rae"])
    with time_machine.travel(start + timedelta(hours=2), tick=False):
        with pytest.raises(ApprovalClosedError, match="expired"):
            approve(request, reviewers["rob"])
        assert state(request) == "expired"


def test_cancel_only_by_requester_or_staff(reviewers) -> None:
    request = open_request(reviewers["requester"], two_of_risk())
    with pytest.raises(PermissionDenied):
        services.approval_request_cancel(approval=request, actor=reviewers["rae"])
    services.approval_request_cancel(approval=request, actor=reviewers["requester"])
    assert state(request) == "cancelled"
    with pytest.raises(ApprovalClosedError):
        services.approval_request_cancel(approval=request, actor=reviewers["requester"])


def test_effect_runs_once_even_if_delivered_twice(reviewers) -> None:
    request = open_request(reviewers["requester"], two_of_risk())
    approve(request, reviewers["rae"])
    approve(request, reviewers["rob"])
    assert services.approval_effect_run(approval_id=request.pk) is True
    assert services.approval_effect_run(approval_id=request.pk) is False
    assert recorded_effects == [request.pk]


def test_a_transient_effect_failure_ends_the_try_and_beat_redrives_it(
    reviewers, settings, django_capture_on_commit_callbacks
) -> None:
    from apps.approvals.tasks import approval_effect_task

    class RegistryAway(Exception):
        pass

    tries: list[int] = []

    def away(request) -> None:
        tries.append(request.pk)
        raise RegistryAway("MLflow is away")

    # The conftest's "test" kind, with an effect that fails as an unreachable registry does.
    register_subject(SubjectKind(kind="test", on_approved=away, transient=(RegistryAway,)))
    request = open_request(reviewers["requester"], two_of_risk())
    approve(request, reviewers["rae"])
    approve(request, reviewers["rob"])

    with log_lines() as logged:
        result = approval_effect_task.apply(args=(request.pk,))

    assert (result.state, result.result) == ("SUCCESS", False)
    assert tries == [request.pk]  # one try: the task does not retry itself (beat is the retry)
    request.refresh_from_db()
    assert (request.state, request.effect_done_at) == ("approved", None)
    [failure] = logged.of("approval_effect_failed")
    assert (failure["approval"], failure["error"]) == (request.pk, "RegistryAway: MLflow is away")
    with django_capture_on_commit_callbacks() as callbacks:
        assert services.approval_effects_redrive(timezone.now()) == 0  # within the grace period
    assert callbacks == []
    later = request.decided_at + timedelta(seconds=settings.HANDOFF_GRACE_SECONDS + 1)
    with django_capture_on_commit_callbacks() as callbacks:
        assert services.approval_effects_redrive(later) == 1
    assert len(callbacks) == 1

    # The registry is back: the re-driven task carries the effect out, and beat is done with it.
    register_subject(SubjectKind(kind="test", on_approved=record_effect))
    assert approval_effect_task.apply(args=(request.pk,)).result is True
    assert recorded_effects == [request.pk]
    request.refresh_from_db()
    assert request.effect_done_at is not None
    assert services.approval_effects_redrive(later) == 0


def test_rules_needing_approvals_must_name_reviewer_teams(reviewers) -> None:
    with pytest.raises(ValidationError, match="must name the teams"):
        open_request(reviewers["requester"], two_of_risk(reviewer_teams=()))
    assert not ApprovalRequest.objects.exists()
