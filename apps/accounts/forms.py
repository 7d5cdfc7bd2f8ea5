from django import forms
from django.contrib.auth.forms import AuthenticationForm

from apps.accounts.models import Membership, Team, User
from apps.accounts.services import MAX_TOKEN_LIFETIME_DAYS
from apps.web.forms import PlainLabelsMixin


class LoginForm(PlainLabelsMixin, AuthenticationForm):
    username = forms.CharField(
        max_length=150,
        widget=forms.TextInput(attrs={"autofocus": True, "autocomplete": "username"}),
    )


class ApiTokenCreateForm(PlainLabelsMixin, forms.Form):
    EXPIRY_CHOICES = [("30", "30 days"), ("90", "90 days"), ("365", "1 year"), ("", "Never")]

    name = forms.CharField(
        max_length=100, help_text="What uses it, e.g. “CI for fraud-model”.", strip=True
    )
    expires_in_days = forms.TypedChoiceField(
        choices=EXPIRY_CHOICES,
        coerce=int,
        empty_value=None,
        required=False,
        initial="90",
        label="Expires",
    )

    def clean_expires_in_days(self) -> int | None:
        value = self.cleaned_data["expires_in_days"]
        if value is not None and not 1 <= value <= MAX_TOKEN_LIFETIME_DAYS:
            raise forms.ValidationError("Choose one of the offered lifetimes.")
        return value


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
