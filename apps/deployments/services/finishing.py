"""The end of a request, in a worker: success records the release and moves the alias; failure
opens the automatic rollback (or, for a failed rollback, raises a flag for a person)."""

from __future__ import annotations

from collections.abc import Sequence

from django.db import transaction
from django.utils import timezone

from apps.approvals.models import Review
from apps.catalog.services import model_flag_set
from apps.deployments import policy
from apps.deployments.models import DeployEvent, DeployRequest, Release
from apps.deployments.selectors import release_live
from apps.deployments.services.rollbacks import open_rollback
from apps.deployments.services.sweep import release_alias_move
from apps.deployments.services.transitions import (
    WORKER,
    add_event,
    record_kube_events,
    transition,
)

State = DeployRequest.State


def _approvers(request: DeployRequest) -> list[str]:
    if request.approval_id is None:
        return []
    return sorted(
        Review.objects.filter(
            request_id=request.approval_id, dismissed_at__isnull=True, decision="approve"
        ).values_list("reviewer__username", flat=True)
    )


# What finishing writes down about the model, version and requester (the audit row, the
# Release, the flag check); a look claimed the row without them.
_FINISH_READS = {
    "model": ("name", "flags"),
    "version": ("version", "source"),
    "requester": ("username",),
}


def _load_finish_reads(request: DeployRequest) -> None:
    missing = [
        name for name in _FINISH_READS if not DeployRequest._meta.get_field(name).is_cached(request)
    ]
    if not missing:
        return
    columns = [f"{name}__{field}" for name in missing for field in _FINISH_READS[name]]
    loaded = (
        DeployRequest.objects.select_related(*missing)
        .only("id", *missing, *columns)
        .get(pk=request.pk)
    )
    for name in missing:
        setattr(request, name, getattr(loaded, name))


def finish_success(
    request: DeployRequest,
    token: int,
    reason: str,
    *,
    revision: str,
    kube_events: Sequence[dict] = (),
) -> None:
    """Mark it succeeded and record what is live now; then move the environment's alias."""
    now = timezone.now()
    release = None
    _load_finish_reads(request)
    flag = f"rollback-failed:{request.environment.slug}"
    with transaction.atomic():
        record_kube_events(request.pk, kube_events)
        if not transition(
            request,
            to=State.SUCCEEDED,
            from_states=(State.APPLYING, State.ROLLING_OUT),
            actor=WORKER,
            message=f"Succeeded: {reason}",
            token=token,
            fields={"status_reason": reason[:2000], "cluster_revision": revision[:100]},
            audit={"version": request.version.version, "revision": revision},
        ):
            return
        live = Release.objects.select_for_update().filter(
            environment_id=request.environment_id,
            model_id=request.model_id,
            live_until__isnull=True,
        )
        live.update(live_until=now, ended_by=request)
        if not request.removes_objects and request.replicas > 0:
            release = Release.objects.create(
                environment_id=request.environment_id,
                model_id=request.model_id,
                version=request.version,
                deploy_request=request,
                storage_uri=request.version.source,
                replicas=request.replicas,
                canary_traffic_percent=request.canary_traffic_percent,
                cluster_revision=revision[:100],
                requested_by=request.requester_label,
                approved_by=_approvers(request),
                live_from=now,
                alias=policy.rules_of(request.environment).mlflow_alias,
            )
        # A good deploy or rollback clears an earlier "rollback failed" warning here. Only a
        # rollback for this same pair raises it, and none can be running now.
        if flag in request.model.flags:
            model_flag_set(model_id=request.model_id, key=flag, message=None, actor=WORKER)
    if release is not None and release.alias:
        release_alias_move(release.pk)


def fail(
    request: DeployRequest,
    token: int,
    message: str,
    *,
    from_states: tuple[str, ...] = (State.APPLYING, State.ROLLING_OUT),
    kube_events: Sequence[dict] = (),
) -> None:
    """Mark it failed; a failed deploy rolls back to the live release (or cleans up) at once."""
    with transaction.atomic():
        record_kube_events(request.pk, kube_events)
        if not transition(
            request,
            to=State.FAILED,
            from_states=from_states,
            actor=WORKER,
            message=f"Failed: {message}",
            token=token,
            bump_token=True,
            level=DeployEvent.Level.ERROR,
            fields={"error": message[:5000], "status_reason": message[:2000]},
        ):
            return
        if request.kind == DeployRequest.Kind.DEPLOY:
            open_rollback(
                environment=request.environment,
                version=request.version,
                target=release_live(request.environment_id, request.model_id),
                rollback_of=request,
                requester=None,
                reason=f"Automatic rollback: #{request.pk} failed.",
            )
        else:
            add_event(
                request.pk,
                DeployEvent.Kind.NOTE,
                "This rollback failed: the environment needs a person to look at it.",
                level=DeployEvent.Level.ERROR,
            )
            model_flag_set(
                model_id=request.model_id,
                key=f"rollback-failed:{request.environment.slug}",
                message=f"Rollback #{request.pk} in {request.environment.name} failed: "
                f"{message[:300]}",
                actor=WORKER,
            )
