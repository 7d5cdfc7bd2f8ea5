"""The registry's history: the changes a sync saw on models the mirror already had.

MLflow keeps no history of alias moves, tag edits or deletions, so each sync records the ones
it notices as RegistryEvent rows, all in one bulk insert inside its transaction. A model's first
appearance and new versions are not events (a version is dated by its own `mlflow_created_at`),
so a first sync and a sync of an unchanged registry record none.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.utils import timezone

from apps.catalog.bulk_insert import insert_rows
from apps.catalog.hooks import AliasChange
from apps.catalog.models import (
    REGISTRY_EVENT_DETAIL_MAX,
    RegistryEvent,
    RegistryEventKind,
    RegistryEventSource,
)

RETENTION = timedelta(days=90)
KEYS_NAMED = 5  # a detail names at most this many tag keys, then says how many more
FIELDS = ("model_id", "at", "kind", "version", "alias", "detail", "data", "source")


def tag_change(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any] | None:
    """The keys whose value changed (added and removed included), with old and new values."""
    keys = sorted(key for key in old.keys() | new.keys() if old.get(key) != new.get(key))
    if not keys:
        return None
    return {
        "keys": keys,
        "old": {key: old[key] for key in keys if key in old},
        "new": {key: new[key] for key in keys if key in new},
    }


def _keys_phrase(keys: list[str]) -> str:
    named = ", ".join(keys[:KEYS_NAMED])
    return f"{named} and {len(keys) - KEYS_NAMED} more" if len(keys) > KEYS_NAMED else named


def _clip(text: str) -> str:
    limit = REGISTRY_EVENT_DETAIL_MAX
    return text if len(text) <= limit else text[: limit - 1] + "…"


@dataclass
class EventLog:
    """The events of one sync, written together by `write()`."""

    at: datetime
    source: RegistryEventSource
    rows: list[tuple[Any, ...]] = field(default_factory=list)

    def add(
        self,
        model_id: int,
        kind: RegistryEventKind,
        detail: str,
        *,
        version: int | None = None,
        alias: str = "",
        data: dict[str, Any] | None = None,
    ) -> None:
        self.rows.append(
            (
                model_id,
                self.at,
                kind.value,
                version,
                alias,
                _clip(detail),
                data or {},
                self.source.value,
            )
        )

    def tags_changed(
        self, model_id: int, old: dict[str, Any], new: dict[str, Any], *, version: int | None = None
    ) -> None:
        """Record a tag change of a model (or of one of its versions) if any key differs."""
        change = tag_change(old, new)
        if change is None:
            return
        keys = _keys_phrase(change["keys"])
        if version is None:
            self.add(
                model_id, RegistryEventKind.MODEL_TAGS_CHANGED, f"tags changed: {keys}", data=change
            )
        else:
            self.add(
                model_id,
                RegistryEventKind.VERSION_TAGS_CHANGED,
                f"v{version} tags changed: {keys}",
                version=version,
                data=change,
            )

    def aliases_changed(self, changes: Iterable[AliasChange]) -> None:
        for change in changes:
            old, new = change.old_version, change.new_version
            data = {"old_version": old, "new_version": new}
            if old is None:
                kind, detail = RegistryEventKind.ALIAS_SET, f"@{change.alias} set to v{new}"
            elif new is None:
                kind, detail = (
                    RegistryEventKind.ALIAS_REMOVED,
                    f"@{change.alias} removed (was v{old})",
                )
            else:
                kind, detail = (
                    RegistryEventKind.ALIAS_MOVED,
                    f"@{change.alias} moved v{old} → v{new}",
                )
            self.add(
                change.model_id,
                kind,
                detail,
                version=new if new is not None else old,
                alias=change.alias,
                data=data,
            )

    def write(self) -> int:
        """Insert every event in one bulk statement (none when nothing changed)."""
        return insert_rows(RegistryEvent, FIELDS, self.rows)


def registry_events_prune(*, now: datetime | None = None) -> int:
    """Delete events older than RETENTION; returns how many went."""
    cutoff = (now or timezone.now()) - RETENTION
    return RegistryEvent.objects.filter(at__lt=cutoff).delete()[0]
