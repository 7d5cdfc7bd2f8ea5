"""Protected environments go through the approvals engine: quorum from the approver team, no
self-review, checks against the release live in THIS environment, revisions dismiss reviews;
"roll back to last good" and emergency rollbacks.

Filing, revising and carrying requests out go to the simulated cluster (`prod`); who may see or
change a waiting request is checked on rows the factories make (`prod_offline`)."""

from __future__ import annotations

import pytest
import time_machine
from django.core.exceptions import PermissionDenied, ValidationError
from django.template.loader import render_to_string

from apps.accounts.models import User
from apps.approvals import selectors as approval_selectors
from apps.approvals import services as approvals
from apps.approvals.models import ApprovalRequest
from apps.approvals.registry import subject_kind
from apps.audit.models import AuditEvent
from apps.catalog.models import ModelVersion
from apps.deployments import policy, selectors, services
from apps.deployments.models import DeployRequest, Environment, Release
from apps.deployments.planning import DeployOptions
from tests.accounts.factories import MembershipFactory, TeamFactory, UserFactory
from tests.approvals.factories import ApprovalRequestFactory
from tests.catalog.factories import ModelAliasFactory
from tests.deployments.factories import ReleaseFactory
from tests.deployments.support import (
    drive,
    environment_on,
    model_with_versions,
    request_deploy,
    version,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def risk(db):
    team = TeamFactory(slug="risk", name="Risk")
    return {
        name: MembershipFactory(team=team, user=UserFactory(username=name)).user
        for name in ("rae", "rob")
    } | {"team": team}


@pytest.fixture
def fraud(team):
    return model_with_versions(team, auc=[0.80, 0.95, 0.90])


PROD_RULES = {
    "required_approvals": 2,
    "metric_rules": "auc higher 0.01",
    "allow_emergency_rollback": False,
}


@pytest.fixture
def prod(kubeconfig, risk):
    """production on the simulated cluster: two approvals from risk."""
    return environment_on(kubeconfig, "production", 30, reviewer_teams=[risk["team"]], **PROD_RULES)


@pytest.fixture
def prod_offline(kubeconfig_file, risk):
    """The same production with no cluster behind it: reaching one fails the test."""
    return environment_on(
        kubeconfig_file, "production", 30, reviewer_teams=[risk["team"]], **PROD_RULES
    )


def filed_for_approval(
    environment: Environment, requester: User, deploy_version: ModelVersion, **approval_state: bool
) -> DeployRequest:
    """As rows, no cluster: a request with its plan, filed for approval under the environment's
    rules; waiting, unless an approval state trait (`cancelled=True`, …) decided it."""
    rules = policy.approval_rules(policy.rules_of(environment))
    assert rules is not None
    approval = ApprovalRequestFactory(
        rule_set=rules,
        subject__environment=environment,
        subject__version=deploy_version,
        subject__requester=requester,
        subject__planned=True,
        **approval_state,
    )
    assert isinstance(approval.subject, DeployRequest)
    return approval.subject


def approve(approval: ApprovalRequest, *people) -> None:
    for person in people:
        approvals.approval_review_submit(approval=approval, reviewer=person, decision="approve")
    approvals.approval_effect_run(approval_id=approval.pk)  # what the effect task does


def test_protected_deploy_waits_for_two_approvals_then_runs(sim, prod, fraud, member, risk) -> None:
    request = request_deploy(member, prod, fraud, 1)
    assert request.state == "pending_approval"
    approval = request.approval
    assert approval.kind == "deploy"
    assert approval.subject_revision == (
        "fraud v1 → production (replicas 1, cpu 100m/1, memory 512Mi/1Gi)"
    )
    with pytest.raises(PermissionDenied, match="someone else must review"):
        approvals.approval_review_submit(approval=approval, reviewer=member, decision="approve")
    assert drive(sim, request.pk).state == "pending_approval"  # no worker touches it
    approve(approval, risk["rae"], risk["rob"])
    request.refresh_from_db()
    assert request.state == "queued"
    approvals.approval_effect_run(approval_id=approval.pk)  # a second delivery: nothing happens
    assert AuditEvent.objects.filter(action="deploy.queued", object_id=str(request.pk)).count() == 1
    done = drive(sim, request.pk)
    assert done.state == "succeeded"
    assert Release.objects.get(deploy_request=done).approved_by == ["rae", "rob"]


def test_rejection_closes_the_request(prod, fraud, member, risk) -> None:
    request = request_deploy(member, prod, fraud, 1)
    approvals.approval_review_submit(
        approval=request.approval, reviewer=risk["rae"], decision="reject", comment="Not today"
    )
    request.refresh_from_db()
    assert request.state == "rejected"
    assert request.error == "Rejected by rae: Not today"
    assert request.finished_at is not None
    # The pair is free again.
    assert request_deploy(member, prod, fraud, 2).state == "pending_approval"


def test_cancelling_a_waiting_request_closes_its_approval(prod, fraud, member) -> None:
    request = request_deploy(member, prod, fraud, 1)
    assert services.deploy_request_cancel(actor=member, deploy=request)
    request.refresh_from_db()
    request.approval.refresh_from_db()
    assert (request.state, request.approval.state) == ("cancelled", "cancelled")
    assert AuditEvent.objects.filter(action="deploy.cancelled").count() == 1


def test_metrics_are_compared_with_the_release_live_here_not_an_alias(
    sim, prod, fraud, member, risk
) -> None:
    first = request_deploy(member, prod, fraud, 2)
    approve(first.approval, risk["rae"], risk["rob"])
    drive(sim, first.pk)  # v2 (auc 0.95) is live in production
    ModelAliasFactory(model=fraud, alias="production", version=1)  # an alias saying otherwise
    second = request_deploy(member, prod, fraud, 3)  # auc 0.90: worse than the live v2
    check = second.approval.check_results.get(name="metrics_no_worse")
    assert not check.passed
    assert check.detail.startswith("Worse than v2: auc 0.9 vs 0.95")
    progress = approval_selectors.approval_progress(second.approval)
    assert "required check metrics_no_worse fails" in progress.blockers


def test_revising_the_version_dismisses_reviews(prod, fraud, member, risk) -> None:
    request = request_deploy(member, prod, fraud, 1)
    approvals.approval_review_submit(
        approval=request.approval, reviewer=risk["rae"], decision="approve"
    )
    revised = services.deploy_request_revise(
        actor=member,
        deploy=request,
        version=version(fraud, 2),
        options=DeployOptions.of_deploy(request),
    )
    assert revised.version.version == 2
    approval = ApprovalRequest.objects.get(pk=request.approval_id)
    assert approval.subject_revision.startswith("fraud v2 → production")
    assert approval.reviews.get().dismissed_at is not None
    assert "fraud/2" in revised.manifest


def test_panel_shows_approvers_the_diff(prod_offline, fraud, member) -> None:
    request = filed_for_approval(prod_offline, member, version(fraud, 1))
    assert request.approval is not None
    kind = subject_kind("deploy")
    assert kind.panel is not None and kind.url_of is not None
    panel = kind.panel(request.approval)
    assert panel is not None
    template, context = panel
    html = render_to_string(template, {"section": context})
    assert "Diff against what is live" in html
    assert "planned Deployment/fraud" in html
    assert 'class="diff-add"' in html
    assert kind.url_of(request.approval) == f"/deployments/requests/{request.pk}/"


# --- rolling back to last good --------------------------------------------------------------------
def test_roll_back_to_last_good_skips_short_lived_versions(sim, kubeconfig, fraud, member) -> None:
    dev = environment_on(kubeconfig, "dev", 10, rollback_min_live_minutes=30)
    with time_machine.travel("2026-11-20 09:00Z", tick=False) as clock:
        drive(sim, request_deploy(member, dev, fraud, 1).pk)
        clock.move_to("2026-11-20 12:00Z")
        drive(sim, request_deploy(member, dev, fraud, 2).pk)  # v1 stayed 3 hours
        clock.move_to("2026-11-20 12:05Z")
        drive(sim, request_deploy(member, dev, fraud, 3).pk)  # v2 stayed 5 minutes
    live = Release.objects.get(environment=dev, live_until__isnull=True)
    target = selectors.release_last_good(live)
    assert target is not None
    assert target.version.version == 1
    rollback = services.release_rollback(actor=member, release=live, reason="errors up")
    assert (rollback.state, rollback.kind, rollback.version.version) == ("queued", "rollback", 1)
    assert rollback.rollback_of_id == live.deploy_request_id
    assert rollback.plan[0]["action"] == "update"  # the diff people see before it applies
    assert "+          value: s3://models/fraud/1" in rollback.plan[0]["text"]
    assert drive(sim, rollback.pk).state == "succeeded"
    assert Release.objects.get(live_until__isnull=True).version.version == 1


def test_no_last_good_release_is_a_clear_error(sim, kubeconfig, fraud, member) -> None:
    dev = environment_on(kubeconfig, "dev", 10, rollback_min_live_minutes=30)
    with time_machine.travel("2026-11-20 09:00Z", tick=False) as clock:
        drive(sim, request_deploy(member, dev, fraud, 1).pk)
        clock.move_to("2026-11-20 09:29Z")
        drive(sim, request_deploy(member, dev, fraud, 2).pk)  # v1 stayed 29 minutes
    live = Release.objects.get(live_until__isnull=True)
    with pytest.raises(ValidationError, match="stayed live in dev for 30 min or more"):
        services.release_rollback(actor=member, release=live)


def test_rollback_in_a_protected_environment_needs_approval_unless_emergency(
    sim, prod, fraud, member, risk, staff
) -> None:
    for number in (1, 2):
        request = request_deploy(member, prod, fraud, number)
        approve(request.approval, risk["rae"], risk["rob"])
        drive(sim, request.pk)
    live = Release.objects.get(live_until__isnull=True)
    rollback = services.release_rollback(actor=member, release=live)
    assert rollback.state == "pending_approval"
    assert rollback.approval is not None
    assert rollback.approval.title == "Roll back fraud v1 to production"
    services.deploy_request_cancel(actor=member, deploy=rollback)
    protection = prod.protection
    protection.allow_emergency_rollback = True
    protection.save()
    live = Release.objects.get(pk=live.pk)
    emergency = services.release_rollback(actor=member, release=live)
    assert (emergency.state, emergency.approval_id) == ("queued", None)


def test_outsiders_cannot_deploy_or_roll_back(kubeconfig_file, fraud, outsider, member) -> None:
    dev = environment_on(kubeconfig_file, "dev", 10)
    with pytest.raises(PermissionDenied, match="owning team or staff"):
        request_deploy(outsider, dev, fraud, 1)
    ReleaseFactory(
        deploy_request__environment=dev,
        deploy_request__version=version(fraud, 1),
        deploy_request__requester=member,
    )
    with pytest.raises(PermissionDenied):
        services.release_rollback(actor=outsider, release=Release.objects.get())
    assert DeployRequest.objects.count() == 1


def test_a_second_active_request_names_the_first(kubeconfig, fraud, member) -> None:
    dev = environment_on(kubeconfig, "dev", 10)
    first = request_deploy(member, dev, fraud, 1)
    with pytest.raises(services.ActiveRequestExistsError) as caught:
        request_deploy(member, dev, fraud, 2)
    assert caught.value.active == first
    assert caught.value.messages == [
        f"fraud already has an active request in dev: #{first.pk} (queued, v1, by mo). "
        "Wait for it to finish, or cancel it."
    ]


def _revise_form(**overrides) -> dict:
    return {
        "version": "2",
        "replicas": "1",
        "cpu_request": "100m",
        "cpu_limit": "1",
        "memory_request": "512Mi",
        "memory_limit": "1Gi",
        **overrides,
    }


def test_the_requester_changes_the_version_in_the_browser(
    client, prod, fraud, member, risk
) -> None:
    request = request_deploy(member, prod, fraud, 1)
    approvals.approval_review_submit(
        approval=request.approval, reviewer=risk["rae"], decision="approve"
    )
    client.force_login(member)
    detail = client.get(f"/deployments/requests/{request.pk}/").content.decode()
    assert f'href="/deployments/requests/{request.pk}/change/"' in detail
    page = client.get(f"/deployments/requests/{request.pk}/change/")
    assert page.status_code == 200
    assert '<option value="1" selected>v1</option>' in page.content.decode()

    response = client.post(f"/deployments/requests/{request.pk}/change/", _revise_form())
    assert response.status_code == 302
    request.refresh_from_db()
    assert request.version.version == 2
    assert ApprovalRequest.objects.get(pk=request.approval_id).reviews.get().dismissed_at
    assert (
        AuditEvent.objects.filter(action="deploy.revised", object_id=str(request.pk)).count() == 1
    )
    followed = client.get(response["Location"]).content.decode()
    assert "no longer count" in followed


def test_the_change_page_refuses_bad_input_and_other_people(
    client, prod_offline, fraud, member, risk
) -> None:
    request = filed_for_approval(prod_offline, member, version(fraud, 1))
    url = f"/deployments/requests/{request.pk}/change/"
    client.force_login(member)
    bad = client.post(url, _revise_form(version="9", replicas="0"))
    assert bad.status_code == 400
    html = bad.content.decode()
    assert "Select a valid choice. 9 is not one of the available choices." in html
    assert "Ensure this value is greater than or equal to 1." in html
    request.refresh_from_db()
    assert request.version.version == 1

    client.force_login(risk["rae"])  # an approver, not the requester
    assert client.get(url).status_code == 403
    assert client.post(url, _revise_form()).status_code == 403
    request.refresh_from_db()
    assert request.version.version == 1
    assert not AuditEvent.objects.filter(action="deploy.revised").exists()


def test_a_request_no_longer_waiting_cannot_be_changed(client, prod_offline, fraud, member) -> None:
    request = filed_for_approval(prod_offline, member, version(fraud, 1), cancelled=True)
    client.force_login(member)
    response = client.post(f"/deployments/requests/{request.pk}/change/", _revise_form())
    assert response.status_code == 302
    request.refresh_from_db()
    assert request.version.version == 1
    assert (
        "only a request waiting for approval can change"
        in client.get(response["Location"]).content.decode()
    )
