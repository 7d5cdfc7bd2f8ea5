"""From "this version, to that environment, with these options" to manifests and a planned diff.

`DeployOptions` are checked here (a clear message per field); rendering is the pure
`kube.manifests`; the plan is a server-side dry-run apply through the kube layer, so nothing on
the cluster changes.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import TYPE_CHECKING, Any

from django.core.exceptions import ValidationError

from apps.deployments.clusters import client_for
from apps.deployments.kube import diff, manifests
from apps.deployments.kube.client import KubeError
from apps.deployments.kube.quantity import QuantityError, parse_quantity

if TYPE_CHECKING:
    from apps.catalog.models import ModelVersion
    from apps.deployments.models import DeployRequest, Environment


@dataclass(frozen=True)
class DeployOptions:
    """Per-deploy choices; `for_environment` fills them with the environment's defaults."""

    replicas: int
    cpu_request: str
    cpu_limit: str
    memory_request: str
    memory_limit: str
    canary_traffic_percent: int | None = None

    @classmethod
    def for_environment(cls, environment: Environment, **overrides: Any) -> DeployOptions:
        defaults = cls(
            replicas=environment.replicas,
            cpu_request=environment.cpu_request,
            cpu_limit=environment.cpu_limit,
            memory_request=environment.memory_request,
            memory_limit=environment.memory_limit,
        )
        given = {key: value for key, value in overrides.items() if value not in (None, "")}
        return replace(defaults, **given)

    @classmethod
    def of_deploy(cls, deploy: DeployRequest) -> DeployOptions:
        return cls(
            replicas=deploy.replicas,
            cpu_request=deploy.cpu_request,
            cpu_limit=deploy.cpu_limit,
            memory_request=deploy.memory_request,
            memory_limit=deploy.memory_limit,
            canary_traffic_percent=deploy.canary_traffic_percent,
        )

    def as_fields(self) -> dict[str, Any]:
        return asdict(self)


def check_options(environment: Environment, options: DeployOptions) -> None:
    """Raise ValidationError naming each option the environment cannot take."""
    errors: dict[str, str] = {}
    if not 1 <= options.replicas <= environment.max_replicas:
        errors["replicas"] = (
            f"Choose 1 to {environment.max_replicas} replicas in {environment.name} "
            "(its autoscaling ceiling)."
        )
    for wanted, limit in (("cpu_request", "cpu_limit"), ("memory_request", "memory_limit")):
        values = {}
        for field in (wanted, limit):
            try:
                values[field] = parse_quantity(getattr(options, field) or "")
            except QuantityError as exc:
                errors[field] = str(exc)
        if len(values) == 2 and values[wanted] > values[limit]:
            errors[wanted] = "The request cannot be larger than the limit."
    canary = options.canary_traffic_percent
    if canary is not None:
        knative = (
            environment.serving_kind == manifests.KSERVE
            and environment.kserve_mode == manifests.KNATIVE
        )
        if not knative:
            errors["canary_traffic_percent"] = (
                f"Canary traffic needs KServe in Knative mode; {environment.name} is not."
            )
        elif not 1 <= canary <= 100:
            errors["canary_traffic_percent"] = "A canary takes 1 to 100 % of the traffic."
    if errors:
        raise ValidationError(errors)


def model_ref(version: ModelVersion) -> manifests.ModelRef:
    return manifests.ModelRef(
        name=version.model.name,
        version=str(version.version),
        storage_uri=version.source,
        run_id=version.run_id,
    )


def render(
    environment: Environment,
    version: ModelVersion,
    options: DeployOptions,
    *,
    deploy_id: int | None = None,
    scale_to_zero: bool = False,
) -> list[dict[str, Any]]:
    """The objects to apply; ManifestError becomes a ValidationError a person can read."""
    target = replace(
        environment.target(),
        cpu_request=options.cpu_request,
        cpu_limit=options.cpu_limit,
        memory_request=options.memory_request,
        memory_limit=options.memory_limit,
    )
    render_options = manifests.RenderOptions(
        deploy_request_id=deploy_id,
        canary_traffic_percent=None if scale_to_zero else options.canary_traffic_percent,
        replicas=0 if scale_to_zero else options.replicas,
    )
    try:
        return manifests.render(model_ref(version), target, render_options)
    except manifests.ManifestError as exc:
        raise ValidationError(str(exc)) from None


def render_deploy(deploy: DeployRequest, *, scale_to_zero: bool = False) -> list[dict]:
    return render(
        deploy.environment,
        deploy.version,
        DeployOptions.of_deploy(deploy),
        deploy_id=deploy.pk,
        scale_to_zero=scale_to_zero,
    )


def relabel(objects: list[dict[str, Any]], deploy_id: int) -> list[dict[str, Any]]:
    """Stored objects marked as applied by another request (labels and annotations)."""
    key = f"{manifests.PREFIX}/deploy-request"
    for obj in objects:
        metadata = obj.setdefault("metadata", {})
        for field in ("labels", "annotations"):
            if key in (metadata.get(field) or {}):
                metadata[field][key] = str(deploy_id)
    return objects


def objects_of(deploy: DeployRequest) -> list[dict[str, Any]]:
    """The stored manifest: exactly what was reviewed is what gets applied."""
    return manifests.from_yaml(deploy.manifest)


@dataclass(frozen=True)
class Plan:
    """What applying would change, or why the cluster could not say."""

    objects: list[dict[str, str]]
    error: str = ""

    @property
    def changes(self) -> bool:
        return any(obj["action"] != diff.UNCHANGED for obj in self.objects)


def plan(environment: Environment, objects: list[dict[str, Any]]) -> Plan:
    """Dry-run the objects against the live ones; a cluster failure is reported, not raised."""
    try:
        client = client_for(environment, interactive=True)
        diffs = diff.plan(client, objects)
    except KubeError as exc:
        return Plan([], f"The cluster could not dry-run the change: {exc.message}")
    return Plan([asdict(item) for item in diffs])
