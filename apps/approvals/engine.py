"""How far along a request is: a pure judgement of its rules against its reviews and checks.

No database writes here; services call `evaluate` under the request's row lock and act on it.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from apps.approvals.models import ApprovalRequest, CheckResult, Review
from apps.approvals.rules import Rules


@dataclass(frozen=True)
class CheckStatus:
    name: str
    required: bool
    passed: bool | None  # None: not run on this revision yet
    detail: str
    ran_at: datetime | None


@dataclass
class Progress:
    rules: Rules
    counted: list[Review] = field(default_factory=list)
    not_counted: list[tuple[Review, str]] = field(default_factory=list)
    dismissed: list[Review] = field(default_factory=list)
    changes_requested: list[Review] = field(default_factory=list)
    rejection: Review | None = None
    teams_missing: list[str] = field(default_factory=list)
    checks: list[CheckStatus] = field(default_factory=list)
    wait_remaining: timedelta = timedelta(0)
    expired: bool = False

    @property
    def approvals_needed(self) -> int:
        return self.rules.required_approvals

    @property
    def approvals_missing(self) -> int:
        return max(0, self.rules.required_approvals - len(self.counted))

    @property
    def failing_required_checks(self) -> list[CheckStatus]:
        return [check for check in self.checks if check.required and not check.passed]

    @property
    def blockers(self) -> list[str]:
        """Why the request cannot complete yet, in words; empty when it can."""
        reasons = []
        if self.approvals_missing:
            reasons.append(
                f"{len(self.counted)} of {self.approvals_needed} approvals "
                f"({self.approvals_missing} more needed)"
            )
        for team in self.teams_missing:
            reasons.append(f"an approval from team {team} is required")
        for review in self.changes_requested:
            reasons.append(f"{review.reviewer.get_username()} requested changes")
        for check in self.failing_required_checks:
            state = "has not run" if check.passed is None else "fails"
            reasons.append(f"required check {check.name} {state}")
        if self.wait_remaining > timedelta(0):
            minutes = math.ceil(self.wait_remaining.total_seconds() / 60)
            reasons.append(f"the wait timer has {minutes} min left")
        return reasons

    @property
    def complete(self) -> bool:
        return not self.expired and self.rejection is None and not self.blockers


def reviewer_is_eligible(rules: Rules, reviewer_teams: Iterable[str]) -> bool:
    return bool(set(rules.reviewer_teams) & set(reviewer_teams))


def why_review_not_allowed(
    rules: Rules,
    *,
    requester_id: int,
    reviewer_id: int,
    reviewer_teams: Iterable[str],
    barred_ids: Collection[int],
) -> str:
    """The reason this person may not review, or "" when they may. `barred_ids`: the people
    who changed the request's subject (`ApprovalRequest.barred_reviewers`)."""
    teams = set(reviewer_teams)
    if reviewer_id == requester_id:
        return "You opened this request; someone else must review it."
    if reviewer_id in barred_ids:
        return "You changed this request; someone else must review it."
    if not reviewer_is_eligible(rules, teams):
        allowed = ", ".join(rules.reviewer_teams) or "nobody"
        return f"Only members of {allowed} may review this request."
    if rules.bar_requester_team and teams & set(rules.requester_teams):
        return "Members of the requester's team may not review this request."
    return ""


def latest_checks(rules: Rules, results: Iterable[CheckResult], revision: str) -> list[CheckStatus]:
    """The newest result of each check the rules name, for the current revision only."""
    newest: dict[str, CheckResult] = {}
    for result in results:
        if result.subject_revision != revision:
            continue
        seen = newest.get(result.name)
        if seen is None or (result.ran_at, result.pk) > (seen.ran_at, seen.pk):
            newest[result.name] = result
    statuses = []
    for spec in rules.checks:
        latest = newest.get(spec.name)
        statuses.append(
            CheckStatus(
                name=spec.name,
                required=spec.required,
                passed=latest.passed if latest else None,
                detail=latest.detail if latest else "Not run yet.",
                ran_at=latest.ran_at if latest else None,
            )
        )
    return statuses


def evaluate(
    approval: ApprovalRequest,
    reviews: Iterable[Review],
    results: Iterable[CheckResult],
    now: datetime,
    *,
    barred_ids: Collection[int],
) -> Progress:
    """Judge the request. A review by someone barred from reviewing it never counts, even one
    given before they were barred (a revision dismisses those too, but the rule holds here)."""
    rules = Rules.from_json(approval.rules)
    progress = Progress(rules=rules)
    counted_teams: set[str] = set()
    for review in reviews:
        if review.dismissed_at is not None:
            progress.dismissed.append(review)
            continue
        reason = why_review_not_allowed(
            rules,
            requester_id=approval.requester_id,
            reviewer_id=review.reviewer_id,
            reviewer_teams=review.reviewer_teams,
            barred_ids=barred_ids,
        )
        if reason:
            progress.not_counted.append((review, reason))
            continue
        if review.decision == Review.Decision.REJECT:
            progress.rejection = progress.rejection or review
        elif review.decision == Review.Decision.REQUEST_CHANGES:
            progress.changes_requested.append(review)
        else:
            progress.counted.append(review)
            counted_teams.update(review.reviewer_teams)
    progress.teams_missing = [team for team in rules.required_teams if team not in counted_teams]
    progress.checks = latest_checks(rules, results, approval.subject_revision)
    progress.wait_remaining = max(timedelta(0), approval.wait_until - now)
    progress.expired = approval.expires_at is not None and now >= approval.expires_at
    return progress
