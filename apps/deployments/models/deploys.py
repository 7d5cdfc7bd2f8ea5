"""Deploy requests, what they did (events), and what is live where (releases)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.validators import MaxValueValidator
from django.db import models
from django.db.models import Q


class DeployKind(models.TextChoices):
    DEPLOY = "deploy", "Deploy"
    ROLLBACK = "rollback", "Rollback"


class DeployState(models.TextChoices):
    PENDING_APPROVAL = "pending_approval", "Waiting for approval"
    QUEUED = "queued", "Queued"
    APPLYING = "applying", "Applying"
    ROLLING_OUT = "rolling_out", "Rolling out"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    ROLLED_BACK = "rolled_back", "Rolled back"
    CANCELLED = "cancelled", "Cancelled"
    REJECTED = "rejected", "Rejected"


_S = DeployState
ACTIVE_STATES = (_S.PENDING_APPROVAL, _S.QUEUED, _S.APPLYING, _S.ROLLING_OUT)
FINAL_STATES = (_S.SUCCEEDED, _S.FAILED, _S.ROLLED_BACK, _S.CANCELLED, _S.REJECTED)
# States a worker owns; a row stuck in one past the heartbeat is picked up by the sweeper.
WORKER_STATES = (_S.QUEUED, _S.APPLYING, _S.ROLLING_OUT)


class DeployRequest(models.Model):
    """A request to put one model version live in one environment (or to roll one back).

    The row is the truth about a deploy: workers claim it with conditional updates and carry
    it through the states below; the queue only says "look at this row now".
    """

    Kind = DeployKind
    State = DeployState
    ACTIVE_STATES = ACTIVE_STATES
    WORKER_STATES = WORKER_STATES
    FINAL_STATES = FINAL_STATES
    # What people may do in which state; views, API, templates and the verbs all read these.
    CANCELLABLE_STATES = (_S.PENDING_APPROVAL, _S.QUEUED)
    REVISABLE_STATES = (_S.PENDING_APPROVAL,)
    # Abort: a rollout in progress; and a rollback waiting for the cluster to answer (its apply
    # retries until then), which only a person can stop. `abortable` and `abortable_filter()`
    # are this rule, for a row in memory and as the guard of the abort's conditional UPDATE.
    ABORTABLE_STATES = (_S.ROLLING_OUT,)
    WAITING_ROLLBACK_STATES = (_S.APPLYING,)

    environment = models.ForeignKey(
        "deployments.Environment", on_delete=models.PROTECT, related_name="deploy_requests"
    )
    model = models.ForeignKey(
        "catalog.RegisteredModel", on_delete=models.PROTECT, related_name="deploy_requests"
    )
    version = models.ForeignKey(
        "catalog.ModelVersion", on_delete=models.PROTECT, related_name="deploy_requests"
    )
    kind = models.CharField(max_length=10, choices=Kind.choices, default=Kind.DEPLOY)
    state = models.CharField(max_length=20, choices=State.choices)
    # Null for the portal's own requests (automatic rollbacks).
    requester = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="deploy_requests",
    )
    reason = models.TextField(blank=True, max_length=2000)

    # Options on top of the environment's defaults (stored as the effective values).
    replicas = models.PositiveSmallIntegerField(validators=[MaxValueValidator(100)])
    cpu_request = models.CharField(max_length=20)
    cpu_limit = models.CharField(max_length=20)
    memory_request = models.CharField(max_length=20)
    memory_limit = models.CharField(max_length=20)
    canary_traffic_percent = models.PositiveSmallIntegerField(
        null=True, blank=True, validators=[MaxValueValidator(100)]
    )
    # A rollback with nothing earlier to go back to removes the objects instead of applying.
    removes_objects = models.BooleanField(default=False)

    # What will be applied, rendered once (approvers review exactly this), and the planned
    # change against the live objects: [{"kind", "name", "action", "text"}].
    manifest = models.TextField(blank=True)
    plan = models.JSONField(default=list, blank=True)
    plan_error = models.TextField(blank=True)

    approval = models.ForeignKey(
        "approvals.ApprovalRequest",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    # Staff may go round windows, freezes and promotion order; what and why are kept.
    bypassed = models.JSONField(default=list, blank=True)
    bypass_reason = models.TextField(blank=True, max_length=2000)
    rollback_of = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="rollbacks"
    )

    # Execution bookkeeping: `token` fences tasks (each claim bumps it, so a stale task is a
    # no-op), `attempts` counts claims of the apply step, `heartbeat_at` is the last time a
    # worker touched the row, `observed` is what was seen before the apply.
    token = models.PositiveIntegerField(default=0)
    attempts = models.PositiveSmallIntegerField(default=0)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    observed = models.JSONField(default=dict, blank=True)
    status_reason = models.TextField(blank=True)
    error = models.TextField(blank=True)
    # Since when the cluster could not be read or written (transient errors), across looks and
    # workers; cleared when a call succeeds again. A rollout fails once its deadline passes in
    # this state; a rollback keeps trying until the cluster answers or someone aborts it.
    cluster_unreachable_since = models.DateTimeField(null=True, blank=True)
    cluster_revision = models.CharField(max_length=100, blank=True)

    created_at = models.DateTimeField()
    queued_at = models.DateTimeField(null=True, blank=True)
    applying_at = models.DateTimeField(null=True, blank=True)
    rolling_out_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["environment", "model"],
                condition=Q(state__in=ACTIVE_STATES),
                name="deploy_one_active_per_environment_model",
            ),
            models.CheckConstraint(
                condition=Q(state__in=DeployState.values), name="deploy_state_valid"
            ),
            models.CheckConstraint(
                condition=Q(state__in=ACTIVE_STATES, finished_at__isnull=True)
                | Q(state__in=FINAL_STATES, finished_at__isnull=False),
                name="deploy_finished_iff_final",
            ),
            models.CheckConstraint(
                condition=Q(kind=DeployKind.ROLLBACK) | Q(removes_objects=False),
                name="deploy_only_rollback_removes",
            ),
        ]
        indexes = [
            models.Index(
                fields=["state", "heartbeat_at"],
                name="deploy_worker_state_idx",
                condition=Q(state__in=WORKER_STATES),
            ),
            models.Index(fields=["environment", "model", "-created_at"], name="deploy_pair_idx"),
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.model.name} v{self.version.version} → {self.environment.name}"

    @property
    def is_active(self) -> bool:
        return self.state in self.ACTIVE_STATES

    @property
    def done(self) -> bool:
        return self.state in self.FINAL_STATES

    @property
    def cancellable(self) -> bool:
        """Nothing was applied yet, so it can be withdrawn."""
        return self.state in self.CANCELLABLE_STATES

    @property
    def revisable(self) -> bool:
        """Still waiting for approval, so its version and options can change."""
        return self.state in self.REVISABLE_STATES

    @property
    def abortable(self) -> bool:
        """Rolling out (a deploy is stopped and rolled back; a rollback is stopped), or a
        rollback waiting for the cluster."""
        return self.state in self.ABORTABLE_STATES or self.waiting_for_cluster

    @property
    def waiting_for_cluster(self) -> bool:
        """A rollback whose apply keeps retrying because the cluster does not answer."""
        return (
            self.kind == self.Kind.ROLLBACK
            and self.state in self.WAITING_ROLLBACK_STATES
            and self.cluster_unreachable_since is not None
        )

    @classmethod
    def abortable_filter(cls) -> Q:
        """`abortable` as a filter: the abort's conditional UPDATE is guarded by it."""
        return Q(state__in=cls.ABORTABLE_STATES) | Q(
            kind=cls.Kind.ROLLBACK,
            state__in=cls.WAITING_ROLLBACK_STATES,
            cluster_unreachable_since__isnull=False,
        )

    @property
    def rollout_deadline_seconds(self) -> int:
        """How long a rollout may go on: the environment's progress deadline plus the portal's
        margin (DEPLOY_DEADLINE_MARGIN_SECONDS), counted from the move to rolling out."""
        return self.environment.progress_deadline_seconds + settings.DEPLOY_DEADLINE_MARGIN_SECONDS

    @property
    def rollout_deadline_at(self) -> datetime | None:
        """When a rollout still going (or whose cluster cannot be read) fails; None before it
        rolls out."""
        if self.rolling_out_at is None:
            return None
        return self.rolling_out_at + timedelta(seconds=self.rollout_deadline_seconds)

    @property
    def is_rollback(self) -> bool:
        return self.kind == self.Kind.ROLLBACK

    def options_text(self) -> str:
        parts = [f"replicas {self.replicas}"]
        parts.append(f"cpu {self.cpu_request}/{self.cpu_limit}")
        parts.append(f"memory {self.memory_request}/{self.memory_limit}")
        if self.canary_traffic_percent is not None:
            parts.append(f"canary {self.canary_traffic_percent} %")
        return ", ".join(parts)

    @property
    def revision(self) -> str:
        """What approvers approve; a change to any of it dismisses earlier reviews."""
        verb = "roll back to" if self.kind == self.Kind.ROLLBACK else ""
        what = f"{self.model.name} v{self.version.version}"
        return f"{verb} {what} → {self.environment.slug} ({self.options_text()})".strip()

    @property
    def requester_label(self) -> str:
        # A null foreign key reads as None without a query.
        requester = self.requester
        return requester.get_username() if requester is not None else "portal (automatic)"

    # The protocol the approvals engine's catalog checks read.
    def candidate_version(self) -> Any:
        return self.version

    def baseline_version(self) -> Any:
        """The version live in THIS environment now, from its Release (not from an alias)."""
        release = (
            Release.objects.filter(
                environment_id=self.environment_id, model_id=self.model_id, live_until__isnull=True
            )
            .select_related("version")
            .first()
        )
        return release.version if release else None


