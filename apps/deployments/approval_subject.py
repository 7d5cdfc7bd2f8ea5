"""Deploy requests as a subject of the approvals engine ("deploy").

Approved: the request moves pending_approval → queued and a worker is asked to apply it.
Rejected or expired: → rejected; cancelled: → cancelled. Both are conditional updates, so a
repeated delivery changes nothing. Reviewers see the manifest diff and the options in the panel.
Whoever may not see the deploy request may not see its approval request either.
"""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.urls import reverse

from apps.approvals.models import ApprovalRequest
from apps.approvals.registry import SubjectKind, register_subject
from apps.deployments.models import DeployEvent, DeployRequest
from apps.deployments.selectors import deploy_requests_visible_to, release_live
from apps.deployments.services.deploys import APPROVAL_KIND
from apps.deployments.services.transitions import deploy_request_transition, enqueue_execute


def _subject(approval: ApprovalRequest) -> DeployRequest | None:
    return (
        DeployRequest.objects.select_related("environment", "model", "version", "requester")
        .filter(pk=approval.subject_id)
        .first()
    )


def on_approved(approval: ApprovalRequest) -> None:
    """Queue the approved request; a second delivery finds it queued already and stops."""
    deploy = _subject(approval)
    if deploy is None:
        return
    with transaction.atomic():
        if deploy_request_transition(
            deploy,
            to=DeployRequest.State.QUEUED,
            from_states=(DeployRequest.State.PENDING_APPROVAL,),
            actor="approvals",
            message=f"Approved ({approval.decision_note}); queued.",
            audit={"approval": approval.pk},
        ):
            enqueue_execute(deploy.pk, deploy.token)


def on_closed(approval: ApprovalRequest) -> None:
    """Rejected, expired or cancelled in the engine: close the request the same way."""
    deploy = _subject(approval)
    if deploy is None:
        return
    to = (
        DeployRequest.State.CANCELLED
        if approval.state == ApprovalRequest.State.CANCELLED
        else DeployRequest.State.REJECTED
    )
    deploy_request_transition(
        deploy,
        to=to,
        from_states=(DeployRequest.State.PENDING_APPROVAL,),
        actor="approvals",
        message=f"Approval {approval.state}: {approval.decision_note}",
        level=DeployEvent.Level.WARNING,
        fields={"error": approval.decision_note[:2000]},
        audit={"approval": approval.pk},
    )


def url_of(approval: ApprovalRequest) -> str:
    return reverse("deployments:request-detail", args=[approval.subject_id])


def panel(approval: ApprovalRequest) -> tuple[str, dict[str, Any]] | None:
    """What reviewers see: the request, its options and the diff against what is live."""
    deploy = _subject(approval)
    if deploy is None:
        return None
    return (
        "deployments/includes/approval_panel.html",
        {
            "deploy": deploy,
            "live": release_live(deploy.environment_id, deploy.model_id),
            "url": url_of(approval),
        },
    )


register_subject(
    SubjectKind(
        kind=APPROVAL_KIND,
        on_approved=on_approved,
        on_closed=on_closed,
        url_of=url_of,
        panel=panel,
        # The approval page shows the request's reason, artifact and manifest diff: exactly
        # those who may open the deploy request (staff, the model's team, the requester, the
        # environment's approvers) may open its approval.
        visible_subjects=deploy_requests_visible_to,
    )
)
