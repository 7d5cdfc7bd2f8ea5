"""The verbs people use on deploys: request, preview, revise, cancel, abort, roll back.

Each checks permission and policy first, talks to the cluster (the dry-run diff) outside any
transaction, then writes in one short transaction with its audit event, and enqueues work with
`transaction.on_commit`. "One active request per (environment, model)" is a partial unique
index, so two people racing get one request and one clear refusal naming it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from apps.accounts.models import User
from apps.approvals import services as approvals
from apps.approvals.models import ApprovalRequest
from apps.approvals.rules import Rules
from apps.audit.services import record
from apps.catalog.models import ModelVersion
from apps.deployments import planning, policy
from apps.deployments.models import DeployEvent, DeployRequest, Environment, Release
from apps.deployments.permissions import (
    can_bypass_deploy_policy,
    can_cancel_deploy,
    can_operate_deploy,
    can_request_deploy,
)
from apps.deployments.planning import DeployOptions, Plan
from apps.deployments.transitions import add_event, enqueue_execute, transition

APPROVAL_KIND = "deploy"


class ActiveRequestExistsError(ValidationError):
    """Another request for this (environment, model) is still active; `active` is it."""

    def __init__(self, active: DeployRequest | None, environment: Environment, model_name: str):
        self.active = active
        if active is None:
            text = f"{model_name} already has an active request in {environment.name}."
        else:
            text = (
                f"{model_name} already has an active request in {environment.name}: "
                f"#{active.pk} ({active.get_state_display().lower()}, v{active.version.version}"
                f", by {active.requester_label}). Wait for it to finish, or cancel it."
            )
        super().__init__(text, code="active_request")


class PolicyBlockedError(ValidationError):
    """A freeze, a deny window or the promotion order stops this deploy now."""

    def __init__(self, blockers: list[policy.Blocker]):
        self.blockers = blockers
        super().__init__([blocker.message for blocker in blockers], code="blocked")


def active_request(environment: Environment, model_id: int) -> DeployRequest | None:
    return (
        DeployRequest.objects.filter(
            environment=environment, model_id=model_id, state__in=DeployRequest.ACTIVE_STATES
        )
        .select_related("version", "requester")
        .first()
    )


@dataclass
class Preview:
    """What a request would do, shown before it is filed: diff, rules, and what blocks it."""

    objects: list[dict]
    plan: Plan
    rules: list[str]
    blockers: list[policy.Blocker] = field(default_factory=list)
    active: DeployRequest | None = None
    manifest: str = ""


def _check_version(version: ModelVersion) -> None:
    if version.model.is_deleted:
        raise ValidationError(f"{version.model.name} has been deleted in MLflow.")
    if version.is_deleted:
        raise ValidationError(f"{version.model.name} v{version.version} was deleted in MLflow.")
    if not version.source:
        raise ValidationError(
            f"{version.model.name} v{version.version} has no artifact location to serve."
        )


def deploy_request_preview(
    *, actor: User, environment: Environment, version: ModelVersion, options: DeployOptions
) -> Preview:
    """Render, dry-run against the live objects, and say which rules and blockers apply."""
    if not can_request_deploy(actor, version.model):
        raise PermissionDenied(f"Only {version.model.name}'s owning team or staff can deploy it.")
    _check_version(version)
    planning.check_options(environment, options)
    objects = planning.render(environment, version, options)
    now = timezone.now()
    return Preview(
        objects=objects,
        plan=planning.plan(environment, objects),
        rules=policy.describe_environment(environment, now=now),
        blockers=policy.blockers(environment, version, now=now),
        active=active_request(environment, version.model_id),
        manifest=planning.manifests.to_yaml(objects),
    )


ONE_ACTIVE = "deploy_one_active_per_environment_model"


def _has_active_request(environment: Environment, model_id: int) -> bool:
    return DeployRequest.objects.filter(
        environment=environment, model_id=model_id, state__in=DeployRequest.ACTIVE_STATES
    ).exists()


@contextmanager
def _one_active_request(request: DeployRequest) -> Iterator[None]:
    """Turn a breach of "one active request per (environment, model)" in the block into
    ActiveRequestExistsError naming the active one; other integrity errors pass through."""
    try:
        yield
    except IntegrityError as exc:
        diag = getattr(exc.__cause__, "diag", None)
        constraint = getattr(diag, "constraint_name", None)
        # SQLite names the table and columns, not the constraint.
        lost = (
            constraint == ONE_ACTIVE
            if constraint
            else f"{DeployRequest._meta.db_table}." in str(exc)
        )
        if not lost:
            raise
        active = active_request(request.environment, request.model_id)
        raise ActiveRequestExistsError(active, request.environment, request.model.name) from None


def _insert(request: DeployRequest) -> DeployRequest:
    """Save a new request inside a caller's transaction (a savepoint keeps that one usable)."""
    with _one_active_request(request), transaction.atomic():
        request.save(force_insert=True)
    return request