class DeployEvent(models.Model):
    """One thing that happened to a request: a state change, an observation, a cluster event."""

    class Kind(models.TextChoices):
        STATE = "state", "State"
        PROGRESS = "progress", "Rollout progress"
        KUBERNETES = "kubernetes", "Kubernetes event"
        NOTE = "note", "Note"

    class Level(models.TextChoices):
        INFO = "info", "Info"
        WARNING = "warning", "Warning"
        ERROR = "error", "Error"

    request = models.ForeignKey(DeployRequest, on_delete=models.CASCADE, related_name="events")
    at = models.DateTimeField()
    kind = models.CharField(max_length=12, choices=Kind.choices)
    level = models.CharField(max_length=8, choices=Level.choices, default=Level.INFO)
    message = models.TextField()
    data = models.JSONField(default=dict, blank=True)
    # Kubernetes events are read again on every check; this key keeps one row per occurrence.
    key = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["at", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["request", "key"], condition=~Q(key=""), name="deploy_event_key_unique"
            )
        ]

    def __str__(self) -> str:
        return f"#{self.request_id} {self.kind}: {self.message[:60]}"

    @property
    def badge_value(self) -> str:
        """What its badge's tone follows: a warning or error level, else its kind."""
        return self.kind if self.level == self.Level.INFO else self.level


