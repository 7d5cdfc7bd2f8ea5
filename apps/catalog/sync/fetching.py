"""Read from MLflow what a full, incremental or one-model sync needs, with no transaction open."""

from __future__ import annotations

from collections.abc import Iterator
from itertools import takewhile
from typing import Any

from apps.catalog.models import RegisteredModel, RegistrySyncState
from apps.catalog.registry import Registry, RegistryNotFound
from apps.catalog.sync.batching import rows_where_in
from apps.catalog.sync.snapshot import Snapshot

INCREMENTAL_MODEL_PAGE = 100
INCREMENTAL_VERSION_PAGE = 1000


def read_everything(registry: Registry) -> Snapshot:
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


def read_changes(registry: Registry, state: RegistrySyncState) -> Snapshot:
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
        for row in rows_where_in(
            RegisteredModel.objects.all(), "name", {v.name for v in versions}, "name"
        )
    }
    for name in sorted({version.name for version in versions} - known):
        try:
            models.append(registry.get_model(name))
        except RegistryNotFound:  # deleted since its version was listed; the full sync sees it
            continue
    return Snapshot(models=models, versions=versions)


def read_model(registry: Registry, name: str) -> Snapshot:
    """One model and all its versions; a model MLflow no longer has is listed as missing."""
    try:
        models = [registry.get_model(name)]
        missing: set[str] = set()
    except RegistryNotFound:
        models, missing = [], {name}
    versions = [] if missing else list(registry.iter_versions(model_name=name, page_size=1000))
    return Snapshot(
        models=models, versions=versions, complete_models={name}, missing_models=missing
    )
