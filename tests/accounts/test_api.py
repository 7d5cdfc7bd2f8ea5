from collections.abc import Callable
from datetime import datetime, timedelta

import pytest
import time_machine
from django.test import Client
from django.utils import timezone

from apps.accounts import services
from apps.accounts.models import ApiToken, Membership
from apps.audit.models import AuditEvent
from tests.accounts.factories import MembershipFactory, TeamFactory, UserFactory
from tests.api_errors import api_error

pytestmark = pytest.mark.django_db


def bearer(raw: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {raw}"}


@pytest.fixture
def token_of(outsider):
    _, raw = services.api_token_create(user=outsider, name="ci", expires_in_days=30)
    return raw


def test_me_with_valid_bearer_token(client: Client, token_of: str, team) -> None:
    MembershipFactory(team=team, user__username="olga", role="maintainer")
    response = client.get("/api/v1/me/", headers=bearer(token_of))
    assert response.status_code == 200
    body = response.json()
    assert body["username"] == "olga"
    assert body["memberships"] == [{"team": "fraud", "role": "maintainer"}]


# Each case: the token sent, and when it is sent.
def garbage(token: ApiToken, raw: str) -> tuple[str, datetime]:
    return "mp_0000_notatoken", timezone.now()


def expired(token: ApiToken, raw: str) -> tuple[str, datetime]:
    assert token.expires_at is not None
    return raw, token.expires_at + timedelta(days=1)


def revoked(token: ApiToken, raw: str) -> tuple[str, datetime]:
    services.api_token_revoke(actor=token.user, token=token)
    return raw, timezone.now()


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (garbage, "Invalid token."),
        (expired, "Token has expired."),
        (revoked, "Token has been revoked."),
    ],
)
def test_bad_tokens_get_401_naming_why(
    client: Client,
    outsider,
    mutate: Callable[[ApiToken, str], tuple[str, datetime]],
    message: str,
) -> None:
    token, raw = services.api_token_create(user=outsider, name="ci", expires_in_days=30)
    sent, at = mutate(token, raw)
    with time_machine.travel(at, tick=False):
        response = client.get("/api/v1/me/", headers=bearer(sent))
    assert api_error(response, 401, "authentication_failed")["detail"] == message


def test_malformed_authorization_header_is_a_401(client: Client) -> None:
    response = client.get("/api/v1/me/", headers={"Authorization": "Bearer a b"})
    assert "Malformed" in api_error(response, 401, "authentication_failed")["detail"]


def test_token_create_returns_secret_once_and_list_never_does(client: Client, outsider) -> None:
    client.force_login(outsider)  # tokens are made in a signed-in session
    created = client.post(
        "/api/v1/tokens/",
        {"name": "deploy bot", "expires_in_days": 7},
        content_type="application/json",
    )
    assert created.status_code == 201
    secret = created.json()["token"]
    assert secret.startswith("mp_")
    client.logout()
    listed = client.get("/api/v1/tokens/", headers=bearer(secret)).json()
    assert listed["count"] == 1
    assert all("token" not in row for row in listed["results"])
    assert secret not in str(listed)
    assert client.get("/api/v1/me/", headers=bearer(secret)).status_code == 200


def test_a_token_may_not_create_another_token(client: Client, token_of: str) -> None:
    response = client.post(
        "/api/v1/tokens/",
        {"name": "forever", "expires_in_days": 30},
        content_type="application/json",
        headers=bearer(token_of),
    )
    assert "signed-in session" in api_error(response, 403, "permission_denied")["detail"]
    assert ApiToken.objects.count() == 1


@pytest.mark.parametrize(
    ("lifetime", "field_error"),
    [(None, "This field may not be null."), (91, "A token lives between 1 and 90 days.")],
)
def test_token_create_refuses_no_expiry_and_lifetimes_past_the_cap(
    client: Client, outsider, lifetime: int | None, field_error: str
) -> None:
    client.force_login(outsider)
    response = client.post(
        "/api/v1/tokens/",
        {"name": "x", "expires_in_days": lifetime},
        content_type="application/json",
    )
    assert api_error(response, 400, "invalid")["errors"]["expires_in_days"] == [field_error]
    assert not ApiToken.objects.exists()


def test_token_create_without_a_lifetime_gets_the_cap(client: Client, outsider, settings) -> None:
    client.force_login(outsider)
    created = client.post("/api/v1/tokens/", {"name": "x"}, content_type="application/json")
    token = ApiToken.objects.get(pk=created.json()["id"])
    assert token.expires_at == token.created_at + timedelta(days=settings.API_TOKEN_MAX_DAYS)