class Release(models.Model):
    """A version that went live in an environment, from when until when. The live one has no end.

    Rows are history: a new deploy ends the live row and adds one, so "what was live at T" is
    one query, and rolling back finds the versions that stayed live long enough.
    """

    class Health(models.TextChoices):
        UNKNOWN = "", "Not checked"
        HEALTHY = "healthy", "Healthy"
        PROGRESSING = "progressing", "Progressing"
        FAILING = "failing", "Failing"
        MISSING = "missing", "Missing on the cluster"
        UNREACHABLE = "unreachable", "Cluster unreachable"

    environment = models.ForeignKey(
        "deployments.Environment", on_delete=models.PROTECT, related_name="releases"
    )
    model = models.ForeignKey(
        "catalog.RegisteredModel", on_delete=models.PROTECT, related_name="releases"
    )
    version = models.ForeignKey(
        "catalog.ModelVersion", on_delete=models.PROTECT, related_name="releases"
    )
    # One release per request: a success handled twice cannot record two.
    deploy_request = models.OneToOneField(
        DeployRequest, on_delete=models.PROTECT, related_name="release"
    )
    storage_uri = models.TextField()
    replicas = models.PositiveSmallIntegerField()
    canary_traffic_percent = models.PositiveSmallIntegerField(null=True, blank=True)
    cluster_revision = models.CharField(max_length=100, blank=True)
    requested_by = models.CharField(max_length=150)
    approved_by = models.JSONField(default=list, blank=True)
    live_from = models.DateTimeField()
    live_until = models.DateTimeField(null=True, blank=True)
    ended_by = models.ForeignKey(
        DeployRequest, null=True, blank=True, on_delete=models.SET_NULL, related_name="ended"
    )
    # The environment's MLflow alias at the time ("" for none); moved once, after going live.
    alias = models.CharField(max_length=100, blank=True)
    alias_claimed_at = models.DateTimeField(null=True, blank=True)
    alias_moved_at = models.DateTimeField(null=True, blank=True)
    alias_error = models.TextField(blank=True)
    # Observations by the drift check (not changes: they are not audited).
    health = models.CharField(max_length=12, choices=Health.choices, blank=True, default="")
    health_detail = models.TextField(blank=True)
    drift = models.JSONField(default=list, blank=True)
    checked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-live_from", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["environment", "model"],
                condition=Q(live_until__isnull=True),
                name="release_one_live_per_environment_model",
            ),
            models.CheckConstraint(
                condition=Q(live_until__isnull=True) | Q(live_until__gte=models.F("live_from")),
                name="release_ends_after_it_starts",
            ),
        ]
        indexes = [
            models.Index(fields=["environment", "model", "-live_from"], name="release_pair_idx"),
            models.Index(fields=["live_from", "live_until"], name="release_time_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.model.name} v{self.version.version} in {self.environment.name}"

    @property
    def is_live(self) -> bool:
        return self.live_until is None