def _open_approval(request: DeployRequest, rules: Rules, requester: User) -> None:
    verb = "Roll back" if request.kind == DeployRequest.Kind.ROLLBACK else "Deploy"
    request.approval = approvals.approval_request_open(
        kind=APPROVAL_KIND,
        subject=request,
        revision=request.revision,
        title=f"{verb} {request.model.name} v{request.version.version} to {request.environment}",
        requester=requester,
        rules=rules,
    )
    DeployRequest.objects.filter(pk=request.pk).update(approval=request.approval)


def deploy_request_create(
    *,
    actor: User,
    environment: Environment,
    version: ModelVersion,
    options: DeployOptions,
    reason: str = "",
    bypass_reason: str = "",
) -> DeployRequest:
    """File a deploy: straight to the queue, or to approval when the environment is protected."""
    model = version.model
    if not can_request_deploy(actor, model):
        raise PermissionDenied(f"Only {model.name}'s owning team or staff can deploy it.")
    _check_version(version)
    planning.check_options(environment, options)
    now = timezone.now()
    found = policy.blockers(environment, version, now=now)
    bypassed: list[str] = []
    if found:
        if not bypass_reason.strip():
            raise PolicyBlockedError(found)
        if not can_bypass_deploy_policy(actor):
            raise PermissionDenied("Only staff can bypass freezes, windows and promotion order.")
        bypassed = [blocker.message for blocker in found]
    elif bypass_reason.strip():
        raise ValidationError({"bypass_reason": "Nothing blocks this deploy; leave it empty."})
    if _has_active_request(environment, model.pk):
        raise ActiveRequestExistsError(
            active_request(environment, model.pk), environment, model.name
        )
    # The dry-run diff asks the cluster: outside any transaction or lock.
    plan = planning.plan(environment, planning.render(environment, version, options))
    rules = policy.approval_rules(policy.rules_of(environment))
    request = DeployRequest(
        environment=environment,
        model=model,
        version=version,
        kind=DeployRequest.Kind.DEPLOY,
        state=(
            DeployRequest.State.PENDING_APPROVAL
            if rules is not None
            else DeployRequest.State.QUEUED
        ),
        requester=actor,
        reason=reason.strip()[:2000],
        plan=plan.objects,
        plan_error=plan.error,
        bypassed=bypassed,
        bypass_reason=bypass_reason.strip()[:2000] if bypassed else "",
        created_at=now,
        queued_at=None if rules is not None else now,
        heartbeat_at=now,
        **options.as_fields(),
    )
    audit = {
        "environment": environment.slug,
        "model": model.name,
        "version": version.version,
        "options": options.as_fields(),
        "protected": rules is not None,
    }
    if bypassed:
        audit.update(bypassed=bypassed, bypass_reason=request.bypass_reason)
    # The insert opens the transaction, so a lost race needs no savepoint: all of it rolls back.
    with _one_active_request(request), transaction.atomic():
        request.save(force_insert=True)
        _file(actor, request, rules, audit)
    return request


def _file(actor: User, request: DeployRequest, rules: Rules | None, audit: dict) -> None:
    """What follows a new request's insert: its manifest, first events, audit row, next step."""
    request.manifest = planning.manifests.to_yaml(planning.render_request(request))
    DeployRequest.objects.filter(pk=request.pk).update(manifest=request.manifest)
    waiting = "waits for approval" if rules is not None else "is queued"
    add_event(request.pk, DeployEvent.Kind.STATE, f"Requested by {actor}; {waiting}.")
    if request.bypassed:
        add_event(
            request.pk,
            DeployEvent.Kind.NOTE,
            f"{actor} bypassed: {' '.join(request.bypassed)} Reason: {request.bypass_reason}",
            level=DeployEvent.Level.WARNING,
        )
    record(actor, "deploy.requested", request, **audit)
    if rules is not None:
        _open_approval(request, rules, actor)
    else:
        enqueue_execute(request.pk, request.token)


