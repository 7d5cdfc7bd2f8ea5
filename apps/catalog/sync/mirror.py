"""The ways in: a full or incremental sync under the lease, or one model after a webhook."""

from __future__ import annotations

import time

import structlog

from apps.catalog.registry import Registry, RegistryUnavailable
from apps.catalog.sync.bookkeeping import (
    claim_lease,
    record_finished,
    record_outage,
    release_lease,
    sync_state,
)
from apps.catalog.sync.fetching import read_changes, read_everything, read_model
from apps.catalog.sync.run_snapshots import registry_fetch_runs
from apps.catalog.sync.snapshot import SyncCounts, SyncMode
from apps.catalog.sync.writing import write_snapshot

# Named for the package, so sync log lines keep the logger name they had as one module.
log = structlog.get_logger(__package__)


def registry_sync(
    *, mode: SyncMode = SyncMode.FULL, registry: Registry | None = None, actor: str = "scheduler"
) -> SyncCounts:
    """Mirror the registry (full or incremental) under the lease; raises if one is running."""
    token = claim_lease()
    started = time.monotonic()
    try:
        registry = registry or Registry()
        state = sync_state()
        try:
            if mode == SyncMode.FULL:
                snapshot = read_everything(registry)
            else:
                snapshot = read_changes(registry, state)
        except RegistryUnavailable as exc:
            record_outage(exc)
            raise
        counts = write_snapshot(snapshot, actor=actor, mode=mode)
        record_finished(state, mode=mode, snapshot=snapshot, counts=counts, started=started)
        log.info("registry_synced", mode=str(mode), **counts.as_dict())
        return counts
    finally:
        release_lease(token)


def registry_sync_model(
    *, name: str, registry: Registry | None = None, actor: str = "mlflow-webhook"
) -> SyncCounts:
    """Re-read one model and all its versions from MLflow and bring the mirror in line."""
    registry = registry or Registry()
    try:
        snapshot = read_model(registry, name)
    except RegistryUnavailable as exc:
        record_outage(exc)
        raise
    counts = write_snapshot(snapshot, actor=actor, mode=SyncMode.MODEL)
    registry_fetch_runs(registry=registry, model_name=name, actor=actor)
    return counts
