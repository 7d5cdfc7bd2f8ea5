"""A person signs in through Chromium, sees the dashboard, and creates an API token."""

import pytest

from apps.accounts.models import ApiToken
from tests.accounts.factories import PASSWORD, MembershipFactory, UserFactory
from tests.fixtures.browser import sign_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_sign_in_shows_the_dashboard_with_my_teams(new_page) -> None:
    membership = MembershipFactory(
        user=UserFactory(username="lena", first_name="Lena"), role="maintainer"
    )
    page = new_page()
    page.goto("/")
    assert "/accounts/login/" in page.url  # sent to sign in first
    sign_in(page, "lena", PASSWORD)
    assert page.url.endswith("/")
    assert page.locator("h1").inner_text() == f"Welcome, Lena {membership.user.last_name}"
    assert page.get_by_role("link", name=membership.team.name).is_visible()
    assert page.locator("nav.mainnav").inner_text().split() == [
        "Catalog",
        "Approvals",
        "Deployments",
        "Incidents",
    ]
    assert page.console_errors == []


def test_wrong_password_shows_a_form_error(new_page) -> None:
    UserFactory(username="lena")
    page = new_page()
    page.goto("/accounts/login/")
    page.fill("#id_username", "lena")
    page.fill("#id_password", "not-it")
    page.click("button[type=submit]")
    assert "Please enter a correct username and password" in page.locator(".errorlist").inner_text()


def test_token_created_with_htmx_shows_secret_without_page_reload(new_page) -> None:
    UserFactory(username="lena")
    page = new_page()
    sign_in(page, "lena", PASSWORD)
    page.goto("/accounts/profile/")
    page.evaluate("window.__marker = 'same page'")
    page.fill("#id_name", "laptop script")
    page.click("button:has-text('Create token')")
    secret = page.locator("#new-token-secret")
    secret.wait_for()
    token = ApiToken.objects.get(name="laptop script")
    assert secret.inner_text().startswith(f"mp_{token.prefix}_")
    assert page.evaluate("window.__marker") == "same page"  # swapped in place, no navigation
    assert page.locator("#tokens tbody tr").count() == 1
    assert page.console_errors == []
