"""Errors a service raises that mean more than "invalid", and the API status each one means.

Services raise Django's `ValidationError` and `PermissionDenied`; when a refusal carries more
(which request is in the way, what blocks a deploy) or is not the caller's fault (a registry
that is down), they raise one of these. The API's exception handler (`api_errors.py`) reads
`status_code`, `code` and `payload()`, so no view converts errors itself.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError


class PayloadValidationError(ValidationError):
    """A refusal with a status of its own and extra keys for the API body."""

    status_code = 400
    default_code = "invalid"

    def __init__(self, message: str | list[str], *, code: str | None = None) -> None:
        super().__init__(message, code=code or self.default_code)

    def payload(self) -> dict[str, Any]:
        """Keys added to the API error body beside detail, code and errors."""
        return {}


class ConflictError(PayloadValidationError):
    """The change collides with something in progress (409)."""

    status_code = 409
    default_code = "conflict"


class UpstreamError(Exception):
    """A system the portal relies on refused the call (502); nothing was changed here."""

    status_code = 502
    default_code = "upstream_error"


class UpstreamUnavailableError(UpstreamError):
    """A system the portal relies on did not answer (503); nothing was changed here."""

    status_code = 503
    default_code = "upstream_unavailable"
