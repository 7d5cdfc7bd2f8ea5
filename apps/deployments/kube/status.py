"""Is a rollout progressing, finished or failed? Decided from live objects, with a reason to read.

Pure functions on the API's JSON. Deployments follow `kubectl rollout status` exactly (the
verdict); events only add the likely cause to the text ("Back-off pulling image …"), since an image
pull error or crash loop is, to Kubernetes, just a rollout that stops making progress.
InferenceServices follow the KServe conditions, the revision bookkeeping (Knative mode) or the
predictor Deployment (Standard mode).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

PROGRESSING = "progressing"
SUCCEEDED = "succeeded"
FAILED = "failed"

REVISION_ANNOTATION = "deployment.kubernetes.io/revision"
MODE_ANNOTATION = "serving.kserve.io/deploymentMode"
# In Standard mode KServe copies the predictor Deployment's conditions into PredictorReady; only
# these reasons mean it gave up (MinimumReplicasUnavailable is normal while the first pods start).
STANDARD_TERMINAL_REASONS = {"ProgressDeadlineExceeded", "FailedCreate", "ReplicaSetCreateError"}

Obj = Mapping[str, Any]


@dataclass(frozen=True)
class RolloutStatus:
    """The verdict: `phase` is progressing, succeeded or failed; `reason` is for people."""

    phase: str
    reason: str
    code: str = ""

    @property
    def done(self) -> bool:
        return self.phase != PROGRESSING


def rollout_status(
    objects: Sequence[Obj],
    *,
    events: Sequence[Obj] = (),
    baseline_revision: str | None = None,
    canary_percent: int | None = None,
    revision: str | None = None,
) -> RolloutStatus:
    """The status of what was applied: its InferenceService, else its Deployment."""
    by_kind = {obj.get("kind"): obj for obj in objects}
    if "InferenceService" in by_kind:
        isvc = by_kind["InferenceService"]
        predictor = by_kind.get("Deployment")
        return inference_service_status(
            isvc,
            predictor_deployment=predictor,
            baseline_revision=baseline_revision,
            canary_percent=canary_percent,
            events=events,
        )
    if "Deployment" in by_kind:
        return deployment_status(by_kind["Deployment"], revision=revision, events=events)
    return RolloutStatus(FAILED, "Nothing to watch: neither an InferenceService nor a Deployment.")


def with_deadline(status: RolloutStatus, *, elapsed: float, deadline: float) -> RolloutStatus:
    """Fail a rollout still progressing after `deadline` seconds: Kubernetes reports, never acts."""
    if status.phase == PROGRESSING and elapsed > deadline:
        return RolloutStatus(
            FAILED,
            f"No success after {int(elapsed)} s (deadline {int(deadline)} s). "
            f"Last state: {status.reason}",
            "PortalDeadlineExceeded",
        )
    return status


def deployment_status(
    deployment: Obj, *, revision: str | None = None, events: Sequence[Obj] = ()
) -> RolloutStatus:
    """`kubectl rollout status deployment/<name>`, as a value instead of an exit code."""
    meta = deployment.get("metadata") or {}
    spec = deployment.get("spec") or {}
    status = deployment.get("status") or {}
    name = meta.get("name", "?")
    hint = _warning_hint(events, name)
    if revision is not None:
        current = (meta.get("annotations") or {}).get(REVISION_ANNOTATION, "")
        if current != revision:
            return RolloutStatus(
                FAILED,
                f"Desired revision ({revision}) is different from the running revision "
                f"({current or 'none'}).",
                "RevisionMismatch",
            )
    if meta.get("generation", 0) > status.get("observedGeneration", 0):
        return RolloutStatus(
            PROGRESSING, "Waiting for deployment spec update to be observed…", "Observing"
        )
    progressing = _condition(status, "Progressing")
    if progressing and progressing.get("reason") == "ProgressDeadlineExceeded":
        return RolloutStatus(
            FAILED,
            f"Deployment “{name}” exceeded its progress deadline"
            f"{_colon(_sentence(progressing.get('message')))}{hint}",
            "ProgressDeadlineExceeded",
        )
    replicas = spec.get("replicas", 1)
    updated = status.get("updatedReplicas", 0)
    total = status.get("replicas", 0)
    available = status.get("availableReplicas", 0)
    if updated < replicas:
        text = f"{updated} of {replicas} new replicas have been updated"
    elif total > updated:
        text = f"{total - updated} old replicas are pending termination"
    elif available < updated:
        text = f"{available} of {updated} updated replicas are available"
    else:
        return RolloutStatus(SUCCEEDED, f"Deployment “{name}” successfully rolled out.", "Complete")
    failure = _condition(status, "ReplicaFailure")
    if failure and failure.get("status") == "True":
        hint = f" ({failure.get('reason')}: {failure.get('message', '')}){hint}"
    return RolloutStatus(PROGRESSING, f"Waiting for rollout to finish: {text}{hint}", "Rolling")


def inference_service_status(
    isvc: Obj,
    *,
    predictor_deployment: Obj | None = None,
    baseline_revision: str | None = None,
    canary_percent: int | None = None,
    events: Sequence[Obj] = (),
) -> RolloutStatus:
    """KServe's view: failure conditions first, then the mode's own idea of finished.

    `baseline_revision` is the latestCreatedRevision before the apply (Knative mode): until a
    newer one exists the old, still-Ready revision says nothing about the new spec.
    """
    meta = isvc.get("metadata") or {}
    status = isvc.get("status") or {}
    name = meta.get("name", "?")
    mode = (meta.get("annotations") or {}).get(MODE_ANNOTATION) or status.get("deploymentMode", "")
    hint = _warning_hint(events, name)
    if not status.get("conditions"):
        return RolloutStatus(PROGRESSING, "Waiting for the KServe controller to report.", "Pending")

    model_status = status.get("modelStatus") or {}
    failure = model_status.get("lastFailureInfo") or {}
    if model_status.get("transitionStatus") in {"BlockedByFailedLoad", "InvalidSpec"}:
        return RolloutStatus(
            FAILED,
            f"The model failed to load ({model_status['transitionStatus']})"
            f"{_colon(failure.get('reason'))}{_colon(_sentence(failure.get('message')))}{hint}",
            failure.get("reason") or model_status["transitionStatus"],
        )

    failing_conditions = ("LatestDeploymentReady", "PredictorConfigurationReady", "PredictorReady")
    for kind in failing_conditions:
        condition = _condition(status, kind)
        if not condition or condition.get("status") != "False":
            continue
        if mode == "Standard" and condition.get("reason") not in STANDARD_TERMINAL_REASONS:
            continue
        return RolloutStatus(
            FAILED,
            f"{kind} is False: {condition.get('reason', '')}"
            f"{_colon(_sentence(condition.get('message')))}{hint}",
            condition.get("reason") or kind,
        )

    if mode == "Standard":
        return _standard_status(status, predictor_deployment, hint)
    return _knative_status(status, baseline_revision, canary_percent, hint)


def _standard_status(status: Obj, predictor: Obj | None, hint: str) -> RolloutStatus:
    if predictor is not None:
        verdict = deployment_status(predictor)
        if verdict.phase != SUCCEEDED:
            return RolloutStatus(verdict.phase, f"Predictor: {verdict.reason}{hint}", verdict.code)
    ready = _condition(status, "Ready") or {}
    if ready.get("status") == "True":
        return RolloutStatus(SUCCEEDED, "InferenceService is Ready.", "Ready")
    return RolloutStatus(
        PROGRESSING,
        f"Waiting for Ready{_colon(ready.get('reason'))}{_colon(ready.get('message'))}{hint}",
        "NotReady",
    )


def _knative_status(
    status: Obj, baseline: str | None, canary_percent: int | None, hint: str
) -> RolloutStatus:
    predictor = (status.get("components") or {}).get("predictor") or {}
    created = predictor.get("latestCreatedRevision")
    ready_revision = predictor.get("latestReadyRevision")
    if not created or (baseline is not None and created == baseline):
        return RolloutStatus(PROGRESSING, f"Waiting for a new revision{hint}", "NoNewRevision")
    if ready_revision != created:
        return RolloutStatus(
            PROGRESSING, f"Waiting for revision {created} to become ready{hint}", "RevisionNotReady"
        )
    expected = 100 if canary_percent is None else canary_percent
    latest_share = sum(
        entry.get("percent") or 0
        for entry in predictor.get("traffic") or []
        if entry.get("latestRevision") and entry.get("revisionName") == created
    )
    if latest_share != expected:
        return RolloutStatus(
            PROGRESSING,
            f"Revision {created} has {latest_share} % of traffic, waiting for {expected} %.",
            "TrafficShifting",
        )
    ready = _condition(status, "Ready") or {}
    if ready.get("status") != "True":
        return RolloutStatus(
            PROGRESSING, f"Waiting for Ready{_colon(ready.get('message'))}{hint}", "NotReady"
        )
    share = "" if expected == 100 else f" with {expected} % of traffic (canary)"
    return RolloutStatus(SUCCEEDED, f"Revision {created} is serving{share}.", "Ready")


def _condition(status: Obj, kind: str) -> Obj | None:
    for condition in status.get("conditions") or []:
        if condition.get("type") == kind:
            return condition
    return None


def _colon(text: object) -> str:
    return f": {text}" if text else ""


def _sentence(text: object) -> str:
    return str(text or "").rstrip(".")


def _warning_hint(events: Sequence[Obj], name: str) -> str:
    """The newest Warning about this object's pods (else the object), as the likely cause."""
    warnings = [
        event
        for event in events
        if event.get("type") == "Warning"
        and str((event.get("involvedObject") or {}).get("name", "")).startswith(name)
    ]
    from_pods = [e for e in warnings if (e.get("involvedObject") or {}).get("kind") == "Pod"]
    candidates = from_pods or warnings
    if not candidates:
        return ""
    latest = candidates[-1]
    return f" (last warning: {latest.get('reason', '')}: {latest.get('message', '')})"
