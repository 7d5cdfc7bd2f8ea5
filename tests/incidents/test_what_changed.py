"""“What changed before it”: exactly the changes in the window, most likely first."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from apps.audit.models import AuditEvent
from apps.catalog.models import RegistryEvent
from apps.incidents.models import ChangeKind
from apps.incidents.selectors import what_changed
from tests.approvals.factories import AliasPromotionFactory, ApprovalRequestFactory
from tests.catalog.factories import ModelVersionFactory, RegisteredModelFactory
from tests.deployments.factories import DeployRequestFactory, EnvironmentFactory
from tests.incidents.factories import IncidentFactory

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("offline")]
MINUTE = timedelta(minutes=1)


def test_it_lists_exactly_the_window_in_the_documented_order(member, fraud, production):
    start = timezone.now() - timedelta(hours=1)
    incident = IncidentFactory(
        started_at=start, registered_models=[fraud], environments=[production]
    )
    staging = EnvironmentFactory(name="staging", slug="staging")
    churn = RegisteredModelFactory(name="churn")
    v1, v2 = fraud.versions.get(version=1), fraud.versions.get(version=2)
    # Same model and environment: a deploy that finished 30 min before.
    same_pair = DeployRequestFactory(
        environment=production, version=v2, succeeded=True, created_at=start - 34 * MINUTE
    )
    # ...and a drift flag raised on it 20 min before.
    flag = AuditEvent.objects.create(
        occurred_at=start - 20 * MINUTE,
        actor_label="drift-check",
        action="model.flag_raised",
        object_type="catalog.registeredmodel",
        object_id=str(fraud.pk),
        object_repr="fraud",
        data={"key": "drift:production", "message": "Serving v1, the portal says v2."},
    )
    # Same environment only: another model's deploy, 10 min before (filed by this person).
    same_env = DeployRequestFactory(
        environment=production,
        version=ModelVersionFactory(model=churn, version=1),
        requester=member,
        created_at=start - 10 * MINUTE,
    )
    # Same model only: a deploy to staging 2 h before, an alias moved in MLflow 5 min before,
    # a promotion approved an hour before, and a version registered 3 h before.
    same_model = DeployRequestFactory(
        environment=staging, version=v1, succeeded=True, created_at=start - 124 * MINUTE
    )
    moved = RegistryEvent.objects.create(
        model=fraud,
        at=start - 5 * MINUTE,
        kind=RegistryEvent.Kind.ALIAS_MOVED,
        alias="champion",
        detail="@champion moved v1 → v2",
    )
    approval = ApprovalRequestFactory(
        subject=AliasPromotionFactory(model=fraud, version=v2, applied=True),
        approved=True,
        created_at=start - 61 * MINUTE,
        decided_at=start - 60 * MINUTE,
    )
    v4 = ModelVersionFactory(model=fraud, version=4, mlflow_created_at=start - 180 * MINUTE)
    # Outside the window: before it, and after the incident started.
    DeployRequestFactory(
        environment=production, version=v1, succeeded=True, created_at=start - 30 * 60 * MINUTE
    )
    RegistryEvent.objects.create(
        model=fraud, at=start + MINUTE, kind=RegistryEvent.Kind.ALIAS_SET, detail="later"
    )

    window = what_changed(member, incident, hours=24)

    assert [(change.kind, change.object_id) for change in window.changes] == [
        (ChangeKind.FLAG, flag.pk),  # same model and environment, 20 min
        (ChangeKind.DEPLOY, same_pair.pk),  # same model and environment, 30 min
        (ChangeKind.REGISTRY, moved.pk),  # one of the two, 5 min
        (ChangeKind.DEPLOY, same_env.pk),  # 10 min
        (ChangeKind.APPROVAL, approval.pk),  # 60 min
        (ChangeKind.DEPLOY, same_model.pk),  # 2 h
        (ChangeKind.VERSION, v4.pk),  # 3 h
    ]
    assert [change.match for change in window.changes[:3]] == [
        "same model and environment",
        "same model and environment",
        "same model",
    ]
    assert window.changes[3].match == "same environment"
    assert (window.start, window.end) == (start - timedelta(hours=24), start)


def test_a_shorter_window_keeps_only_what_is_in_it(member, fraud, production):
    start = timezone.now() - timedelta(hours=1)
    incident = IncidentFactory(started_at=start, registered_models=[fraud])
    DeployRequestFactory(
        environment=production,
        version=fraud.versions.get(version=1),
        succeeded=True,
        created_at=start - 124 * MINUTE,
    )
    assert len(what_changed(member, incident, hours=24).changes) == 1
    assert what_changed(member, incident, hours=1).changes == []


def test_changes_the_viewer_may_not_see_are_left_out(outsider, fraud, production):
    start = timezone.now() - timedelta(hours=1)
    incident = IncidentFactory(started_at=start, environments=[production])
    DeployRequestFactory(
        environment=production,
        version=fraud.versions.get(version=1),
        created_at=start - 10 * MINUTE,
    )
    assert what_changed(outsider, incident).changes == []
