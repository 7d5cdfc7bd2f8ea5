"""Request-level protections: login, CSRF, headers, request ids, JSON logs."""

import json
import logging

import pytest
from django.test import Client

from apps.web.middleware import request_holds_nul
from tests.accounts.factories import UserFactory
from tests.api_errors import api_error


@pytest.mark.django_db
def test_pages_redirect_anonymous_people_to_login(client: Client) -> None:
    for path in ("/", "/accounts/profile/", "/audit/", "/accounts/teams/"):
        response = client.get(path)
        assert response.status_code == 302, path
        assert response["Location"].startswith("/accounts/login/?next="), path


@pytest.mark.django_db
def test_api_answers_anonymous_callers_with_401_json(client: Client) -> None:
    response = client.get("/api/v1/me/")
    assert api_error(response, 401) == {
        "detail": "Authentication credentials were not provided.",
        "code": "not_authenticated",
        "errors": {},
    }
    assert response["Content-Type"] == "application/json"
    assert response["WWW-Authenticate"] == 'Bearer realm="modelport"'


@pytest.mark.django_db
def test_post_without_csrf_token_is_refused_with_403() -> None:
    client = Client(enforce_csrf_checks=True)
    client.force_login(UserFactory())
    response = client.post("/accounts/tokens/", {"name": "ci", "expires_in_days": "30"})
    assert response.status_code == 403
    assert b"CSRF" in response.content


@pytest.mark.django_db
def test_session_api_write_without_csrf_is_refused() -> None:
    client = Client(enforce_csrf_checks=True)
    client.force_login(UserFactory())
    response = client.post("/api/v1/tokens/", {"name": "x"}, content_type="application/json")
    assert "CSRF" in api_error(response, 403, "permission_denied")["detail"]


@pytest.mark.django_db
def test_login_form_rejects_bad_password_with_form_error(client: Client) -> None:
    UserFactory(username="pat")
    response = client.post("/accounts/login/", {"username": "pat", "password": "wrong"})
    assert response.status_code == 200
    assert b"Please enter a correct username and password" in response.content


@pytest.mark.django_db
def test_login_locks_out_after_repeated_failures(client: Client, settings) -> None:
    UserFactory(username="pat")
    for _ in range(settings.AXES_FAILURE_LIMIT):
        client.post("/accounts/login/", {"username": "pat", "password": "wrong"})
    response = client.post(
        "/accounts/login/", {"username": "pat", "password": "correct-horse-battery"}
    )
    assert response.status_code == 429
    assert b"Too many failed sign-ins" in response.content


@pytest.mark.django_db
def test_security_headers_on_pages(client: Client) -> None:
    response = client.get("/accounts/login/")
    policy = response["Content-Security-Policy"]
    assert "script-src 'self'" in policy
    assert "frame-ancestors 'none'" in policy
    assert "unsafe-inline" not in policy
    assert response["X-Frame-Options"] == "DENY"
    assert response["Referrer-Policy"] == "same-origin"
    assert response["X-Content-Type-Options"] == "nosniff"


@pytest.mark.django_db
def test_request_id_is_echoed_and_taken_from_the_caller(client: Client) -> None:
    response = client.get("/healthz", headers={"X-Request-ID": "abc-123"})
    assert response["X-Request-ID"] == "abc-123"
    generated = client.get("/healthz")["X-Request-ID"]
    assert len(generated) == 36


@pytest.mark.django_db
def test_logs_are_json_lines_carrying_the_request_id(client: Client, caplog) -> None:
    caplog.set_level(logging.INFO)
    client.get("/healthz", headers={"X-Request-ID": "trace-42"})
    formatter = logging.getLogger().handlers[0].formatter
    assert formatter is not None
    lines = [json.loads(formatter.format(record)) for record in caplog.records]
    finished = [line for line in lines if line["event"] == "request_finished"]
    assert len(finished) == 1, lines
    assert finished[0]["request_id"] == "trace-42"
    assert finished[0]["level"] == "info"
    assert finished[0]["timestamp"].endswith("Z")


@pytest.mark.django_db
def test_metrics_are_exported_for_prometheus(client: Client) -> None:
    client.get("/healthz")
    response = client.get("/metrics")
    assert response.status_code == 200
    assert b"django_http_requests_total_by_method_total" in response.content


# How the test client encodes a body: its own default (a query string or multipart form), or as
# the content type given.
CLIENT_DEFAULT: dict[str, str] = {}
JSON = {"content_type": "application/json"}
URLENCODED = {"content_type": "application/x-www-form-urlencoded"}


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("method", "path", "data", "encoding"),
    [
        ("get", "/api/v1/models/?search=a%00b", None, CLIENT_DEFAULT),
        ("get", "/catalog/?team=%00", None, CLIENT_DEFAULT),
        ("post", "/deployments/requests/new/", {"replicas": ["1", "\x00"]}, CLIENT_DEFAULT),
        ("post", "/api/v1/alias-policies/", '{"reviewer_teams": ["a\\u0000b"]}', JSON),
        ("post", "/api/v1/alias-policies/", '{"a\\u0000": 1}', JSON),
        ("post", "/deployments/requests/new/", "environment=d%00v", URLENCODED),
    ],
)
def test_a_nul_character_anywhere_in_the_input_is_a_400(
    client, method, path, data, encoding: dict[str, str]
) -> None:
    client.force_login(UserFactory(is_staff=True))
    send = getattr(client, method)
    response = send(path, data, **encoding)
    assert response.status_code == 400
    assert "NUL character" in response.content.decode()


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/api/v1/alias-policies/", '{"reviewer_teams": ["a\\u0000b"]}'),
        ("/api/v1/tokens/", '{"name": "a\\u0000"}'),
    ],
)
def test_a_nul_character_in_the_api_is_the_common_error_body(client, path, body) -> None:
    client.force_login(UserFactory(is_staff=True))
    api_error(client.get(f"{path}?q=%00"), 400, "nul_character")
    response = client.post(path, body, content_type="application/json")
    assert "NUL character" in api_error(response, 400, "nul_character")["detail"]


def test_an_escaped_backslash_before_u0000_is_ordinary_text(rf) -> None:
    literal = rf.post("/api/v1/x/", '{"note": "\\\\u0000"}', content_type="application/json")
    escaped = rf.post("/api/v1/x/", '{"note": "\\u0000"}', content_type="application/json")
    assert json.loads(literal.body) == {"note": "\\u0000"}
    assert not request_holds_nul(literal)
    assert request_holds_nul(escaped)
