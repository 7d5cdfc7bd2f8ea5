"""Is what the portal thinks is live really live? Compare each Release with the cluster and MLflow.

For every live release (skipping pairs with a deploy in progress): read the object from the
cluster and compare its model URI and version label with the release; compare the environment's
MLflow alias (as last synced into the catalog) with the release's version. Differences are kept
on the release (shown on the matrix) and raised as a warning flag on the model (`drift:<env>`);
the flag clears itself once they agree again. Health (the rollout verdict of the live object)
is recorded at the same time.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import structlog
from django.utils import timezone

from apps.catalog.services import model_flag_set
from apps.deployments import planning
from apps.deployments.clusters import client_for
from apps.deployments.kube import manifests
from apps.deployments.kube.client import KubeClient, KubeError
from apps.deployments.kube.status import FAILED, SUCCEEDED, rollout_status
from apps.deployments.models import DeployRequest, Release

log = structlog.get_logger(__name__)
ACTOR = "drift-check"
VERSION_LABEL = f"{manifests.PREFIX}/version"


def flag_key(environment_slug: str) -> str:
    return f"drift:{environment_slug}"


def _model_uri(obj: dict[str, Any]) -> str | None:
    if obj.get("kind") == "InferenceService":
        model = ((obj.get("spec") or {}).get("predictor") or {}).get("model") or {}
        return model.get("storageUri")
    containers = (((obj.get("spec") or {}).get("template") or {}).get("spec") or {}).get(
        "containers"
    ) or []
    for container in containers:
        for variable in container.get("env") or []:
            if variable.get("name") == "MLSERVER_MODEL_URI":
                return variable.get("value")
    return None


def _look(client: KubeClient, release: Release) -> tuple[Release.Health, str, list[str]]:
    """(health, detail, differences) for one release on its cluster."""
    objects = planning.objects_of(release.deploy_request)
    main = objects[0]
    meta = main["metadata"]
    live = client.get_or_none(main["apiVersion"], main["kind"], meta["namespace"], meta["name"])
    label = f"{main['kind']}/{meta['name']}"
    if live is None:
        text = f"{label} is missing from namespace {meta['namespace']}."
        return Release.Health.MISSING, text, [text]
    differences = []
    uri = _model_uri(live)
    if uri != release.storage_uri:
        differences.append(f"{label} serves {uri or 'no model URI'}, not {release.storage_uri}.")
    version_label = ((live.get("metadata") or {}).get("labels") or {}).get(VERSION_LABEL)
    expected = manifests.label_value(str(release.version.version))
    if version_label != expected:
        differences.append(
            f"{label} is labelled version {version_label or '(none)'}, not {expected}."
        )
    watched = [live]
    if (
        main["kind"] == "InferenceService"
        and ((live.get("metadata") or {}).get("annotations") or {}).get(
            "serving.kserve.io/deploymentMode", manifests.STANDARD
        )
        == manifests.STANDARD
    ):
        predictor = client.get_or_none(
            "apps/v1", "Deployment", meta["namespace"], f"{meta['name']}-predictor"
        )
        watched += [predictor] if predictor else []
    verdict = rollout_status(watched, canary_percent=release.canary_traffic_percent)
    health = {SUCCEEDED: Release.Health.HEALTHY, FAILED: Release.Health.FAILING}.get(
        verdict.phase, Release.Health.PROGRESSING
    )
    return health, verdict.reason, differences


def drift_check() -> dict[str, int]:
    """Check every live release once; returns counts for the task's log."""
    now = timezone.now()
    releases = list(
        Release.objects.filter(live_until__isnull=True)
        .select_related("environment", "model", "version", "deploy_request")
        .order_by("environment_id", "model_id")
    )
    busy = set(
        DeployRequest.objects.filter(state__in=DeployRequest.ACTIVE_STATES).values_list(
            "environment_id", "model_id"
        )
    )
    by_environment: dict[int, list[Release]] = defaultdict(list)
    for release in releases:
        if (release.environment_id, release.model_id) not in busy:
            by_environment[release.environment_id].append(release)
    counts = {"checked": 0, "drifted": 0, "unreachable": 0}
    for group in by_environment.values():
        environment = group[0].environment
        try:
            client = client_for(environment)
        except KubeError as exc:
            client, problem = None, exc.message
        for release in group:
            differences: list[str] = []
            if client is None:
                health, detail = Release.Health.UNREACHABLE, problem
            else:
                try:
                    health, detail, differences = _look(client, release)
                except KubeError as exc:
                    health, detail = Release.Health.UNREACHABLE, exc.message
            if release.alias and release.alias_moved_at is not None:
                holder = release.model.alias_versions.get(release.alias)
                if holder != release.version.version:
                    where = f"v{holder}" if holder is not None else "nothing"
                    differences.append(
                        f"MLflow alias @{release.alias} points at {where}, "
                        f"not v{release.version.version}."
                    )
            counts["checked"] += 1
            counts["unreachable"] += health == Release.Health.UNREACHABLE
            counts["drifted"] += bool(differences)
            Release.objects.filter(pk=release.pk).update(
                health=health, health_detail=detail[:2000], drift=differences, checked_at=now
            )
            message = (
                f"Drift in {environment.name}: " + " ".join(differences) if differences else None
            )
            if health == Release.Health.UNREACHABLE and not differences:
                continue  # not knowing is no reason to clear (or raise) a warning
            key = flag_key(environment.slug)
            if release.model.flags.get(key) == (message[:1000] if message else None):
                continue  # already says so; spare the row lock
            model_flag_set(
                model_id=release.model_id,
                key=key,
                message=message[:1000] if message else None,
                actor=ACTOR,
            )
    if counts["drifted"]:
        log.warning("deploy_drift_found", **counts)
    return counts
