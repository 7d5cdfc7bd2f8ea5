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
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from enum import StrEnum
from itertools import takewhile
from typing import Any

import structlog
from django.db import IntegrityError, connection, transaction
from django.db.models import Count, Max, Q, QuerySet
from django.utils import timezone

from apps.accounts.models import Team
from apps.audit.services import record
from apps.catalog.bulk_insert import insert_rows
from apps.catalog.hooks import AliasChange, alias_changes_observed
from apps.catalog.models import (
    OWNER_TAG,
    ModelAlias,
    ModelVersion,
    RegisteredModel,
    RegistrySyncState,
)
from apps.catalog.registry import (
    Registry,
    RegistryModel,
    RegistryNotFound,
    RegistryUnavailable,
    RegistryVersion,
    ms_to_datetime,
)

log = structlog.get_logger(__name__)

LEASE_SECONDS = 15 * 60
INCREMENTAL_MODEL_PAGE = 100
INCREMENTAL_VERSION_PAGE = 1000
RUN_FETCH_LIMIT = 500
BULK_BATCH = 2000
ANALYZE_AFTER_CHANGES = 1000

MODEL_FIELDS = (
    "description",
    "tags",
    "alias_versions",
    "owner_tag",
    "owner_team_id",
    "mlflow_created_at",
    "mlflow_updated_at",
    "is_deleted",
)
VERSION_FIELDS = (
    "run_id",
    "source",
    "status",
    "description",
    "tags",
    "created_by",
    "mlflow_created_at",
    "mlflow_updated_at",
    "is_deleted",
)


def _batches(values: Iterable[Any]) -> Iterator[list[Any]]:
    """At most BULK_BATCH values at a time: PostgreSQL takes at most 65,535 parameters in one
    statement, and the portal sends them apart from the SQL (see portal/env.py)."""
    items = list(values)
    for start in range(0, len(items), BULK_BATCH):
        yield items[start : start + BULK_BATCH]


def _rows_where_in(
    queryset: QuerySet, field: str, values: Iterable[Any], *columns: str
) -> Iterator[dict[str, Any]]:
    for batch in _batches(values):
        yield from queryset.filter(**{f"{field}__in": batch}).values(*columns)


class SyncMode(StrEnum):
    FULL = "full"
    INCREMENTAL = "incremental"
    MODEL = "model"


class SyncAlreadyRunningError(Exception):
    """Another full or incremental sync holds the lease."""


@dataclass
class SyncCounts:
    models_created: int = 0
    models_updated: int = 0
    models_deleted: int = 0
    versions_created: int = 0
    versions_updated: int = 0
    versions_deleted: int = 0
    aliases_changed: int = 0
    models_seen: int = 0
    versions_seen: int = 0

    @property
    def changed(self) -> int:
        return (
            self.models_created
            + self.models_updated
            + self.models_deleted
            + self.versions_created
            + self.versions_updated
            + self.versions_deleted
            + self.aliases_changed
        )

    def as_dict(self) -> dict[str, int]:
        return {key: value for key, value in self.__dict__.items()}


@dataclass
class Snapshot:
    """What was read from MLflow, and how much of the registry it speaks for."""

    models: list[RegistryModel]
    versions: list[RegistryVersion]
    # Names whose full version list is in `versions`: their versions not listed are gone.
    complete_models: set[str] = field(default_factory=set)
    # True when `models` is every model MLflow has: models not listed are gone.
    complete_registry: bool = False
    # Names MLflow answered "does not exist" for.
    missing_models: set[str] = field(default_factory=set)


# --- lease: two syncs never run at once -------------------------------------------------------
def sync_state() -> RegistrySyncState:
    state, _ = RegistrySyncState.objects.get_or_create(pk=RegistrySyncState.SINGLETON_ID)
    return state


def _claim_lease() -> str:
    """Claim the sync lease with one conditional UPDATE; an expired lease can be taken over."""
    sync_state()
    token = str(uuid.uuid4())
    now = timezone.now()
    claimed = (
        RegistrySyncState.objects.filter(pk=RegistrySyncState.SINGLETON_ID)
        .filter(Q(lease_until__isnull=True) | Q(lease_until__lt=now))
        .update(lease_token=token, lease_until=now + timedelta(seconds=LEASE_SECONDS))
    )
    if not claimed:
        raise SyncAlreadyRunningError("A registry sync is already running.")
    return token


