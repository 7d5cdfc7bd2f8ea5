"""Who may see an approval request (issue 13): those who may see its subject. A deploy request's
approval is seen by whoever may see the deploy request (staff, the model's team, the requester,
the environment's approvers) and by whoever its rules ask to review; to anyone else it does not
exist, on the page, in the API and in every list. An alias promotion's is seen by everyone."""

from __future__ import annotations

import pytest
from django.test import Client

from apps.accounts.models import Team, User
from apps.approvals.models import ApprovalRequest, Review
from apps.approvals.rules import Rules
from apps.audit.models import AuditEvent
from tests.accounts.factories import MembershipFactory, TeamFactory, UserFactory
from tests.api_errors import api_error
from tests.approvals.factories import ApprovalRequestFactory
from tests.catalog.factories import ModelVersionFactory, RegisteredModelFactory
from tests.deployments.factories import EnvironmentFactory, ProtectionRulesFactory

pytestmark = pytest.mark.django_db

TABS = ("waiting", "mine", "all")


@pytest.fixture
def risk(db) -> Team:
    return TeamFactory(slug="risk", name="Risk")


@pytest.fixture
def approver(risk: Team) -> User:
    """A member of the approver team of the environment the deploy goes to."""
    return MembershipFactory(team=risk, user=UserFactory(username="rae")).user


@pytest.fixture
def stranger(db) -> User:
    """A member of another team: neither the model's, nor the environment's approvers."""
    ads = TeamFactory(slug="ads", name="Ads")
    return MembershipFactory(team=ads, user=UserFactory(username="olga")).user


def deploy_approval(
    requester: User, owner: Team, approvers: Team, *also_asked: Team
) -> ApprovalRequest:
    """A deploy of `owner`'s model to an environment `approvers` approve, waiting for them
    (and for `also_asked`, whom the request's rules ask though the environment does not)."""
    environment = EnvironmentFactory()
    ProtectionRulesFactory(
        environment=environment, required_approvals=1, reviewer_teams=[approvers]
    )
    version = ModelVersionFactory(model=RegisteredModelFactory(owner_team=owner))
    asked = tuple(sorted(team.slug for team in (approvers, *also_asked)))
    return ApprovalRequestFactory(
        rule_set=Rules(required_approvals=1, reviewer_teams=asked),
        subject__state="pending_approval",
        subject__environment=environment,
        subject__version=version,
        subject__requester=requester,
        title="Deploy the secret model",
    )


@pytest.fixture
def approval(member: User, team: Team, risk: Team) -> ApprovalRequest:
    return deploy_approval(member, team, risk)


def test_another_teams_member_gets_404_on_the_page_and_its_actions(
    client: Client, stranger: User, approval: ApprovalRequest
) -> None:
    client.force_login(stranger)
    pk = approval.pk
    assert client.get(f"/approvals/{pk}/").status_code == 404
    assert client.post(f"/approvals/{pk}/review/", {"decision": "approve"}).status_code == 404
    htmx = client.post(
        f"/approvals/{pk}/review/", {"decision": "approve"}, headers={"HX-Request": "true"}
    )
    assert htmx.status_code == 404
    assert client.post(f"/approvals/{pk}/checks/").status_code == 404
    assert client.post(f"/approvals/{pk}/cancel/").status_code == 404
    approval.refresh_from_db()
    assert approval.state == ApprovalRequest.State.PENDING
    assert not Review.objects.exists()
    assert not AuditEvent.objects.filter(action__startswith="approval.").exists()


def test_another_teams_member_gets_404_in_the_api(
    client: Client, stranger: User, approval: ApprovalRequest
) -> None:
    client.force_login(stranger)
    url = f"/api/v1/approvals/{approval.pk}/"
    body = api_error(client.get(url), 404, "not_found")
    assert "secret" not in str(body)
    api_error(
        client.post(f"{url}review/", {"decision": "approve"}, content_type="application/json"),
        404,
        "not_found",
    )
    api_error(client.post(f"{url}rerun-checks/"), 404, "not_found")
    api_error(client.post(f"{url}cancel/"), 404, "not_found")
    approval.refresh_from_db()
    assert approval.state == ApprovalRequest.State.PENDING
    assert not Review.objects.exists()


