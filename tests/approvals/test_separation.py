"""Separation of duties (issue 13): whoever changed a request's subject may not review it, like
the requester. Staff may change someone else's waiting request; from then on they are barred
from reviewing it, the bar is stored and shown, and a review they gave earlier never counts."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.core.exceptions import PermissionDenied
from django.test import Client

from apps.accounts.models import Team, User
from apps.approvals import selectors, services
from apps.approvals.models import AliasPromotion, ApprovalRequest, Review
from apps.approvals.promotions import alias_promotion_change_version
from apps.approvals.rules import Rules
from apps.audit.models import AuditEvent
from apps.catalog.models import RegisteredModel
from apps.deployments import services as deploy_services
from apps.deployments.models import DeployRequest, Environment
from apps.deployments.planning import DeployOptions
from tests.accounts.factories import MembershipFactory, TeamFactory, UserFactory
from tests.api_errors import api_error
from tests.approvals.factories import ApprovalRequestFactory, ReviewFactory
from tests.catalog.factories import ModelVersionFactory
from tests.deployments.support import environment_on, model_with_versions, request_deploy, version

pytestmark = pytest.mark.django_db
HTMX = {"HX-Request": "true"}
BARRED = "You changed this request; someone else must review it."


@pytest.fixture
def risk(db) -> Team:
    return TeamFactory(slug="risk", name="Risk")


@pytest.fixture
def rae(risk: Team) -> User:
    return MembershipFactory(team=risk, user=UserFactory(username="rae")).user


@pytest.fixture
def rob(risk: Team) -> User:
    return MembershipFactory(team=risk, user=UserFactory(username="rob")).user


@pytest.fixture
def staff_reviewer(risk: Team) -> User:
    """Staff, and a member of the approver team: may both change a request and review one."""
    return MembershipFactory(team=risk, user=UserFactory(username="sam", is_staff=True)).user


@pytest.fixture
def prod(kubeconfig: Path, risk: Team) -> Environment:
    """production on the simulated cluster: two approvals from risk."""
    return environment_on(kubeconfig, "production", 30, reviewer_teams=[risk], required_approvals=2)


@pytest.fixture
def fraud(team: Team) -> RegisteredModel:
    return model_with_versions(team)


def revised_by(actor: User, deploy: DeployRequest, number: int) -> ApprovalRequest:
    """`actor` changes the waiting deploy to version `number`, as the change page does."""
    deploy_services.deploy_request_revise(
        actor=actor,
        deploy=deploy,
        version=version(deploy.model, number),
        options=DeployOptions.of_deploy(deploy),
    )
    assert deploy.approval_id is not None
    return ApprovalRequest.objects.get(pk=deploy.approval_id)


def test_staff_who_changed_a_deploy_request_may_not_review_it(
    client: Client,
    prod: Environment,
    fraud: RegisteredModel,
    member: User,
    staff_reviewer: User,
    rae: User,
    rob: User,
) -> None:
    deploy = request_deploy(member, prod, fraud, 1)
    assert deploy.approval is not None
    services.approval_review_submit(
        approval=deploy.approval, reviewer=staff_reviewer, decision="approve"
    )
    approval = revised_by(staff_reviewer, deploy, 2)
    assert list(approval.barred_reviewers.all()) == [staff_reviewer]
    assert approval.reviews.get().dismissed_at is not None
    revised = AuditEvent.objects.get(action="approval.revised")
    assert revised.data["barred"] == ["sam"]

    client.force_login(staff_reviewer)
    url = f"/api/v1/approvals/{approval.pk}/"
    denied = client.post(f"{url}review/", {"decision": "approve"}, content_type="application/json")
    assert api_error(denied, 403, "permission_denied")["detail"] == BARRED
    assert client.get(url).json()["barred_reviewers"] == ["sam"]
    waiting = client.get("/api/v1/approvals/", {"tab": "waiting"}).json()
    assert waiting["count"] == 0
    assert "Deploy fraud v2" not in client.get("/approvals/").content.decode()

    page = client.get(f"/approvals/{approval.pk}/").content.decode()
    assert "sam changed this request and may not review it" in page
    assert BARRED in page and "Submit review" not in page
    plain = client.post(f"/approvals/{approval.pk}/review/", {"decision": "approve"})
    assert plain.status_code == 403 and BARRED in plain.content.decode()
    htmx = client.post(f"/approvals/{approval.pk}/review/", {"decision": "approve"}, headers=HTMX)
    assert htmx.status_code == 200
    panel = htmx.content.decode()
    assert panel.lstrip().startswith('<div id="decision" class="stack">')
    assert BARRED in panel and "sam changed this request and may not review it" in panel
    assert not approval.reviews.filter(dismissed_at__isnull=True).exists()

    # Others still review it, and the staff member's dismissed approval adds nothing.
    client.force_login(rae)
    assert "Deploy fraud v2" in client.get("/approvals/").content.decode()
    assert "sam changed this request" in client.get(f"/approvals/{approval.pk}/").content.decode()
    services.approval_review_submit(approval=approval, reviewer=rae, decision="approve")
    progress = selectors.approval_progress(approval)
    assert [review.reviewer for review in progress.counted] == [rae]
    services.approval_review_submit(approval=approval, reviewer=rob, decision="approve")
    approval.refresh_from_db()
    assert approval.state == ApprovalRequest.State.APPROVED
    assert approval.decision_note == "Approved by rae, rob."


def test_a_review_given_before_the_bar_never_counts(
    staff_reviewer: User, risk: Team, rae: User
) -> None:
    """The revision dismisses earlier reviews; `evaluate` holds the rule on its own too."""
    approval = ApprovalRequestFactory(
        rule_set=Rules(required_approvals=1, reviewer_teams=("risk",))
    )
    ReviewFactory(request=approval, reviewer=staff_reviewer)
    approval.barred_reviewers.add(staff_reviewer)
    services.approval_checks_rerun(approval=approval, actor=rae)  # judges the request again
    approval.refresh_from_db()
    assert approval.state == ApprovalRequest.State.PENDING
    progress = selectors.approval_progress(approval)
    assert progress.counted == []
    assert [(review.reviewer, reason) for review, reason in progress.not_counted] == [
        (staff_reviewer, BARRED)
    ]
    assert "0 of 1 approvals (1 more needed)" in progress.blockers


def test_the_requester_changing_their_own_request_is_not_listed_twice(
    member: User, risk: Team
) -> None:
    approval = ApprovalRequestFactory(
        rule_set=Rules(required_approvals=1, reviewer_teams=("risk",)), subject__requester=member
    )
    services.approval_subject_revise(
        approval=approval, revision="something else", title="Something else", actor=member
    )
    assert not approval.barred_reviewers.exists()
    assert AuditEvent.objects.get(action="approval.revised").data["barred"] == []
    with pytest.raises(PermissionDenied, match="You opened this request"):
        services.approval_review_submit(approval=approval, reviewer=member, decision="approve")


def test_an_unchanged_revision_bars_nobody(staff_reviewer: User) -> None:
    approval = ApprovalRequestFactory()
    services.approval_subject_revise(
        approval=approval,
        revision=approval.subject_revision,
        title=approval.title,
        actor=staff_reviewer,
    )
    assert not approval.barred_reviewers.exists()
    assert not AuditEvent.objects.filter(action="approval.revised").exists()


def test_staff_who_changed_a_promotions_version_may_not_review_it(
    client: Client, staff_reviewer: User, risk: Team
) -> None:
    approval = ApprovalRequestFactory(
        promotion=True, rule_set=Rules(required_approvals=1, reviewer_teams=("risk",))
    )
    promotion = approval.subject
    assert isinstance(promotion, AliasPromotion)
    ModelVersionFactory(model=promotion.model, version=promotion.version.version + 1)
    alias_promotion_change_version(
        actor=staff_reviewer, promotion=promotion, version=promotion.version.version + 1
    )
    assert list(approval.barred_reviewers.all()) == [staff_reviewer]
    client.force_login(staff_reviewer)
    denied = client.post(
        f"/api/v1/approvals/{approval.pk}/review/",
        {"decision": "approve"},
        content_type="application/json",
    )
    assert api_error(denied, 403, "permission_denied")["detail"] == BARRED
    assert not Review.objects.exists()
