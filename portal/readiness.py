"""Checks behind /readyz: can this process reach what it needs to serve requests?"""

from __future__ import annotations

import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass

from django.conf import settings
from django.db import connection

CHECK_TIMEOUT_SECONDS = 2.0


@dataclass(frozen=True)
class CheckResult:
    ok: bool
    detail: str


def check_database() -> CheckResult:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception as exc:  # any driver error means "not ready"; the message says which
        return CheckResult(False, f"{type(exc).__name__}: {exc}".strip())
    return CheckResult(True, connection.vendor)


def check_broker() -> CheckResult:
    """Publish a `portal.ping` with a short expiry: proves the broker accepts messages."""
    from portal.celery import app, ping

    try:
        with app.connection_for_write(url=settings.CELERY_BROKER_URL) as conn:
            conn.ensure_connection(
                max_retries=1,
                interval_start=0,
                timeout=CHECK_TIMEOUT_SECONDS,  # type: ignore[arg-type]  # kombu takes float seconds; its stubs say int
            )
            ping.apply_async(
                connection=conn,  # type: ignore[call-arg]  # celery passes it to send_task; its stubs omit it
                expires=30,
                ignore_result=True,
                retry=False,
            )
    except Exception as exc:  # kombu raises transport-specific errors
        return CheckResult(False, f"{type(exc).__name__}: {exc}".strip())
    return CheckResult(True, settings.CELERY_BROKER_URL.split("://", 1)[0])


def check_mlflow() -> CheckResult:
    url = f"{settings.MLFLOW_TRACKING_URI}/health"
    try:
        with urllib.request.urlopen(url, timeout=CHECK_TIMEOUT_SECONDS) as response:  # noqa: S310  (http(s) only, validated in settings)
            if response.status != 200:
                return CheckResult(False, f"{url} answered {response.status}")
    except (urllib.error.URLError, OSError) as exc:
        return CheckResult(False, f"{url}: {getattr(exc, 'reason', exc)}")
    return CheckResult(True, settings.MLFLOW_TRACKING_URI)


def readiness_checks() -> dict[str, Callable[[], CheckResult]]:
    checks: dict[str, Callable[[], CheckResult]] = {
        "database": check_database,
        "broker": check_broker,
    }
    if settings.MLFLOW_TRACKING_URI:
        checks["mlflow"] = check_mlflow
    return checks