def deploy_request_revise(
    *, actor: User, request: DeployRequest, version: ModelVersion, options: DeployOptions
) -> DeployRequest:
    """Change what a waiting request deploys; reviews given so far are dismissed."""
    if not can_cancel_deploy(actor, request):
        raise PermissionDenied("Only the requester or staff can change this request.")
    if version.model_id != request.model_id:
        raise ValidationError({"version": "Choose a version of the same model."})
    _check_version(version)
    planning.check_options(request.environment, options)
    found = policy.blockers(
        request.environment,
        version,
        now=timezone.now(),
        rollback=request.kind == DeployRequest.Kind.ROLLBACK,
    )
    if found and not request.bypassed:
        raise PolicyBlockedError(found)
    plan = planning.plan(
        request.environment, planning.render(request.environment, version, options)
    )
    with transaction.atomic():
        locked = (
            DeployRequest.objects.select_for_update(of=("self",))
            .select_related("environment", "model", "version")
            .get(pk=request.pk)
        )
        if locked.state != DeployRequest.State.PENDING_APPROVAL:
            raise ValidationError(
                f"This request is {locked.get_state_display().lower()}; "
                "only a request waiting for approval can change."
            )
        before = locked.revision
        locked.version = version
        for name, value in options.as_fields().items():
            setattr(locked, name, value)
        if locked.revision == before:
            return locked
        locked.plan, locked.plan_error = plan.objects, plan.error
        locked.manifest = planning.manifests.to_yaml(planning.render_request(locked))
        locked.save(
            update_fields=[
                "version",
                "plan",
                "plan_error",
                "manifest",
                *options.as_fields().keys(),
            ]
        )
        add_event(locked.pk, DeployEvent.Kind.NOTE, f"{actor} changed it to {locked.revision}.")
        record(actor, "deploy.revised", locked, previous=before, revision=locked.revision)
        if locked.approval_id:
            approvals.approval_subject_revise(
                request=locked.approval,
                revision=locked.revision,
                title=f"Deploy {locked.model.name} v{version.version} to {locked.environment}",
                actor=actor,
            )
    return locked


def deploy_request_cancel(*, actor: User, request: DeployRequest, reason: str = "") -> bool:
    """Withdraw a request before anything was applied. False if it had already started."""
    if not can_cancel_deploy(actor, request):
        raise PermissionDenied("Only the requester or staff can cancel this request.")
    note = f"Cancelled by {actor}" + (f": {reason.strip()}" if reason.strip() else ".")
    with transaction.atomic():
        state = DeployRequest.objects.values_list("state", flat=True).get(pk=request.pk)
        if state == DeployRequest.State.PENDING_APPROVAL and request.approval_id:
            approval = ApprovalRequest.objects.get(pk=request.approval_id)
            if approval.is_open:
                # The engine closes its request; its on_closed hook cancels this one.
                approvals.approval_request_cancel(request=approval, actor=actor, reason=note)
                request.refresh_from_db()
                return request.state == DeployRequest.State.CANCELLED
        done = transition(
            request,
            to=DeployRequest.State.CANCELLED,
            from_states=(DeployRequest.State.PENDING_APPROVAL, DeployRequest.State.QUEUED),
            actor=actor,
            message=note,
            fields={"error": note},
        )
    if not done:
        request.refresh_from_db()
        if request.state in (DeployRequest.State.APPLYING, DeployRequest.State.ROLLING_OUT):
            raise ValidationError("It is already being applied; abort it to roll back instead.")
        raise ValidationError(f"This request is already {request.get_state_display().lower()}.")
    return True


# --- rollbacks ------------------------------------------------------------------------------------
def live_release(environment_id: int, model_id: int) -> Release | None:
    return (
        Release.objects.filter(
            environment_id=environment_id, model_id=model_id, live_until__isnull=True
        )
        .select_related("version", "deploy_request")
        .first()
    )


