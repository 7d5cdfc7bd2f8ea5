"""The model page's "Environments" card: what is live where, and each environment's history."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from apps.catalog import hooks
from apps.deployments import selectors
from apps.deployments.models import DeployRequest, Environment, Release
from apps.deployments.permissions import can_request_deploy

TIMELINE_LENGTH = 8


@dataclass
class EnvironmentHistory:
    environment: Environment
    live: Release | None = None
    active: DeployRequest | None = None
    history: list[Release] = field(default_factory=list)


def model_environments_section(request: Any, model: Any, version: Any) -> hooks.PageSection:
    """Every environment with the live release, any request in flight, and the last releases."""
    releases = selectors.releases_of_model(model)
    by_environment: dict[int, list[Release]] = defaultdict(list)
    for release in releases:
        by_environment[release.environment_id].append(release)
    active = {
        req.environment_id: req
        for req in DeployRequest.objects.filter(
            model=model, state__in=DeployRequest.ACTIVE_STATES
        ).select_related("version")
    }
    rows = []
    for environment in selectors.environments_all():
        history = by_environment.get(environment.pk, [])
        live = next((release for release in history if release.live_until is None), None)
        rows.append(
            EnvironmentHistory(
                environment=environment,
                live=live,
                active=active.get(environment.pk),
                history=history[:TIMELINE_LENGTH],
            )
        )
    return hooks.PageSection(
        "deployments/includes/model_environments.html",
        {
            "model": model,
            "rows": rows,
            "any_release": bool(releases),
            "can_deploy": can_request_deploy(request.user, model) and not model.is_deleted,
        },
    )


hooks.model_page_sections.append(model_environments_section)
