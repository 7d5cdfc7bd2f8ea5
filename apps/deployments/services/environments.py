"""Verbs on environments, their protection rules and freezes; each runs in a transaction and
writes one audit event."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.text import slugify

from apps.accounts.models import Team, User
from apps.audit.services import record
from apps.deployments.models import DeployFreeze, Environment, ProtectionRules

# What a person may set; identity (pk) and timestamps are the database's.
EDITABLE_FIELDS = (
    "name",
    "slug",
    "order",
    "description",
    "connection",
    "kubeconfig_path",
    "kube_context",
    "namespace",
    "serving_kind",
    "kserve_mode",
    "runtime_image",
    "replicas",
    "max_replicas",
    "cpu_request",
    "cpu_limit",
    "memory_request",
    "memory_limit",
    "gpus",
    "progress_deadline_seconds",
)


def _check_fields(values: dict[str, Any]) -> None:
    unknown = set(values) - set(EDITABLE_FIELDS)
    if unknown:
        raise TypeError(f"Not editable on an environment: {', '.join(sorted(unknown))}")


def _save(environment: Environment) -> None:
    environment.full_clean()
    try:
        with transaction.atomic():
            environment.save()
    except IntegrityError:
        # full_clean checked uniqueness, but a concurrent save can still win the race.
        raise ValidationError(
            "Another environment with this name, slug or order was saved just now."
        ) from None


@transaction.atomic
def environment_create(*, actor: User, name: str, **values: Any) -> Environment:
    """Create an environment; the slug defaults to one made from the name."""
    _check_fields(values)
    values.setdefault("slug", "")
    values["slug"] = values["slug"] or slugify(name)[:40]
    environment = Environment(name=name.strip(), **values)
    _save(environment)
    # Every environment starts unprotected, moving an MLflow alias named after it.
    ProtectionRules.objects.create(environment=environment, mlflow_alias=environment.slug)
    record(
        actor,
        "environment.created",
        environment,
        **{field: getattr(environment, field) for field in EDITABLE_FIELDS},
    )
    return environment


@transaction.atomic
def environment_update(*, actor: User, environment: Environment, **changes: Any) -> Environment:
    """Change an environment's settings; saving without a change writes nothing."""
    _check_fields(changes)
    environment = Environment.objects.select_for_update().get(pk=environment.pk)
    changed = {
        field: [getattr(environment, field), value]
        for field, value in changes.items()
        if getattr(environment, field) != value
    }
    if not changed:
        return environment
    for field, (_, value) in changed.items():
        setattr(environment, field, value)
    _save(environment)
    record(actor, "environment.updated", environment, changes=changed)
    return environment


# --- protection rules -----------------------------------------------------------------------------
PROTECTION_FIELDS = (
    "required_approvals",
    "bar_requester_team",
    "wait_minutes",
    "expires_after_hours",
    "required_tags",
    "require_approved_card",
    "metric_rules",
    "deny_windows",
    "window_timezone",
    "requires_previous_environment",
    "soak_minutes",
    "allow_emergency_rollback",
    "rollback_min_live_minutes",
    "without_previous_release",
    "mlflow_alias",
)
PROTECTION_TEAM_FIELDS = ("reviewer_teams", "required_teams")


def _protection_summary(rules: ProtectionRules) -> dict[str, Any]:
    summary: dict[str, Any] = {name: getattr(rules, name) for name in PROTECTION_FIELDS}
    for name in PROTECTION_TEAM_FIELDS:
        summary[name] = sorted(team.slug for team in getattr(rules, name).all())
    return summary


@transaction.atomic
def protection_rules_update(
    *, actor: User, environment: Environment, **values: Any
) -> ProtectionRules:
    """Set an environment's protection rules (staff); saving without a change writes nothing."""
    if not actor.is_staff:
        raise PermissionDenied("Only staff can change protection rules.")
    unknown = set(values) - set(PROTECTION_FIELDS) - set(PROTECTION_TEAM_FIELDS)
    if unknown:
        raise TypeError(f"Not a protection rule: {', '.join(sorted(unknown))}")
    rules, _ = ProtectionRules.objects.select_for_update().get_or_create(
        environment=environment, defaults={"mlflow_alias": environment.slug}
    )
    before = _protection_summary(rules)
    for name in PROTECTION_FIELDS:
        if name in values:
            setattr(rules, name, values[name])
    rules.full_clean(exclude=["environment", *PROTECTION_TEAM_FIELDS])
    teams: dict[str, list[Team]] = {
        name: list(values[name]) for name in PROTECTION_TEAM_FIELDS if name in values
    }
    reviewers = teams.get("reviewer_teams", list(rules.reviewer_teams.all()))
    required = teams.get("required_teams", list(rules.required_teams.all()))
    if rules.required_approvals and not (reviewers or required):
        raise ValidationError({"reviewer_teams": "Name the teams whose members approve."})
    if len({team.pk for team in required}) > rules.required_approvals:
        raise ValidationError(
            {"required_teams": "Each required team needs an approval of its own: require at "
             "least as many approvals as required teams."}
        )  # fmt: skip
    rules.save()
    for name, chosen in teams.items():
        getattr(rules, name).set(chosen)
    after = _protection_summary(rules)
    changed = {key: [before[key], after[key]] for key in after if before[key] != after[key]}
    if changed:
        record(actor, "environment.protection_updated", environment, changes=changed)
    return rules


# --- freezes --------------------------------------------------------------------------------------
@transaction.atomic
def deploy_freeze_create(
    *,
    actor: User,
    environment: Environment,
    reason: str,
    ends_at: datetime | None = None,
    starts_at: datetime | None = None,
) -> DeployFreeze:
    """Stop deploys to an environment (staff) from now or `starts_at`, until `ends_at` or lifted."""
    if not actor.is_staff:
        raise PermissionDenied("Only staff can freeze an environment.")
    if not reason.strip():
        raise ValidationError({"reason": "Say why: people who are blocked will read it."})
    starts_at = starts_at or timezone.now()
    if ends_at is not None and ends_at <= starts_at:
        raise ValidationError({"ends_at": "The freeze must end after it starts."})
    freeze = DeployFreeze.objects.create(
        environment=environment,
        reason=reason.strip()[:500],
        starts_at=starts_at,
        ends_at=ends_at,
        created_by=actor,
    )
    record(
        actor,
        "environment.frozen",
        environment,
        freeze=freeze.pk,
        reason=freeze.reason,
        starts_at=starts_at,
        ends_at=ends_at,
    )
    return freeze


@transaction.atomic
def deploy_freeze_lift(*, actor: User, freeze: DeployFreeze) -> DeployFreeze:
    """End a freeze now (staff)."""
    if not actor.is_staff:
        raise PermissionDenied("Only staff can lift a freeze.")
    now = timezone.now()
    if not DeployFreeze.objects.filter(pk=freeze.pk, lifted_at__isnull=True).update(
        lifted_at=now, lifted_by=actor
    ):
        raise ValidationError("This freeze was lifted already.")
    freeze.refresh_from_db()
    record(actor, "environment.unfrozen", freeze.environment, freeze=freeze.pk)
    return freeze
