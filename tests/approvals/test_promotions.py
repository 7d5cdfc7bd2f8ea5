"""Protected alias promotion against a real MLflow server, and alias moves made behind its back."""

from __future__ import annotations

import threading

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection

from apps.approvals import promotions, services
from apps.approvals import selectors as approval_selectors
from apps.approvals.models import AliasPolicy, AliasPromotion, ApprovalRequest
from apps.approvals.registry import EffectInProgressError
from apps.audit.models import AuditEvent
from apps.catalog.models import ModelAlias, RegisteredModel
from apps.catalog.sync import SyncMode, registry_sync
from tests.accounts.factories import MembershipFactory, TeamFactory, UserFactory

pytestmark = pytest.mark.mlflow


@pytest.fixture
def owners_and_risk(db):
    owners = TeamFactory(slug="fraud", name="Fraud")
    risk = TeamFactory(slug="risk", name="Risk")
    people = {
        "requester": MembershipFactory(team=owners, user=UserFactory(username="req")).user,
        "owner": MembershipFactory(team=owners, user=UserFactory(username="own")).user,
    }
    for index in range(20):
        people[f"risk{index}"] = MembershipFactory(
            team=risk, user=UserFactory(username=f"risk{index}")
        ).user
    return owners, risk, people


@pytest.fixture
def champion_policy(owners_and_risk):
    _, risk, _ = owners_and_risk
    policy = AliasPolicy.objects.create(
        alias_pattern="champion",
        required_approvals=2,
        include_owning_team=False,
        required_tags="validation_status=passed",
        metric_rules="auc higher 0.01",
    )
    policy.reviewer_teams.add(risk)
    return policy


@pytest.fixture
def fraud_model(mlflow_uri, registry_builder, mlflow_client, owners_and_risk):
    name = registry_builder.model("fraud", tags={"portal.team": "fraud"})
    registry_builder.version(name, metrics={"auc": 0.90}, tags={"validation_status": "passed"})
    registry_builder.version(name, metrics={"auc": 0.93})  # not validated yet
    registry_builder.version(name, metrics={"auc": 0.80}, tags={"validation_status": "passed"})
    mlflow_client.set_registered_model_alias(name, "champion", "1")
    registry_sync(mode=SyncMode.FULL)
    from apps.catalog.sync import registry_fetch_runs

    registry_fetch_runs()
    return RegisteredModel.objects.get(name=name)


def approve(approval, user):
    return services.approval_review_submit(approval=approval, reviewer=user, decision="approve")


@pytest.mark.django_db
def test_promotion_sets_the_alias_in_mlflow_after_approval(
    fraud_model, champion_policy, owners_and_risk, mlflow_client
):
    _, _, people = owners_and_risk
    mlflow_client.set_model_version_tag(fraud_model.name, "2", "validation_status", "passed")
    registry_sync(mode=SyncMode.FULL)
    promotion = promotions.alias_promotion_request(
        actor=people["requester"], model=fraud_model, alias="champion", version=2
    )
    approval = promotions.approval_of_promotion(promotion)
    progress = approval_selectors.approval_progress(approval)
    assert [check.passed for check in progress.checks] == [True, True]
    assert "No worse than v1: auc 0.93 vs 0.9" in progress.checks[1].detail
    approve(approval, people["risk0"])
    approve(approval, people["risk1"])
    approval.refresh_from_db()
    assert approval.state == "approved"
    services.approval_effect_run(approval_id=approval.pk)

    assert mlflow_client.get_model_version_by_alias(fraud_model.name, "champion").version == "2"
    tag = mlflow_client.get_model_version(fraud_model.name, "2").tags["portal.approval.champion"]
    assert tag == f"request #{approval.pk} approved by risk0, risk1"
    assert ModelAlias.objects.get(model=fraud_model, alias="champion").version == 2
    promotion.refresh_from_db()
    assert (promotion.state, promotion.previous_version) == ("applied", 1)
    moved = AuditEvent.objects.get(action="alias.moved")
    assert moved.data["via"] == f"approval #{approval.pk}"
    # The webhook-less sync that follows sees the portal's own move: no flag.
    registry_sync(mode=SyncMode.FULL)
    assert RegisteredModel.objects.get(pk=fraud_model.pk).flags == {}


@pytest.mark.django_db
def test_failing_required_check_blocks_until_tag_fixed_and_rerun(
    fraud_model, champion_policy, owners_and_risk, mlflow_client
):
    _, _, people = owners_and_risk
    promotion = promotions.alias_promotion_request(
        actor=people["requester"], model=fraud_model, alias="champion", version=2
    )
    approval = promotions.approval_of_promotion(promotion)
    approve(approval, people["risk0"])
    approve(approval, people["risk1"])
    approval.refresh_from_db()
    assert approval.state == "pending"
    assert (
        "required check version_has_tags fails"
        in approval_selectors.approval_progress(approval).blockers
    )

    mlflow_client.set_model_version_tag(fraud_model.name, "2", "validation_status", "passed")
    registry_sync(mode=SyncMode.FULL)
    services.approval_checks_rerun(approval=approval, actor=people["requester"])
    approval.refresh_from_db()
    assert approval.state == "approved"


