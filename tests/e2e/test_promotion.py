"""In Chromium: a requester asks to move @champion, two approvers approve in their own sessions,
and a real worker moves the alias in the real MLflow server."""

import time

import pytest
from playwright.sync_api import expect

from apps.approvals.models import AliasPolicy
from apps.catalog.models import RegisteredModel
from apps.catalog.sync import SyncMode, registry_sync
from tests.accounts.factories import PASSWORD, MembershipFactory, TeamFactory, UserFactory
from tests.fixtures.browser import sign_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_promotion_approved_by_two_people_moves_the_alias(
    mlflow_uri, registry_builder, mlflow_client, celery_worker_process, new_page
) -> None:
    owners, risk = TeamFactory(slug="fraud", name="Fraud"), TeamFactory(slug="risk", name="Risk")
    MembershipFactory(team=owners, user=UserFactory(username="rita"))
    for name in ("ann", "ben"):
        MembershipFactory(team=risk, user=UserFactory(username=name))
    policy = AliasPolicy.objects.create(
        alias_pattern="champion", required_approvals=2, include_owning_team=False
    )
    policy.reviewer_teams.add(risk)
    name = registry_builder.model("browser", tags={"portal.team": "fraud"})
    registry_builder.version(name)
    registry_builder.version(name)
    mlflow_client.set_registered_model_alias(name, "champion", "1")
    registry_sync(mode=SyncMode.FULL)
    model = RegisteredModel.objects.get(name=name)

    requester = new_page()
    sign_in(requester, "rita", PASSWORD)
    requester.goto(f"/catalog/models/{model.pk}/")
    requester.fill("#id_alias_move", "champion")
    requester.fill("#id_version_move", "2")
    requester.get_by_role("button", name="Move", exact=True).click()
    requester.wait_for_url("**/approvals/*/")
    request_url = requester.url
    expect(requester.locator("#decision")).to_contain_text("0 of 2")

    for count, approver in enumerate(("ann", "ben"), start=1):
        page = new_page()
        sign_in(page, approver, PASSWORD)
        page.goto(request_url)
        page.get_by_label("Approve").check()
        page.get_by_role("button", name="Submit review").click()  # swapped in place by htmx
        expect(page.locator("#decision")).to_contain_text(f"{count} of 2")
        assert page.console_errors == []
    expect(page.locator("#decision")).to_contain_text("Approved by ann, ben.")

    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if mlflow_client.get_registered_model(name).aliases.get("champion") == "2":
            break
        time.sleep(0.2)
    assert mlflow_client.get_registered_model(name).aliases["champion"] == "2"
    requester.goto(f"/catalog/models/{model.pk}/")
    aliases = requester.locator("#aliases")
    expect(aliases).to_contain_text("approved by ann, ben")
    expect(requester.locator(".page-header")).to_contain_text("@champion → v2")
