from __future__ import annotations

from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models

from apps.deployments.kube import manifests
from apps.deployments.kube.manifests import Target
from apps.deployments.kube.quantity import QuantityError, parse_quantity

dns_label_validator = RegexValidator(
    r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$",
    "Use at most 63 lower-case letters, digits and hyphens, starting and ending with a letter "
    "or digit (a Kubernetes DNS-1123 label).",
)
image_validator = RegexValidator(
    r"^[A-Za-z0-9][A-Za-z0-9._\-/:@]*$", "Not a container image reference (registry/name:tag)."
)


class Environment(models.Model):
    """A place models are deployed to: one namespace of one cluster, and the defaults for it."""

    class Connection(models.TextChoices):
        KUBECONFIG = "kubeconfig", "Kubeconfig file and context"
        IN_CLUSTER = "in_cluster", "In-cluster service account"

    class ServingKind(models.TextChoices):
        KSERVE = manifests.KSERVE, "KServe InferenceService"
        DEPLOYMENT = manifests.DEPLOYMENT, "Deployment + Service"

    class KServeMode(models.TextChoices):
        STANDARD = "Standard", "Standard (plain Deployment underneath)"
        KNATIVE = "Knative", "Knative (revisions, canary traffic)"

    name = models.CharField(max_length=60, unique=True)
    slug = models.SlugField(max_length=40, unique=True)
    # Position on the promotion path: dev (10) before staging (20) before production (30).
    order = models.PositiveSmallIntegerField(unique=True)
    description = models.CharField(max_length=300, blank=True)

    connection = models.CharField(
        max_length=20, choices=Connection.choices, default=Connection.KUBECONFIG
    )
    # Blank means $KUBECONFIG, then ~/.kube/config: a real kubeconfig replaces the demo's with
    # no change here.
    kubeconfig_path = models.CharField(max_length=500, blank=True)
    kube_context = models.CharField(max_length=200, blank=True, verbose_name="kubeconfig context")
    namespace = models.CharField(max_length=63, validators=[dns_label_validator])

    serving_kind = models.CharField(
        max_length=20, choices=ServingKind.choices, default=ServingKind.KSERVE
    )
    kserve_mode = models.CharField(
        max_length=20,
        choices=KServeMode.choices,
        default=KServeMode.STANDARD,
        verbose_name="KServe deployment mode",
        help_text="Canary traffic needs Knative mode.",
    )
    runtime_image = models.CharField(
        max_length=300,
        blank=True,
        validators=[image_validator],
        help_text="Model server image for the Deployment + Service kind (MLServer with MLflow).",
    )

    replicas = models.PositiveSmallIntegerField(
        default=1, validators=[MinValueValidator(1), MaxValueValidator(100)]
    )
    max_replicas = models.PositiveSmallIntegerField(
        default=1,
        validators=[MinValueValidator(1), MaxValueValidator(100)],
        help_text="Autoscaling ceiling (KServe); the plain kind runs exactly the replica count.",
    )
    cpu_request = models.CharField(max_length=20, default="100m", verbose_name="CPU request")
    cpu_limit = models.CharField(max_length=20, default="1", verbose_name="CPU limit")
    memory_request = models.CharField(max_length=20, default="512Mi")
    memory_limit = models.CharField(max_length=20, default="1Gi")
    # Extended resources such as GPUs cannot be overcommitted: Kubernetes requires the request to
    # equal the limit, so one number sets both.
    gpus = models.PositiveSmallIntegerField(
        default=0, validators=[MaxValueValidator(16)], verbose_name="GPUs (request = limit)"
    )
    progress_deadline_seconds = models.PositiveIntegerField(
        default=600, validators=[MinValueValidator(30), MaxValueValidator(86400)]
    )

    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["order", "name"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(max_replicas__gte=models.F("replicas")),
                name="environment_max_replicas_at_least_replicas",
            ),
            models.CheckConstraint(
                condition=models.Q(connection="kubeconfig")
                | models.Q(kubeconfig_path="", kube_context=""),
                name="environment_in_cluster_has_no_kubeconfig",
            ),
            models.CheckConstraint(
                condition=~models.Q(serving_kind="deployment") | ~models.Q(runtime_image=""),
                name="environment_plain_kind_has_runtime_image",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def is_kserve(self) -> bool:
        return self.serving_kind == self.ServingKind.KSERVE

    @property
    def is_knative(self) -> bool:
        """KServe in Knative mode: revisions, and canary traffic."""
        return self.is_kserve and self.kserve_mode == self.KServeMode.KNATIVE

    def clean(self) -> None:
        errors: dict[str, str] = {}
        if self.connection == self.Connection.IN_CLUSTER:
            if self.kubeconfig_path:
                errors["kubeconfig_path"] = "Leave empty for an in-cluster connection."
            if self.kube_context:
                errors["kube_context"] = "Leave empty for an in-cluster connection."
        if self.serving_kind == self.ServingKind.DEPLOYMENT and not self.runtime_image:
            errors["runtime_image"] = "The Deployment + Service kind needs a model server image."
        if None not in (self.max_replicas, self.replicas) and self.max_replicas < self.replicas:
            errors["max_replicas"] = "Must be at least the number of replicas."
        for request, limit in (("cpu_request", "cpu_limit"), ("memory_request", "memory_limit")):
            values = {}
            for field in (request, limit):
                try:
                    values[field] = parse_quantity(getattr(self, field) or "")
                except QuantityError as exc:
                    errors[field] = str(exc)
            if len(values) == 2 and values[request] > values[limit]:
                errors[request] = "The request cannot be larger than the limit."
        if errors:
            raise ValidationError(errors)

    def target(self) -> Target:
        """The plain-data view of this environment that manifests are rendered from."""
        return Target(
            environment=self.slug,
            namespace=self.namespace,
            serving_kind=self.serving_kind,
            kserve_mode=self.kserve_mode,
            runtime_image=self.runtime_image,
            replicas=self.replicas,
            max_replicas=self.max_replicas,
            cpu_request=self.cpu_request,
            cpu_limit=self.cpu_limit,
            memory_request=self.memory_request,
            memory_limit=self.memory_limit,
            gpus=self.gpus,
            progress_deadline_seconds=self.progress_deadline_seconds,
        )
