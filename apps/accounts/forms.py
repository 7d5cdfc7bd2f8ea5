from typing import Any

from django import forms
from django.conf import settings
from django.contrib.auth.forms import AuthenticationForm

from apps.accounts.models import Membership, Team, User
from apps.web.forms import PlainLabelsMixin


class LoginForm(PlainLabelsMixin, AuthenticationForm):
    username = forms.CharField(
        max_length=150,
        widget=forms.TextInput(attrs={"autofocus": True, "autocomplete": "username"}),
    )


def token_lifetimes() -> list[tuple[int, str]]:
    """The lifetimes offered: the usual ones up to the cap on every token's life, and the cap."""
    longest = settings.API_TOKEN_MAX_DAYS
    days = sorted({*(d for d in (7, 30, 90, 365) if d < longest), longest})
    return [(d, f"{d} days") for d in days]


class ApiTokenCreateForm(PlainLabelsMixin, forms.Form):
    name = forms.CharField(
        max_length=100, help_text="What uses it, e.g. “CI for fraud-model”.", strip=True
    )
    expires_in_days = forms.TypedChoiceField(coerce=int, label="Expires after")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        lifetimes = token_lifetimes()
        field = self.fields["expires_in_days"]
        assert isinstance(field, forms.TypedChoiceField)
        field.choices = lifetimes
        field.initial = next((d for d, _ in lifetimes if d >= 30), lifetimes[-1][0])
        field.help_text = f"Every token expires; {settings.API_TOKEN_MAX_DAYS} days at most."


class TeamCreateForm(PlainLabelsMixin, forms.ModelForm):
    class Meta:
        model = Team
        fields = ["name", "slug", "description"]
        widgets = {"description": forms.Textarea(attrs={"rows": 3})}
        help_texts = {"slug": "Used in URLs and in the MLflow tag portal.team=<slug>."}


class TeamMemberAddForm(PlainLabelsMixin, forms.Form):
    username = forms.CharField(max_length=150)
    role = forms.ChoiceField(choices=Membership.Role.choices, initial=Membership.Role.MEMBER)

    def clean_username(self) -> User:
        username = self.cleaned_data["username"].strip()
        user = User.objects.filter(username=username, is_active=True).first()
        if user is None:
            raise forms.ValidationError(f"No active user named “{username}”.")
        return user


class TeamMemberRoleForm(PlainLabelsMixin, forms.Form):
    role = forms.ChoiceField(choices=Membership.Role.choices)
