"""The review engine's records: requests, reviews and check results, plus alias promotion."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict
from typing import Any

from django.conf import settings
from django.contrib.contenttypes.fields import GenericForeignKey
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q

from apps.approvals.rules import CheckSpec, Rules, parse_metric_rules, parse_tag_requirements

MAX_COMMENT_CHARS = 10_000


class ApprovalState(models.TextChoices):
    PENDING = "pending", "Pending"
    APPROVED = "approved", "Approved"
    REJECTED = "rejected", "Rejected"
    EXPIRED = "expired", "Expired"
    CANCELLED = "cancelled", "Cancelled"


class ApprovalRequest(models.Model):
    """A change waiting for people and checks to agree; the rules are frozen when it opens."""

    State = ApprovalState

    # Which registered subject kind this is ("alias_promotion", "deploy"): it decides what
    # happens once the request is approved.
    kind = models.CharField(max_length=40, db_index=True)
    subject_type = models.ForeignKey(ContentType, on_delete=models.PROTECT)
    subject_id = models.PositiveBigIntegerField()
    subject = GenericForeignKey("subject_type", "subject_id")
    # What exactly is being approved (e.g. "fraud-model v7"); reviews are bound to it, and a
    # change dismisses the reviews given for the earlier revision.
    subject_revision = models.CharField(max_length=200)
    title = models.CharField(max_length=300)
    requester = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="approval_requests"
    )
    rules = models.JSONField(default=dict)
    # The rules' reviewer teams as rows, so "waiting for me" is one indexed query.
    eligible_teams = models.ManyToManyField("accounts.Team", related_name="+", blank=True)
    # Whoever changed the subject while it waited (`approval_subject_revise`): like the
    # requester, they may not review it, or a reviewer could approve their own change (GitHub's
    # "prevent self-review" bars the last pusher the same way). Kept for every later revision.
    barred_reviewers = models.ManyToManyField(
        settings.AUTH_USER_MODEL, related_name="+", blank=True
    )
    state = models.CharField(max_length=12, choices=State.choices, default=State.PENDING)
    created_at = models.DateTimeField(db_index=True)
    wait_until = models.DateTimeField()
    expires_at = models.DateTimeField(null=True, blank=True)
    decided_at = models.DateTimeField(null=True, blank=True)
    decision_note = models.TextField(blank=True)
    # Set by the completion task once the subject's "on approved" effect has run.
    effect_done_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["subject_type", "subject_id"], name="approval_subject_idx"),
            models.Index(
                fields=["state", "expires_at"],
                name="approval_pending_idx",
                condition=Q(state="pending"),
            ),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(state__in=ApprovalState.values),
                name="approval_state_valid",
            ),
            models.CheckConstraint(
                condition=Q(state=ApprovalState.PENDING) | Q(decided_at__isnull=False),
                name="approval_decided_has_time",
            ),
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.title}"

    @property
    def is_open(self) -> bool:
        return self.state == self.State.PENDING


class Review(models.Model):
    """One reviewer's decision on one revision of a request."""

    class Decision(models.TextChoices):
        APPROVE = "approve", "Approve"
        REJECT = "reject", "Reject"
        REQUEST_CHANGES = "request_changes", "Request changes"

    request = models.ForeignKey(ApprovalRequest, on_delete=models.CASCADE, related_name="reviews")
    reviewer = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="reviews"
    )
    decision = models.CharField(max_length=20, choices=Decision.choices)
    comment = models.TextField(blank=True, max_length=MAX_COMMENT_CHARS)
    subject_revision = models.CharField(max_length=200)
    # The teams (slugs) the reviewer belonged to when reviewing: rules are judged against these.
    reviewer_teams = models.JSONField(default=list)
    created_at = models.DateTimeField()
    dismissed_at = models.DateTimeField(null=True, blank=True)
    dismissed_reason = models.CharField(max_length=300, blank=True)

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [
            # One live review per person and request; a dismissed one leaves room for another.
            models.UniqueConstraint(
                fields=["request", "reviewer"],
                condition=Q(dismissed_at__isnull=True),
                name="review_one_live_per_reviewer",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.reviewer} {self.decision} #{self.request_id}"


class Notification(models.Model):
    """One message about a request on one channel: the row records the work (`sent_at` is its
    done marker), a worker sends it, and beat re-drives one not sent after a grace period."""

    class Channel(models.TextChoices):
        EMAIL = "email", "E-mail"
        CHAT = "chat", "Chat"

    # Give up after this many tries. Each try is one send (the task does not retry): a failed
    # one keeps its claim for `notifications.SEND_LEASE` (5 minutes) before beat re-drives it,
    # so ten tries span some 45 minutes of a failing channel: that needs a person, not more mail.
    MAX_ATTEMPTS = 10

    approval = models.ForeignKey(
        ApprovalRequest, on_delete=models.CASCADE, related_name="notifications"
    )
    event = models.CharField(max_length=20)
    channel = models.CharField(max_length=10, choices=Channel.choices)
    created_at = models.DateTimeField()
    # A worker is sending it until this lease runs out (so two never send it at once).
    claimed_at = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    last_error = models.TextField(blank=True)

    class Meta:
        ordering = ["created_at", "id"]
        indexes = [
            models.Index(
                fields=["created_at"],
                name="notification_unsent_idx",
                condition=Q(sent_at__isnull=True),
            )
        ]

    def __str__(self) -> str:
        return f"{self.event} of #{self.approval_id} by {self.channel}"


class CheckResult(models.Model):
    """One run of one automated check against one revision of a request."""

    request = models.ForeignKey(
        ApprovalRequest, on_delete=models.CASCADE, related_name="check_results"
    )
    name = models.CharField(max_length=60)
    required = models.BooleanField()
    passed = models.BooleanField()
    detail = models.TextField(blank=True)
    subject_revision = models.CharField(max_length=200)
    ran_at = models.DateTimeField()

    class Meta:
        ordering = ["name", "-ran_at", "-id"]
        indexes = [models.Index(fields=["request", "name", "-ran_at"], name="check_latest_idx")]

    def __str__(self) -> str:
        return f"{self.name}: {'pass' if self.passed else 'fail'} (#{self.request_id})"


class ApprovalRuleFields(models.Model):
    """The approval rules staff set on what they protect (an environment, an alias pattern).

    Both kinds of protection keep the same fields and become the engine's `Rules` the same way;
    each adds what only it knows (the owning team, the checks only it offers) in `to_rules`.
    """

    required_approvals = models.PositiveSmallIntegerField(default=1)
    reviewer_teams = models.ManyToManyField(
        "accounts.Team", related_name="+", blank=True, help_text="Teams whose members approve."
    )
    required_teams = models.ManyToManyField(
        "accounts.Team",
        related_name="+",
        blank=True,
        help_text="At least one approval must come from each of these teams.",
    )
    bar_requester_team = models.BooleanField(
        default=False,
        verbose_name="Bar the requester's teams",
        help_text="Nobody from the requester's teams may approve.",
    )
    wait_minutes = models.PositiveIntegerField(
        default=0,
        verbose_name="Wait timer (minutes)",
        help_text="A request may not complete until this long after it was opened.",
    )
    expires_after_hours = models.PositiveIntegerField(
        default=72,
        verbose_name="Approvals expire after (hours)",
        help_text="Unfinished approvals expire after this many hours (0: never).",
    )
    required_tags = models.CharField(
        max_length=500, blank=True, help_text="Version tags that must be set: key=value, …"
    )
    require_approved_card = models.BooleanField(
        default=False, verbose_name="Require an approved model card"
    )
    metric_rules = models.TextField(
        blank=True,
        help_text="One per line: metric, higher or lower is better, tolerance, compared with "
        "the version it replaces, e.g. “auc higher 0.01”.",
    )

    class Meta:
        abstract = True

    def clean(self) -> None:
        errors = {}
        try:
            parse_tag_requirements(self.required_tags)
        except ValueError as exc:
            errors["required_tags"] = f"{exc}."
        try:
            parse_metric_rules(self.metric_rules)
        except ValueError as exc:
            errors["metric_rules"] = f"{exc}."
        if errors:
            raise ValidationError(errors)

    def rule_checks(self) -> list[CheckSpec]:
        """The catalog checks these fields ask for, in the order people read them."""
        checks = []
        tags = parse_tag_requirements(self.required_tags)
        if tags:
            checks.append(CheckSpec("version_has_tags", True, {"tags": tags}))
        if self.require_approved_card:
            checks.append(CheckSpec("model_card_approved", True))
        metric_rules = parse_metric_rules(self.metric_rules)
        if metric_rules:
            rules = [asdict(rule) for rule in metric_rules]
            checks.append(CheckSpec("metrics_no_worse", True, {"rules": rules}))
        return checks

    def to_rules(
        self, *, reviewer_teams: Iterable[str] = (), required_teams: Iterable[str] = ()
    ) -> Rules:
        """The engine's rules from these fields, plus teams the caller adds (the owners).

        Required teams review too: a team whose approval is required must be able to give it.
        """
        reviewers, required = set(reviewer_teams), set(required_teams)
        if self.pk is not None:
            reviewers.update(team.slug for team in self.reviewer_teams.all())
            required.update(team.slug for team in self.required_teams.all())
        return Rules(
            required_approvals=self.required_approvals,
            reviewer_teams=tuple(sorted(reviewers | required)),
            required_teams=tuple(sorted(required)),
            bar_requester_team=self.bar_requester_team,
            wait_minutes=self.wait_minutes,
            expires_after_hours=self.expires_after_hours or None,
            checks=tuple(self.rule_checks()),
        )


class AliasPolicy(ApprovalRuleFields):
    """Staff's rule: moving an alias whose name matches needs an approved request first."""

    alias_pattern = models.CharField(
        max_length=100, unique=True, help_text="An alias name, or a pattern such as prod-*"
    )
    description = models.CharField(max_length=300, blank=True)
    include_owning_team = models.BooleanField(
        default=True,
        help_text="The model's owning team may review, and one approval must come from it.",
    )
    required_metrics = models.CharField(
        max_length=500, blank=True, help_text="Metrics the run must have logged: auc, f1, …"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["alias_pattern"]
        verbose_name_plural = "alias policies"

    def __str__(self) -> str:
        return f"Protected alias {self.alias_pattern}"

    def rule_checks(self) -> list[CheckSpec]:
        """The shared checks, with "the run logged these metrics" before the comparison."""
        checks = super().rule_checks()
        metrics = [name.strip() for name in self.required_metrics.split(",") if name.strip()]
        if metrics:
            names = [check.name for check in checks]
            at = names.index("metrics_no_worse") if "metrics_no_worse" in names else len(checks)
            checks.insert(at, CheckSpec("run_has_metrics", True, {"metrics": metrics}))
        return checks


class PromotionState(models.TextChoices):
    PENDING = "pending", "Waiting for approval"
    APPLYING = "applying", "Being applied"
    APPLIED = "applied", "Applied"
    CLOSED = "closed", "Closed without change"
    FAILED = "failed", "Failed to apply"


class AliasPromotion(models.Model):
    """A request to point a protected alias at a version: the engine's catalog subject."""

    State = PromotionState

    model = models.ForeignKey(
        "catalog.RegisteredModel", on_delete=models.PROTECT, related_name="promotions"
    )
    alias = models.CharField(max_length=256)
    version = models.ForeignKey(
        "catalog.ModelVersion", on_delete=models.PROTECT, related_name="promotions"
    )
    policy = models.ForeignKey(AliasPolicy, null=True, on_delete=models.SET_NULL, related_name="+")
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    state = models.CharField(max_length=10, choices=State.choices, default=State.PENDING)
    created_at = models.DateTimeField(auto_now_add=True)
    claimed_at = models.DateTimeField(null=True, blank=True)
    applied_at = models.DateTimeField(null=True, blank=True)
    previous_version = models.PositiveIntegerField(null=True, blank=True)
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["model", "alias"],
                condition=Q(state__in=[PromotionState.PENDING, PromotionState.APPLYING]),
                name="promotion_one_open_per_alias",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.model.name}@{self.alias} → v{self.version.version}"

    @property
    def revision(self) -> str:
        return f"{self.model.name}@{self.alias} → v{self.version.version}"

    # The protocol the catalog checks read: the candidate and what it would replace.
    def candidate_version(self) -> Any:
        return self.version

    def baseline_version(self) -> Any:
        from apps.catalog.selectors import version_holding_alias

        return version_holding_alias(self.model_id, self.alias)
