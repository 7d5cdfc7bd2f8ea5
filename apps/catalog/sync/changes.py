"""Compare a snapshot with the mirrored models, versions and aliases; bulk-write what differs,
and record what changed on objects already mirrored as registry events."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.db.models import Count, Max
from django.utils import timezone

from apps.accounts.models import Team
from apps.catalog.bulk_insert import insert_rows
from apps.catalog.hooks import AliasChange
from apps.catalog.models import (
    OWNER_TAG,
    ModelAlias,
    ModelVersion,
    RegisteredModel,
    RegistryEventKind,
    RegistryEventSource,
)
from apps.catalog.registry import RegistryModel, RegistryVersion, ms_to_datetime
from apps.catalog.sync.batching import batches, bulk_update, rows_where_in
from apps.catalog.sync.events import EventLog
from apps.catalog.sync.snapshot import Snapshot, SyncCounts

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


def apply_snapshot(
    snapshot: Snapshot, *, source: RegistryEventSource = RegistryEventSource.SYNC
) -> tuple[SyncCounts, list[AliasChange]]:
    """Bring models, versions and aliases in line with the snapshot (inside the caller's
    transaction); returns the counts and the alias changes seen on models already mirrored.

    Changes to models and versions the mirror already had (aliases, tags, deletions) are
    recorded as registry events from `source`, in one bulk insert."""
    counts = SyncCounts(models_seen=len(snapshot.models), versions_seen=len(snapshot.versions))
    now = timezone.now()
    events = EventLog(at=now, source=source)
    # For models whose full version list is in hand, the list page's "latest" and "versions"
    # columns are computed here and written with the model row; others are counted afterwards.
    stats: dict[str, tuple[int, int]] = {name: (0, 0) for name in snapshot.complete_models}
    for version in snapshot.versions:
        if version.name in stats:
            latest, count = stats[version.name]
            stats[version.name] = (max(latest, version.version), count + 1)
    model_ids, created_ids = _apply_models(snapshot, stats, counts, now, events)
    touched = _apply_versions(snapshot, model_ids, counts, now, events)
    alias_changes = _apply_aliases(snapshot, model_ids, created_ids, counts)
    events.aliases_changed(alias_changes)
    counted = {model_ids[name] for name in stats if name in model_ids}
    _refresh_version_counts(touched - counted)
    counts.events_recorded = events.write()
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
    snapshot: Snapshot,
    stats: dict[str, tuple[int, int]],
    counts: SyncCounts,
    now: Any,
    events: EventLog,
) -> tuple[dict[str, int], set[int]]:
    """Upsert models; returns name → id for every model mentioned, and the ids just created."""
    teams = _teams_by_slug()
    columns = ("id", "name", "latest_version", "version_count", *MODEL_FIELDS)
    if snapshot.complete_registry:
        existing_rows = RegisteredModel.objects.values(*columns)
    else:
        names = {m.name for m in snapshot.models} | snapshot.missing_models
        names |= {v.name for v in snapshot.versions}
        existing_rows = rows_where_in(RegisteredModel.objects.all(), "name", names, *columns)
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
            events.tags_changed(current["id"], current["tags"], wanted["tags"])
    insert_rows(RegisteredModel, create_fields, to_create)
    bulk_update(RegisteredModel, to_update, [*sorted(update_fields), "deleted_at"])
    counts.models_created, counts.models_updated = len(to_create), len(to_update)

    seen = {m.name for m in snapshot.models}
    gone = set(snapshot.missing_models)
    if snapshot.complete_registry:
        gone |= set(existing) - seen
    gone_ids = [
        row["id"] for name, row in existing.items() if name in gone and not row["is_deleted"]
    ]
    for model_id in gone_ids:  # its versions and aliases go with it: one event says so
        events.add(model_id, RegistryEventKind.MODEL_DELETED, "model deleted")
    for batch in batches(gone_ids):
        counts.models_deleted += RegisteredModel.objects.filter(id__in=batch).update(
            is_deleted=True, deleted_at=now, alias_versions={}
        )
        counts.versions_deleted += ModelVersion.objects.filter(
            model_id__in=batch, is_deleted=False
        ).update(is_deleted=True, deleted_at=now)
        counts.aliases_changed += ModelAlias.objects.filter(model_id__in=batch).delete()[0]

    ids = {name: row["id"] for name, row in existing.items()}
    created_names = [row[0] for row in to_create]
    for batch in batches(created_names):
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
    snapshot: Snapshot, model_ids: dict[str, int], counts: SyncCounts, now: Any, events: EventLog
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
        existing_rows = rows_where_in(
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
            events.tags_changed(model_id, current["tags"], wanted["tags"], version=version.version)
    insert_rows(
        ModelVersion,
        ("model_id", "version", "run_fetched_at", "run_metrics", "run_params", *VERSION_FIELDS),
        to_create,
    )
    bulk_update(ModelVersion, to_update, [*VERSION_FIELDS, "deleted_at"])
    counts.versions_created += len(to_create)
    counts.versions_updated += len(to_update)

    gone_keys = [
        key
        for key, row in existing.items()
        if key[0] in complete_ids and key not in seen and not row["is_deleted"]
    ]
    gone_ids = [existing[key]["id"] for key in gone_keys]
    for model_id, number in gone_keys:
        events.add(
            model_id, RegistryEventKind.VERSION_DELETED, f"v{number} deleted", version=number
        )
    for batch in batches(gone_ids):
        counts.versions_deleted += ModelVersion.objects.filter(id__in=batch).update(
            is_deleted=True, deleted_at=now
        )
    touched = {row[0] for row in to_create} | {row.model_id for row in to_update}
    touched |= {model_id for model_id, _ in gone_keys}
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
        existing_rows = rows_where_in(ModelAlias.objects.all(), "model_id", listed_ids, *columns)
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
    bulk_update(ModelAlias, to_update, ["version"])
    for batch in batches(gone):
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
    for chunk in batches(model_ids):
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
        bulk_update(RegisteredModel, changed, ["latest_version", "version_count"])
