"""A stand-in subject kind for exercising the engine without any real subject's side effects."""

from __future__ import annotations

import pytest

from apps.approvals.registry import (
    CHECKS,
    SUBJECT_KINDS,
    CheckOutcome,
    SubjectKind,
    register_check,
    register_subject,
)
from tests.accounts.factories import MembershipFactory, TeamFactory, UserFactory
from tests.approvals.subject import check_flag, record_effect, recorded_effects


@pytest.fixture(autouse=True)
def test_subject_kind():
    register_subject(SubjectKind(kind="test", on_approved=record_effect))
    register_check(
        "flag_check",
        lambda subject, params: CheckOutcome(check_flag["check_passes"], "flag says so"),
        "Passes while the test flag is up.",
    )
    recorded_effects.clear()
    check_flag["check_passes"] = True
    yield
    SUBJECT_KINDS.pop("test", None)
    CHECKS.pop("flag_check", None)


@pytest.fixture
def reviewers(db):
    """Three reviewers on team `risk`, one on `owners`, and an outsider."""
    risk, owners = TeamFactory(slug="risk", name="Risk"), TeamFactory(slug="owners", name="Owners")
    people = {
        name: MembershipFactory(team=risk, user=UserFactory(username=name)).user
        for name in ("rae", "rob", "ria")
    }
    people["olive"] = MembershipFactory(team=owners, user=UserFactory(username="olive")).user
    people["requester"] = MembershipFactory(team=owners, user=UserFactory(username="req")).user
    people["outsider"] = UserFactory(username="out")
    return people
