"""Watching one applied request on the cluster: what was there before, and how it is going now.

`snapshot` runs before the apply and keeps what the verdict later needs to tell the new rollout
from the old state (an InferenceService stays Ready from its previous version until KServe has
acted on the new spec). `observe` reads the live objects and returns the verdict of
`kube.status`, the cluster revision and the Kubernetes events about the objects.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from apps.deployments.kube import manifests
from apps.deployments.kube.client import KubeClient
from apps.deployments.kube.status import (
    MODE_ANNOTATION,
    PROGRESSING,
    REVISION_ANNOTATION,
    RolloutStatus,
    deployment_status,
    inference_service_status,
)

ISVC = ("serving.kserve.io/v1beta1", "InferenceService")


@dataclass(frozen=True)
class Observation:
    verdict: RolloutStatus
    revision: str = ""
    events: list[dict[str, Any]] = field(default_factory=list)


def _meta(obj: dict[str, Any] | None) -> dict[str, Any]:
    return (obj or {}).get("metadata") or {}


def _is_isvc(obj: dict[str, Any]) -> bool:
    return (obj.get("apiVersion"), obj.get("kind")) == ISVC


def _mode(obj: dict[str, Any]) -> str:
    return (_meta(obj).get("annotations") or {}).get(MODE_ANNOTATION, manifests.STANDARD)


def _predictor_name(obj: dict[str, Any]) -> str:
    return f"{_meta(obj)['name']}-predictor"


def _contains(live: Any, wanted: Any) -> bool:
    """Every value we set is there (the server may have added defaults around them)."""
    if isinstance(wanted, dict):
        return isinstance(live, dict) and all(
            _contains(live.get(key), value) for key, value in wanted.items()
        )
    if isinstance(wanted, list):
        return (
            isinstance(live, list)
            and len(live) == len(wanted)
            and all(_contains(a, b) for a, b in zip(live, wanted, strict=True))
        )
    return live == wanted


def target_of(obj: dict[str, Any]) -> dict[str, Any]:
    """The little a later look needs to find and judge the object (kept on the request)."""
    meta = _meta(obj)
    annotations = meta.get("annotations") or {}
    stub: dict[str, Any] = {
        "apiVersion": obj["apiVersion"],
        "kind": obj["kind"],
        "metadata": {"name": meta["name"], "namespace": meta["namespace"]},
    }
    if MODE_ANNOTATION in annotations:
        stub["metadata"]["annotations"] = {MODE_ANNOTATION: annotations[MODE_ANNOTATION]}
    return stub


def _revision_template(predictor: dict[str, Any]) -> dict[str, Any]:
    # Knative makes a revision from the predictor minus its traffic split.
    return {key: value for key, value in predictor.items() if key != "canaryTrafficPercent"}


def snapshot(client: KubeClient, objects: list[dict[str, Any]]) -> dict[str, Any]:
    """What the main object looks like before the apply."""
    main = objects[0]
    if not _is_isvc(main):
        # A Deployment's own generation / observedGeneration say whether it saw the new spec.
        return {}
    meta = _meta(main)
    live = client.get_or_none(main["apiVersion"], main["kind"], meta["namespace"], meta["name"])
    seen: dict[str, Any] = {"generation": _meta(live).get("generation", 0) if live else 0}
    if _mode(main) == manifests.KNATIVE:
        predictor = (((live or {}).get("status") or {}).get("components") or {}).get("predictor")
        seen["baseline_revision"] = (predictor or {}).get("latestCreatedRevision")
        live_predictor = ((live or {}).get("spec") or {}).get("predictor") or {}
        seen["same_template"] = live is not None and _contains(
            _revision_template(live_predictor), _revision_template(main["spec"]["predictor"])
        )
    else:
        deployment = client.get_or_none(
            "apps/v1", "Deployment", meta["namespace"], _predictor_name(main)
        )
        seen["predictor_generation"] = _meta(deployment).get("generation", 0) if deployment else 0
    return seen


# Events: the object's own (a cheap, server-side filtered list) while a rollout goes normally;
# the whole namespace (pods' warnings: image pulls, crash loops) once it is slow or has ended.
EVENTS_OWN = "own"
EVENTS_ALL = "all"


def _events_about(
    client: KubeClient, namespace: str, name: str, since: datetime | None, scope: str
) -> list[dict[str, Any]]:
    floor = (since - timedelta(seconds=2)).strftime("%Y-%m-%dT%H:%M:%SZ") if since else ""
    found = []
    listed = client.list_events(namespace, involved_name=name if scope == EVENTS_OWN else "")
    for event in listed:
        involved = str((event.get("involvedObject") or {}).get("name", ""))
        if involved != name and not involved.startswith(f"{name}-"):
            continue
        stamp = event.get("lastTimestamp") or event.get("eventTime") or ""
        if floor and stamp and stamp < floor:
            continue
        found.append(event)
    return found


def observe(
    client: KubeClient,
    objects: list[dict[str, Any]],
    seen: dict[str, Any],
    *,
    canary_percent: int | None,
    since: datetime | None,
    events: str | None,
) -> Observation:
    """The rollout's verdict now; `events` (own or all) also reads Kubernetes events, and a
    finished rollout always reads all of them (they explain a failure)."""
    main = objects[0]
    meta = _meta(main)
    namespace, name = meta["namespace"], meta["name"]
    live = client.get(main["apiVersion"], main["kind"], namespace, name)
    predictor: dict[str, Any] | None = None
    if _is_isvc(main) and _mode(main) == manifests.STANDARD:
        predictor = client.get_or_none("apps/v1", "Deployment", namespace, _predictor_name(main))

    def verdict(events: list[dict[str, Any]]) -> tuple[RolloutStatus, str]:
        if not _is_isvc(main):
            revision = (_meta(live).get("annotations") or {}).get(REVISION_ANNOTATION, "")
            return deployment_status(live, events=events), revision
        if _mode(main) == manifests.KNATIVE:
            status = inference_service_status(
                live,
                baseline_revision=None
                if seen.get("same_template")
                else seen.get("baseline_revision"),
                canary_percent=canary_percent,
                events=events,
            )
            components = ((live.get("status") or {}).get("components") or {}).get("predictor")
            return status, str((components or {}).get("latestCreatedRevision") or "")
        changed = seen.get("applied_generation", 0) > seen.get("generation", 0)
        if changed and (
            predictor is None
            or _meta(predictor).get("generation", 0) <= seen.get("predictor_generation", 0)
        ):
            return RolloutStatus(
                PROGRESSING, "Waiting for KServe to update the predictor.", "Pending"
            ), ""
        revision = (_meta(predictor).get("annotations") or {}).get(REVISION_ANNOTATION, "")
        status = inference_service_status(live, predictor_deployment=predictor, events=events)
        return status, revision

    status, revision = verdict([])
    found: list[dict[str, Any]] = []
    if events or status.done:
        scope = EVENTS_ALL if status.done else events or EVENTS_OWN
        found = _events_about(client, namespace, name, since, scope)
        status, revision = verdict(found)
    return Observation(status, revision, found)
