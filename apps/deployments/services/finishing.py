"""The end of a request, in a worker: success records the release and moves the alias; failure
opens the automatic rollback (or, for a failed rollback, raises a flag for a person)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.db import transaction
from django.db.models import ForeignKey
from django.utils import timezone

from apps.approvals import selectors as approval_selectors
from apps.catalog.services import model_flag_set
from apps.deployments import policy
from apps.deployments.models import DeployEvent, DeployRequest, Release
from apps.deployments.selectors import release_live
from apps.deployments.services.rollbacks import deploy_rollback_flag_raise, deploy_rollback_open
from apps.deployments.services.sweep import release_alias_move
from apps.deployments.services.transitions import (
    WORKER,
    deploy_events_record_kubernetes,
    deploy_request_transition,
)

State = DeployRequest.State


def _approvers(deploy: DeployRequest) -> list[str]:
    return approval_selectors.approvers_of(deploy.approval_id) if deploy.approval_id else []


# What finishing writes down about the model, version and requester (the audit row, the
# Release, the flag check); a look claimed the row without them.
_FINISH_READS = {
    "model": ("name", "flags"),
    "version": ("version", "source"),
    "requester": ("username",),
}


def _is_loaded(deploy: DeployRequest, name: str) -> bool:
    """Whether the foreign key `name` already holds its object (no query to read it)."""
    field = DeployRequest._meta.get_field(name)
    return isinstance(field, ForeignKey) and field.is_cached(deploy)


def _load_finish_reads(deploy: DeployRequest) -> None:
    missing = [name for name in _FINISH_READS if not _is_loaded(deploy, name)]
    if not missing:
        return
    columns = [f"{name}__{field}" for name in missing for field in _FINISH_READS[name]]
    loaded = (
        DeployRequest.objects.select_related(*missing)
        .only("id", *missing, *columns)
        .get(pk=deploy.pk)
    )
    for name in missing:
        setattr(deploy, name, getattr(loaded, name))


def deploy_request_finish(
    deploy: DeployRequest,
    token: int,
    reason: str,
    *,
    revision: str,
    kube_events: Sequence[dict[str, Any]] = (),
) -> None:
    """Mark it succeeded and record what is live now; then move the environment's alias."""
    now = timezone.now()
    release = None
    _load_finish_reads(deploy)
    flag = f"rollback-failed:{deploy.environment.slug}"
    with transaction.atomic():
        deploy_events_record_kubernetes(deploy.pk, kube_events)
        if not deploy_request_transition(
            deploy,
            to=State.SUCCEEDED,
            from_states=(State.APPLYING, State.ROLLING_OUT),
            actor=WORKER,
            message=f"Succeeded: {reason}",
            token=token,
            fields={
                "status_reason": reason[:2000],
                "cluster_revision": revision[:100],
                "cluster_unreachable_since": None,  # it answered
            },
            audit={"version": deploy.version.version, "revision": revision},
        ):
            return
        live = Release.objects.select_for_update().filter(
            environment_id=deploy.environment_id,
            model_id=deploy.model_id,
            live_until__isnull=True,
        )
        live.update(live_until=now, ended_by=deploy)
        if not deploy.removes_objects and deploy.replicas > 0:
            release = Release.objects.create(
                environment_id=deploy.environment_id,
                model_id=deploy.model_id,
                version=deploy.version,
                deploy_request=deploy,
                storage_uri=deploy.version.source,
                replicas=deploy.replicas,
                canary_traffic_percent=deploy.canary_traffic_percent,
                cluster_revision=revision[:100],
                requested_by=deploy.requester_label,
                approved_by=_approvers(deploy),
                live_from=now,
                alias=policy.rules_of(deploy.environment).mlflow_alias,
            )
        # A good deploy or rollback clears an earlier "rollback failed" warning here. Only a
        # rollback for this same pair raises it, and none can be running now.
        if flag in deploy.model.flags:
            model_flag_set(model_id=deploy.model_id, key=flag, message=None, actor=WORKER)
    if release is not None and release.alias:
        release_alias_move(release.pk)


def deploy_request_fail(
    deploy: DeployRequest,
    token: int,
    message: str,
    *,
    from_states: tuple[str, ...] = (State.APPLYING, State.ROLLING_OUT),
    kube_events: Sequence[dict[str, Any]] = (),
    fields: dict[str, Any] | None = None,
) -> None:
    """Mark it failed (with `fields` written too); a failed deploy rolls back to the live
    release (or cleans up) at once, a failed rollback flags the model for a person."""
    with transaction.atomic():
        deploy_events_record_kubernetes(deploy.pk, kube_events)
        if not deploy_request_transition(
            deploy,
            to=State.FAILED,
            from_states=from_states,
            actor=WORKER,
            message=f"Failed: {message}",
            token=token,
            bump_token=True,
            level=DeployEvent.Level.ERROR,
            fields={"error": message[:5000], "status_reason": message[:2000], **(fields or {})},
        ):
            return
        if deploy.kind == DeployRequest.Kind.DEPLOY:
            deploy_rollback_open(
                environment=deploy.environment,
                version=deploy.version,
                target=release_live(deploy.environment_id, deploy.model_id),
                rollback_of=deploy,
                requester=None,
                reason=f"Automatic rollback: #{deploy.pk} failed.",
            )
        else:
            deploy_rollback_flag_raise(deploy, message, actor=WORKER)
