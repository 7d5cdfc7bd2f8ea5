"""Where apps above the catalog plug in, without the catalog importing them.

- `alias_change_listeners`: called by a sync, inside its transaction, with the alias changes it
  found in MLflow (so a listener's audit event commits or rolls back with the sync).
- `model_page_sections` / `version_page_sections`: extra cards on the model and version pages.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.http import HttpRequest


@dataclass(frozen=True)
class AliasChange:
    model_id: int
    model_name: str
    alias: str
    old_version: int | None
    new_version: int | None


@dataclass(frozen=True)
class PageSection:
    """A card on a catalog page: the template is included with `context` merged in."""

    template: str
    context: dict[str, Any] = field(default_factory=dict)


AliasListener = Callable[[list[AliasChange]], None]
SectionProvider = Callable[[HttpRequest, Any, Any], PageSection | None]

alias_change_listeners: list[AliasListener] = []
model_page_sections: list[SectionProvider] = []
version_page_sections: list[SectionProvider] = []


def alias_changes_observed(changes: list[AliasChange]) -> None:
    for listener in alias_change_listeners:
        listener(changes)


def sections_for(
    providers: list[SectionProvider], request: HttpRequest, model: Any, version: Any = None
) -> list[PageSection]:
    sections = (provider(request, model, version) for provider in providers)
    return [section for section in sections if section is not None]
