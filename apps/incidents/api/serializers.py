"""The incidents API's serializers: incidents, their timeline, what changed before them, and
the bodies of the verbs.

Write serializers only read and look up what a request names (an unknown slug, name, id or
username is a 400 under its field); the verbs in `services` decide everything else.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.db import models
from django.urls import reverse
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers
from rest_framework.exceptions import ValidationError

from apps.accounts.models import User
from apps.catalog import selectors as catalog_selectors
from apps.catalog.models import RegisteredModel
from apps.deployments import selectors as deploy_selectors
from apps.deployments.models import Environment, Release
from apps.incidents.models import (
    MOMENTS,
    ChangeKind,
    Incident,
    IncidentStatus,
    LinkedChange,
    Role,
    Severity,
    TimelineEntry,
)
from apps.incidents.services import Affected
from apps.incidents.services.timeline import MAX_NOTE_CHARS
from apps.web.serializers import FieldsOnceMixin

MAX_AFFECTED = 50


def _usernames(*users: User | None) -> list[str | None]:
    return [user.get_username() if user is not None else None for user in users]


def _web_url(incident: Incident) -> str:
    return reverse("incidents:incident-detail", args=[incident.pk])


def _one_of(choices: type[models.TextChoices]) -> str:
    return "One of " + ", ".join(f"`{value}`" for value in choices.values)


# `status`, `kind` and `role` are plain strings in the schema: other apps' enums carry those
# names, and a second choice set under one name needs ENUM_NAME_OVERRIDES in the settings.
STATUSES = _one_of(IncidentStatus)


# --- reading --------------------------------------------------------------------------------------
class IncidentSerializer(FieldsOnceMixin, serializers.ModelSerializer):
    """A row of the list: what it is, how bad, where, and who leads it."""

    reference = serializers.CharField(read_only=True, help_text="INC-<id>")
    status = serializers.CharField(read_only=True, help_text=STATUSES)
    environments = serializers.SlugRelatedField[Environment](
        slug_field="slug", many=True, read_only=True
    )
    models = serializers.SlugRelatedField[RegisteredModel](
        source="registered_models", slug_field="name", many=True, read_only=True
    )
    commander = serializers.SlugRelatedField[User](
        slug_field="username", read_only=True, allow_null=True, help_text="Username"
    )
    web_url = serializers.SerializerMethodField()

    class Meta:
        model = Incident
        fields = [
            "id",
            "reference",
            "title",
            "severity",
            "status",
            "source",
            "environments",
            "models",
            "commander",
            "started_at",
            "detected_at",
            "resolved_at",
            "created_at",
            "web_url",
        ]
        read_only_fields = fields

    def get_web_url(self, incident: Incident) -> str:
        return _web_url(incident)


class IncidentReleaseSerializer(serializers.ModelSerializer):
    environment = serializers.SlugRelatedField[Environment](slug_field="slug", read_only=True)
    model = serializers.SlugRelatedField[RegisteredModel](slug_field="name", read_only=True)
    version = serializers.IntegerField(source="version.version", read_only=True)
    live = serializers.BooleanField(source="is_live", read_only=True)

    class Meta:
        model = Release
        fields = ["id", "model", "version", "environment", "live", "live_from", "live_until"]
        read_only_fields = fields


class RolesSerializer(serializers.Serializer):
    commander = serializers.CharField(allow_null=True, help_text="Username")
    scribe = serializers.CharField(allow_null=True, help_text="Username")
    communications = serializers.CharField(allow_null=True, help_text="Username")


class LinkedChangeSerializer(serializers.ModelSerializer):
    kind = serializers.CharField(read_only=True, help_text=_one_of(ChangeKind))
    linked_by = serializers.SlugRelatedField[User](
        slug_field="username", read_only=True, allow_null=True, help_text="Username"
    )

    class Meta:
        model = LinkedChange
        fields = ["id", "kind", "object_id", "label", "happened_at", "linked_by", "linked_at"]
        read_only_fields = fields


class IncidentDetailSerializer(IncidentSerializer):
    """One incident with everything its page shows, except the timeline (paged on its own)."""

    severity_definition = serializers.CharField(read_only=True)
    next_statuses = serializers.ListField(
        child=serializers.CharField(),
        read_only=True,
        help_text="Where the status may move next (a draft is dismissed with its own verb).",
    )
    releases = IncidentReleaseSerializer(many=True, read_only=True)
    deploy_requests = serializers.SerializerMethodField()
    roles = serializers.SerializerMethodField()
    created_by = serializers.SlugRelatedField[User](
        slug_field="username",
        read_only=True,
        allow_null=True,
        help_text="Username; null when the portal opened it (a failed rollout, an alert)",
    )
    changes = LinkedChangeSerializer(many=True, read_only=True, help_text="Linked changes")

    class Meta(IncidentSerializer.Meta):
        fields = [
            "id",
            "reference",
            "title",
            "summary",
            "severity",
            "severity_definition",
            "status",
            "next_statuses",
            "source",
            "environments",
            "models",
            "releases",
            "deploy_requests",
            "roles",
            *MOMENTS,
            "closed_at",
            "created_at",
            "created_by",
            "dismissed_reason",
            "changes",
            "web_url",
        ]
        read_only_fields = fields

    @extend_schema_field(serializers.ListField(child=serializers.IntegerField()))
    def get_deploy_requests(self, incident: Incident) -> list[int]:
        """Requests whose events join the timeline (ids in /api/v1/deploy-requests/)."""
        return sorted(incident.deploy_requests.values_list("pk", flat=True))

    @extend_schema_field(RolesSerializer)
    def get_roles(self, incident: Incident) -> dict[str, str | None]:
        people = _usernames(incident.commander, incident.scribe, incident.communications)
        return dict(zip(Role.values, people, strict=True))


class TimelineEntrySerializer(serializers.ModelSerializer):
    author = serializers.CharField(
        source="author_label", read_only=True, help_text="Username, or `portal`"
    )

    class Meta:
        model = TimelineEntry
        fields = ["id", "at", "kind", "author", "body", "data", "pinned"]
        read_only_fields = fields


class ChangeSerializer(serializers.Serializer):
    kind = serializers.CharField(help_text=_one_of(ChangeKind))
    object_id = serializers.IntegerField()
    at = serializers.DateTimeField()
    title = serializers.CharField()
    detail = serializers.CharField()
    url = serializers.CharField(help_text="The change's page in the portal")
    match = serializers.CharField(help_text="Why it is listed: same model, environment or both")
    same_model = serializers.BooleanField()
    same_environment = serializers.BooleanField()
    linked = serializers.BooleanField(help_text="Already linked to the incident")


class ChangeWindowSerializer(serializers.Serializer):
    start = serializers.DateTimeField()
    end = serializers.DateTimeField(help_text="When the incident started")
    hours = serializers.IntegerField()
    rule = serializers.CharField(help_text="How the changes are ranked")
    changes = ChangeSerializer(many=True, help_text="Most likely first")


class RollbackStartedSerializer(serializers.Serializer):
    """The rollback's deploy request (follow it at `url`, as a CI pipeline does)."""

    id = serializers.IntegerField(source="pk")
    state = serializers.CharField()
    done = serializers.BooleanField()
    url = serializers.SerializerMethodField()
    web_url = serializers.SerializerMethodField()

    def get_url(self, deploy: Any) -> str:
        return reverse("api:deploy-request-detail", args=[deploy.pk])

    def get_web_url(self, deploy: Any) -> str:
        return reverse("deployments:request-detail", args=[deploy.pk])


