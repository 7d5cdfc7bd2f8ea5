"""Forms of the incident pages; the verbs in services.py check everything again."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from django import forms

from apps.catalog.models import RegisteredModel
from apps.catalog.selectors import model_by_name
from apps.deployments.models import Environment
from apps.deployments.selectors import environments_all
from apps.incidents.models import MOMENTS, SEVERITY_DEFINITIONS, IncidentStatus, Role, Severity
from apps.web.forms import PlainLabelsMixin, form_field

MAX_MODELS_NAMED = 20


class UtcDateTimeField(forms.DateTimeField):
    """A `datetime-local` input read as UTC (the portal shows every time in UTC)."""

    widget = forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M")

    def to_python(self, value: Any) -> datetime | None:
        moment = super().to_python(value)
        if moment is None:
            return None
        return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def severity_choices() -> list[tuple[str, str]]:
    return [(value, f"{label}: {SEVERITY_DEFINITIONS[value]}") for value, label in Severity.choices]


class IncidentOpenForm(PlainLabelsMixin, forms.Form):
    title = forms.CharField(max_length=200, help_text="What is wrong, in a few words.")
    severity = forms.ChoiceField(
        choices=severity_choices, initial=Severity.SEV3, widget=forms.RadioSelect
    )
    environments = forms.ModelMultipleChoiceField(
        queryset=Environment.objects.none(),
        required=False,
        widget=forms.CheckboxSelectMultiple,
    )
    models = forms.CharField(
        required=False,
        max_length=2000,
        label="Models",
        help_text="Registered model names, separated by commas. Who may see the incident "
        "follows their teams.",
    )
    summary = forms.CharField(
        required=False, max_length=20000, widget=forms.Textarea(attrs={"rows": 4})
    )
    started_at = UtcDateTimeField(required=False, label="Started (UTC)", help_text="Empty: now.")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        form_field(
            self, "environments", forms.ModelMultipleChoiceField
        ).queryset = environments_all()

    def clean_models(self) -> list[RegisteredModel]:
        names = [name.strip() for name in self.cleaned_data["models"].split(",") if name.strip()]
        if len(names) > MAX_MODELS_NAMED:
            raise forms.ValidationError(f"Name at most {MAX_MODELS_NAMED} models.")
        found: list[RegisteredModel] = []
        unknown: list[str] = []
        for name in dict.fromkeys(names):
            model = model_by_name(name)
            if model is None:
                unknown.append(name)
            else:
                found.append(model)
        if unknown:
            raise forms.ValidationError(f"No model named {', '.join(unknown)}.")
        return found


class StatusForm(forms.Form):
    status = forms.ChoiceField(choices=IncidentStatus.choices)
    note = forms.CharField(required=False, max_length=2000)


class SeverityForm(forms.Form):
    severity = forms.ChoiceField(choices=Severity.choices)


class RoleForm(forms.Form):
    role = forms.ChoiceField(choices=Role.choices)
    person = forms.CharField(required=False, max_length=150)


class NoteForm(PlainLabelsMixin, forms.Form):
    body = forms.CharField(
        label="Add a note",
        max_length=20000,
        widget=forms.Textarea(attrs={"rows": 3, "placeholder": "What you saw or did (Markdown)"}),
    )


class DismissForm(PlainLabelsMixin, forms.Form):
    reason = forms.CharField(label="Why is this not an incident?", max_length=2000)


class ReasonForm(PlainLabelsMixin, forms.Form):
    reason = forms.CharField(required=False, max_length=2000)


class MomentsForm(PlainLabelsMixin, forms.Form):
    started_at = UtcDateTimeField(label="Started (UTC)")
    detected_at = UtcDateTimeField(label="Detected (UTC)")
    acknowledged_at = UtcDateTimeField(label="Acknowledged (UTC)", required=False)
    mitigated_at = UtcDateTimeField(label="Mitigated (UTC)", required=False)
    resolved_at = UtcDateTimeField(label="Resolved (UTC)", required=False)

    def changes(self) -> dict[str, datetime | None]:
        return {name: self.cleaned_data[name] for name in MOMENTS}
