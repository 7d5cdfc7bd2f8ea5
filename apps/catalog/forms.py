from typing import TypedDict

from django import forms

from apps.accounts.models import Team
from apps.catalog.models import ModelCard
from apps.catalog.selectors import MODEL_SORTS
from apps.web.forms import PlainLabelsMixin, form_field


class ModelFilters(TypedDict):
    """The keyword arguments of `selectors.models_filtered` that the catalog's filters set."""

    search: str
    team: str
    tag: str
    alias: str
    include_deleted: bool
    sort: str


class CatalogFilterForm(PlainLabelsMixin, forms.Form):
    SORT_CHOICES = [
        ("name", "Name"),
        ("-updated", "Recently updated"),
        ("-created", "Newest"),
        ("-versions", "Most versions"),
    ]

    q = forms.CharField(required=False, max_length=200, label="Search")
    team = forms.ChoiceField(required=False, label="Team")
    tag = forms.CharField(required=False, max_length=300, label="Tag", help_text="key or key=value")
    alias = forms.CharField(required=False, max_length=256, label="Alias")
    sort = forms.ChoiceField(required=False, choices=SORT_CHOICES, label="Sort")
    deleted = forms.BooleanField(required=False, label="Show deleted")

    def __init__(self, *args: object, teams: list[Team], **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        form_field(self, "team", forms.ChoiceField).choices = [
            ("", "Any team"),
            ("none", "No owner"),
            *[(team.slug, team.name) for team in teams],
        ]

    def filters(self) -> ModelFilters:
        data = self.cleaned_data if self.is_valid() else {}
        sort = data.get("sort") or "name"
        return {
            "search": data.get("q", ""),
            "team": data.get("team", ""),
            "tag": data.get("tag", ""),
            "alias": data.get("alias", ""),
            "include_deleted": data.get("deleted", False),
            "sort": sort if sort in MODEL_SORTS else "name",
        }


class OwnerForm(PlainLabelsMixin, forms.Form):
    team = forms.ModelChoiceField(
        queryset=Team.objects.none(), required=False, empty_label="Nobody", to_field_name="slug"
    )

    def __init__(self, *args: object, teams: list[Team], **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        form_field(self, "team", forms.ModelChoiceField).queryset = Team.objects.filter(
            pk__in=[t.pk for t in teams]
        )


class ModelCardForm(PlainLabelsMixin, forms.ModelForm):
    class Meta:
        model = ModelCard
        fields = ["risk", "content"]
        widgets = {"content": forms.Textarea(attrs={"rows": 18})}
        help_texts = {"content": "Markdown. Intended use, limitations, evaluation."}


class CardReturnForm(PlainLabelsMixin, forms.Form):
    reason = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), max_length=2000)
