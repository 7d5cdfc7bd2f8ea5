"""Shared fixtures, and the rule that CI may not skip tests that need real services.

Tests marked `postgres`, `worker` or `browser` need PostgreSQL, a Celery worker process, or
Chromium. Locally they skip when the service is missing; with MODELPORT_REQUIRE_REAL=1 (set by
.ci/run) a missing service fails them instead, and the run fails if none of a kind ran.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import uuid
from collections import Counter
from pathlib import Path

import pytest
from django.db import connection

REAL_MARKERS = ("postgres", "worker", "browser", "mlflow")
STRICT = os.environ.get("MODELPORT_REQUIRE_REAL") == "1"
CHROMIUM = "/usr/bin/chromium"

pytest_plugins = [
    "tests.fixtures.workers",
    "tests.fixtures.browser",
    "tests.fixtures.people",
    "tests.fixtures.mlflow",
    "tests.fixtures.flaky_proxy",
    "tests.fixtures.cluster",
    "tests.fixtures.redis_server",
]


# Tests that use these fixtures need the service even if nobody marked them.
MARKER_FOR_FIXTURE = {
    "mlflow_server": "mlflow",
    "celery_worker_process": "worker",
    "new_page": "browser",
}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        for fixture, marker in MARKER_FOR_FIXTURE.items():
            if fixture in getattr(item, "fixturenames", ()):
                item.add_marker(marker)


def pytest_configure(config: pytest.Config) -> None:
    from django.conf import settings

    # The SQLite test database lives under VAR_DIR; reading the settings makes no folders.
    Path(settings.VAR_DIR).mkdir(parents=True, exist_ok=True)


@pytest.fixture(scope="session", autouse=True)
def _private_task_queue():
    """Tasks the tests enqueue go to a queue of this session's own, purged at the end, so a
    `make run` worker on the same broker never runs them against its database."""
    from portal.celery import app

    queue = f"modelport-tests-{uuid.uuid4().hex[:10]}"
    previous, app.conf.task_default_queue = app.conf.task_default_queue, queue
    yield queue
    app.conf.task_default_queue = previous
    # A queue nobody declared has nothing to purge; any error here is harmless.
    with app.connection_for_write() as connection, contextlib.suppress(Exception):
        connection.default_channel.queue_purge(queue)  # type: ignore[attr-defined]  # kombu's stubs lack it


def skip_or_fail(reason: str) -> None:
    if STRICT:
        pytest.fail(f"{reason} (MODELPORT_REQUIRE_REAL=1: CI must run this test)")
    pytest.skip(reason)


@pytest.fixture(autouse=True)
def _real_dependency_gate(request: pytest.FixtureRequest) -> None:
    node = request.node
    if node.get_closest_marker("postgres") and connection.vendor != "postgresql":
        skip_or_fail("needs PostgreSQL: set DATABASE_URL=postgres://…")
    if node.get_closest_marker("browser") and not shutil.which(CHROMIUM):
        skip_or_fail(f"needs Chromium at {CHROMIUM}: apt-get install -y chromium")


_outcomes: dict[str, Counter[str]] = {marker: Counter() for marker in REAL_MARKERS}
_names: list[tuple[str, str, str]] = []


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):
    outcome = yield
    report = outcome.get_result()
    if report.when == "call" or (report.when == "setup" and report.outcome != "passed"):
        for marker in REAL_MARKERS:
            if item.get_closest_marker(marker):
                _outcomes[marker][report.outcome] += 1
                _names.append((marker, item.nodeid, report.outcome))


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:
    if not _names:
        return
    terminalreporter.section("tests that needed real services")
    for marker, nodeid, outcome in _names:
        terminalreporter.write_line(f"{outcome.upper():8} [{marker}] {nodeid}")


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if not STRICT or session.config.option.collectonly:
        return
    if session.config.getoption("file_or_dir") not in (None, [], ["tests"]):
        return  # a partial run (a single file) need not cover every kind
    missing = [marker for marker, counts in _outcomes.items() if counts["passed"] == 0]
    if missing:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
        print(f"\nMODELPORT_REQUIRE_REAL=1 but no passing test needed: {', '.join(missing)}")
