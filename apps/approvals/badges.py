"""Badge tones of approval requests, promotions and review decisions."""

from apps.approvals.models import AliasPromotion, ApprovalRequest, Review

TONES: dict[str, str] = {
    ApprovalRequest.State.PENDING: "warn",  # as a deploy waiting for approval
    ApprovalRequest.State.APPROVED: "ok",
    ApprovalRequest.State.REJECTED: "danger",
    ApprovalRequest.State.EXPIRED: "warn",
    ApprovalRequest.State.CANCELLED: "",
    AliasPromotion.State.PENDING: "warn",
    AliasPromotion.State.APPLYING: "accent",
    AliasPromotion.State.APPLIED: "ok",
    AliasPromotion.State.CLOSED: "",
    AliasPromotion.State.FAILED: "danger",
    Review.Decision.APPROVE: "ok",
    Review.Decision.REJECT: "danger",
    Review.Decision.REQUEST_CHANGES: "warn",
}
