"""Reads of the catalog for pages and the API; every list here is bounded by its caller's page."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime

from django.db.models import F, Model, Prefetch, Q, QuerySet, TextField
from django.db.models.fields.json import KeyTextTransform
from django.db.models.functions import Cast
from django.db.models.lookups import Exact

from apps.catalog.models import (
    ModelAlias,
    ModelVersion,
    RegisteredModel,
    RegistryEvent,
    RegistrySyncState,
)

MODEL_SORTS = {
    "name": ("name",),
    "-updated": ("-mlflow_updated_at", "name"),
    "-created": ("-mlflow_created_at", "name"),
    "-versions": ("-version_count", "name"),
}


def parse_tag_filter(text: str) -> tuple[str, str | None]:
    """`key=value` or just `key` (has the tag, any value)."""
    key, sep, value = text.partition("=")
    return key.strip(), (value.strip() if sep else None)


def _filter_by_tag[M: Model](queryset: QuerySet[M], text: str) -> QuerySet[M]:
    key, value = parse_tag_filter(text)
    if not key:
        return queryset
    if value is None:
        return queryset.filter(tags__has_key=key)
    # KeyTextTransform takes the key as one literal (a "__" inside it is not a lookup path);
    # the cast makes the comparison plain text on every database.
    tag_value = Cast(KeyTextTransform(key, "tags"), TextField())
    return queryset.filter(Exact(tag_value, value))


def models_filtered(
    *,
    search: str = "",
    team: str = "",
    tag: str = "",
    alias: str = "",
    include_deleted: bool = False,
    sort: str = "name",
) -> QuerySet[RegisteredModel]:
    """Registered models matching the catalog's filters, with their owner team joined."""
    models = RegisteredModel.objects.select_related("owner_team")
    if not include_deleted:
        models = models.filter(is_deleted=False)
    if search:
        models = models.filter(Q(name__icontains=search) | Q(description__icontains=search))
    if team == "none":
        models = models.filter(owner_team__isnull=True)
    elif team:
        models = models.filter(owner_team__slug=team)
    if tag:
        models = _filter_by_tag(models, tag)
    if alias:
        models = models.filter(aliases__alias=alias)
    return models.order_by(*MODEL_SORTS.get(sort, MODEL_SORTS["name"]))


def models_of_teams(team_ids: list[int]) -> QuerySet[RegisteredModel]:
    """Live models owned by any of these teams, most recently updated first."""
    return (
        RegisteredModel.objects.filter(owner_team_id__in=team_ids, is_deleted=False)
        .select_related("owner_team")
        .order_by("-mlflow_updated_at", "name")
    )


def model_for_page(pk: int) -> RegisteredModel | None:
    return (
        RegisteredModel.objects.select_related("owner_team", "card", "card__approved_by")
        .prefetch_related(Prefetch("aliases", queryset=ModelAlias.objects.order_by("alias")))
        .filter(pk=pk)
        .first()
    )


def versions_of(model: RegisteredModel, *, include_deleted: bool = False) -> QuerySet[ModelVersion]:
    versions = ModelVersion.objects.filter(model=model).order_by("-version")
    if not include_deleted:
        versions = versions.filter(is_deleted=False)
    return versions


def aliases_by_version(model: RegisteredModel) -> dict[int, list[str]]:
    """version number → its aliases, from the model's (prefetched) aliases."""
    mapping: dict[int, list[str]] = defaultdict(list)
    for alias in model.aliases.all():
        mapping[alias.version].append(alias.alias)
    return dict(mapping)


def version_of(model: RegisteredModel, number: int) -> ModelVersion | None:
    """A version of the model, deleted in MLflow or not, with its model."""
    return ModelVersion.objects.select_related("model").filter(model=model, version=number).first()


def live_version_of(model: RegisteredModel | int, number: int) -> ModelVersion | None:
    """A version MLflow still has (not deleted), with its model; None if there is none."""
    model_id = model if isinstance(model, int) else model.pk
    return (
        ModelVersion.objects.select_related("model")
        .filter(model_id=model_id, version=number, is_deleted=False)
        .first()
    )


def version_holding_alias(model_id: int, alias: str) -> ModelVersion | None:
    """The version an alias points at now, as last mirrored."""
    holder = ModelAlias.objects.filter(model_id=model_id, alias=alias).first()
    if holder is None:
        return None
    return ModelVersion.objects.filter(model_id=model_id, version=holder.version).first()


