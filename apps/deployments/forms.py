import dataclasses
from typing import Any

from django import forms
from django.utils.text import slugify

from apps.accounts.models import Team
from apps.catalog import selectors as catalog_selectors
from apps.catalog.models import ModelVersion
from apps.deployments.models import Environment, ProtectionRules
from apps.deployments.planning import DeployOptions
from apps.deployments.services import EDITABLE_FIELDS
from apps.web.forms import PlainLabelsMixin, form_field

# The form's sections, in the order a person fills them in.
FIELDSETS = [
    ("Environment", ["name", "slug", "order", "description"]),
    ("Cluster", ["connection", "kubeconfig_path", "kube_context", "namespace"]),
    ("Serving", ["serving_kind", "kserve_mode", "runtime_image"]),
    (
        "Defaults for each deploy",
        [
            "replicas",
            "max_replicas",
            "cpu_request",
            "cpu_limit",
            "memory_request",
            "memory_limit",
            "gpus",
            "progress_deadline_seconds",
        ],
    ),
]


class EnvironmentForm(forms.ModelForm):
    class Meta:
        model = Environment
        fields = list(EDITABLE_FIELDS)
        help_texts = {
            "slug": "Used in URLs, labels and the API; made from the name when left empty.",
            "order": "Position on the promotion path: dev 10, staging 20, production 30.",
            "kubeconfig_path": "Empty: $KUBECONFIG, else ~/.kube/config.",
            "kube_context": "Empty: the file's current-context.",
            "namespace": "Where the model objects go; it must already exist.",
            "progress_deadline_seconds": "A rollout that makes no progress this long has failed.",
        }

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["slug"].required = False

    def clean_slug(self) -> str:
        return self.cleaned_data.get("slug") or slugify(self.cleaned_data.get("name") or "")[:40]

    def fieldsets(self) -> list[tuple[str, list[forms.BoundField]]]:
        return [(title, [self[name] for name in names]) for title, names in FIELDSETS]


# --- deploy requests ------------------------------------------------------------------------------
class DeployOptionsForm(forms.Form):
    """The options a deploy runs with; they start from the environment's defaults."""

    replicas = forms.IntegerField(min_value=1, max_value=100)
    cpu_request = forms.CharField(max_length=20, label="CPU request")
    cpu_limit = forms.CharField(max_length=20, label="CPU limit")
    memory_request = forms.CharField(max_length=20)
    memory_limit = forms.CharField(max_length=20)
    canary_traffic_percent = forms.IntegerField(
        min_value=1,
        max_value=100,
        required=False,
        label="Canary traffic %",
        help_text="Knative only: the new version gets this share; empty sends it all traffic.",
    )

    OPTION_FIELDS = tuple(option.name for option in dataclasses.fields(DeployOptions))

    def options(self) -> DeployOptions:
        """The chosen options, once the form is valid (every option field is then cleaned)."""
        return DeployOptions(**{name: self.cleaned_data[name] for name in self.OPTION_FIELDS})


class DeployRequestForm(PlainLabelsMixin, DeployOptionsForm):
    """What a person files: a model version, an environment, options prefilled from it."""

    model = forms.ModelChoiceField(queryset=catalog_selectors.models_filtered(), empty_label=None)
    version = forms.IntegerField(min_value=1)
    environment = forms.ModelChoiceField(
        queryset=Environment.objects.order_by("order"), to_field_name="slug", empty_label=None
    )
    reason = forms.CharField(
        required=False, max_length=2000, widget=forms.Textarea(attrs={"rows": 2})
    )
    bypass_reason = forms.CharField(
        required=False,
        max_length=2000,
        label="Bypass reason (staff)",
        help_text="Deploy despite a freeze, deny window or promotion order; this is audited.",
        widget=forms.Textarea(attrs={"rows": 2}),
    )

    def clean(self) -> dict[str, Any]:
        super().clean()
        data = self.cleaned_data
        model, number = data.get("model"), data.get("version")
        if model is not None and number is not None:
            version = catalog_selectors.live_version_of(model, number)
            if version is None:
                self.add_error("version", f"{model.name} has no version {number}.")
            data["model_version"] = version
        return data


class DeployRequestReviseForm(PlainLabelsMixin, DeployOptionsForm):
    """Another version or other options for a request still waiting for approval."""

    version = forms.TypedChoiceField(coerce=int)

    def __init__(self, *args: Any, versions: list[ModelVersion], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.versions = {version.version: version for version in versions}
        form_field(self, "version", forms.TypedChoiceField).choices = [
            (version.version, f"v{version.version}") for version in versions
        ]

    def chosen_version(self) -> ModelVersion:
        return self.versions[self.cleaned_data["version"]]


class ReasonForm(PlainLabelsMixin, forms.Form):
    reason = forms.CharField(
        required=False, max_length=2000, widget=forms.Textarea(attrs={"rows": 2})
    )


# --- protection rules and freezes -----------------------------------------------------------------
PROTECTION_FIELDSETS = [
    (
        "Approvals",
        [
            "required_approvals",
            "reviewer_teams",
            "required_teams",
            "bar_requester_team",
            "wait_minutes",
            "expires_after_hours",
        ],
    ),
    ("Automated checks", ["required_tags", "require_approved_card", "metric_rules"]),
    (
        "When and in which order",
        ["deny_windows", "window_timezone", "requires_previous_environment", "soak_minutes"],
    ),
    (
        "Rollback and release",
        [
            "allow_emergency_rollback",
            "rollback_min_live_minutes",
            "without_previous_release",
            "mlflow_alias",
        ],
    ),
]


class ProtectionRulesForm(PlainLabelsMixin, forms.ModelForm):
    reviewer_teams = forms.ModelMultipleChoiceField(
        queryset=Team.objects.order_by("name"),
        required=False,
        widget=forms.SelectMultiple(attrs={"size": 5}),
        help_text="Teams whose members approve.",
    )
    required_teams = forms.ModelMultipleChoiceField(
        queryset=Team.objects.order_by("name"),
        required=False,
        widget=forms.SelectMultiple(attrs={"size": 5}),
        help_text="At least one approval must come from each.",
    )

    class Meta:
        model = ProtectionRules
        fields = [name for _, names in PROTECTION_FIELDSETS for name in names]
        widgets = {
            "metric_rules": forms.Textarea(attrs={"rows": 3}),
            "deny_windows": forms.Textarea(attrs={"rows": 3, "placeholder": "Fri 16:00-Mon 08:00"}),
        }

    def fieldsets(self) -> list[tuple[str, list[forms.BoundField]]]:
        return [(title, [self[name] for name in names]) for title, names in PROTECTION_FIELDSETS]


class FreezeForm(PlainLabelsMixin, forms.Form):
    reason = forms.CharField(max_length=500, help_text="People who are blocked will read this.")
    ends_at = forms.DateTimeField(
        required=False,
        label="Until (UTC)",
        help_text="Empty: until someone lifts it.",
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
    )
