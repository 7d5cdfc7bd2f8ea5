"""Demo environments for `make run` (on the simulated cluster); running it again changes nothing."""

from __future__ import annotations

from pathlib import Path
from typing import NotRequired, TypedDict

from django.db import transaction

from apps.accounts.models import Team
from apps.audit.services import record
from apps.deployments.models import Environment, ProtectionRules
from apps.deployments.services import EDITABLE_FIELDS

MLSERVER_IMAGE = "docker.io/seldonio/mlserver:1.6.1-mlflow"


class EnvironmentSpec(TypedDict):
    """A demo environment: its name, and the Environment fields it sets beside the defaults."""

    name: str
    order: int
    namespace: str
    description: str
    serving_kind: str
    progress_deadline_seconds: int
    runtime_image: NotRequired[str]
    kserve_mode: NotRequired[str]
    replicas: NotRequired[int]
    max_replicas: NotRequired[int]
    cpu_request: NotRequired[str]
    cpu_limit: NotRequired[str]
    memory_request: NotRequired[str]
    memory_limit: NotRequired[str]


ENVIRONMENTS: list[EnvironmentSpec] = [
    {
        "name": "dev",
        "order": 10,
        "namespace": "models-dev",
        "description": "Try things: plain Deployment + Service, one replica.",
        "serving_kind": "deployment",
        "runtime_image": MLSERVER_IMAGE,
        "progress_deadline_seconds": 120,
    },
    {
        "name": "staging",
        "order": 20,
        "namespace": "models-staging",
        "description": "Production-like: KServe in Standard mode.",
        "serving_kind": "kserve",
        "kserve_mode": "Standard",
        "replicas": 1,
        "max_replicas": 2,
        "progress_deadline_seconds": 300,
    },
    {
        "name": "production",
        "order": 30,
        "namespace": "models-prod",
        "description": "Serves customers: KServe in Knative mode with canary traffic.",
        "serving_kind": "kserve",
        "kserve_mode": "Knative",
        "replicas": 2,
        "max_replicas": 4,
        "cpu_request": "500m",
        "cpu_limit": "2",
        "memory_request": "1Gi",
        "memory_limit": "2Gi",
        "progress_deadline_seconds": 600,
    },
]
NAMESPACES = tuple(env["namespace"] for env in ENVIRONMENTS)
# Each environment moves an MLflow alias named after it. Staging takes only what ran in dev;
# production takes what ran in staging, after two approvals from risk review, with metrics no
# worse than what is live there, and never over the weekend.
PROTECTION: dict[str, dict[str, object]] = {
    "dev": {"rollback_min_live_minutes": 5},
    "staging": {"requires_previous_environment": True, "rollback_min_live_minutes": 10},
    "production": {
        "required_approvals": 2,
        "metric_rules": "auc higher 0.01",
        "deny_windows": "Fri 16:00-Mon 08:00",
        "window_timezone": "UTC",
        "requires_previous_environment": True,
        "rollback_min_live_minutes": 30,
        "allow_emergency_rollback": True,
    },
}
PRODUCTION_APPROVERS = "risk-review"


@transaction.atomic
def seed_environments(*, kubeconfig_path: Path, kube_context: str) -> list[Environment]:
    """Create dev, staging and production on the demo's cluster if they are missing."""
    environments = []
    for spec in ENVIRONMENTS:
        values: dict[str, object] = {
            "slug": spec["name"],
            "kubeconfig_path": str(kubeconfig_path),
            "kube_context": kube_context,
        }
        values.update({key: value for key, value in spec.items() if key != "name"})
        environment, created = Environment.objects.get_or_create(
            slug=spec["name"], defaults={"name": spec["name"], **values}
        )
        if created:
            environment.full_clean()
            record(
                "seed",
                "environment.created",
                environment,
                **{field: getattr(environment, field) for field in EDITABLE_FIELDS},
            )
        _seed_protection(environment)
        environments.append(environment)
    return environments


def _seed_protection(environment: Environment) -> None:
    rules, created = ProtectionRules.objects.get_or_create(
        environment=environment,
        defaults={"mlflow_alias": environment.slug, **PROTECTION.get(environment.slug, {})},
    )
    if not created:
        return
    if rules.required_approvals:
        rules.reviewer_teams.set(Team.objects.filter(slug=PRODUCTION_APPROVERS))
    record(
        "seed",
        "environment.protection_updated",
        environment,
        rules=PROTECTION.get(environment.slug, {}),
    )