def _release_lease(token: str) -> None:
    RegistrySyncState.objects.filter(pk=RegistrySyncState.SINGLETON_ID, lease_token=token).update(
        lease_token="", lease_until=None
    )


def _record_outage(exc: Exception) -> None:
    """Remember since when MLflow has been failing; the catalog pages show it."""
    now = timezone.now()
    RegistrySyncState.objects.filter(pk=RegistrySyncState.SINGLETON_ID).update(
        last_error=str(exc)[:2000], last_error_at=now
    )
    RegistrySyncState.objects.filter(
        pk=RegistrySyncState.SINGLETON_ID, unreachable_since__isnull=True
    ).update(unreachable_since=now)


# --- the three ways in --------------------------------------------------------------------------
def registry_sync(
    *, mode: SyncMode = SyncMode.FULL, registry: Registry | None = None, actor: str = "scheduler"
) -> SyncCounts:
    """Mirror the registry (full or incremental) under the lease; raises if one is running."""
    token = _claim_lease()
    started = time.monotonic()
    try:
        registry = registry or Registry()
        state = sync_state()
        try:
            if mode == SyncMode.FULL:
                snapshot = _read_everything(registry)
            else:
                snapshot = _read_changes(registry, state)
        except RegistryUnavailable as exc:
            _record_outage(exc)
            raise
        counts = _write_snapshot(snapshot, actor=actor, mode=mode)
        _finish(state, mode=mode, snapshot=snapshot, counts=counts, started=started)
        log.info("registry_synced", mode=str(mode), **counts.as_dict())
        return counts
    finally:
        _release_lease(token)


def registry_sync_model(
    *, name: str, registry: Registry | None = None, actor: str = "mlflow-webhook"
) -> SyncCounts:
    """Re-read one model and all its versions from MLflow and bring the mirror in line."""
    registry = registry or Registry()
    try:
        try:
            models = [registry.get_model(name)]
            missing: set[str] = set()
        except RegistryNotFound:
            models, missing = [], {name}
        versions = [] if missing else list(registry.iter_versions(model_name=name, page_size=1000))
    except RegistryUnavailable as exc:
        _record_outage(exc)
        raise
    snapshot = Snapshot(
        models=models, versions=versions, complete_models={name}, missing_models=missing
    )
    counts = _write_snapshot(snapshot, actor=actor, mode=SyncMode.MODEL)
    registry_fetch_runs(registry=registry, model_name=name, actor=actor)
    return counts


def _read_everything(registry: Registry) -> Snapshot:
    models = list(registry.iter_models())
    versions = list(registry.iter_versions())
    return Snapshot(
        models=models,
        versions=versions,
        complete_models={model.name for model in models},
        complete_registry=True,
    )


def _since(items: Iterator[Any], watermark_ms: int) -> list[Any]:
    """Items newer than or as new as the watermark; stops paging at the first older one."""
    return list(takewhile(lambda item: item.updated_ms >= watermark_ms, items))


def _read_changes(registry: Registry, state: RegistrySyncState) -> Snapshot:
    models = _since(
        registry.iter_models(page_size=INCREMENTAL_MODEL_PAGE, newest_first=True),
        state.models_watermark_ms,
    )
    versions = _since(
        registry.iter_versions(page_size=INCREMENTAL_VERSION_PAGE, newest_first=True),
        state.versions_watermark_ms,
    )
    # A changed version of a model the mirror has never seen: read that model too.
    known = {model.name for model in models} | {
        row["name"]
        for row in _rows_where_in(
            RegisteredModel.objects.all(), "name", {v.name for v in versions}, "name"
        )
    }
    for name in sorted({version.name for version in versions} - known):
        try:
            models.append(registry.get_model(name))
        except RegistryNotFound:  # deleted since its version was listed; the full sync sees it
            continue
    return Snapshot(models=models, versions=versions)


