"""Freezes, deny windows and promotion order block with a clear message; staff may bypass them
with a reason, which is audited; rollbacks are never blocked; weekly windows parse and wrap."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.core.exceptions import PermissionDenied, ValidationError

from apps.audit.models import AuditEvent
from apps.deployments import services
from apps.deployments.models import DeployRequest, Release
from apps.deployments.services import deploy_request_execute
from apps.deployments.windows import WindowError, closed_window, parse_windows
from tests.deployments.support import drive, environment_on, request_deploy

FRIDAY_5PM = datetime(2026, 11, 27, 17, 0, tzinfo=UTC)  # a Friday
WEEKEND_WINDOW = "Fri 16:00-Mon 08:00"


# --- windows, pure ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("moment", "closed"),
    [
        (datetime(2026, 11, 27, 15, 59, tzinfo=UTC), False),  # Friday, just before
        (datetime(2026, 11, 27, 16, 0, tzinfo=UTC), True),
        (datetime(2026, 11, 29, 12, 0, tzinfo=UTC), True),  # Sunday
        (datetime(2026, 11, 30, 7, 59, tzinfo=UTC), True),  # Monday morning
        (datetime(2026, 11, 30, 8, 0, tzinfo=UTC), False),
        (datetime(2026, 11, 25, 12, 0, tzinfo=UTC), False),  # Wednesday
    ],
)
def test_weekend_window_wraps_round_the_week(moment, closed) -> None:
    assert (closed_window(WEEKEND_WINDOW, "UTC", moment) is not None) is closed


def test_window_reopening_time_is_in_the_zone_given() -> None:
    found = closed_window("Fri 16:00-Mon 08:00", "Europe/Berlin", FRIDAY_5PM)  # 18:00 in Berlin
    assert found is not None
    assert found.opens_at.isoformat() == "2026-11-30T08:00:00+01:00"


def test_bad_windows_name_the_line() -> None:
    with pytest.raises(WindowError, match="“Fry 16:00-Mon 08:00”: “Fry” is not a day"):
        parse_windows("Fry 16:00-Mon 08:00")
    with pytest.raises(WindowError, match="is not “Fri 16:00-Mon 08:00”"):
        parse_windows("weekends")
    assert [w.text for w in parse_windows("# quiet\nSat 00:00 - Sun 24:00\n")] == [
        "Sat 00:00 - Sun 24:00"
    ]


# --- blocking and bypassing -------------------------------------------------------------------
@pytest.mark.django_db
def test_deny_window_blocks_with_when_it_opens(kubeconfig, fraud, member) -> None:
    prod = environment_on(kubeconfig, "production", 30, deny_windows=WEEKEND_WINDOW)
    with (
        time_machine.travel(FRIDAY_5PM, tick=False),
        pytest.raises(services.PolicyBlockedError) as caught,
    ):
        request_deploy(member, prod, fraud, 1)
    assert caught.value.messages == [
        "production takes no deploys during Fri 16:00-Mon 08:00 (UTC); "
        "it opens again Mon 2026-11-30 08:00."
    ]
    assert not DeployRequest.objects.exists()


@pytest.mark.django_db
def test_freeze_blocks_until_lifted(kubeconfig, fraud, member, staff) -> None:
    prod = environment_on(kubeconfig, "production", 30)
    freeze = services.deploy_freeze_create(
        actor=staff, environment=prod, reason="Black Friday", ends_at=None
    )
    with pytest.raises(services.PolicyBlockedError, match="production is frozen: Black Friday"):
        request_deploy(member, prod, fraud, 1)
    services.deploy_freeze_lift(actor=staff, freeze=freeze)
    assert request_deploy(member, prod, fraud, 1).state == "queued"
    actions = AuditEvent.objects.filter(action__startswith="environment.").values_list(
        "action", flat=True
    )
    assert sorted(actions) == ["environment.frozen", "environment.unfrozen"]


@pytest.mark.django_db
def test_only_staff_freeze(kubeconfig_file, member) -> None:
    prod = environment_on(kubeconfig_file, "production", 30)
    with pytest.raises(PermissionDenied):
        services.deploy_freeze_create(actor=member, environment=prod, reason="no")


@pytest.mark.django_db
def test_promotion_order_needs_the_previous_environment_first(
    sim, kubeconfig, fraud, member
) -> None:
    dev = environment_on(kubeconfig, "dev", 10)
    staging = environment_on(kubeconfig, "staging", 20, requires_previous_environment=True)
    with pytest.raises(services.PolicyBlockedError) as caught:
        request_deploy(member, staging, fraud, 2)
    assert caught.value.messages == [
        "Promotion order: v2 has not been live in dev yet; deploy it there first."
    ]
    drive(sim, request_deploy(member, dev, fraud, 2).pk)
    assert request_deploy(member, staging, fraud, 2).state == "queued"


@pytest.mark.django_db
def test_promotion_soak_time_says_when(sim, kubeconfig, fraud, member) -> None:
    dev = environment_on(kubeconfig, "dev", 10)
    staging = environment_on(
        kubeconfig, "staging", 20, requires_previous_environment=True, soak_minutes=60
    )
    with time_machine.travel(datetime(2026, 11, 26, 9, 0, tzinfo=UTC), tick=False) as clock:
        drive(sim, request_deploy(member, dev, fraud, 2).pk)
        live_from = Release.objects.get(environment=dev).live_from
        clock.move_to(live_from + timedelta(minutes=59))
        with pytest.raises(services.PolicyBlockedError, match="must soak in dev for 60 min"):
            request_deploy(member, staging, fraud, 2)
        clock.move_to(live_from + timedelta(minutes=61))
        assert request_deploy(member, staging, fraud, 2).state == "queued"


@pytest.mark.django_db
def test_staff_bypass_is_recorded_and_audited(kubeconfig, fraud, staff, member) -> None:
    prod = environment_on(
        kubeconfig,
        "production",
        30,
        deny_windows=WEEKEND_WINDOW,
        requires_previous_environment=True,
    )
    environment_on(kubeconfig, "staging", 20)
    with time_machine.travel(FRIDAY_5PM, tick=False):
        with pytest.raises(PermissionDenied, match="Only staff can bypass"):
            request_deploy(member, prod, fraud, 1, bypass_reason="please")
        request = request_deploy(staff, prod, fraud, 1, bypass_reason="Hotfix for INC-42")
        assert request.state == "queued"
        assert deploy_request_execute(request.pk, request.token) == "applied"  # not held
    assert len(request.bypassed) == 2
    event = AuditEvent.objects.get(action="deploy.requested")
    assert event.actor == staff
    assert event.data["bypass_reason"] == "Hotfix for INC-42"
    assert [m.split(":")[0] for m in event.data["bypassed"]] == [
        "production takes no deploys during Fri 16",
        "Promotion order",
    ]
    assert request.events.filter(level="warning", message__contains="bypassed").exists()


@pytest.mark.django_db
def test_bypass_reason_without_a_blocker_is_refused(kubeconfig, fraud, staff) -> None:
    dev = environment_on(kubeconfig, "dev", 10)
    with pytest.raises(ValidationError, match="Nothing blocks this deploy"):
        request_deploy(staff, dev, fraud, 1, bypass_reason="just because")


@pytest.mark.django_db
def test_approved_request_waits_in_the_queue_while_a_window_is_closed(
    kubeconfig, fraud, member
) -> None:
    prod = environment_on(kubeconfig, "production", 30, deny_windows=WEEKEND_WINDOW)
    with time_machine.travel(FRIDAY_5PM - timedelta(hours=2), tick=False):
        request = request_deploy(member, prod, fraud, 1)
    with time_machine.travel(FRIDAY_5PM, tick=False):
        assert deploy_request_execute(request.pk, request.token) == "held"
        assert deploy_request_execute(request.pk, request.token) == "held"
    request.refresh_from_db()
    assert request.state == "queued"
    assert request.status_reason.startswith("Held: production takes no deploys")
    assert request.events.filter(message__startswith="Held:").count() == 1
