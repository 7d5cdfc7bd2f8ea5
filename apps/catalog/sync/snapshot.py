"""What a sync read from MLflow (Snapshot), how it was asked for (SyncMode), what it changed."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from apps.catalog.registry import RegistryModel, RegistryVersion


class SyncMode(StrEnum):
    FULL = "full"
    INCREMENTAL = "incremental"
    MODEL = "model"


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
    # Registry events recorded (aliases, tags, deletions on objects already mirrored): a
    # consequence of the changes above, so not counted again in `changed`.
    events_recorded: int = 0

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