def test_token_delete_revokes_and_next_request_fails(client: Client, outsider) -> None:
    token, raw = services.api_token_create(user=outsider, name="ci", expires_in_days=30)
    response = client.delete(f"/api/v1/tokens/{token.pk}/", headers=bearer(raw))
    assert response.status_code == 204
    api_error(client.get("/api/v1/me/", headers=bearer(raw)), 401, "authentication_failed")


def test_tokens_of_other_users_are_invisible(client: Client, token_of: str) -> None:
    stranger_token, _ = services.api_token_create(
        user=UserFactory(), name="theirs", expires_in_days=1
    )
    assert (
        client.get(f"/api/v1/tokens/{stranger_token.pk}/", headers=bearer(token_of)).status_code
        == 404
    )
    assert (
        client.delete(f"/api/v1/tokens/{stranger_token.pk}/", headers=bearer(token_of)).status_code
        == 404
    )
    stranger_token.refresh_from_db()
    assert stranger_token.revoked_at is None


def test_team_list_is_paginated_with_bounded_queries(
    client: Client, token_of: str, django_assert_max_num_queries
) -> None:
    TeamFactory.create_batch(60)
    with django_assert_max_num_queries(5):
        response = client.get("/api/v1/teams/", headers=bearer(token_of))
    body = response.json()
    assert body["count"] == 60
    assert len(body["results"]) == 50
    big = client.get("/api/v1/teams/?page_size=100000", headers=bearer(token_of)).json()
    assert len(big["results"]) == 60  # capped at 100 per page; 60 is all there is


def test_only_staff_create_teams(client: Client, token_of: str, staff) -> None:
    denied = client.post(
        "/api/v1/teams/",
        {"name": "X", "slug": "x"},
        content_type="application/json",
        headers=bearer(token_of),
    )
    api_error(denied, 403, "permission_denied")
    client.force_login(staff)
    created = client.post(
        "/api/v1/teams/", {"name": "X", "slug": "x"}, content_type="application/json"
    )
    assert created.status_code == 201
    assert created.json()["member_count"] == 0
    duplicate = client.post(
        "/api/v1/teams/", {"name": "X", "slug": "x"}, content_type="application/json"
    )
    assert "slug" in api_error(duplicate, 400, "invalid")["errors"]


def test_maintainer_manages_members_and_member_cannot(
    client: Client, team, maintainer, member, outsider
) -> None:
    client.force_login(member)
    denied = client.post(
        "/api/v1/teams/fraud/members/", {"username": "olga"}, content_type="application/json"
    )
    api_error(denied, 403, "permission_denied")
    client.force_login(maintainer)
    added = client.post(
        "/api/v1/teams/fraud/members/",
        {"username": "olga", "role": "member"},
        content_type="application/json",
    )
    assert added.status_code == 201
    promoted = client.patch(
        "/api/v1/teams/fraud/members/olga/", {"role": "maintainer"}, content_type="application/json"
    )
    assert promoted.json()["role"] == "maintainer"
    removed = client.delete("/api/v1/teams/fraud/members/mo/")
    assert removed.status_code == 204
    assert set(Membership.objects.filter(team=team).values_list("user__username", flat=True)) == {
        "maya",
        "olga",
    }
    assert AuditEvent.objects.filter(action__startswith="team.member").count() == 3


def test_adding_unknown_user_is_a_400(client: Client, team, maintainer) -> None:
    client.force_login(maintainer)
    response = client.post(
        "/api/v1/teams/fraud/members/", {"username": "nobody"}, content_type="application/json"
    )
    assert "username" in api_error(response, 400, "invalid")["errors"]


def test_removing_last_maintainer_is_a_400(client: Client, team, maintainer) -> None:
    client.force_login(maintainer)
    response = client.delete("/api/v1/teams/fraud/members/maya/")
    assert "maintainer" in api_error(response, 400)["detail"]


def test_malformed_json_is_a_400(client: Client, outsider) -> None:
    client.force_login(outsider)
    response = client.post("/api/v1/tokens/", "{not json", content_type="application/json")
    assert "JSON parse error" in api_error(response, 400, "parse_error")["detail"]


def test_wrong_content_type_is_a_415(client: Client, outsider) -> None:
    client.force_login(outsider)
    response = client.post("/api/v1/tokens/", "name=x", content_type="text/plain")
    api_error(response, 415, "unsupported_media_type")
