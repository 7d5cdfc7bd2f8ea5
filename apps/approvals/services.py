"""The engine's verbs. Each runs in a transaction, writes one audit event, and judges the request
under its row lock, so concurrent reviews complete it exactly once.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

import structlog
from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, models, transaction
from django.utils import timezone

from apps.accounts.models import Team, User
from apps.accounts.selectors import team_slugs_of
from apps.approvals.engine import Progress, evaluate, why_review_not_allowed
from apps.approvals.models import (
    MAX_COMMENT_CHARS,
    ApprovalRequest,
    CheckResult,
    Notification,
    Review,
)
from apps.approvals.registry import CHECKS, SUBJECT_KINDS, CheckOutcome, subject_kind
from apps.approvals.rules import Rules
from apps.audit.services import record
from apps.jobs.handoff import (
    REDRIVE_BATCH,
    enqueue_after_commit,
    grace_cutoff,
    redrive,
    window_start,
)

log = structlog.get_logger(__name__)
KIND_EFFECT = "approval_effect"


class ApprovalClosedError(ValidationError):
    """The request is no longer pending."""


def _locked(approval: ApprovalRequest) -> ApprovalRequest:
    return ApprovalRequest.objects.select_for_update().get(pk=approval.pk)


def _barred_ids(approval: ApprovalRequest) -> set[int]:
    """Who changed the subject and so may not review it (read under the row lock)."""
    return set(approval.barred_reviewers.values_list("pk", flat=True))


# --- opening --------------------------------------------------------------------------------------
@transaction.atomic
def approval_request_open(
    *,
    kind: str,
    subject: models.Model,
    revision: str,
    title: str,
    requester: User,
    rules: Rules,
) -> ApprovalRequest:
    """Open a request with its rules frozen, run its checks, tell the reviewers."""
    subject_kind(kind)
    if rules.required_approvals < 0 or (rules.required_approvals and not rules.reviewer_teams):
        raise ValidationError("Rules that need approvals must name the teams that may give them.")
    now = timezone.now()
    frozen = replace(rules, requester_teams=tuple(team_slugs_of(requester)))
    approval = ApprovalRequest.objects.create(
        kind=kind,
        subject=subject,
        subject_revision=revision[:200],
        title=title[:300],
        requester=requester,
        rules=frozen.to_json(),
        created_at=now,
        wait_until=now + timedelta(minutes=frozen.wait_minutes),
        expires_at=(
            now + timedelta(hours=frozen.expires_after_hours)
            if frozen.expires_after_hours
            else None
        ),
    )
    approval.eligible_teams.set(Team.objects.filter(slug__in=frozen.reviewer_teams))
    record(
        requester, "approval.opened", approval, kind=kind, revision=revision, rules=frozen.to_json()
    )
    _run_checks(approval)
    _notify_on_commit(approval, "opened")
    _advance(_locked(approval))
    return approval


# --- reviewing ------------------------------------------------------------------------------------
def approval_review_submit(
    *, approval: ApprovalRequest, reviewer: User, decision: str, comment: str = ""
) -> Review:
    """Record a review and judge the request at once, under its row lock."""
    if decision not in Review.Decision.values:
        raise ValidationError(f"Unknown decision {decision!r}.")
    if len(comment) > MAX_COMMENT_CHARS:
        raise ValidationError(f"A comment may be at most {MAX_COMMENT_CHARS:,} characters.")
    if decision != Review.Decision.APPROVE and not comment.strip():
        raise ValidationError("Say why: a rejection or a change request needs a comment.")
    # A request that expired closes (and stays closed) before the review is refused.
    with transaction.atomic():
        _advance(_locked(approval))
    with transaction.atomic():
        return _review_submit_locked(approval, reviewer, decision, comment)


def _review_submit_locked(
    approval: ApprovalRequest, reviewer: User, decision: str, comment: str
) -> Review:
    approval = _locked(approval)
    if not approval.is_open:
        raise ApprovalClosedError(f"This request is {approval.state}; it takes no more reviews.")
    rules = Rules.from_json(approval.rules)
    teams = team_slugs_of(reviewer)
    reason = why_review_not_allowed(
        rules,
        requester_id=approval.requester_id,
        reviewer_id=reviewer.pk,
        reviewer_teams=teams,
        barred_ids=_barred_ids(approval),
    )
    if reason:
        raise PermissionDenied(reason)
    if approval.reviews.filter(reviewer=reviewer, dismissed_at__isnull=True).exists():
        raise ValidationError("You have already reviewed this revision of the request.")
    try:
        with transaction.atomic():
            review = Review.objects.create(
                request=approval,
                reviewer=reviewer,
                decision=decision,
                comment=comment.strip(),
                subject_revision=approval.subject_revision,
                reviewer_teams=teams,
                created_at=timezone.now(),
            )
    except IntegrityError:
        raise ValidationError("You have already reviewed this revision of the request.") from None
    record(
        reviewer,
        "approval.reviewed",
        approval,
        decision=decision,
        revision=approval.subject_revision,
    )
    _advance(approval)
    return review


# --- checks ---------------------------------------------------------------------------------------
def _run_checks(approval: ApprovalRequest) -> list[CheckResult]:
    """Run every check the rules name against the subject as it is now; store the results."""
    rules = Rules.from_json(approval.rules)
    subject = approval.subject
    now = timezone.now()
    results = []
    for spec in rules.checks:
        registered = CHECKS.get(spec.name)
        if registered is None:
            outcome = CheckOutcome(False, f"No check named {spec.name!r} is registered.")
        else:
            try:
                outcome = registered.function(subject, spec.params)
            except Exception as exc:  # a broken check fails closed, with its reason shown
                log.exception("approval_check_crashed", check=spec.name, approval=approval.pk)
                outcome = CheckOutcome(False, f"The check failed to run: {exc}")
        results.append(
            CheckResult(
                request=approval,
                name=spec.name,
                required=spec.required,
                passed=outcome.passed,
                detail=outcome.detail[:2000],
                subject_revision=approval.subject_revision,
                ran_at=now,
            )
        )
    CheckResult.objects.bulk_create(results)
    if results:
        record(
            "approvals",
            "approval.checks_run",
            approval,
            results={result.name: result.passed for result in results},
        )
    return results


@transaction.atomic
def approval_checks_rerun(*, approval: ApprovalRequest, actor: User) -> list[CheckResult]:
    """Re-run the checks (e.g. after fixing a tag) and judge the request again."""
    approval = _locked(approval)
    if not approval.is_open:
        raise ApprovalClosedError(f"This request is {approval.state}; its checks are final.")
    results = _run_checks(approval)
    _advance(approval)
    return results


# --- changing the subject, cancelling -------------------------------------------------------------
@transaction.atomic
def approval_subject_revise(
    *, approval: ApprovalRequest, revision: str, title: str, actor: User
) -> ApprovalRequest:
    """The subject changed (e.g. a newer version chosen): earlier reviews no longer count, and
    whoever changed it may not review it (the requester is barred already)."""
    approval = _locked(approval)
    if not approval.is_open:
        raise ApprovalClosedError(f"This request is {approval.state}; it can no longer change.")
    previous = approval.subject_revision
    if previous == revision:
        return approval
    reason = f"Dismissed: the request changed from {previous} to {revision}."
    dismissed = approval.reviews.filter(dismissed_at__isnull=True).update(
        dismissed_at=timezone.now(), dismissed_reason=reason[:300]
    )
    approval.subject_revision, approval.title = revision[:200], title[:300]
    approval.save(update_fields=["subject_revision", "title"])
    if actor.pk != approval.requester_id:
        approval.barred_reviewers.add(actor)
    record(
        actor,
        "approval.revised",
        approval,
        previous=previous,
        revision=revision,
        dismissed=dismissed,
        barred=sorted(approval.barred_reviewers.values_list("username", flat=True)),
    )
    _run_checks(approval)
    _advance(approval)
    return approval


@transaction.atomic
def approval_request_cancel(
    *, approval: ApprovalRequest, actor: User, reason: str = ""
) -> ApprovalRequest:
    """The requester (or staff) withdraws a pending request."""
    approval = _locked(approval)
    if actor.pk != approval.requester_id and not actor.is_staff:
        raise PermissionDenied("Only the requester or staff can cancel this request.")
    if not approval.is_open:
        raise ApprovalClosedError(f"This request is already {approval.state}.")
    _close(approval, ApprovalRequest.State.CANCELLED, actor, reason or "Cancelled.")
    return approval


# --- deciding -------------------------------------------------------------------------------------
def _advance(approval: ApprovalRequest) -> Progress | None:
    """Judge a locked, pending request and close it if it is decided. Call inside the lock."""
    if not approval.is_open:
        return None
    progress = evaluate(
        approval,
        list(approval.reviews.select_related("reviewer").order_by("created_at", "id")),
        list(approval.check_results.all()),
        timezone.now(),
        barred_ids=_barred_ids(approval),
    )
    if progress.expired:
        _close(approval, ApprovalRequest.State.EXPIRED, "approvals", "Expired before completing.")
    elif progress.rejection is not None:
        review = progress.rejection
        note = f"Rejected by {review.reviewer.get_username()}: {review.comment}"
        _close(approval, ApprovalRequest.State.REJECTED, review.reviewer, note)
    elif progress.complete:
        approvers = ", ".join(r.reviewer.get_username() for r in progress.counted) or "rules alone"
        _close(approval, ApprovalRequest.State.APPROVED, "approvals", f"Approved by {approvers}.")
        from apps.approvals.tasks import approval_effect_task

        # `effect_done_at` is the done marker: beat re-drives the effect if this send is lost.
        enqueue_after_commit(approval_effect_task, approval.pk)
    return progress


def _close(approval: ApprovalRequest, state: str, actor: User | str, note: str) -> None:
    approval.state, approval.decided_at, approval.decision_note = state, timezone.now(), note[:2000]
    approval.save(update_fields=["state", "decided_at", "decision_note"])
    record(
        actor, f"approval.{state}", approval, note=note[:500], revision=approval.subject_revision
    )
    kind = SUBJECT_KINDS.get(approval.kind)
    if state != ApprovalRequest.State.APPROVED and kind is not None and kind.on_closed:
        kind.on_closed(approval)
    _notify_on_commit(approval, state)


def approvals_advance_due() -> dict[str, int]:
    """For beat: close requests whose wait timer ran out (now complete) or that expired."""
    now = timezone.now()
    due = ApprovalRequest.objects.filter(state=ApprovalRequest.State.PENDING).filter(
        models.Q(expires_at__lte=now) | models.Q(wait_until__lte=now)
    )
    closed = 0
    due_ids = list(due.values_list("pk", flat=True))
    for approval_id in due_ids:
        with transaction.atomic():
            approval = ApprovalRequest.objects.select_for_update().get(pk=approval_id)
            _advance(approval)
            closed += not approval.is_open
    return {"looked_at": len(due_ids), "closed": closed}


def approval_effect_run(*, approval_id: int) -> bool:
    """Carry out an approved request's effect once; a repeat delivery finds it done."""
    approval = ApprovalRequest.objects.filter(
        pk=approval_id, state=ApprovalRequest.State.APPROVED, effect_done_at__isnull=True
    ).first()
    if approval is None:
        return False
    subject_kind(approval.kind).on_approved(approval)  # idempotent by contract
    ApprovalRequest.objects.filter(pk=approval_id, effect_done_at__isnull=True).update(
        effect_done_at=timezone.now()
    )
    return True


def approval_effects_redrive(now: datetime) -> int:
    """For beat: approved requests whose effect has not run after the grace period (its task
    was lost, or the broker was away when it was decided), handed to a worker again."""
    from apps.approvals.tasks import approval_effect_task

    waiting = list(
        ApprovalRequest.objects.filter(
            state=ApprovalRequest.State.APPROVED,
            effect_done_at__isnull=True,
            decided_at__lt=grace_cutoff(now),
            decided_at__gte=window_start(now),
        )
        .order_by("decided_at")
        .values_list("pk", flat=True)[:REDRIVE_BATCH]
    )
    return redrive(KIND_EFFECT, approval_effect_task, waiting)


def _notify_on_commit(approval: ApprovalRequest, event: str) -> None:
    """One Notification row per channel, in the caller's transaction; sent after commit."""
    from apps.approvals.tasks import approval_notify_task

    channels = [Notification.Channel.EMAIL]
    if settings.APPROVALS_CHAT_WEBHOOK_URL:
        channels.append(Notification.Channel.CHAT)
    now = timezone.now()
    for channel in channels:
        note = Notification.objects.create(
            approval=approval, event=event, channel=channel, created_at=now
        )
        enqueue_after_commit(approval_notify_task, note.pk)
