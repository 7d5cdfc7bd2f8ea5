"""The durable hand-off to the workers, one rule for every enqueue (docs/architecture.md).

1. The row that records the work is the truth and carries its own "done" marker (a deploy
   request's state and heartbeat, an approval's `effect_done_at`, a webhook delivery's
   `applied_at`, a release's `alias_moved_at`, a notification's `sent_at`).
2. The enqueue runs after the commit and never fails the request that committed: a broker error
   is logged and counted (`modelport_enqueue_failures_total`), and the caller answers as usual.
3. Beat re-drives, idempotently, every row whose work is not done after a grace period; each
   re-drive is an audit event `handoff.redriven`, counted by kind in
   `modelport_redrives_total` (read from the audit trail, so every process reports the same).
The queue is only a hint: losing a message delays work by one re-drive period, never loses it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import structlog
from celery import Task
from django.db import transaction
from django.db.models import Count
from django.db.models.fields.json import KeyTextTransform
from kombu.exceptions import KombuError
from prometheus_client import Counter
from prometheus_client.core import CounterMetricFamily
from prometheus_client.registry import Collector

from apps.audit.models import AuditEvent
from apps.audit.services import record

log = structlog.get_logger(__name__)

REDRIVEN = "handoff.redriven"
# What a broker that is down or unreachable raises while a task is sent.
BROKER_ERRORS: tuple[type[BaseException], ...] = (KombuError, OSError)

ENQUEUE_FAILURES = Counter(
    "modelport_enqueue_failures",
    "Tasks the broker refused after the work was committed (beat re-drives them).",
    ["task"],
)


def enqueue_now(task: Task[Any, Any], *args: Any, countdown: float = 0) -> bool:
    """Send `task(*args)`; False (logged and counted) when the broker is away."""
    try:
        task.apply_async(args, countdown=countdown)
    except BROKER_ERRORS as exc:
        log.warning("enqueue_failed", task=task.name, args=list(args), error=str(exc))
        ENQUEUE_FAILURES.labels(task=task.name).inc()
        return False
    return True


def enqueue_after_commit(task: Task[Any, Any], *args: Any, countdown: float = 0) -> None:
    """Send `task(*args)` once the current transaction commits; a broker error fails nothing."""
    transaction.on_commit(lambda: enqueue_now(task, *args, countdown=countdown))


def record_redrive(kind: str, obj: Any, **data: Any) -> None:
    """Note that beat handed `obj`'s work to a worker again (call in the re-drive's transaction)."""
    record("beat", REDRIVEN, obj, kind=kind, **data)


class RedriveCollector(Collector):
    """`modelport_redrives_total{kind}`: re-drives so far, from the audit trail."""

    def describe(self) -> Iterator[CounterMetricFamily]:
        """The metric's name and labels without reading the database (at registration)."""
        yield self._family()

    def collect(self) -> Iterator[CounterMetricFamily]:
        family = self._family()
        try:
            rows = (
                AuditEvent.objects.filter(action=REDRIVEN)
                .annotate(kind=KeyTextTransform("kind", "data"))
                .values("kind")
                .annotate(count=Count("id"))
                .order_by("kind")
            )
            for row in rows:
                family.add_metric([row["kind"] or ""], row["count"])
        except Exception:  # a scrape must not fail because the database is away
            log.warning("redrive_metric_unavailable", exc_info=True)
        yield family

    @staticmethod
    def _family() -> CounterMetricFamily:
        return CounterMetricFamily(
            "modelport_redrives", "Rows whose work beat handed to a worker again.", labels=["kind"]
        )
