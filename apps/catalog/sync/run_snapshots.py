"""Read the metrics and params of versions' training runs, in batches after the sync."""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from apps.audit.services import record
from apps.catalog.models import ModelVersion
from apps.catalog.registry import Registry, RegistryUnavailable
from apps.catalog.sync.bookkeeping import record_outage

RUN_FETCH_LIMIT = 500


def registry_fetch_runs(
    *,
    registry: Registry | None = None,
    model_name: str | None = None,
    limit: int = RUN_FETCH_LIMIT,
    actor: str = "scheduler",
) -> int:
    """Read metrics and params of versions with a run but no snapshot yet; returns how many."""
    pending = ModelVersion.objects.filter(run_fetched_at__isnull=True, is_deleted=False).exclude(
        run_id=""
    )
    if model_name is not None:
        pending = pending.filter(model__name=model_name)
    rows = list(pending.order_by("id").values("id", "run_id")[:limit])
    if not rows:
        return 0
    registry = registry or Registry()
    try:
        runs = registry.fetch_runs([row["run_id"] for row in rows])
    except RegistryUnavailable as exc:
        record_outage(exc)
        raise
    now = timezone.now()
    updates = []
    for row in rows:
        run = runs.get(row["run_id"])
        updates.append(
            ModelVersion(
                id=row["id"],
                run_metrics=run.metrics if run else {},
                run_params=run.params if run else {},
                run_fetched_at=now,
            )
        )
    with transaction.atomic():
        ModelVersion.objects.bulk_update(
            updates, ["run_metrics", "run_params", "run_fetched_at"], batch_size=500
        )
        record(actor, "registry.runs_fetched", None, versions=len(updates), runs_found=len(runs))
    return len(updates)
