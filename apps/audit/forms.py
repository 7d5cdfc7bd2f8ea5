from django import forms

from apps.web.forms import PlainLabelsMixin


class AuditFilterForm(PlainLabelsMixin, forms.Form):
    actor = forms.CharField(required=False, max_length=150, label="Actor")
    action = forms.CharField(
        required=False, max_length=100, label="Action", help_text="A prefix: team. finds all"
    )
    object_type = forms.CharField(required=False, max_length=100, label="Object type")
    object_id = forms.CharField(required=False, max_length=64, label="Object id")
