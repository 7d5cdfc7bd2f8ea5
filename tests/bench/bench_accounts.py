"""Token-authenticated API reads and the audit log page at realistic sizes.

Figures: median and p95 latency through Django's test client (in process, no network), with the
query count per request, for 1,000 teams and 100,000 audit events.
"""

from __future__ import annotations

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from apps.accounts import services
from apps.accounts.models import Team
from apps.audit.models import AuditEvent
from tests.accounts.factories import UserFactory
from tests.bench.conftest import summary, timed

pytestmark = pytest.mark.django_db


def test_bench_api_and_audit_pages(bench_report) -> None:
    user = UserFactory(username="bench", is_staff=True)
    _, raw = services.api_token_create(user=user, name="bench", expires_in_days=1)
    Team.objects.bulk_create(Team(slug=f"team-{n:04d}", name=f"Team {n:04d}") for n in range(1000))
    AuditEvent.objects.bulk_create(
        AuditEvent(actor_label="scheduler", action=f"bench.event{n % 7}", data={"n": n})
        for n in range(100_000)
    )
    client = Client()
    headers = {"Authorization": f"Bearer {raw}"}

    def api_teams() -> None:
        assert client.get("/api/v1/teams/?page=7", headers=headers).status_code == 200

    bench_report.add("api_teams_page_1000_teams", summary(timed(api_teams, repeat=50)))
    with CaptureQueriesContext(connection) as queries:
        api_teams()
    bench_report.add("api_teams_queries", len(queries))

    client.force_login(user)

    def audit_page() -> None:
        assert client.get("/audit/?page=20").status_code == 200

    def audit_filtered() -> None:
        assert (
            client.get("/audit/?action=bench.event3", headers={"HX-Request": "true"}).status_code
            == 200
        )

    bench_report.add("audit_page_100k_events", summary(timed(audit_page, repeat=30)))
    bench_report.add(
        "audit_filtered_partial_100k_events", summary(timed(audit_filtered, repeat=30))
    )
    with CaptureQueriesContext(connection) as queries:
        audit_page()
    bench_report.add("audit_page_queries", len(queries))
    assert len(queries) <= 10
