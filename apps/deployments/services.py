"""Verbs on environments; each runs in a transaction and writes one audit event."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils.text import slugify

from apps.accounts.models import User
from apps.audit.services import record
from apps.deployments.models import Environment

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