def _finish(
    state: RegistrySyncState,
    *,
    mode: SyncMode,
    snapshot: Snapshot,
    counts: SyncCounts,
    started: float,
) -> None:
    now = timezone.now()
    updates: dict[str, Any] = {
        "last_sync_at": now,
        "last_sync_mode": str(mode),
        "last_duration_ms": int((time.monotonic() - started) * 1000),
        "last_counts": counts.as_dict(),
        "unreachable_since": None,
        "last_error": "",
        "models_watermark_ms": max(
            [state.models_watermark_ms, *(m.updated_ms for m in snapshot.models)]
        ),
        "versions_watermark_ms": max(
            [state.versions_watermark_ms, *(v.updated_ms for v in snapshot.versions)]
        ),
    }
    if mode == SyncMode.FULL:
        updates["last_full_sync_at"] = now
    RegistrySyncState.objects.filter(pk=RegistrySyncState.SINGLETON_ID).update(**updates)


# --- writing: compare with the mirror, write only the differences -------------------------------
def _write_snapshot(snapshot: Snapshot, *, actor: str, mode: SyncMode) -> SyncCounts:
    """Apply a snapshot in one transaction; retried once if a concurrent writer inserted first."""
    for attempt in (1, 2):
        try:
            with transaction.atomic():
                counts, alias_changes = _apply(snapshot)
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


def _apply(snapshot: Snapshot) -> tuple[SyncCounts, list[AliasChange]]:
    counts = SyncCounts(models_seen=len(snapshot.models), versions_seen=len(snapshot.versions))
    now = timezone.now()
    # For models whose full version list is in hand, the list page's "latest" and "versions"
    # columns are computed here and written with the model row; others are counted afterwards.
    stats: dict[str, tuple[int, int]] = {name: (0, 0) for name in snapshot.complete_models}
    for version in snapshot.versions:
        if version.name in stats:
            latest, count = stats[version.name]
            stats[version.name] = (max(latest, version.version), count + 1)
    model_ids, created_ids = _apply_models(snapshot, stats, counts, now)
    touched = _apply_versions(snapshot, model_ids, counts, now)
    alias_changes = _apply_aliases(snapshot, model_ids, created_ids, counts)
    counted = {model_ids[name] for name in stats if name in model_ids}
    _refresh_version_counts(touched - counted)
    return counts, alias_changes


def _teams_by_slug() -> dict[str, int]:
    return dict(Team.objects.values_list("slug", "id"))


def _model_row(
    model: RegistryModel, teams: dict[str, int], stats: tuple[int, int] | None
) -> dict[str, Any]:
    owner_tag = model.tags.get(OWNER_TAG, "")
    row = {
        "description": model.description,
        "tags": model.tags,
        "alias_versions": model.aliases,
        "owner_tag": owner_tag,
        "owner_team_id": teams.get(owner_tag),
        "mlflow_created_at": ms_to_datetime(model.created_ms),
        "mlflow_updated_at": ms_to_datetime(model.updated_ms),
        "is_deleted": False,
    }
    if stats is not None:
        row["latest_version"], row["version_count"] = stats
    return row


