from typing import Any

from django import forms

from apps.accounts.models import Team
from apps.approvals.models import MAX_COMMENT_CHARS, AliasPolicy, Review
from apps.approvals.rules import parse_metric_rules, parse_tag_requirements
from apps.web.forms import PlainLabelsMixin, form_field


class ReviewForm(PlainLabelsMixin, forms.Form):
    decision = forms.ChoiceField(choices=Review.Decision.choices, widget=forms.RadioSelect)
    comment = forms.CharField(
        required=False,
        max_length=MAX_COMMENT_CHARS,
        widget=forms.Textarea(
            attrs={"rows": 3, "placeholder": "Why (required to reject or ask for changes)"}
        ),
    )

    def clean(self) -> dict[str, Any]:
        super().clean()
        data = self.cleaned_data
        if (
            data.get("decision") in (Review.Decision.REJECT, Review.Decision.REQUEST_CHANGES)
            and not data.get("comment", "").strip()
        ):
            self.add_error("comment", "Say why: a rejection or a change request needs a comment.")
        return data


class PromotionForm(PlainLabelsMixin, forms.Form):
    alias = forms.RegexField(
        regex=r"^[A-Za-z0-9_\-.]{1,100}$",
        max_length=100,
        error_messages={"invalid": "Letters, digits, dots, dashes and underscores only."},
    )
    version = forms.IntegerField(min_value=1, max_value=10_000_000)


class PromotionVersionForm(PlainLabelsMixin, forms.Form):
    version = forms.IntegerField(min_value=1, max_value=10_000_000)


class AliasPolicyForm(PlainLabelsMixin, forms.ModelForm):
    class Meta:
        model = AliasPolicy
        fields = [
            "alias_pattern",
            "description",
            "required_approvals",
            "reviewer_teams",
            "required_teams",
            "include_owning_team",
            "bar_requester_team",
            "wait_minutes",
            "expires_after_hours",
            "required_tags",
            "require_approved_card",
            "required_metrics",
            "metric_rules",
        ]
        widgets = {
            "reviewer_teams": forms.CheckboxSelectMultiple,
            "required_teams": forms.CheckboxSelectMultiple,
            "metric_rules": forms.Textarea(attrs={"rows": 3}),
        }

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        teams = Team.objects.order_by("name")
        form_field(self, "reviewer_teams", forms.ModelMultipleChoiceField).queryset = teams
        form_field(self, "required_teams", forms.ModelMultipleChoiceField).queryset = teams

    def clean_required_tags(self) -> str:
        value = self.cleaned_data["required_tags"]
        try:
            parse_tag_requirements(value)
        except ValueError as exc:
            raise forms.ValidationError(str(exc)) from None
        return value

    def clean_metric_rules(self) -> str:
        value = self.cleaned_data["metric_rules"]
        try:
            parse_metric_rules(value)
        except ValueError as exc:
            raise forms.ValidationError(str(exc)) from None
        return value

    def clean(self) -> dict[str, Any]:
        super().clean()
        data = self.cleaned_data
        needs = data.get("required_approvals") or 0
        if needs and not data.get("reviewer_teams") and not data.get("include_owning_team"):
            raise forms.ValidationError(
                "Say who may approve: pick reviewer teams or the owning team."
            )
        return data
