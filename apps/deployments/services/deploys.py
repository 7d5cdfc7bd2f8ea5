"""The verbs people use on deploys before anything is applied: preview, request, revise, cancel.

Each checks permission and policy first, talks to the cluster (the dry-run diff) outside any
transaction, then writes in one short transaction with its audit event, and enqueues work with
`transaction.on_commit`. "One active request per (environment, model)" is a partial unique
index, so two people racing get one request and one clear refusal naming it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

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
from apps.deployments.models import DeployEvent, DeployRequest, Environment
from apps.deployments.permissions import (
    can_bypass_deploy_policy,
    can_cancel_deploy,
    can_request_deploy,
)
from apps.deployments.planning import DeployOptions, Plan
from apps.deployments.selectors import deploy_request_active
from apps.deployments.services.transitions import (
    deploy_event_add,
    deploy_request_transition,
    enqueue_execute,
)
from apps.web.errors import ConflictError, PayloadValidationError

APPROVAL_KIND = "deploy"


class ActiveRequestExistsError(ConflictError):
    """Another request for this (environment, model) is still active; `active` is it."""

    default_code = "active_request"

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
        super().__init__(text)

    def payload(self) -> dict[str, Any]:
        return {"active_request": self.active.pk if self.active else None}


class PolicyBlockedError(PayloadValidationError):
    """A freeze, a deny window or the promotion order stops this deploy now."""

    default_code = "blocked"

    def __init__(self, blockers: list[policy.Blocker]):
        self.blockers = blockers
        super().__init__([blocker.message for blocker in blockers])

    def payload(self) -> dict[str, Any]:
        return {"blockers": [{"kind": b.kind, "message": b.message} for b in self.blockers]}


@dataclass
class Preview:
    """What a request would do, shown before it is filed: diff, rules, and what blocks it."""

    objects: list[dict[str, Any]]
    plan: Plan
    rules: list[str]
    blockers: list[policy.Blocker] = field(default_factory=list)
    active: DeployRequest | None = None
    manifest: str = ""


def check_version_deployable(version: ModelVersion) -> None:
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
    check_version_deployable(version)
    planning.check_options(environment, options)
    objects = planning.render(environment, version, options)
    now = timezone.now()
    return Preview(
        objects=objects,
        plan=planning.plan(environment, objects),
        rules=policy.describe_environment(environment, now=now),
        blockers=policy.blockers(environment, version, now=now),
        active=deploy_request_active(environment, version.model_id),
        manifest=planning.manifests.to_yaml(objects),
    )


ONE_ACTIVE = "deploy_one_active_per_environment_model"


def _has_active_request(environment: Environment, model_id: int) -> bool:
    return DeployRequest.objects.filter(
        environment=environment, model_id=model_id, state__in=DeployRequest.ACTIVE_STATES
    ).exists()


@contextmanager
def _one_active_request(deploy: DeployRequest) -> Iterator[None]:
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
        active = deploy_request_active(deploy.environment, deploy.model_id)
        raise ActiveRequestExistsError(active, deploy.environment, deploy.model.name) from None


def insert_in_savepoint(deploy: DeployRequest) -> DeployRequest:
    """Save a new request inside a caller's transaction (a savepoint keeps that one usable)."""
    with _one_active_request(deploy), transaction.atomic():
        deploy.save(force_insert=True)
    return deploy


