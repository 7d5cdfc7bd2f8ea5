from django import forms
from django.utils.text import slugify

from apps.deployments.models import Environment
from apps.deployments.services import EDITABLE_FIELDS

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

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.fields["slug"].required = False

    def clean_slug(self) -> str:
        return self.cleaned_data.get("slug") or slugify(self.cleaned_data.get("name") or "")[:40]

    def fieldsets(self) -> list[tuple[str, list[forms.BoundField]]]:
        return [(title, [self[name] for name in names]) for title, names in FIELDSETS]