def model_live(pk: int) -> RegisteredModel | None:
    """A model MLflow still has, with its owner team."""
    return models_filtered().filter(pk=pk).first()


def model_by_name(name: str) -> RegisteredModel | None:
    return RegisteredModel.objects.filter(name=name).first()


def version_by_model_name(name: str, number: int) -> ModelVersion | None:
    """A version with its model, found by the model's registry name (as CI clients name it)."""
    return (
        ModelVersion.objects.select_related("model")
        .filter(model__name=name, version=number)
        .first()
    )


@dataclass(frozen=True)
class ComparisonRow:
    name: str
    values: list[object]
    differs: bool
    best_index: int | None


def compare_versions(
    versions: list[ModelVersion], attribute: str, *, lower_is_better: set[str] | None = None
) -> list[ComparisonRow]:
    """Side-by-side rows of run metrics or params; numeric metrics mark the best version."""
    lower_is_better = lower_is_better or set()
    names = sorted({name for v in versions for name in getattr(v, attribute)})
    rows = []
    for name in names:
        values = [getattr(v, attribute).get(name) for v in versions]
        present = [value for value in values if value is not None]
        differs = len({repr(value) for value in values}) > 1
        best_index = None
        numeric = [value for value in present if isinstance(value, int | float)]
        if attribute == "run_metrics" and differs and len(numeric) == len(present) > 1:
            pick = min if _is_loss(name, lower_is_better) else max
            best_index = values.index(pick(numeric))
        rows.append(ComparisonRow(name=name, values=values, differs=differs, best_index=best_index))
    return rows


LOSS_WORDS = ("loss", "error", "rmse", "mse", "mae", "latency", "logloss")


def _is_loss(metric: str, lower_is_better: set[str]) -> bool:
    return metric in lower_is_better or any(word in metric.lower() for word in LOSS_WORDS)


def metric_names_of(model: RegisteredModel) -> list[str]:
    names: set[str] = set()
    for metrics in versions_of(model).values_list("run_metrics", flat=True):
        names.update(metrics)
    return sorted(names)


def metric_series(model: RegisteredModel, metric: str) -> list[tuple[int, float]]:
    """(version, value) for every live version that logged `metric`, oldest first."""
    series = []
    for number, metrics in (
        versions_of(model).order_by("version").values_list("version", "run_metrics")
    ):
        value = metrics.get(metric)
        if isinstance(value, int | float):
            series.append((number, float(value)))
    return series


def registry_events_between(
    *, model_ids: Collection[int], start: datetime, end: datetime
) -> QuerySet[RegistryEvent]:
    """What the syncs saw change in MLflow on these models from `start` to `end` (both
    included): alias moves, tag changes, deletions. Newest first, with the model joined."""
    return (
        RegistryEvent.objects.filter(model_id__in=model_ids, at__range=(start, end))
        .select_related("model")
        .order_by("-at", "-id")
    )


def versions_registered_between(
    *, model_ids: Collection[int], start: datetime, end: datetime
) -> QuerySet[ModelVersion]:
    """Versions of these models registered in MLflow from `start` to `end` (both included, by
    MLflow's creation time) and not deleted since. Newest first, with the model joined."""
    return (
        ModelVersion.objects.filter(
            model_id__in=model_ids, mlflow_created_at__range=(start, end), is_deleted=False
        )
        .select_related("model")
        .order_by("-mlflow_created_at", "-id")
    )


def sync_state_or_none() -> RegistrySyncState | None:
    return RegistrySyncState.objects.filter(pk=RegistrySyncState.SINGLETON_ID).first()


def versions_filtered(
    *, name: str = "", team: str = "", tag: str = "", alias: str = "", include_deleted: bool = False
) -> QuerySet[ModelVersion]:
    """Versions across models for the API, with their model loaded."""
    versions = ModelVersion.objects.select_related("model", "model__owner_team")
    if not include_deleted:
        versions = versions.filter(is_deleted=False)
    if name:
        versions = versions.filter(model__name=name)
    if team:
        versions = versions.filter(model__owner_team__slug=team)
    if tag:
        versions = _filter_by_tag(versions, tag)
    if alias:
        # One filter() call: both conditions apply to the same alias row.
        versions = versions.filter(
            model__aliases__alias=alias, model__aliases__version=F("version")
        )
    return versions.order_by("model__name", "-version")