# --- writing --------------------------------------------------------------------------------------
def _missing(wanted: Iterable[object], found: Iterable[object]) -> list[str]:
    known = {str(item) for item in found}
    return sorted({str(item) for item in wanted} - known)


def _quoted(names: list[str]) -> str:
    return ", ".join(f"“{name}”" for name in names)


def _user_named(username: str) -> User:
    person = User.objects.filter(username=username).first()
    if person is None:
        raise ValidationError(f"Nobody is called “{username}”.")
    return person


class AffectedSerializer(serializers.Serializer):
    """What an incident touches, by the names people and pipelines use."""

    environments = serializers.ListField(
        child=serializers.CharField(max_length=40),
        required=False,
        max_length=MAX_AFFECTED,
        help_text="Environment slugs",
    )
    models = serializers.ListField(
        child=serializers.CharField(max_length=256),
        required=False,
        max_length=MAX_AFFECTED,
        help_text="Registered model names",
    )
    releases = serializers.ListField(
        child=serializers.IntegerField(min_value=1),
        required=False,
        max_length=MAX_AFFECTED,
        help_text="Release ids (each brings its environment, model and deploy request)",
    )

    def validate_environments(self, slugs: list[str]) -> list[Environment]:
        found = list(deploy_selectors.environments_all().filter(slug__in=slugs))
        unknown = _missing(slugs, (environment.slug for environment in found))
        if unknown:
            raise ValidationError(f"No environment {_quoted(unknown)}.")
        return found

    def validate_models(self, names: list[str]) -> list[RegisteredModel]:
        # A model deleted in MLflow may still be serving: it can be named too.
        found = list(catalog_selectors.models_filtered(include_deleted=True).filter(name__in=names))
        unknown = _missing(names, (model.name for model in found))
        if unknown:
            raise ValidationError(f"No model {_quoted(unknown)} in the catalog.")
        return found

    def validate_releases(self, ids: list[int]) -> list[Release]:
        found = list(deploy_selectors.releases_all().filter(pk__in=ids))
        unknown = _missing(ids, (release.pk for release in found))
        if unknown:
            raise ValidationError(f"No release {', '.join(f'#{pk}' for pk in unknown)}.")
        return found

    def affected(self) -> Affected:
        values = self.validated_data
        return Affected(
            environments=tuple(values.get("environments", ())),
            registered_models=tuple(values.get("models", ())),
            releases=tuple(values.get("releases", ())),
        )


