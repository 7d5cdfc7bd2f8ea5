"""Hostile headers and bodies get a 4xx (JSON under /api/ and /hooks/), never a 500."""

from __future__ import annotations

import pytest
from django.test import Client

from tests.accounts.factories import UserFactory
from tests.api_errors import api_error

pytestmark = pytest.mark.django_db

MACHINE_PATHS = ["/api/v1/me/", "/hooks/mlflow/"]


@pytest.fixture
def signed_in(client: Client) -> Client:
    client.force_login(UserFactory())
    return client


@pytest.mark.parametrize("path", MACHINE_PATHS)
@pytest.mark.parametrize("length", ["abc", "-1", "1e3", "²"])
def test_a_content_length_that_is_not_a_number_is_a_json_400(
    signed_in: Client, path: str, length: str
) -> None:
    response = signed_in.post(path, "{}", content_type="application/json", CONTENT_LENGTH=length)
    assert "Content-Length" in api_error(response, 400, "bad_length")["detail"]


def test_a_content_length_that_is_not_a_number_is_a_400_on_pages_too(signed_in: Client) -> None:
    response = signed_in.get("/", CONTENT_LENGTH="abc")
    assert response.status_code == 400
    assert b"Content-Length" in response.content


@pytest.mark.parametrize(
    ("path", "header"),
    [("/hooks/mlflow/", "X-MLflow-Delivery-Id"), ("/api/v1/me/", "X-Request-ID")],
)
def test_a_nul_in_a_header_is_a_json_400(signed_in: Client, path: str, header: str) -> None:
    response = signed_in.post(
        path, "{}", content_type="application/json", headers={header: "a\x00b"}
    )
    api_error(response, 400, "nul_character")


def test_a_nul_in_a_header_of_a_page_is_a_400(signed_in: Client) -> None:
    response = signed_in.get("/", HTTP_X_REQUEST_ID="a\x00b")
    assert response.status_code == 400


@pytest.mark.parametrize("path", [*MACHINE_PATHS, "/api/v1/tokens/"])
def test_an_over_limit_body_is_a_json_413_before_it_is_read(
    signed_in: Client, settings, path: str
) -> None:
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    # The declared length alone decides: the 10 bytes sent are never read.
    response = signed_in.post(
        path, '{"a": "b"}', content_type="application/json", CONTENT_LENGTH="1001"
    )
    assert "larger than 1,000 bytes" in api_error(response, 413, "request_too_large")["detail"]


def test_an_over_limit_form_on_a_page_is_a_413(signed_in: Client, settings) -> None:
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    response = signed_in.post("/accounts/tokens/", {"name": "x" * 2000})
    assert response.status_code == 413
    assert b"larger than 1,000 bytes" in response.content


def test_a_body_within_the_limit_goes_through(signed_in: Client) -> None:
    assert signed_in.get("/api/v1/me/").status_code == 200