def _apply_models(
    snapshot: Snapshot, stats: dict[str, tuple[int, int]], counts: SyncCounts, now: Any
) -> tuple[dict[str, int], set[int]]:
    """Upsert models; returns name → id for every model mentioned, and the ids just created."""
    teams = _teams_by_slug()
    columns = ("id", "name", "latest_version", "version_count", *MODEL_FIELDS)
    if snapshot.complete_registry:
        existing_rows = RegisteredModel.objects.values(*columns)
    else:
        names = {m.name for m in snapshot.models} | snapshot.missing_models
        names |= {v.name for v in snapshot.versions}
        existing_rows = _rows_where_in(RegisteredModel.objects.all(), "name", names, *columns)
    existing = {row["name"]: row for row in existing_rows}

    create_fields = ("name", *MODEL_FIELDS, "latest_version", "version_count")
    to_create: list[tuple[Any, ...]] = []
    to_update: list[RegisteredModel] = []
    update_fields = set(MODEL_FIELDS)
    for model in snapshot.models:
        wanted = _model_row(model, teams, stats.get(model.name))
        current = existing.get(model.name)
        if current is None:
            row = {"latest_version": 0, "version_count": 0, **wanted, "name": model.name}
            to_create.append(tuple(row[name] for name in create_fields))
        elif any(current[key] != value for key, value in wanted.items()):
            to_update.append(
                RegisteredModel(id=current["id"], name=model.name, **wanted, deleted_at=None)
            )
            update_fields.update(wanted)
    insert_rows(RegisteredModel, create_fields, to_create)
    RegisteredModel.objects.bulk_update(
        to_update, [*sorted(update_fields), "deleted_at"], batch_size=BULK_BATCH
    )
    counts.models_created, counts.models_updated = len(to_create), len(to_update)

    seen = {m.name for m in snapshot.models}
    gone = set(snapshot.missing_models)
    if snapshot.complete_registry:
        gone |= set(existing) - seen
    gone_ids = [
        row["id"] for name, row in existing.items() if name in gone and not row["is_deleted"]
    ]
    for batch in _batches(gone_ids):
        counts.models_deleted += RegisteredModel.objects.filter(id__in=batch).update(
            is_deleted=True, deleted_at=now, alias_versions={}
        )
        counts.versions_deleted += ModelVersion.objects.filter(
            model_id__in=batch, is_deleted=False
        ).update(is_deleted=True, deleted_at=now)
        counts.aliases_changed += ModelAlias.objects.filter(model_id__in=batch).delete()[0]

    ids = {name: row["id"] for name, row in existing.items()}
    created_names = [row[0] for row in to_create]
    for batch in _batches(created_names):
        ids.update(RegisteredModel.objects.filter(name__in=batch).values_list("name", "id"))
    return ids, {ids[name] for name in created_names}


def _version_row(version: RegistryVersion) -> dict[str, Any]:
    return {
        "run_id": version.run_id,
        "source": version.source,
        "status": version.status,
        "description": version.description,
        "tags": version.tags,
        "created_by": version.created_by,
        "mlflow_created_at": ms_to_datetime(version.created_ms),
        "mlflow_updated_at": ms_to_datetime(version.updated_ms),
        "is_deleted": False,
    }


def _apply_versions(
    snapshot: Snapshot, model_ids: dict[str, int], counts: SyncCounts, now: Any
) -> set[int]:
    """Upsert versions; returns the ids of models whose versions changed."""
    complete_ids = {model_ids[name] for name in snapshot.complete_models if name in model_ids}
    relevant_ids = complete_ids | {
        model_ids[v.name] for v in snapshot.versions if v.name in model_ids
    }
    columns = ("id", "model_id", "version", *VERSION_FIELDS)
    if snapshot.complete_registry:
        existing_rows = ModelVersion.objects.values(*columns)
    else:
        existing_rows = _rows_where_in(
            ModelVersion.objects.all(), "model_id", relevant_ids, *columns
        )
    existing = {(row["model_id"], row["version"]): row for row in existing_rows}

    to_create: list[tuple[Any, ...]] = []
    to_update: list[ModelVersion] = []
    seen: set[tuple[int, int]] = set()
    for version in snapshot.versions:
        model_id = model_ids.get(version.name)
        if model_id is None:  # a version whose model vanished between the two reads
            continue
        key = (model_id, version.version)
        seen.add(key)
        wanted = _version_row(version)
        current = existing.get(key)
        if current is None:
            # Nothing to fetch for a version without a run.
            run_fetched_at = None if version.run_id else now
            to_create.append(
                (
                    model_id,
                    version.version,
                    run_fetched_at,
                    {},
                    {},
                    *(wanted[f] for f in VERSION_FIELDS),
                )
            )
        elif any(current[k] != v for k, v in wanted.items()):
            row = ModelVersion(
                id=current["id"], model_id=model_id, version=version.version, **wanted
            )
            row.deleted_at = None
            to_update.append(row)
    insert_rows(
        ModelVersion,
        ("model_id", "version", "run_fetched_at", "run_metrics", "run_params", *VERSION_FIELDS),
        to_create,
    )
    ModelVersion.objects.bulk_update(
        to_update, [*VERSION_FIELDS, "deleted_at"], batch_size=BULK_BATCH
    )
    counts.versions_created += len(to_create)
    counts.versions_updated += len(to_update)

    gone_ids = [
        row["id"]
        for key, row in existing.items()
        if key[0] in complete_ids and key not in seen and not row["is_deleted"]
    ]
    for batch in _batches(gone_ids):
        counts.versions_deleted += ModelVersion.objects.filter(id__in=batch).update(
            is_deleted=True, deleted_at=now
        )
    touched = {row[0] for row in to_create} | {row.model_id for row in to_update}
    gone = set(gone_ids)
    touched |= {key[0] for key, row in existing.items() if row["id"] in gone}
    return touched


