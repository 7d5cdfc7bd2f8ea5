"""The one check of an API error: its status and the body shape every error shares."""

from __future__ import annotations

from typing import Any


def api_error(response: Any, status: int, code: str | None = None) -> dict[str, Any]:
    """Assert `response` is an API error with `status` (and `code`), in the common shape:
    {"detail": "<sentence>", "code": "<code>", "errors": {"<field>": ["…"]}}; return the body."""
    assert response.status_code == status, (response.status_code, response.content[:500])
    assert response["Content-Type"].startswith("application/json"), response["Content-Type"]
    body = response.json()
    assert {"detail", "code", "errors"} <= set(body), body
    assert isinstance(body["detail"], str) and body["detail"].strip(), body
    assert isinstance(body["code"], str) and body["code"], body
    assert isinstance(body["errors"], dict), body
    for field, messages in body["errors"].items():
        assert isinstance(field, str) and field, body
        assert messages and all(isinstance(message, str) for message in messages), body
    if code is not None:
        assert body["code"] == code, body
    return body
