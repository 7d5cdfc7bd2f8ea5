"""The approval factories make rows the engine reads as it reads its own, without side effects."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest
from django.utils import timezone

from apps.approvals import promotions, selectors
from apps.approvals.models import AliasPromotion, ApprovalRequest, Review
from apps.approvals.registry import subject_kind
from apps.approvals.rules import CheckSpec, Rules
from apps.deployments.models import DeployRequest
from apps.deployments.services import APPROVAL_KIND
from tests.accounts.factories import MembershipFactory, TeamFactory, UserFactory
from tests.approvals.factories import (
    AliasPolicyFactory,
    AliasPromotionFactory,
    ApprovalRequestFactory,
    ReviewFactory,
)
from tests.database import assert_rejected_by_database
from tests.deployments.factories import DeployRequestFactory

# Factory-built rows need no cluster and no MLflow: reaching one fails the test.
pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("offline")]

# Each decided state, and what the engine's effects leave a deploy request and a promotion in.
DECIDED = [
    ("approved", "queued", "applied"),
    ("rejected", "rejected", "closed"),
    ("expired", "rejected", "closed"),
    ("cancelled", "cancelled", "closed"),
]


def test_default_request_is_pending_about_a_deploy_waiting_for_it() -> None:
    approval = ApprovalRequestFactory()
    loaded = ApprovalRequest.objects.get(pk=approval.pk)
    loaded.full_clean()
    assert approval.subject is not None
    deploy = DeployRequest.objects.get(pk=approval.subject.pk)

    assert loaded.subject == deploy
    assert loaded.kind == APPROVAL_KIND
    assert subject_kind(loaded.kind).kind == "deploy"
    assert deploy.state == "pending_approval"
    assert deploy.approval == loaded
    assert loaded.subject_revision == deploy.revision
    assert loaded.requester == deploy.requester
    assert loaded.is_open
    assert loaded.decided_at is None
    assert Rules.from_json(loaded.rules) == Rules(
        required_approvals=1, reviewer_teams=("reviewers",)
    )
    assert loaded.wait_until == loaded.created_at
    assert loaded.expires_at == loaded.created_at + timedelta(hours=72)
    assert loaded.created_at <= timezone.now()


def test_promotion_trait_is_about_an_alias_promotion() -> None:
    approval = ApprovalRequestFactory(promotion=True)
    loaded = ApprovalRequest.objects.get(pk=approval.pk)
    assert approval.subject is not None
    promotion = AliasPromotion.objects.get(pk=approval.subject.pk)

    assert loaded.subject == promotion
    assert loaded.kind == promotions.KIND
    assert subject_kind(loaded.kind).kind == "alias_promotion"
    assert promotions.approval_of_promotion(promotion) == loaded
    assert loaded.requester == promotion.requested_by
    assert loaded.subject_revision == promotion.revision
    assert promotion.state == "pending"


@pytest.mark.parametrize(("trait", "deploy_state", "promotion_state"), DECIDED)
def test_decided_request_leaves_its_subject_as_the_engine_would(
    trait: str, deploy_state: str, promotion_state: str
) -> None:
    on_deploy = ApprovalRequestFactory(**{trait: True})
    on_promotion = ApprovalRequestFactory(**{trait: True}, promotion=True)

    for approval in (on_deploy, on_promotion):
        approval.refresh_from_db()
        approval.full_clean()
        assert approval.state == trait
        assert not approval.is_open
        assert approval.decided_at is not None
        assert approval.created_at < approval.decided_at <= timezone.now()
        assert approval.decision_note
    assert DeployRequest.objects.get(pk=on_deploy.subject_id).state == deploy_state
    assert AliasPromotion.objects.get(pk=on_promotion.subject_id).state == promotion_state


def test_expired_request_was_decided_when_it_expired() -> None:
    approval = ApprovalRequestFactory(expired=True)

    assert approval.expires_at is not None
    assert approval.decided_at == approval.expires_at
    assert approval.expires_at - approval.created_at == timedelta(hours=72)
    assert selectors.approval_progress(approval).expired


def test_approved_request_waited_for_its_timer_and_ran_its_effect() -> None:
    approval = ApprovalRequestFactory(approved=True, rule_set=Rules(wait_minutes=5))

    assert approval.wait_until == approval.created_at + timedelta(minutes=5)
    assert approval.decided_at == approval.wait_until
    assert approval.effect_done_at == approval.decided_at


def test_rules_are_frozen_with_the_requesters_teams_and_name_eligible_teams() -> None:
    risk, owners = TeamFactory(slug="risk"), TeamFactory(slug="owners")
    requester = MembershipFactory(team=owners).user
    rules = Rules(
        required_approvals=2,
        reviewer_teams=("risk", "nobody-yet"),
        expires_after_hours=None,
        checks=(CheckSpec("version_has_tags", params={"tags": {"stage": "ok"}}),),
    )

    approval = ApprovalRequestFactory(subject__requester=requester, rule_set=rules)

    assert approval.requester == requester
    assert Rules.from_json(approval.rules) == replace(rules, requester_teams=("owners",))
    assert list(approval.eligible_teams.all()) == [risk]
    assert approval.expires_at is None


def test_eligible_reviewers_see_the_request_until_they_review_it() -> None:
    team = TeamFactory(slug="risk")
    reviewer = MembershipFactory(team=team).user
    approval = ApprovalRequestFactory(rule_set=Rules(reviewer_teams=("risk",)))

    assert list(selectors.approvals_waiting_for(reviewer)) == [approval]
    assert selectors.approval_progress(approval).approvals_missing == 1

    review = ReviewFactory(request=approval, reviewer=reviewer)

    assert list(selectors.approvals_waiting_for(reviewer)) == []
    assert review.reviewer_teams == ["risk"]
    assert review.subject_revision == approval.subject_revision
    assert selectors.approval_progress(approval).complete


def test_review_traits() -> None:
    approval = ApprovalRequestFactory()
    outsider = ReviewFactory(request=approval)
    rejection = ReviewFactory(request=approval, reject=True)
    changes = ReviewFactory(request=approval, request_changes=True)
    dismissed = ReviewFactory(request=approval, dismissed=True)
    for review in (outsider, rejection, changes, dismissed):
        # The service stores [] for a reviewer in no team too, which the field (not blank=True)
        # would call blank; everything else must pass.
        review.full_clean(exclude=["reviewer_teams"])

    assert (outsider.decision, outsider.reviewer_teams) == ("approve", [])
    assert (rejection.decision, changes.decision) == ("reject", "request_changes")
    assert rejection.comment
    assert changes.comment
    assert dismissed.dismissed_at == dismissed.created_at
    progress = selectors.approval_progress(approval)
    assert progress.dismissed == [dismissed]
    # Nobody here is on the rules' reviewer team, so nothing counts.
    assert [review for review, _ in progress.not_counted] == [outsider, rejection, changes]


def test_one_live_review_per_reviewer() -> None:
    first = ReviewFactory(dismissed=True)
    again = ReviewFactory(request=first.request, reviewer=first.reviewer)

    assert Review.objects.filter(request=first.request).count() == 2
    assert_rejected_by_database(
        lambda: ReviewFactory(request=again.request, reviewer=again.reviewer, reject=True)
    )


def test_alias_promotion_is_pending_under_its_policy() -> None:
    promotion = AliasPromotionFactory()
    promotion.full_clean()

    assert promotion.state == "pending"
    assert promotion.model == promotion.version.model
    assert promotions.policy_for(promotion.alias) == promotion.policy
    assert promotion.candidate_version() == promotion.version
    assert promotion.baseline_version() is None


@pytest.mark.parametrize(
    ("trait", "claimed", "applied"),
    [
        ("applying", True, False),
        ("applied", True, True),
        ("closed", False, False),
        ("failed", True, False),
    ],
)
def test_alias_promotion_traits_stamp_the_claim_and_the_move(
    trait: str, claimed: bool, applied: bool
) -> None:
    promotion = AliasPromotionFactory(**{trait: True})
    promotion.refresh_from_db()
    promotion.full_clean()

    assert promotion.state == trait
    assert (promotion.claimed_at is not None, promotion.applied_at is not None) == (
        claimed,
        applied,
    )
    assert promotion.error.startswith("The registry") == (trait == "failed")


def test_approved_promotion_request_leaves_it_applied() -> None:
    approval = ApprovalRequestFactory(promotion=True, approved=True)
    promotion = AliasPromotion.objects.get(pk=approval.subject_id)

    assert promotion.state == "applied"
    assert promotion.claimed_at == promotion.applied_at
    assert promotion.applied_at is not None


def test_one_open_promotion_per_alias_and_one_policy_per_pattern() -> None:
    first = AliasPromotionFactory()
    AliasPromotionFactory(version__model=first.model, closed=True)

    assert_rejected_by_database(lambda: AliasPromotionFactory(version__model=first.model))
    assert AliasPromotionFactory().policy == first.policy


def test_alias_policy_takes_its_teams() -> None:
    reviewers, required = TeamFactory(), TeamFactory()

    policy = AliasPolicyFactory(
        alias_pattern="prod-*", reviewer_teams=[reviewers], required_teams=[required]
    )

    assert promotions.policy_for("prod-eu") == policy
    assert list(policy.reviewer_teams.all()) == [reviewers]
    assert list(policy.required_teams.all()) == [required]


def test_a_given_deploy_request_becomes_the_subject() -> None:
    requester = UserFactory()
    deploy = DeployRequestFactory(pending_approval=True, requester=requester)

    approval = ApprovalRequestFactory(subject=deploy)

    assert (approval.kind, approval.requester) == ("deploy", requester)
    assert DeployRequest.objects.get(pk=deploy.pk).approval == approval
