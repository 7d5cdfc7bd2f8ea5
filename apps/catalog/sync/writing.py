"""Write a snapshot in one transaction with one audit event, then refresh planner statistics."""

from __future__ import annotations

import structlog
from django.db import IntegrityError, connection, transaction

from apps.audit.services import record
from apps.catalog.hooks import alias_changes_observed
from apps.catalog.models import RegistryEventSource
from apps.catalog.sync.changes import apply_snapshot
from apps.catalog.sync.snapshot import Snapshot, SyncCounts, SyncMode

# Named for the package, so sync log lines keep the logger name they had as one module.
log = structlog.get_logger(__package__)

ANALYZE_AFTER_CHANGES = 1000


def write_snapshot(snapshot: Snapshot, *, actor: str, mode: SyncMode) -> SyncCounts:
    """Apply a snapshot in one transaction; retried once if a concurrent writer inserted first."""
    # A one-model sync runs when a webhook said the model changed.
    source = RegistryEventSource.WEBHOOK if mode == SyncMode.MODEL else RegistryEventSource.SYNC
    for attempt in (1, 2):
        try:
            with transaction.atomic():
                counts, alias_changes = apply_snapshot(snapshot, source=source)
                if counts.changed:
                    record(actor, "registry.synced", None, mode=str(mode), **counts.as_dict())
                if alias_changes:
                    alias_changes_observed(alias_changes)
            if counts.changed >= ANALYZE_AFTER_CHANGES:
                _refresh_planner_statistics()
            return counts
        except IntegrityError:
            if attempt == 2:
                raise
            log.warning("registry_sync_conflict_retry", mode=str(mode))
    raise AssertionError("unreachable")


def _refresh_planner_statistics() -> None:
    """After a bulk load, bring PostgreSQL's statistics and visibility map up to date.

    Autovacuum gets there within a minute or so; until then the planner may scan and sort
    instead of using the name and trigram indexes, and counts cannot use index-only scans.
    VACUUM cannot run inside a transaction, so inside one (tests) this only analyzes.
    """
    if connection.vendor != "postgresql":
        return
    command = "ANALYZE" if connection.in_atomic_block else "VACUUM (ANALYZE)"
    tables = "catalog_registeredmodel, catalog_modelversion, catalog_modelalias"
    with connection.cursor() as cursor:
        cursor.execute(f"{command} {tables}")
