"""Going back: rollback requests (automatic after a failure, or a person's), abort, last good.

A rollback is a deploy request of its own kind, so every change to a cluster has a request, an
audit trail and events. Rollbacks restore exactly what ran before (`rollout undo`), and with
nothing earlier to go back to they remove the objects or scale them to zero. A rollback never
gives up on a cluster that does not answer (execution.py); a person may abort it, which ends it
failed and flags the model, since nothing then restores the environment.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, NoReturn

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone

from apps.accounts.models import User
from apps.approvals.rules import Rules
from apps.audit.services import record
from apps.catalog.models import ModelVersion
from apps.catalog.services import model_flag_set
from apps.deployments import planning, policy
from apps.deployments.models import (
    DeployEvent,
    DeployRequest,
    Environment,
    ProtectionRules,
    Release,
)
from apps.deployments.permissions import can_operate_deploy, can_roll_back_release
from apps.deployments.planning import DeployOptions, Plan
from apps.deployments.selectors import deploy_request_active, release_last_good, release_live
from apps.deployments.services.deploys import (
    ActiveRequestExistsError,
    check_version_deployable,
    insert_in_savepoint,
    open_approval,
)
from apps.deployments.services.transitions import (
    deploy_event_add,
    deploy_request_transition,
    enqueue_execute,
)


def deploy_rollback_open(
    *,
    environment: Environment,
    version: ModelVersion,
    target: Release | None,
    rollback_of: DeployRequest | None,
    requester: User | None,
    reason: str,
    rules: Rules | None = None,
    plan: Plan | None = None,
) -> DeployRequest:
    """Create a rollback request to `target` (or, with nothing to go back to, a clean-up).

    Call inside a transaction; enqueues it on commit unless `rules` send it to approval. A
    `plan` (the dry-run diff, made before the transaction) is kept for people to review.
    """
    protection = policy.rules_of(environment)
    now = timezone.now()
    removal = target is None
    scale_to_zero = removal and (
        protection.without_previous_release == ProtectionRules.WithoutPrevious.SCALE_TO_ZERO
    )
    fields = _rollback_options(environment, target, rollback_of, scale_to_zero=scale_to_zero)
    deploy = insert_in_savepoint(
        DeployRequest(
            environment=environment,
            model=version.model,
            version=target.version if target is not None else version,
            kind=DeployRequest.Kind.ROLLBACK,
            state=(
                DeployRequest.State.PENDING_APPROVAL
                if rules is not None
                else DeployRequest.State.QUEUED
            ),
            requester=requester,
            reason=reason[:2000],
            removes_objects=removal and not scale_to_zero,
            rollback_of=rollback_of,
            plan=plan.objects if plan is not None else [],
            plan_error=plan.error if plan is not None else "",
            created_at=now,
            queued_at=None if rules is not None else now,
            heartbeat_at=now,
            **fields,
        )
    )
    if target is not None and target.deploy_request.manifest:
        # Restore exactly what ran then (image and settings included), as `rollout undo` does.
        objects = planning.relabel(planning.objects_of(target.deploy_request), deploy.pk)
    else:
        objects = planning.render_deploy(deploy, scale_to_zero=scale_to_zero)
    deploy.manifest = planning.manifests.to_yaml(objects)
    DeployRequest.objects.filter(pk=deploy.pk).update(manifest=deploy.manifest)
    if target is not None:
        what = f"back to v{target.version.version} (live since {target.live_from:%Y-%m-%d %H:%M})"
    elif scale_to_zero:
        what = "to zero replicas: nothing was live here before"
    else:
        what = "by removing the objects: nothing was live here before"
    deploy_event_add(deploy.pk, DeployEvent.Kind.STATE, f"Rollback {what}. {reason}".strip())
    record(
        requester or "deployments",
        "deploy.rollback_requested",
        deploy,
        rollback_of=rollback_of.pk if rollback_of else None,
        target_release=target.pk if target else None,
        removes_objects=deploy.removes_objects,
        scale_to_zero=scale_to_zero,
        reason=reason[:500],
    )
    if rules is not None and requester is not None:
        open_approval(deploy, rules, requester)
    else:
        enqueue_execute(deploy.pk, deploy.token)
    return deploy


def _rollback_options(
    environment: Environment,
    target: Release | None,
    rollback_of: DeployRequest | None,
    *,
    scale_to_zero: bool,
) -> dict[str, Any]:
    """What a rollback runs with: the target's replicas and traffic, the resources it ran with
    (or the failed request's, or the environment's defaults); a clean-up serves no traffic."""
    source = target.deploy_request if target is not None else rollback_of
    options = DeployOptions.of_deploy(source) if source is not None else None
    options = options or DeployOptions.for_environment(environment)
    if target is not None:
        options = replace(
            options,
            replicas=target.replicas,
            canary_traffic_percent=target.canary_traffic_percent,
        )
    fields = options.as_fields()
    if target is None:
        fields["canary_traffic_percent"] = None
        if scale_to_zero:
            fields["replicas"] = 0
    return fields


def deploy_request_abort(
    *, actor: User, deploy: DeployRequest, reason: str = ""
) -> DeployRequest | None:
    """Stop a request a worker is carrying out (DeployRequest.abortable says when).

    A deploy rolling out ends rolled back and a rollback starts at once; that rollback is
    returned. A rollback (rolling out, or waiting for the cluster) ends failed with no further
    rollback, and the model's "rollback-failed" flag asks a person to look; None is returned.
    """
    if not can_operate_deploy(actor, deploy):
        raise PermissionDenied("Only the model's team, the requester or staff can abort this.")
    note = f"Aborted by {actor}" + (f": {reason.strip()}" if reason.strip() else ".")
    with transaction.atomic():
        if deploy.kind == DeployRequest.Kind.ROLLBACK:
            _rollback_abort(actor, deploy, note)
            return None
        done = deploy_request_transition(
            deploy,
            to=DeployRequest.State.ROLLED_BACK,
            from_states=DeployRequest.ABORTABLE_STATES,
            condition=DeployRequest.abortable_filter(),
            actor=actor,
            message=f"{note} Rolling back.",
            bump_token=True,
            level=DeployEvent.Level.WARNING,
            fields={"error": note},
        )
        if not done:
            _refuse_abort(deploy)
        return deploy_rollback_open(
            environment=deploy.environment,
            version=deploy.version,
            target=release_live(deploy.environment_id, deploy.model_id),
            rollback_of=deploy,
            requester=actor,
            reason=note,
        )


def _rollback_abort(actor: User, deploy: DeployRequest, note: str) -> None:
    """End a rollback failed, not cancelled: what it went back from may be half replaced or
    still live, so the environment is in no state anyone chose, and a person must look."""
    done = deploy_request_transition(
        deploy,
        to=DeployRequest.State.FAILED,
        from_states=(*DeployRequest.ABORTABLE_STATES, *DeployRequest.WAITING_ROLLBACK_STATES),
        condition=DeployRequest.abortable_filter(),
        actor=actor,
        message=f"{note} The rollback stops here; no other rollback starts.",
        bump_token=True,
        level=DeployEvent.Level.ERROR,
        fields={"error": note, "status_reason": note},
        audit={"aborted": True},
    )
    if not done:
        _refuse_abort(deploy)
    deploy_rollback_flag_raise(deploy, note, actor=actor)


def _refuse_abort(deploy: DeployRequest) -> NoReturn:
    deploy.refresh_from_db()
    if deploy.state == DeployRequest.State.APPLYING:
        if deploy.is_rollback:
            raise ValidationError(
                "This rollback is being applied this second; it can be aborted while it "
                "rolls out or while it waits for the cluster."
            )
        raise ValidationError("It is being applied this second; try again in a moment.")
    if deploy.is_active:
        raise ValidationError("Nothing was applied yet: cancel it instead.")
    raise ValidationError(f"This request already {deploy.get_state_display().lower()}.")


def deploy_rollback_flag_raise(deploy: DeployRequest, message: str, *, actor: User | str) -> None:
    """A rollback ended without restoring the environment: say so, and flag the model for a
    person (the flag clears when a later deploy or rollback of the pair succeeds)."""
    deploy_event_add(
        deploy.pk,
        DeployEvent.Kind.NOTE,
        "This rollback failed: the environment needs a person to look at it.",
        level=DeployEvent.Level.ERROR,
    )
    model_flag_set(
        model_id=deploy.model_id,
        key=f"rollback-failed:{deploy.environment.slug}",
        message=f"Rollback #{deploy.pk} in {deploy.environment.name} failed: {message[:300]}",
        actor=actor,
    )


def release_rollback(*, actor: User, release: Release, reason: str = "") -> DeployRequest:
    """“Roll back to last good”: one click, approval only where emergency rollback is off."""
    model = release.model
    if not can_roll_back_release(actor, model):
        raise PermissionDenied(
            f"Only {model.name}'s owning team, on-call or staff can roll it back."
        )
    if release.live_until is not None:
        raise ValidationError("This release is no longer live; roll back the live one.")
    target = release_last_good(release)
    if target is None:
        minutes = policy.rules_of(release.environment).rollback_min_live_minutes
        raise ValidationError(
            f"No earlier version of {model.name} stayed live in {release.environment.name} "
            f"for {minutes} min or more: there is no last good release to go back to."
        )
    check_version_deployable(target.version)
    protection = policy.rules_of(release.environment)
    rules = None if protection.allow_emergency_rollback else policy.approval_rules(protection)
    note = f"{actor} rolls back to last good v{target.version.version}" + (
        f": {reason.strip()}" if reason.strip() else "."
    )
    active = deploy_request_active(release.environment, model.pk)
    if active is not None:
        raise ActiveRequestExistsError(active, release.environment, model.name)
    # What going back changes, asked of the cluster before the transaction.
    plan = planning.plan(release.environment, planning.objects_of(target.deploy_request))
    with transaction.atomic():
        return deploy_rollback_open(
            environment=release.environment,
            version=target.version,
            target=target,
            rollback_of=release.deploy_request,
            requester=actor,
            reason=note,
            rules=rules,
            plan=plan,
        )
