"""The durable hand-off to the workers, one rule for every enqueue (docs/architecture.md).

1. The row that records the work is the truth and carries its own "done" marker (a deploy
   request's state and heartbeat, an approval's `effect_done_at`, a webhook delivery's
   `applied_at`, a release's `alias_moved_at`, a notification's `sent_at`).
2. The enqueue runs after the commit and never fails the request that committed: a broker error
   is logged and counted (`modelport_enqueue_failures_total`), and the caller answers as usual.
3. Beat re-drives, idempotently, every row whose work is not done after a grace period (and
   recorded less than REDRIVE_WINDOW ago); re-drives are counted by kind in the database and
   exported as `modelport_redrives_total` (so every process reports the same total).
The queue is only a hint: losing a message delays work by one re-drive period, never loses it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from typing import Any

import structlog
from celery import Task
from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone
from kombu.exceptions import KombuError
from prometheus_client import Counter
from prometheus_client.core import CounterMetricFamily
from prometheus_client.registry import Collector

from apps.jobs.models import RedriveCount

log = structlog.get_logger(__name__)

# Older work is not re-driven any more (webhook deliveries are deleted after a week anyway).
REDRIVE_WINDOW = timedelta(days=7)
# Rows of one kind handed over per re-drive; the rest wait one period.
REDRIVE_BATCH = 200
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


# kind -> a function that hands what is not done to a worker again and says how many it did.
Redriver = Callable[[datetime], int]
REDRIVERS: dict[str, Redriver] = {}


def register_redriver(kind: str, redriver: Redriver) -> None:
    """An app's re-drive for one kind of hand-off (registered in its AppConfig.ready())."""
    REDRIVERS[kind] = redriver


def grace_cutoff(now: datetime) -> datetime:
    """Work recorded before this and still not done is re-driven."""
    return now - timedelta(seconds=settings.HANDOFF_GRACE_SECONDS)


def window_start(now: datetime) -> datetime:
    """Work recorded before this is left alone (it needs a person, not another try)."""
    return now - REDRIVE_WINDOW


def redrive_all() -> dict[str, int]:
    """For beat: every registered kind's unfinished work, handed to a worker again.

    One re-driver that fails (its query, its database) is logged and counts 0; the others run.
    """
    now = timezone.now()
    counts: dict[str, int] = {}
    for kind, redriver in sorted(REDRIVERS.items()):
        try:
            counts[kind] = redriver(now)
        except Exception:
            log.exception("redrive_failed", kind=kind)
            counts[kind] = 0
    if any(counts.values()):
        log.warning("handoff_redriven", **counts)
    return counts


def redrive(kind: str, task: Task[Any, Any], ids: list[int]) -> int:
    """Hand each row of `ids` to `task` again once this commits, counted under `kind`."""
    with transaction.atomic():
        for pk in ids:
            enqueue_after_commit(task, pk)
        count_redrives(kind, len(ids))
    return len(ids)


def count_redrives(kind: str, number: int = 1) -> None:
    """Add to the counter of re-drives of `kind` (call in the re-drive's transaction)."""
    if number <= 0:
        return
    if RedriveCount.objects.filter(kind=kind).update(total=F("total") + number):
        return
    try:
        with transaction.atomic():
            RedriveCount.objects.create(kind=kind, total=number)
    except IntegrityError:  # another process created it first
        RedriveCount.objects.filter(kind=kind).update(total=F("total") + number)


class RedriveCollector(Collector):
    """`modelport_redrives_total{kind}`: re-drives so far, read from the database at scrape."""

    def describe(self) -> Iterator[CounterMetricFamily]:
        """The metric's name and labels without reading the database (at registration)."""
        yield self._family()

    def collect(self) -> Iterator[CounterMetricFamily]:
        family = self._family()
        try:
            for kind, total in RedriveCount.objects.order_by("kind").values_list("kind", "total"):
                family.add_metric([kind], total)
        except Exception:  # a scrape must not fail because the database is away
            log.warning("redrive_metric_unavailable", exc_info=True)
        yield family

    @staticmethod
    def _family() -> CounterMetricFamily:
        return CounterMetricFamily(
            "modelport_redrives", "Rows whose work beat handed to a worker again.", labels=["kind"]
        )
