"""Reads of approval requests for the inbox, the request page and the catalog's pages.

Every read of requests for a person starts from `approvals_visible_to`: a request about
something they may not see is not theirs to read either (its page shows the subject's details).
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime
from typing import Any

from django.db.models import Count, Exists, OuterRef, Prefetch, Q, QuerySet
from django.utils import timezone

from apps.accounts.models import User
from apps.approvals.engine import Progress, evaluate
from apps.approvals.models import AliasPolicy, AliasPromotion, ApprovalRequest, CheckResult, Review
from apps.approvals.registry import SUBJECT_KINDS

TABS = ("waiting", "mine", "all")


def approvals_visible_to(user: User) -> QuerySet[ApprovalRequest]:
    """Requests this person may see: those whose subject their kind lets them see (its
    `visible_subjects`), plus those they opened and those whose rules ask them to review (the
    engine sends them a link to it; a rule frozen when the request opened may name a team the
    subject's own visibility no longer does). A kind nobody registered is seen by nobody else."""
    if not user.is_authenticated:
        return ApprovalRequest.objects.none()
    asked = ApprovalRequest.eligible_teams.through.objects.filter(
        approvalrequest_id=OuterRef("pk"), team__memberships__user=user
    )
    rule = Q(requester=user) | Q(Exists(asked))
    for kind in SUBJECT_KINDS.values():
        if kind.visible_subjects is None:
            rule |= Q(kind=kind.kind)
        else:
            subjects = kind.visible_subjects(user).values("pk")
            rule |= Q(kind=kind.kind, subject_id__in=subjects)
    return ApprovalRequest.objects.filter(rule)


def _listed(requests: QuerySet[ApprovalRequest]) -> QuerySet[ApprovalRequest]:
    return requests.select_related("requester").annotate(
        live_approvals=Count(
            "reviews",
            filter=Q(reviews__decision=Review.Decision.APPROVE, reviews__dismissed_at__isnull=True),
        )
    )


def approvals_waiting_for(user: User) -> QuerySet[ApprovalRequest]:
    """Pending requests this person may review and has not reviewed yet, oldest first: not
    those they opened, nor those they changed (both are barred from reviewing them)."""
    reviewed = Review.objects.filter(
        request=OuterRef("pk"), reviewer=user, dismissed_at__isnull=True
    )
    eligible = ApprovalRequest.objects.filter(
        state=ApprovalRequest.State.PENDING, eligible_teams__memberships__user=user
    ).values("pk")
    return _listed(
        approvals_visible_to(user)
        .filter(pk__in=eligible)
        .exclude(requester=user)
        .exclude(barred_reviewers=user)
        .exclude(Exists(reviewed))
        .order_by("created_at", "id")
    )


def approvals_of(user: User) -> QuerySet[ApprovalRequest]:
    return _listed(approvals_visible_to(user).filter(requester=user).order_by("-created_at", "-id"))


def approvals_all(user: User, *, state: str = "", kind: str = "") -> QuerySet[ApprovalRequest]:
    """Every request this person may see, newest first."""
    requests = approvals_visible_to(user)
    if state:
        requests = requests.filter(state=state)
    if kind:
        requests = requests.filter(kind=kind)
    return _listed(requests.order_by("-created_at", "-id"))


def approvals_in_detail(user: User) -> QuerySet[ApprovalRequest]:
    """The requests this person may see, with what one request's page or API answer reads."""
    return (
        approvals_visible_to(user)
        .select_related("requester")
        .prefetch_related(
            Prefetch("reviews", queryset=Review.objects.select_related("reviewer")),
            Prefetch("check_results", queryset=CheckResult.objects.order_by("-ran_at", "-id")),
            "barred_reviewers",
        )
    )


def approval_for_page(user: User, pk: int) -> ApprovalRequest | None:
    """One request for its page, or None when there is none this person may see."""
    return approvals_in_detail(user).filter(pk=pk).first()


def approval_progress(approval: ApprovalRequest) -> Progress:
    """How far along a request is now: counted reviews, checks, what still blocks it."""
    reviews = approval.reviews.select_related("reviewer").order_by("created_at", "id")
    return evaluate(
        approval,
        list(reviews),
        list(approval.check_results.all()),
        timezone.now(),
        barred_ids=barred_ids_of(approval),
    )


def barred_ids_of(approval: ApprovalRequest) -> set[int]:
    """Who changed the request and may not review it (from the prefetch when there is one)."""
    return {person.pk for person in approval.barred_reviewers.all()}


def promotions_of_model(model_id: int) -> QuerySet[AliasPromotion]:
    return AliasPromotion.objects.filter(model_id=model_id).select_related(
        "version", "requested_by"
    )


def live_approvals() -> QuerySet[Review]:
    """Approving reviews that still count (no later change dismissed them)."""
    return Review.objects.filter(decision=Review.Decision.APPROVE, dismissed_at__isnull=True)


def approvers_of(approval_id: int) -> list[str]:
    """The usernames whose approval of this request counts now, sorted."""
    reviews = live_approvals().filter(request_id=approval_id)
    return sorted(reviews.values_list("reviewer__username", flat=True))


def approvals_by_promotion(promotions: list[AliasPromotion]) -> dict[int, ApprovalRequest]:
    from apps.approvals.promotions import KIND

    requests = ApprovalRequest.objects.filter(
        kind=KIND, subject_id__in=[p.pk for p in promotions]
    ).prefetch_related(
        Prefetch(
            "reviews",
            queryset=live_approvals().select_related("reviewer"),
            to_attr="live_approvals_list",
        )
    )
    return {request.subject_id: request for request in requests}


def policies() -> QuerySet[AliasPolicy]:
    return AliasPolicy.objects.prefetch_related("reviewer_teams", "required_teams")


def approvals_about(
    user: User, *, subjects: dict[str, QuerySet[Any]], start: datetime, end: datetime
) -> QuerySet[ApprovalRequest]:
    """Requests this person may see about these subjects ({kind: subject ids}) that were
    opened or decided between `start` and `end`."""
    about = Q(pk__in=[])
    for kind, ids in subjects.items():
        about |= Q(kind=kind, subject_id__in=ids)
    when = Q(created_at__range=(start, end)) | Q(decided_at__range=(start, end))
    return approvals_visible_to(user).filter(about, when).select_related("requester")


def promotion_ids_of_models(model_ids: Collection[int]) -> QuerySet[AliasPromotion, int]:
    return AliasPromotion.objects.filter(model_id__in=model_ids).values_list("pk", flat=True)
