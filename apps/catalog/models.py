"""The portal's mirror of the MLflow Model Registry, plus what the portal itself owns (cards)."""

from __future__ import annotations

from django.conf import settings
from django.db import models

OWNER_TAG = "portal.team"
REGISTRY_EVENT_DETAIL_MAX = 300


class RegisteredModel(models.Model):
    """A registered model as MLflow last reported it; MLflow is the source of truth."""

    name = models.CharField(max_length=256, unique=True)
    description = models.TextField(blank=True)
    tags = models.JSONField(default=dict, blank=True)
    # Resolved from the `portal.team` tag; `owner_tag` keeps the raw value so an unknown slug shows.
    owner_team = models.ForeignKey(
        "accounts.Team", null=True, blank=True, on_delete=models.SET_NULL, related_name="models"
    )
    owner_tag = models.CharField(max_length=100, blank=True)
    # Warnings raised about the model by the portal itself, e.g. {"alias:champion": "moved in
    # MLflow without approval"}; MLflow never sees these and syncs never touch them.
    flags = models.JSONField(default=dict, blank=True)
    # The aliases as {alias: version}, written with the model row so the busiest read (the
    # catalog list) needs no join; ModelAlias holds the same facts as rows for lookups.
    alias_versions = models.JSONField(default=dict, blank=True)
    latest_version = models.PositiveIntegerField(default=0)
    version_count = models.PositiveIntegerField(default=0)
    mlflow_created_at = models.DateTimeField(null=True)
    mlflow_updated_at = models.DateTimeField(null=True, db_index=True)
    is_deleted = models.BooleanField(default=False)
    deleted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["name"]
        indexes = [models.Index(fields=["is_deleted", "name"], name="catalog_model_live_name_idx")]

    def __str__(self) -> str:
        return self.name

    @property
    def alias_pairs(self) -> list[tuple[str, int]]:
        return sorted(self.alias_versions.items())


class ModelVersion(models.Model):
    """One version of a registered model, with a snapshot of its training run."""

    class Status(models.TextChoices):
        """MLflow's own ModelVersionStatus words, mirrored as MLflow sends them."""

        READY = "READY", "Ready"
        PENDING_REGISTRATION = "PENDING_REGISTRATION", "Pending registration"
        FAILED_REGISTRATION = "FAILED_REGISTRATION", "Failed registration"

    model = models.ForeignKey(RegisteredModel, on_delete=models.CASCADE, related_name="versions")
    version = models.PositiveIntegerField()
    run_id = models.CharField(max_length=64, blank=True)
    source = models.TextField(blank=True)
    status = models.CharField(max_length=32, blank=True)
    description = models.TextField(blank=True)
    tags = models.JSONField(default=dict, blank=True)
    created_by = models.CharField(max_length=256, blank=True)
    mlflow_created_at = models.DateTimeField(null=True)
    mlflow_updated_at = models.DateTimeField(null=True)
    run_metrics = models.JSONField(default=dict, blank=True)
    run_params = models.JSONField(default=dict, blank=True)
    # Null until the run's metrics and params have been read (a separate, batched step).
    run_fetched_at = models.DateTimeField(null=True, blank=True)
    is_deleted = models.BooleanField(default=False)
    deleted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["model__name", "-version"]
        constraints = [
            models.UniqueConstraint(fields=["model", "version"], name="catalog_version_unique"),
        ]
        indexes = [
            models.Index(
                fields=["run_fetched_at"],
                name="catalog_version_unfetched_idx",
                condition=models.Q(run_fetched_at__isnull=True, is_deleted=False),
            )
        ]

    def __str__(self) -> str:
        return f"{self.model.name} v{self.version}"


class ModelAlias(models.Model):
    """An MLflow alias: a name (e.g. "champion") pointing at one version of a model."""

    model = models.ForeignKey(RegisteredModel, on_delete=models.CASCADE, related_name="aliases")
    alias = models.CharField(max_length=256)
    version = models.PositiveIntegerField()

    class Meta:
        ordering = ["alias"]
        constraints = [
            models.UniqueConstraint(fields=["model", "alias"], name="catalog_alias_unique"),
        ]
        indexes = [models.Index(fields=["alias"], name="catalog_alias_name_idx")]

    def __str__(self) -> str:
        return f"{self.model.name}@{self.alias} → v{self.version}"


class CardStatus(models.TextChoices):
    DRAFT = "draft", "Draft"
    IN_REVIEW = "in_review", "In review"
    APPROVED = "approved", "Approved"