def _apply_aliases(
    snapshot: Snapshot, model_ids: dict[str, int], created_ids: set[int], counts: SyncCounts
) -> list[AliasChange]:
    """Aliases live on the registered model in MLflow, so every listed model is authoritative.

    Returns the changes seen on models the mirror already had (a model's first appearance is
    not news about its aliases).
    """
    wanted = {
        (model_ids[model.name], alias): version
        for model in snapshot.models
        for alias, version in model.aliases.items()
    }
    listed_ids = {model_ids[model.name] for model in snapshot.models}
    columns = ("id", "model_id", "alias", "version")
    if snapshot.complete_registry:
        existing_rows = ModelAlias.objects.values(*columns)
    else:
        existing_rows = _rows_where_in(ModelAlias.objects.all(), "model_id", listed_ids, *columns)
    existing = {(row["model_id"], row["alias"]): row for row in existing_rows}
    to_create = [
        (key[0], key[1], version) for key, version in wanted.items() if key not in existing
    ]
    to_update = [
        ModelAlias(id=existing[key]["id"], model_id=key[0], alias=key[1], version=version)
        for key, version in wanted.items()
        if key in existing and existing[key]["version"] != version
    ]
    gone = [
        row["id"] for key, row in existing.items() if key[0] in listed_ids and key not in wanted
    ]
    insert_rows(ModelAlias, ("model_id", "alias", "version"), to_create)
    ModelAlias.objects.bulk_update(to_update, ["version"], batch_size=BULK_BATCH)
    for batch in _batches(gone):
        ModelAlias.objects.filter(id__in=batch).delete()
    counts.aliases_changed += len(to_create) + len(to_update) + len(gone)
    names = {model_id: name for name, model_id in model_ids.items()}
    changes = [
        AliasChange(model_id, names.get(model_id, ""), alias, None, version)
        for model_id, alias, version in to_create
        if model_id not in created_ids
    ]
    changes += [
        AliasChange(
            row.model_id,
            names.get(row.model_id, ""),
            row.alias,
            existing[(row.model_id, row.alias)]["version"],
            row.version,
        )
        for row in to_update
    ]
    gone_ids = set(gone)
    changes += [
        AliasChange(key[0], names.get(key[0], ""), key[1], row["version"], None)
        for key, row in existing.items()
        if row["id"] in gone_ids
    ]
    return changes


def _refresh_version_counts(model_ids: Iterable[int]) -> None:
    """Keep the list page's "latest version" and "versions" columns true, writing only changes."""
    for chunk in _batches(model_ids):
        live = dict(
            (row["model_id"], (row["latest"] or 0, row["count"]))
            for row in ModelVersion.objects.filter(model_id__in=chunk, is_deleted=False)
            .values("model_id")
            .annotate(latest=Max("version"), count=Count("id"))
            .order_by()
        )
        changed = []
        for row in RegisteredModel.objects.filter(id__in=chunk).values(
            "id", "latest_version", "version_count"
        ):
            latest, count = live.get(row["id"], (0, 0))
            if (row["latest_version"], row["version_count"]) != (latest, count):
                changed.append(
                    RegisteredModel(id=row["id"], latest_version=latest, version_count=count)
                )
        RegisteredModel.objects.bulk_update(
            changed, ["latest_version", "version_count"], batch_size=BULK_BATCH
        )


# --- run snapshots: metrics and params of the versions' training runs --------------------------
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
        _record_outage(exc)
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