@pytest.mark.django_db
def test_worse_metrics_fail_the_check(fraud_model, champion_policy, owners_and_risk):
    _, _, people = owners_and_risk
    promotion = promotions.alias_promotion_request(
        actor=people["requester"], model=fraud_model, alias="champion", version=3
    )
    check = approval_selectors.approval_progress(
        promotions.approval_of_promotion(promotion)
    ).checks[1]
    assert check.passed is False
    assert "auc 0.8 vs 0.9 (worse by 0.1, tolerance 0.01)" in check.detail


@pytest.mark.django_db
def test_choosing_a_newer_version_dismisses_earlier_approvals(
    fraud_model, champion_policy, owners_and_risk
):
    _, _, people = owners_and_risk
    promotion = promotions.alias_promotion_request(
        actor=people["requester"], model=fraud_model, alias="champion", version=3
    )
    approval = promotions.approval_of_promotion(promotion)
    approve(approval, people["risk0"])
    promotions.alias_promotion_change_version(
        actor=people["requester"], promotion=promotion, version=2
    )
    approval.refresh_from_db()
    assert approval.subject_revision.endswith("→ v2")
    assert approval_selectors.approval_progress(approval).counted == []
    assert approval.reviews.get().dismissed_reason.startswith("Dismissed: the request changed")


@pytest.mark.django_db
def test_bad_promotions_are_refused(fraud_model, champion_policy, owners_and_risk):
    _, _, people = owners_and_risk
    with pytest.raises(ValidationError, match="has no version 99"):
        promotions.alias_promotion_request(
            actor=people["requester"], model=fraud_model, alias="champion", version=99
        )
    with pytest.raises(ValidationError, match="is not protected"):
        promotions.alias_promotion_request(
            actor=people["requester"], model=fraud_model, alias="staging", version=1
        )
    promotions.alias_promotion_request(
        actor=people["requester"], model=fraud_model, alias="champion", version=2
    )
    with pytest.raises(ValidationError, match="already open"):
        promotions.alias_promotion_request(
            actor=people["owner"], model=fraud_model, alias="champion", version=3
        )


@pytest.mark.django_db
def test_unprotected_alias_moves_directly_for_the_owning_team_only(
    fraud_model, champion_policy, owners_and_risk, mlflow_client
):
    _, _, people = owners_and_risk
    with pytest.raises(PermissionDenied):
        promotions.alias_move_direct(
            actor=people["risk0"], model=fraud_model, alias="staging", version=3
        )
    promotions.alias_move_direct(
        actor=people["owner"], model=fraud_model, alias="staging", version=3
    )
    assert mlflow_client.get_model_version_by_alias(fraud_model.name, "staging").version == "3"
    with pytest.raises(ValidationError, match="is protected"):
        promotions.alias_move_direct(
            actor=people["owner"], model=fraud_model, alias="champion", version=3
        )


@pytest.mark.django_db
def test_protected_alias_moved_in_mlflow_is_flagged_after_sync(
    fraud_model, champion_policy, mlflow_client
):
    mlflow_client.set_registered_model_alias(fraud_model.name, "champion", "3")
    mlflow_client.set_registered_model_alias(fraud_model.name, "scratch", "3")  # unprotected
    registry_sync(mode=SyncMode.FULL)
    model = RegisteredModel.objects.get(pk=fraud_model.pk)
    assert model.flags == {
        "alias:champion": "@champion moved to v3 in MLflow without approval (was v1)."
    }
    event = AuditEvent.objects.get(action="alias.moved_without_approval")
    assert event.data["new_version"] == 3 and event.data["old_version"] == 1


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_twenty_concurrent_approvals_complete_exactly_once(
    fraud_model, champion_policy, owners_and_risk, mlflow_client
):
    _, _, people = owners_and_risk
    mlflow_client.set_model_version_tag(fraud_model.name, "2", "validation_status", "passed")
    registry_sync(mode=SyncMode.FULL)
    promotion = promotions.alias_promotion_request(
        actor=people["requester"], model=fraud_model, alias="champion", version=2
    )
    approval = promotions.approval_of_promotion(promotion)
    barrier = threading.Barrier(20)
    outcomes: list[str] = []

    def review(index: int) -> None:
        try:
            barrier.wait()
            approve(ApprovalRequest.objects.get(pk=approval.pk), people[f"risk{index}"])
            outcomes.append("recorded")
        except ValidationError as exc:  # closed already: the request completed before this one
            outcomes.append(exc.messages[0])
        finally:
            connection.close()

    threads = [threading.Thread(target=review, args=(index,)) for index in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    approval.refresh_from_db()
    assert approval.state == "approved"
    assert len(outcomes) == 20
    decided = AuditEvent.objects.filter(action="approval.approved", object_id=str(approval.pk))
    assert decided.count() == 1

    # The effect, delivered twice at once, moves the alias once.
    def deliver() -> None:
        try:
            services.approval_effect_run(approval_id=approval.pk)
        except EffectInProgressError:
            pass  # the other delivery holds the claim; a real task would retry later
        finally:
            connection.close()

    runs = [threading.Thread(target=deliver) for _ in range(2)]
    for thread in runs:
        thread.start()
    for thread in runs:
        thread.join()
    assert AuditEvent.objects.filter(action="alias.moved").count() == 1
    assert mlflow_client.get_model_version_by_alias(fraud_model.name, "champion").version == "2"
    assert AliasPromotion.objects.get(pk=promotion.pk).state == "applied"