class IncidentOpenSerializer(AffectedSerializer):
    title = serializers.CharField(max_length=200)
    severity = serializers.ChoiceField(choices=Severity.choices, default=Severity.SEV3)
    summary = serializers.CharField(
        required=False, allow_blank=True, max_length=20000, help_text="Markdown"
    )
    started_at = serializers.DateTimeField(required=False, help_text="Defaults to now")
    detected_at = serializers.DateTimeField(required=False, help_text="Defaults to now")
    commander = serializers.CharField(
        required=False, allow_null=True, max_length=150, help_text="Username"
    )

    def validate_commander(self, username: str | None) -> User | None:
        return _user_named(username) if username else None


class IncidentUpdateSerializer(AffectedSerializer):
    """Change the details and the review's moments; environments, models and releases named
    here are added to what it touches (nothing is taken away)."""

    title = serializers.CharField(required=False, max_length=200)
    summary = serializers.CharField(
        required=False, allow_blank=True, max_length=20000, help_text="Markdown"
    )
    started_at = serializers.DateTimeField(required=False)
    detected_at = serializers.DateTimeField(required=False)
    acknowledged_at = serializers.DateTimeField(required=False, allow_null=True)
    mitigated_at = serializers.DateTimeField(required=False, allow_null=True)
    resolved_at = serializers.DateTimeField(required=False, allow_null=True)

    def changes(self) -> dict[str, Any]:
        values = self.validated_data
        return {name: values[name] for name in ("title", "summary", *MOMENTS) if name in values}


class StatusSerializer(serializers.Serializer):
    status = serializers.CharField(
        max_length=20,
        help_text="One of the incident's `next_statuses` (dismiss a draft with /dismiss/)",
    )
    note = serializers.CharField(required=False, allow_blank=True, max_length=2000, default="")


class DismissSerializer(serializers.Serializer):
    reason = serializers.CharField(
        required=False,
        allow_blank=True,
        max_length=2000,
        default="",
        help_text="Why this draft is not an incident (required by the verb)",
    )


class SeveritySerializer(serializers.Serializer):
    severity = serializers.ChoiceField(choices=Severity.choices)


class RoleSerializer(serializers.Serializer):
    role = serializers.CharField(max_length=20, help_text=_one_of(Role))
    person = serializers.CharField(
        allow_null=True, max_length=150, help_text="Username; null releases the role"
    )

    def validate_person(self, username: str | None) -> User | None:
        return _user_named(username) if username else None


class NoteSerializer(serializers.Serializer):
    body = serializers.CharField(allow_blank=True, max_length=MAX_NOTE_CHARS, help_text="Markdown")


class PinSerializer(serializers.Serializer):
    pinned = serializers.BooleanField()


class LinkSerializer(serializers.Serializer):
    kind = serializers.CharField(max_length=10, help_text=_one_of(ChangeKind))
    object_id = serializers.IntegerField(min_value=1, help_text="As listed by /changes/")


class RollbackSerializer(serializers.Serializer):
    release = serializers.IntegerField(
        min_value=1, help_text="A release the incident touches (its live one, usually)"
    )
    reason = serializers.CharField(required=False, allow_blank=True, max_length=2000, default="")

    def validate_release(self, pk: int) -> Release:
        release = deploy_selectors.releases_all().filter(pk=pk).first()
        if release is None:
            raise ValidationError(f"No release #{pk}.")
        return release
