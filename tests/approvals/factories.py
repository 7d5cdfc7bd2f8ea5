from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

import factory
from django.utils import timezone

from apps.accounts.models import Membership, Team, User
from apps.approvals import promotions
from apps.approvals.models import AliasPolicy, AliasPromotion, ApprovalRequest, Review
from apps.approvals.rules import Rules
from apps.deployments.models import DeployRequest
from apps.deployments.services import APPROVAL_KIND
from tests.accounts.factories import UserFactory
from tests.catalog.factories import ModelVersionFactory
from tests.deployments.factories import DeployRequestFactory

STEP = timedelta(minutes=1)


def team_slugs(user: User) -> list[str]:
    """The user's teams as `approvals.services.team_slugs_of` reads them (none when unsaved)."""
    return sorted(Membership.objects.filter(user_id=user.pk).values_list("team__slug", flat=True))


class AliasPolicyFactory(factory.django.DjangoModelFactory[AliasPolicy]):
    """Protects one alias ("production" by default); one row per pattern, reused if it exists."""

    class Meta:
        model = AliasPolicy
        django_get_or_create = ["alias_pattern"]
        skip_postgeneration_save = True

    alias_pattern = "production"
    description = "Production reads this alias."
    required_approvals = 1

    @factory.post_generation
    def reviewer_teams(self, create: bool, teams: Iterable[Team] | None, **kwargs: Any) -> None:
        if create and teams:
            self.reviewer_teams.set(teams)

    @factory.post_generation
    def required_teams(self, create: bool, teams: Iterable[Team] | None, **kwargs: Any) -> None:
        if create and teams:
            self.required_teams.set(teams)


# Promotion states a worker has claimed (and so stamped `claimed_at`).
CLAIMED = (
    AliasPromotion.State.APPLYING,
    AliasPromotion.State.APPLIED,
    AliasPromotion.State.FAILED,
)


class AliasPromotionFactory(factory.django.DjangoModelFactory[AliasPromotion]):
    """A pending request to point a protected alias at a version (MLflow is not touched); a
    trait (`applying`, `applied`, `closed`, `failed`) or `state=` sets the state, and the claim
    and apply times follow it."""

    class Meta:
        model = AliasPromotion

    class Params:
        applying = factory.Trait(state=AliasPromotion.State.APPLYING)
        applied = factory.Trait(state=AliasPromotion.State.APPLIED)
        closed = factory.Trait(state=AliasPromotion.State.CLOSED)
        failed = factory.Trait(
            state=AliasPromotion.State.FAILED, error="The registry refused the alias."
        )

    version = factory.SubFactory(ModelVersionFactory)
    model = factory.SelfAttribute("version.model")
    alias = "production"
    policy = factory.SubFactory(AliasPolicyFactory, alias_pattern=factory.SelfAttribute("..alias"))
    requested_by = factory.SubFactory(UserFactory)
    state = AliasPromotion.State.PENDING
    claimed_at = factory.LazyAttribute(lambda o: timezone.now() if o.state in CLAIMED else None)
    applied_at = factory.LazyAttribute(
        lambda o: o.claimed_at if o.state == AliasPromotion.State.APPLIED else None
    )


Approval = ApprovalRequest.State

# The registered subject kind of each subject model.
KIND_OF: dict[type, str] = {
    DeployRequest: APPROVAL_KIND,
    AliasPromotion: promotions.KIND,
}
# What the engine's effects leave the default subjects in, per approval state.
DEPLOY_STATE_FOR = {
    Approval.PENDING: DeployRequest.State.PENDING_APPROVAL,
    Approval.APPROVED: DeployRequest.State.QUEUED,
    Approval.REJECTED: DeployRequest.State.REJECTED,
    Approval.EXPIRED: DeployRequest.State.REJECTED,
    Approval.CANCELLED: DeployRequest.State.CANCELLED,
}
PROMOTION_STATE_FOR = {
    Approval.PENDING: AliasPromotion.State.PENDING,
    Approval.APPROVED: AliasPromotion.State.APPLIED,
    Approval.REJECTED: AliasPromotion.State.CLOSED,
    Approval.EXPIRED: AliasPromotion.State.CLOSED,
    Approval.CANCELLED: AliasPromotion.State.CLOSED,
}


def _requester_of(subject: Any) -> Any:
    return subject.requested_by if isinstance(subject, AliasPromotion) else subject.requester


def _expires_at(request: Any) -> datetime | None:
    hours = request.rule_set.expires_after_hours
    return request.created_at + timedelta(hours=hours) if hours else None


def _decided_at(request: Any) -> datetime | None:
    """Pending: not yet. Expired: when it expired. Approved: not before the wait timer."""
    if request.state == Approval.PENDING:
        return None
    if request.state == Approval.EXPIRED:
        return request.expires_at
    if request.state == Approval.APPROVED:
        return max(request.wait_until, request.created_at + STEP)
    return request.created_at + STEP


