from datetime import timedelta

import pytest
import time_machine
from django.core.exceptions import ValidationError
from django.utils import timezone

from apps.accounts import services
from apps.accounts.models import ApiToken, Membership, hash_token
from apps.audit.models import AuditEvent
from tests.accounts.factories import MembershipFactory, UserFactory

pytestmark = pytest.mark.django_db


def test_team_create_writes_one_audit_event(staff) -> None:
    team = services.team_create(actor=staff, name="Search Ranking")
    assert team.slug == "search-ranking"
    event = AuditEvent.objects.get(action="team.created")
    assert (event.actor, event.object_id, event.data["slug"]) == (
        staff,
        str(team.pk),
        "search-ranking",
    )


def test_team_create_rejects_duplicate_name(staff, team) -> None:
    with pytest.raises(ValidationError, match="already exists"):
        services.team_create(actor=staff, name=team.name)
    assert not AuditEvent.objects.filter(action="team.created").exists()


def test_team_member_add_then_duplicate_is_refused(maintainer, team, outsider) -> None:
    services.team_member_add(actor=maintainer, team=team, user=outsider, role="member")
    with pytest.raises(ValidationError, match="already a member"):
        services.team_member_add(actor=maintainer, team=team, user=outsider, role="member")
    assert AuditEvent.objects.filter(action="team.member_added").count() == 1


def test_last_maintainer_cannot_be_demoted_or_removed(maintainer, team) -> None:
    membership = Membership.objects.get(team=team, user=maintainer)
    with pytest.raises(ValidationError, match="at least one maintainer"):
        services.team_member_set_role(actor=maintainer, membership=membership, role="member")
    with pytest.raises(ValidationError, match="at least one maintainer"):
        services.team_member_remove(actor=maintainer, membership=membership)
    membership.refresh_from_db()
    assert membership.role == "maintainer"


def test_maintainer_can_be_demoted_when_another_remains(maintainer, team) -> None:
    MembershipFactory(team=team, role="maintainer")
    membership = Membership.objects.get(team=team, user=maintainer)
    services.team_member_set_role(actor=maintainer, membership=membership, role="member")
    membership.refresh_from_db()
    assert membership.role == "member"
    event = AuditEvent.objects.get(action="team.member_role_changed")
    assert event.data == {"username": "maya", "role": "member", "previous_role": "maintainer"}


def test_api_token_create_stores_only_a_hash(outsider) -> None:
    token, raw = services.api_token_create(user=outsider, name="ci", expires_in_days=30)
    assert raw.startswith(f"mp_{token.prefix}_")
    assert len(raw) > 40
    stored = ApiToken.objects.get(pk=token.pk)
    assert stored.token_hash == hash_token(raw)
    assert raw not in str(stored.__dict__)
    assert AuditEvent.objects.get(action="api_token.created").data["prefix"] == token.prefix


@pytest.mark.parametrize("days", [0, -1, 91])
def test_api_token_create_rejects_lifetimes_outside_the_cap(outsider, days: int) -> None:
    with pytest.raises(ValidationError, match="between 1 and 90 days"):
        services.api_token_create(user=outsider, name="ci", expires_in_days=days)
    assert not ApiToken.objects.exists()


def test_api_token_revoke_is_idempotent(outsider) -> None:
    token, _ = services.api_token_create(user=outsider, name="ci", expires_in_days=90)
    services.api_token_revoke(actor=outsider, token=token)
    services.api_token_revoke(actor=outsider, token=token)
    assert token.revoked_at is not None
    assert AuditEvent.objects.filter(action="api_token.revoked").count() == 1


def test_api_token_authenticate_gives_the_reason_it_fails(outsider) -> None:
    token, raw = services.api_token_create(user=outsider, name="ci", expires_in_days=30)
    assert services.api_token_authenticate(raw=raw) == (outsider, token)

    with pytest.raises(services.TokenInvalidError, match="Invalid token"):
        services.api_token_authenticate(raw=raw + "x")
    assert token.expires_at is not None
    with (
        time_machine.travel(token.expires_at + timedelta(seconds=1), tick=False),
        pytest.raises(services.TokenInvalidError, match="expired"),
    ):
        services.api_token_authenticate(raw=raw)
    ApiToken.objects.filter(pk=token.pk).update(revoked_at=timezone.now())
    with pytest.raises(services.TokenInvalidError, match="revoked"):
        services.api_token_authenticate(raw=raw)


def test_api_token_of_disabled_user_stops_working() -> None:
    user = UserFactory()
    _, raw = services.api_token_create(user=user, name="ci", expires_in_days=30)
    user.is_active = False
    user.save()
    with pytest.raises(services.TokenInvalidError, match="disabled"):
        services.api_token_authenticate(raw=raw)


def test_api_token_last_used_is_written_at_most_once_a_minute(
    outsider, django_assert_num_queries
) -> None:
    token, raw = services.api_token_create(user=outsider, name="ci", expires_in_days=30)
    with django_assert_num_queries(2):  # look up, then record first use
        services.api_token_authenticate(raw=raw)
    with django_assert_num_queries(1):  # look up only
        services.api_token_authenticate(raw=raw)
    token.refresh_from_db()
    assert token.last_used_at is not None
