"""What an environment demands before a model goes live in it: its protection rules and freezes."""

from __future__ import annotations

from datetime import datetime

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone

from apps.approvals.models import ApprovalRuleFields
from apps.deployments.windows import WindowError, parse_windows, zone


class ProtectionRules(ApprovalRuleFields):
    """One environment's rules: approvals, checks, windows, promotion order, rollback behaviour.

    An environment without a row (or with the defaults) is unprotected: deploys go straight to
    the queue. Anything that needs a person or a check makes a deploy open an approval request;
    the approval fields themselves are the engine's (ApprovalRuleFields).
    """

    class WithoutPrevious(models.TextChoices):
        DELETE = "delete", "Remove the objects"
        SCALE_TO_ZERO = "scale_to_zero", "Scale to zero replicas"

    environment = models.OneToOneField(
        "deployments.Environment", on_delete=models.CASCADE, related_name="protection"
    )
    required_approvals = models.PositiveSmallIntegerField(
        default=0,
        validators=[MaxValueValidator(6)],
        help_text="0: no approval needed. Approvers never include the requester.",
    )
    # --- when -------------------------------------------------------------------------------------
    deny_windows = models.TextField(
        blank=True,
        help_text="No deploys in these weekly windows, one per line, e.g. “Fri 16:00-Mon 08:00”. "
        "Rollbacks are never blocked.",
    )
    window_timezone = models.CharField(
        max_length=60, default="UTC", verbose_name="Time zone of the windows"
    )
    # --- promotion order --------------------------------------------------------------------------
    requires_previous_environment = models.BooleanField(
        default=False,
        verbose_name="Promotion order",
        help_text="A version must have been live in the environment before this one on the "
        "promotion path.",
    )
    soak_minutes = models.PositiveIntegerField(
        default=0,
        verbose_name="Soak time (minutes)",
        help_text="… and stayed live there at least this long.",
    )
    # --- rollback and releases --------------------------------------------------------------------
    allow_emergency_rollback = models.BooleanField(
        default=True,
        verbose_name="Emergency rollback",
        help_text="“Roll back to last good” skips approval here.",
    )
    rollback_min_live_minutes = models.PositiveIntegerField(
        default=30,
        verbose_name="Last good: live at least (minutes)",
        help_text="“Last good” is the newest earlier version that stayed live at least this long.",
    )
    without_previous_release = models.CharField(
        max_length=20,
        choices=WithoutPrevious.choices,
        default=WithoutPrevious.DELETE,
        verbose_name="With nothing earlier to go back to",
        help_text="What a rollback does when nothing was live here before.",
    )
    mlflow_alias = models.CharField(
        max_length=100,
        blank=True,
        verbose_name="MLflow alias",
        help_text="Moved to each version that goes live here. Empty: no alias.",
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "protection rules"
        verbose_name_plural = "protection rules"

    def __str__(self) -> str:
        return f"Protection rules of {self.environment}"

    def clean(self) -> None:
        errors: dict[str, str | list[str]] = {}
        try:
            super().clean()
        except ValidationError as exc:
            errors.update(exc.message_dict)
        try:
            parse_windows(self.deny_windows)
        except WindowError as exc:
            errors["deny_windows"] = str(exc)
        try:
            zone(self.window_timezone)
        except WindowError as exc:
            errors["window_timezone"] = str(exc)
        if errors:
            raise ValidationError(errors)


class DeployFreeze(models.Model):
    """A stop on deploys to one environment, with the reason people will read."""

    environment = models.ForeignKey(
        "deployments.Environment", on_delete=models.CASCADE, related_name="freezes"
    )
    reason = models.CharField(max_length=500)
    starts_at = models.DateTimeField(default=timezone.now)
    ends_at = models.DateTimeField(null=True, blank=True, help_text="Empty: until lifted.")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    lifted_at = models.DateTimeField(null=True, blank=True)
    lifted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )

    class Meta:
        ordering = ["-starts_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(ends_at__isnull=True) | Q(ends_at__gt=models.F("starts_at")),
                name="freeze_ends_after_it_starts",
            )
        ]

    def __str__(self) -> str:
        return f"Freeze of {self.environment}: {self.reason}"

    @staticmethod
    def active_q(now: datetime) -> Q:
        return Q(lifted_at__isnull=True, starts_at__lte=now) & (
            Q(ends_at__isnull=True) | Q(ends_at__gt=now)
        )