def open_rollback(
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
    scale_to_zero = removal and protection.without_previous_release == "scale_to_zero"
    source = target.deploy_request if target is not None else rollback_of
    options = DeployOptions.of_request(source) if source is not None else None
    options = options or DeployOptions.for_environment(environment)
    if target is not None:
        options = DeployOptions(
            replicas=target.replicas,
            cpu_request=options.cpu_request,
            cpu_limit=options.cpu_limit,
            memory_request=options.memory_request,
            memory_limit=options.memory_limit,
            canary_traffic_percent=target.canary_traffic_percent,
        )
    fields = options.as_fields()
    if removal:
        fields["canary_traffic_percent"] = None
        if scale_to_zero:
            fields["replicas"] = 0
    request = _insert(
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
        objects = planning.relabel(planning.objects_of(target.deploy_request), request.pk)
    else:
        objects = planning.render_request(request, scale_to_zero=scale_to_zero)
    request.manifest = planning.manifests.to_yaml(objects)
    DeployRequest.objects.filter(pk=request.pk).update(manifest=request.manifest)
    if target is not None:
        what = f"back to v{target.version.version} (live since {target.live_from:%Y-%m-%d %H:%M})"
    elif scale_to_zero:
        what = "to zero replicas: nothing was live here before"
    else:
        what = "by removing the objects: nothing was live here before"
    add_event(request.pk, DeployEvent.Kind.STATE, f"Rollback {what}. {reason}".strip())
    record(
        requester or "deployments",
        "deploy.rollback_requested",
        request,
        rollback_of=rollback_of.pk if rollback_of else None,
        target_release=target.pk if target else None,
        removes_objects=request.removes_objects,
        scale_to_zero=scale_to_zero,
        reason=reason[:500],
    )
    if rules is not None and requester is not None:
        _open_approval(request, rules, requester)
    else:
        enqueue_execute(request.pk, request.token)
    return request


def deploy_request_abort(*, actor: User, request: DeployRequest, reason: str = "") -> DeployRequest:
    """Stop a rollout in progress: the request ends rolled back and a rollback starts at once."""
    if not can_operate_deploy(actor, request):
        raise PermissionDenied("Only the model's team, the requester or staff can abort this.")
    note = f"Aborted by {actor}" + (f": {reason.strip()}" if reason.strip() else ".")
    with transaction.atomic():
        done = transition(
            request,
            to=DeployRequest.State.ROLLED_BACK,
            from_states=(DeployRequest.State.ROLLING_OUT,),
            actor=actor,
            message=f"{note} Rolling back.",
            bump_token=True,
            level=DeployEvent.Level.WARNING,
            fields={"error": note},
        )
        if not done:
            request.refresh_from_db()
            if request.state == DeployRequest.State.APPLYING:
                raise ValidationError("It is being applied this second; try again in a moment.")
            if request.is_active:
                raise ValidationError("Nothing was applied yet: cancel it instead.")
            raise ValidationError(f"This request already {request.get_state_display().lower()}.")
        return open_rollback(
            environment=request.environment,
            version=request.version,
            target=live_release(request.environment_id, request.model_id),
            rollback_of=request,
            requester=actor,
            reason=note,
        )


def last_good_release(release: Release) -> Release | None:
    """The newest earlier release of another version here that stayed live long enough."""
    minimum = timedelta(minutes=policy.rules_of(release.environment).rollback_min_live_minutes)
    earlier = (
        Release.objects.filter(
            environment_id=release.environment_id,
            model_id=release.model_id,
            live_from__lt=release.live_from,
            live_until__isnull=False,
        )
        .exclude(version_id=release.version_id)
        .exclude(deploy_request__removes_objects=True)
        .select_related("version", "deploy_request")
        .order_by("-live_from", "-id")
    )
    for candidate in earlier[:200]:
        if candidate.live_until - candidate.live_from >= minimum:
            return candidate
    return None


def release_rollback(*, actor: User, release: Release, reason: str = "") -> DeployRequest:
    """“Roll back to last good”: one click, approval only where emergency rollback is off."""
    model = release.model
    if not can_request_deploy(actor, model):
        raise PermissionDenied(f"Only {model.name}'s owning team or staff can roll it back.")
    if release.live_until is not None:
        raise ValidationError("This release is no longer live; roll back the live one.")
    target = last_good_release(release)
    if target is None:
        minutes = policy.rules_of(release.environment).rollback_min_live_minutes
        raise ValidationError(
            f"No earlier version of {model.name} stayed live in {release.environment.name} "
            f"for {minutes} min or more: there is no last good release to go back to."
        )
    _check_version(target.version)
    protection = policy.rules_of(release.environment)
    rules = None if protection.allow_emergency_rollback else policy.approval_rules(protection)
    note = f"{actor} rolls back to last good v{target.version.version}" + (
        f": {reason.strip()}" if reason.strip() else "."
    )
    active = active_request(release.environment, model.pk)
    if active is not None:
        raise ActiveRequestExistsError(active, release.environment, model.name)
    # What going back changes, asked of the cluster before the transaction.
    plan = planning.plan(release.environment, planning.objects_of(target.deploy_request))
    with transaction.atomic():
        return open_rollback(
            environment=release.environment,
            version=target.version,
            target=target,
            rollback_of=release.deploy_request,
            requester=actor,
            reason=note,
            rules=rules,
            plan=plan,
        )