def open_approval(deploy: DeployRequest, rules: Rules, requester: User) -> None:
    verb = "Roll back" if deploy.kind == DeployRequest.Kind.ROLLBACK else "Deploy"
    deploy.approval = approvals.approval_request_open(
        kind=APPROVAL_KIND,
        subject=deploy,
        revision=deploy.revision,
        title=f"{verb} {deploy.model.name} v{deploy.version.version} to {deploy.environment}",
        requester=requester,
        rules=rules,
    )
    DeployRequest.objects.filter(pk=deploy.pk).update(approval=deploy.approval)


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
    check_version_deployable(version)
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
            deploy_request_active(environment, model.pk), environment, model.name
        )
    # The dry-run diff asks the cluster: outside any transaction or lock.
    plan = planning.plan(environment, planning.render(environment, version, options))
    rules = policy.approval_rules(policy.rules_of(environment))
    deploy = DeployRequest(
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
        audit.update(bypassed=bypassed, bypass_reason=deploy.bypass_reason)
    # The insert opens the transaction, so a lost race needs no savepoint: all of it rolls back.
    with _one_active_request(deploy), transaction.atomic():
        deploy.save(force_insert=True)
        _file(actor, deploy, rules, audit)
    return deploy


def _file(actor: User, deploy: DeployRequest, rules: Rules | None, audit: dict[str, Any]) -> None:
    """What follows a new request's insert: its manifest, first events, audit row, next step."""
    deploy.manifest = planning.manifests.to_yaml(planning.render_deploy(deploy))
    DeployRequest.objects.filter(pk=deploy.pk).update(manifest=deploy.manifest)
    waiting = "waits for approval" if rules is not None else "is queued"
    deploy_event_add(deploy.pk, DeployEvent.Kind.STATE, f"Requested by {actor}; {waiting}.")
    if deploy.bypassed:
        deploy_event_add(
            deploy.pk,
            DeployEvent.Kind.NOTE,
            f"{actor} bypassed: {' '.join(deploy.bypassed)} Reason: {deploy.bypass_reason}",
            level=DeployEvent.Level.WARNING,
        )
    record(actor, "deploy.requested", deploy, **audit)
    if rules is not None:
        open_approval(deploy, rules, actor)
    else:
        enqueue_execute(deploy.pk, deploy.token)


def deploy_request_revise(
    *, actor: User, deploy: DeployRequest, version: ModelVersion, options: DeployOptions
) -> DeployRequest:
    """Change what a waiting request deploys; reviews given so far are dismissed."""
    if not can_cancel_deploy(actor, deploy):
        raise PermissionDenied("Only the requester or staff can change this request.")
    if version.model_id != deploy.model_id:
        raise ValidationError({"version": "Choose a version of the same model."})
    check_version_deployable(version)
    planning.check_options(deploy.environment, options)
    found = policy.blockers(
        deploy.environment,
        version,
        now=timezone.now(),
        rollback=deploy.kind == DeployRequest.Kind.ROLLBACK,
    )
    if found and not deploy.bypassed:
        raise PolicyBlockedError(found)
    plan = planning.plan(deploy.environment, planning.render(deploy.environment, version, options))
    with transaction.atomic():
        locked = (
            DeployRequest.objects.select_for_update(of=("self",))
            .select_related("environment", "model", "version")
            .get(pk=deploy.pk)
        )
        if not locked.revisable:
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
        locked.manifest = planning.manifests.to_yaml(planning.render_deploy(locked))
        locked.save(
            update_fields=[
                "version",
                "plan",
                "plan_error",
                "manifest",
                *options.as_fields().keys(),
            ]
        )
        deploy_event_add(
            locked.pk, DeployEvent.Kind.NOTE, f"{actor} changed it to {locked.revision}."
        )
        record(actor, "deploy.revised", locked, previous=before, revision=locked.revision)
        approval = locked.approval  # None without a query when the key is null
        if approval is not None:
            approvals.approval_subject_revise(
                approval=approval,
                revision=locked.revision,
                title=f"Deploy {locked.model.name} v{version.version} to {locked.environment}",
                actor=actor,
            )
    return locked


def deploy_request_cancel(*, actor: User, deploy: DeployRequest, reason: str = "") -> bool:
    """Withdraw a request before anything was applied. False if it had already started."""
    if not can_cancel_deploy(actor, deploy):
        raise PermissionDenied("Only the requester or staff can cancel this request.")
    note = f"Cancelled by {actor}" + (f": {reason.strip()}" if reason.strip() else ".")
    with transaction.atomic():
        state = DeployRequest.objects.values_list("state", flat=True).get(pk=deploy.pk)
        if state == DeployRequest.State.PENDING_APPROVAL and deploy.approval_id:
            approval = ApprovalRequest.objects.get(pk=deploy.approval_id)
            if approval.is_open:
                # The engine closes its request; its on_closed hook cancels this one.
                approvals.approval_request_cancel(approval=approval, actor=actor, reason=note)
                deploy.refresh_from_db()
                return deploy.state == DeployRequest.State.CANCELLED
        done = deploy_request_transition(
            deploy,
            to=DeployRequest.State.CANCELLED,
            from_states=DeployRequest.CANCELLABLE_STATES,
            actor=actor,
            message=note,
            fields={"error": note},
        )
    if not done:
        deploy.refresh_from_db()
        if deploy.state in (DeployRequest.State.APPLYING, DeployRequest.State.ROLLING_OUT):
            raise ValidationError("It is already being applied; abort it to roll back instead.")
        raise ValidationError(f"This request is already {deploy.get_state_display().lower()}.")
    return True
