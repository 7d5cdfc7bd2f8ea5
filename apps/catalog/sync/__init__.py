"""Mirror the MLflow Model Registry into the catalog.

Three ways in, one way to write:
- `registry_sync(mode="full")` pages through every model and version; models and versions MLflow
  no longer has are marked deleted. Run by beat now and then, and by "sync now".
- `registry_sync(mode="incremental")` asks MLflow for what changed since the newest timestamp it
  has seen (MLflow's own clock), usually one small page each. Run by beat every minute.
- `registry_sync_model(name)` re-reads one model after a webhook said it changed.

All of them fetch first, with no transaction open, then compare with the mirror and write only
rows that differ, in one transaction with one audit event. Running any of them again on an
unchanged registry writes no catalog rows.

The package, by job: `mirror` (the ways in), `fetching` (reads from MLflow), `changes` (compare
and bulk-write each table), `events` (the registry events recorded for changes to objects already
mirrored, and their pruning), `writing` (the transaction and audit event), `bookkeeping` (the
lease and the sync-state row), `run_snapshots` (training-run metrics), `batching` (statement
sizes), `snapshot` (the data passed between them).
"""

from apps.catalog.sync.bookkeeping import SyncAlreadyRunningError
from apps.catalog.sync.events import registry_events_prune
from apps.catalog.sync.mirror import registry_sync, registry_sync_model
from apps.catalog.sync.run_snapshots import registry_fetch_runs
from apps.catalog.sync.snapshot import SyncMode

__all__ = [
    "SyncAlreadyRunningError",
    "SyncMode",
    "registry_events_prune",
    "registry_fetch_runs",
    "registry_sync",
    "registry_sync_model",
]
