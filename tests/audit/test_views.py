import pytest
from django.test import Client

from apps.audit.services import record
from tests.accounts.factories import UserFactory

pytestmark = pytest.mark.django_db


def test_audit_log_is_for_staff_only(client: Client, outsider) -> None:
    client.force_login(outsider)
    assert client.get("/audit/").status_code == 403


def test_audit_log_filters_by_actor_action_prefix_and_object(client: Client, staff) -> None:
    rita = UserFactory(username="rita")
    record(rita, "team.created", rita)
    record(rita, "api_token.created", rita)
    record("scheduler", "team.synced")
    client.force_login(staff)
    htmx = {"HX-Request": "true"}
    results = client.get("/audit/", {"actor": "rita", "action": "team."}, headers=htmx)
    assert results.content.decode().count("<code>") == 1
    assert "<code>team.created</code>" in results.content.decode()
    by_object = client.get(
        "/audit/", {"object_type": "accounts.user", "object_id": str(rita.pk)}, headers=htmx
    ).content.decode()
    assert by_object.count("<code>") == 2
    assert "<code>api_token.created</code>" in by_object


def test_htmx_filter_returns_only_the_results_partial(client: Client, staff) -> None:
    record("scheduler", "team.synced")
    client.force_login(staff)
    response = client.get("/audit/", {"action": "team."}, headers={"HX-Request": "true"})
    html = response.content.decode()
    assert html.lstrip().startswith('<section class="card" id="results">')
    assert "team.synced" in html
    assert "<nav" not in html.split("<section", 1)[0]
    assert response["Vary"] == "HX-Request, Cookie"


def test_audit_log_pages_with_bounded_queries(
    client: Client, staff, django_assert_max_num_queries
) -> None:
    for n in range(120):
        record("scheduler", f"bulk.event{n % 3}", None, n=n)
    client.force_login(staff)
    with django_assert_max_num_queries(8):
        first = client.get("/audit/")
    assert "1–50 of 121" in first.content.decode()  # 120 + the staff login
    third = client.get("/audit/", {"page": 3}).content.decode()
    assert "101–121 of 121" in third
    assert client.get("/audit/", {"page": "nonsense"}).status_code == 200