def _mirror_eligible_teams(
    request: ApprovalRequest, create: bool, extracted: object, **kwargs: Any
) -> None:
    """The rules' reviewer teams that exist, as `approval_request_open` sets them."""
    if create:
        slugs = Rules.from_json(request.rules).reviewer_teams
        request.eligible_teams.set(Team.objects.filter(slug__in=slugs))


def _link_subject(request: ApprovalRequest, create: bool, extracted: object, **kwargs: Any) -> None:
    """A deploy request points back at its approval, as `services.deploys.open_approval` sets it."""
    if create and isinstance(request.subject, DeployRequest):
        DeployRequest.objects.filter(pk=request.subject.pk).update(approval=request)
        request.subject.approval = request


class ApprovalRequestFactory(factory.django.DjangoModelFactory[ApprovalRequest]):
    """A request as `approval_request_open` files it, about a deploy request waiting for approval
    (`promotion=True`: about an alias promotion), without running checks or telling anyone.

    Kind, revision and requester come from the subject; the rules are `rule_set` frozen with the
    requester's teams, the wait and expiry timers follow them, and their reviewer teams that exist
    become `eligible_teams`. A state trait (`approved`, `rejected`, `expired`, `cancelled`)
    decides it, and leaves the default subject as the engine's effect would (queued, closed, …).
    """

    class Meta:
        model = ApprovalRequest
        skip_postgeneration_save = True

    class Params:
        rule_set = Rules(required_approvals=1, reviewer_teams=("reviewers",))
        promotion = factory.Trait(
            subject=factory.SubFactory(
                AliasPromotionFactory,
                state=factory.LazyAttribute(lambda o: PROMOTION_STATE_FOR[o.factory_parent.state]),
            )
        )
        approved = factory.Trait(
            state=Approval.APPROVED,
            decision_note="Approved.",
            effect_done_at=factory.SelfAttribute("decided_at"),
        )
        rejected = factory.Trait(state=Approval.REJECTED, decision_note="Rejected: not now.")
        expired = factory.Trait(
            state=Approval.EXPIRED,
            decision_note="Expired before enough approvals.",
            created_at=factory.LazyAttribute(
                lambda o: timezone.now() - timedelta(hours=o.rule_set.expires_after_hours) - STEP
            ),
        )
        cancelled = factory.Trait(state=Approval.CANCELLED, decision_note="Withdrawn.")

    subject = factory.SubFactory(
        DeployRequestFactory,
        state=factory.LazyAttribute(lambda o: DEPLOY_STATE_FOR[o.factory_parent.state]),
    )
    kind = factory.LazyAttribute(lambda o: KIND_OF[type(o.subject)])
    subject_revision = factory.LazyAttribute(lambda o: o.subject.revision[:200])
    title = factory.LazyAttribute(lambda o: f"Approve {o.subject_revision}"[:300])
    requester = factory.LazyAttribute(lambda o: _requester_of(o.subject))
    rules = factory.LazyAttribute(
        lambda o: replace(o.rule_set, requester_teams=tuple(team_slugs(o.requester))).to_json()
    )
    state = Approval.PENDING
    created_at = factory.LazyFunction(lambda: timezone.now() - STEP)
    wait_until = factory.LazyAttribute(
        lambda o: o.created_at + timedelta(minutes=o.rule_set.wait_minutes)
    )
    expires_at = factory.LazyAttribute(_expires_at)
    decided_at = factory.LazyAttribute(_decided_at)

    mirror_eligible_teams = factory.PostGeneration(_mirror_eligible_teams)
    link_subject = factory.PostGeneration(_link_subject)


class ReviewFactory(factory.django.DjangoModelFactory[Review]):
    """An approval of the request's current revision by a new user. The reviewer's teams are
    read from their memberships, as the service snapshots them; eligibility is not checked."""

    class Meta:
        model = Review

    class Params:
        reject = factory.Trait(decision=Review.Decision.REJECT, comment="Not with these metrics.")
        request_changes = factory.Trait(
            decision=Review.Decision.REQUEST_CHANGES, comment="Please add a model card."
        )
        dismissed = factory.Trait(
            dismissed_at=factory.SelfAttribute("created_at"),
            dismissed_reason="A new revision was submitted.",
        )

    request = factory.SubFactory(ApprovalRequestFactory)
    reviewer = factory.SubFactory(UserFactory)
    decision = Review.Decision.APPROVE
    comment = ""
    subject_revision = factory.SelfAttribute("request.subject_revision")
    reviewer_teams = factory.LazyAttribute(lambda o: team_slugs(o.reviewer))
    created_at = factory.LazyFunction(timezone.now)
