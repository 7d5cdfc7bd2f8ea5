"""Who may do what with approvals; the engine itself enforces who may review."""

import rules

from apps.accounts.models import User
from apps.approvals.models import ApprovalRequest


@rules.predicate
def is_requester(user: User, approval: ApprovalRequest) -> bool:
    return approval.requester_id == user.pk


@rules.predicate
def is_eligible_reviewer(user: User, approval: ApprovalRequest) -> bool:
    return approval.eligible_teams.filter(memberships__user=user).exists()


can_cancel_request = rules.is_authenticated & (is_requester | rules.is_staff)
can_rerun_checks = rules.is_authenticated & (is_requester | rules.is_staff | is_eligible_reviewer)
can_manage_policies = rules.is_staff
