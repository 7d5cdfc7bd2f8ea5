import pytest
from django.test import Client

from apps.accounts.models import ApiToken, Membership
from apps.audit.models import AuditEvent

pytestmark = pytest.mark.django_db


def test_profile_lists_tokens_and_teams(client: Client, maintainer) -> None:
    client.force_login(maintainer)
    response = client.get("/accounts/profile/")
    assert response.status_code == 200
    assert b"No tokens yet." in response.content
    assert b"Fraud" in response.content


def test_htmx_token_create_swaps_in_the_token_panel_with_the_secret_once(
    client: Client, outsider
) -> None:
    client.force_login(outsider)
    response = client.post(
        "/accounts/tokens/", {"name": "ci", "expires_in_days": "30"}, headers={"HX-Request": "true"}
    )
    assert response.status_code == 200
    html = response.content.decode()
    assert html.lstrip().startswith('<section class="card" id="tokens">')
    assert "<html" not in html  # only the partial
    assert response["Cache-Control"] == "no-store"
    token = ApiToken.objects.get(user=outsider)
    assert f"mp_{token.prefix}_" in html
    again = client.get("/accounts/profile/").content.decode()
    assert f"mp_{token.prefix}_" not in again
    assert token.display_prefix in again


def test_token_create_form_error_is_shown_and_nothing_saved(client: Client, outsider) -> None:
    client.force_login(outsider)
    response = client.post(
        "/accounts/tokens/", {"name": "", "expires_in_days": "9999"}, headers={"HX-Request": "true"}
    )
    assert response.status_code == 200
    assert b"This field is required." in response.content
    assert b"Select a valid choice" in response.content
    assert not ApiToken.objects.exists()


def test_token_revoke_of_someone_elses_token_is_404(client: Client, outsider, member) -> None:
    from apps.accounts.services import api_token_create

    token, _ = api_token_create(user=member, name="theirs", expires_in_days=30)
    client.force_login(outsider)
    assert client.post(f"/accounts/tokens/{token.pk}/revoke/").status_code == 404
    token.refresh_from_db()
    assert token.revoked_at is None


def test_token_revoke_get_is_not_allowed(client: Client, outsider) -> None:
    client.force_login(outsider)
    assert client.get("/accounts/tokens/1/revoke/").status_code == 405


def test_team_page_shows_manage_controls_only_to_maintainers(
    client: Client, team, maintainer, member
) -> None:
    client.force_login(member)
    assert b"Add member" not in client.get("/accounts/teams/fraud/").content
    client.force_login(maintainer)
    assert b"Add member" in client.get("/accounts/teams/fraud/").content


def test_member_cannot_post_membership_changes(client: Client, team, member, outsider) -> None:
    client.force_login(member)
    response = client.post("/accounts/teams/fraud/members/", {"username": "olga", "role": "member"})
    assert response.status_code == 403
    assert not Membership.objects.filter(user=outsider).exists()


def test_htmx_member_add_returns_members_partial_with_error_for_unknown_user(
    client: Client, team, maintainer
) -> None:
    client.force_login(maintainer)
    response = client.post(
        "/accounts/teams/fraud/members/",
        {"username": "ghost", "role": "member"},
        headers={"HX-Request": "true"},
    )
    assert response.status_code == 200
    assert b'id="members"' in response.content
    assert "No active user named “ghost”.".encode() in response.content


def test_htmx_member_add_and_role_change(client: Client, team, maintainer, outsider) -> None:
    client.force_login(maintainer)
    client.post(
        "/accounts/teams/fraud/members/",
        {"username": "olga", "role": "member"},
        headers={"HX-Request": "true"},
    )
    membership = Membership.objects.get(user=outsider)
    response = client.post(
        f"/accounts/teams/fraud/members/{membership.pk}/role/",
        {"role": "maintainer"},
        headers={"HX-Request": "true"},
    )
    assert response.status_code == 200
    membership.refresh_from_db()
    assert membership.role == "maintainer"
    assert AuditEvent.objects.filter(action__startswith="team.member").count() == 2


def test_team_create_only_for_staff_and_form_errors_are_400(
    client: Client, outsider, staff
) -> None:
    client.force_login(outsider)
    assert client.post("/accounts/teams/new/", {"name": "A", "slug": "a"}).status_code == 403
    client.force_login(staff)
    bad = client.post("/accounts/teams/new/", {"name": "", "slug": "not a slug"})
    assert bad.status_code == 400
    assert b"This field is required." in bad.content
    good = client.post("/accounts/teams/new/", {"name": "Alpha", "slug": "alpha"})
    assert good.status_code == 302
    assert good["Location"] == "/accounts/teams/alpha/"


def test_unknown_team_is_404(client: Client, outsider) -> None:
    client.force_login(outsider)
    assert client.get("/accounts/teams/nope/").status_code == 404


def test_login_and_logout_are_audited(client: Client, outsider) -> None:
    response = client.post(
        "/accounts/login/", {"username": "olga", "password": "correct-horse-battery"}
    )
    assert response.status_code == 302
    client.post("/accounts/logout/")
    client.post("/accounts/login/", {"username": "olga", "password": "nope"})
    actions = list(AuditEvent.objects.order_by("id").values_list("action", "actor_label"))
    assert actions == [
        ("auth.login", "olga"),
        ("auth.logout", "olga"),
        ("auth.login_failed", "anonymous"),
    ]