def test_another_teams_member_does_not_see_it_in_any_list(
    client: Client, stranger: User, approval: ApprovalRequest
) -> None:
    client.force_login(stranger)
    for tab in TABS:
        listed = client.get("/api/v1/approvals/", {"tab": tab}).json()
        assert listed["count"] == 0, tab
        page = client.get("/approvals/", {"tab": tab}).content.decode()
        assert "Deploy the secret model" not in page, tab
    pending = client.get("/api/v1/approvals/", {"tab": "all", "state": "pending"}).json()
    assert pending["count"] == 0
    assert "Deploy the secret model" not in client.get("/").content.decode()


def test_the_requesters_team_an_approver_and_staff_still_see_it(
    client: Client,
    member: User,
    maintainer: User,
    approver: User,
    staff: User,
    approval: ApprovalRequest,
) -> None:
    for person in (member, maintainer, approver, staff):
        client.force_login(person)
        page = client.get(f"/approvals/{approval.pk}/")
        assert page.status_code == 200, person
        assert "Deploy the secret model" in page.content.decode()
        assert client.get(f"/api/v1/approvals/{approval.pk}/").json()["id"] == approval.pk
        listed = client.get("/api/v1/approvals/", {"tab": "all"}).json()
        assert [row["id"] for row in listed["results"]] == [approval.pk], person
        assert "Deploy the secret model" in client.get("/approvals/?tab=all").content.decode()
    client.force_login(approver)
    waiting = client.get("/api/v1/approvals/", {"tab": "waiting"}).json()
    assert [row["id"] for row in waiting["results"]] == [approval.pk]
    assert "Deploy the secret model" in client.get("/approvals/").content.decode()
    assert "Deploy the secret model" in client.get("/").content.decode()
    client.force_login(member)
    mine = client.get("/api/v1/approvals/", {"tab": "mine"}).json()
    assert [row["id"] for row in mine["results"]] == [approval.pk]


def test_an_approver_of_that_environment_may_review_it(
    client: Client, approver: User, approval: ApprovalRequest
) -> None:
    client.force_login(approver)
    created = client.post(
        f"/api/v1/approvals/{approval.pk}/review/",
        {"decision": "approve"},
        content_type="application/json",
    )
    assert created.status_code == 201
    assert created.json()["progress"]["approvals"] == 1


def test_a_team_the_rules_ask_to_review_sees_it_though_the_environment_does_not_name_it(
    client: Client, member: User, team: Team, risk: Team
) -> None:
    """The rules were frozen when the request opened (a required team reviews too): the engine
    asks that team, so it may read what it is asked to review."""
    audit = TeamFactory(slug="audit", name="Audit")
    auditor = MembershipFactory(team=audit, user=UserFactory(username="aud")).user
    approval = deploy_approval(member, team, risk, audit)
    client.force_login(auditor)
    assert client.get(f"/deployments/requests/{approval.subject_id}/").status_code == 404
    assert client.get(f"/approvals/{approval.pk}/").status_code == 200
    waiting = client.get("/api/v1/approvals/", {"tab": "waiting"}).json()
    assert [row["id"] for row in waiting["results"]] == [approval.pk]


def test_an_alias_promotion_stays_visible_to_everyone_signed_in(
    client: Client, stranger: User
) -> None:
    approval = ApprovalRequestFactory(promotion=True, title="Move the public alias")
    client.force_login(stranger)
    assert client.get(f"/approvals/{approval.pk}/").status_code == 200
    assert client.get(f"/api/v1/approvals/{approval.pk}/").json()["id"] == approval.pk
    listed = client.get("/api/v1/approvals/", {"tab": "all"}).json()
    assert [row["id"] for row in listed["results"]] == [approval.pk]
    assert "Move the public alias" in client.get("/approvals/?tab=all").content.decode()


def test_lists_filtered_by_visibility_keep_a_bounded_number_of_queries(
    client: Client,
    member: User,
    team: Team,
    risk: Team,
    stranger: User,
    approver: User,
    django_assert_max_num_queries,
) -> None:
    for _ in range(3):
        deploy_approval(member, team, risk)
        deploy_approval(stranger, TeamFactory(), TeamFactory())
        ApprovalRequestFactory(promotion=True)
    client.force_login(approver)
    for tab in TABS:
        with django_assert_max_num_queries(12):
            assert client.get("/approvals/", {"tab": tab}).status_code == 200
        with django_assert_max_num_queries(5):
            listed = client.get("/api/v1/approvals/", {"tab": tab}).json()
        assert listed["count"] == {"waiting": 3, "mine": 0, "all": 6}[tab]