class ModelCard(models.Model):
    """What the owning team says about a model: intended use, limitations, evaluation, risk."""

    class Risk(models.TextChoices):
        UNKNOWN = "unknown", "Unknown"
        LOW = "low", "Low"
        MEDIUM = "medium", "Medium"
        HIGH = "high", "High"

    Status = CardStatus

    model = models.OneToOneField(RegisteredModel, on_delete=models.CASCADE, related_name="card")
    content = models.TextField(blank=True, max_length=100_000)
    risk = models.CharField(max_length=10, choices=Risk.choices, default=Risk.UNKNOWN)
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.DRAFT)
    updated_at = models.DateTimeField(auto_now=True)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    submitted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    approved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    approved_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=models.Q(status__in=CardStatus.values),
                name="catalog_card_status_valid",
            ),
            models.CheckConstraint(
                condition=~models.Q(status=CardStatus.APPROVED)
                | models.Q(approved_at__isnull=False),
                name="catalog_card_approved_has_time",
            ),
        ]

    def __str__(self) -> str:
        return f"Card for {self.model.name} ({self.status})"


class RegistrySyncState(models.Model):
    """The one row saying how the mirror stands: last syncs, the lease, and any outage."""

    SINGLETON_ID = 1

    lease_token = models.CharField(max_length=36, blank=True)
    lease_until = models.DateTimeField(null=True, blank=True)
    last_full_sync_at = models.DateTimeField(null=True, blank=True)
    last_sync_at = models.DateTimeField(null=True, blank=True)
    last_sync_mode = models.CharField(max_length=12, blank=True)
    last_duration_ms = models.PositiveIntegerField(null=True, blank=True)
    last_counts = models.JSONField(default=dict, blank=True)
    last_error = models.TextField(blank=True)
    last_error_at = models.DateTimeField(null=True, blank=True)
    unreachable_since = models.DateTimeField(null=True, blank=True)
    # MLflow's own last_updated_timestamp (ms) of the newest model/version seen: the incremental
    # sync fetches only what changed after it, so clocks of the two machines never meet.
    models_watermark_ms = models.BigIntegerField(default=0)
    versions_watermark_ms = models.BigIntegerField(default=0)

    def __str__(self) -> str:
        return f"Registry sync state (last sync {self.last_sync_at})"


class RegistryEventKind(models.TextChoices):
    ALIAS_SET = "alias_set", "Alias set"
    ALIAS_MOVED = "alias_moved", "Alias moved"
    ALIAS_REMOVED = "alias_removed", "Alias removed"
    MODEL_TAGS_CHANGED = "model_tags_changed", "Model tags changed"
    VERSION_TAGS_CHANGED = "version_tags_changed", "Version tags changed"
    VERSION_DELETED = "version_deleted", "Version deleted"
    MODEL_DELETED = "model_deleted", "Model deleted"


class RegistryEventSource(models.TextChoices):
    SYNC = "sync", "Sync"
    WEBHOOK = "webhook", "Webhook"


class RegistryEvent(models.Model):
    """A change a sync saw in MLflow to a model the mirror already had: an alias set, moved or
    removed, tags changed, a version or the model deleted. `at` is when the portal saw it (MLflow
    keeps no history of these). A model's first appearance and new versions are not events: new
    versions are listed by their own `mlflow_created_at`. `sync.registry_events_prune()` drops
    those older than 90 days."""

    Kind = RegistryEventKind
    Source = RegistryEventSource

    model = models.ForeignKey(
        RegisteredModel, on_delete=models.CASCADE, related_name="registry_events"
    )
    at = models.DateTimeField()
    kind = models.CharField(max_length=24, choices=RegistryEventKind.choices)
    version = models.PositiveIntegerField(null=True, blank=True)
    alias = models.CharField(max_length=256, blank=True)
    # A short sentence for a timeline, e.g. "@champion moved v3 → v4", "v4 tags changed: stage".
    detail = models.CharField(max_length=REGISTRY_EVENT_DETAIL_MAX)
    # What changed: {"old_version", "new_version"} for aliases, {"keys", "old", "new"} for tags.
    data = models.JSONField(default=dict, blank=True)
    source = models.CharField(
        max_length=8, choices=RegistryEventSource.choices, default=RegistryEventSource.SYNC
    )

    class Meta:
        ordering = ["-at", "-id"]
        indexes = [models.Index(fields=["model", "-at"], name="catalog_event_model_at_idx")]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(kind__in=RegistryEventKind.values),
                name="catalog_event_kind_valid",
            ),
            models.CheckConstraint(
                condition=models.Q(source__in=RegistryEventSource.values),
                name="catalog_event_source_valid",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.model.name}: {self.detail}"


class WebhookDelivery(models.Model):
    """An MLflow webhook delivery, kept to refuse repeats and to show what arrived."""

    delivery_id = models.CharField(max_length=64, unique=True)
    received_at = models.DateTimeField(auto_now_add=True, db_index=True)
    entity = models.CharField(max_length=40)
    action = models.CharField(max_length=20)
    model_name = models.CharField(max_length=256, blank=True)
    payload = models.JSONField(default=dict)
    applied_at = models.DateTimeField(null=True, blank=True)
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["-received_at"]

    def __str__(self) -> str:
        return f"{self.entity}.{self.action} {self.model_name} ({self.delivery_id})"
