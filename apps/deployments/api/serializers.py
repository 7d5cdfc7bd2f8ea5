"""The deployments API's serializers: environments, deploy requests, releases, the matrix."""

from __future__ import annotations

from typing import Any

from django.urls import reverse
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers
from rest_framework.exceptions import ValidationError

from apps.catalog import selectors as catalog_selectors
from apps.catalog.models import RegisteredModel
from apps.deployments import selectors, services
from apps.deployments.connection import connection_of
from apps.deployments.kube.client import describe_cluster
from apps.deployments.models import DeployEvent, DeployRequest, Environment, Release
from apps.web.api_errors import ErrorSerializer
from apps.web.serializers import FieldsOnceMixin

EVENTS_SHOWN = 500


# --- environments ---------------------------------------------------------------------------------
class ClusterSerializer(serializers.Serializer):
    server = serializers.CharField()
    # DRF's metaclass moves declared fields off the class: Field.context is not overridden.
    context = serializers.CharField()  # type: ignore[assignment]  # stubs: metaclass not modelled
    simulated = serializers.BooleanField(help_text="The project's simulated API server.")
    problem = serializers.CharField(help_text="Why the kubeconfig cannot be used, if it cannot.")


class EnvironmentSerializer(serializers.ModelSerializer):
    slug = serializers.SlugField(
        max_length=40, required=False, allow_blank=True, help_text="Made from the name if empty."
    )
    cluster = serializers.SerializerMethodField()

    class Meta:
        model = Environment
        fields = [*services.EDITABLE_FIELDS, "cluster", "created_at", "updated_at"]
        read_only_fields = ["created_at", "updated_at"]

    @extend_schema_field(ClusterSerializer)
    def get_cluster(self, environment: Environment) -> dict[str, object]:
        info = describe_cluster(connection_of(environment))
        return ClusterSerializer(info).data

    def validate(self, attrs: dict[str, object]) -> dict[str, object]:
        # The model's own invariants (request <= limit, in-cluster has no kubeconfig, …) as 400s.
        current = (
            {field: getattr(self.instance, field) for field in services.EDITABLE_FIELDS}
            if self.instance is not None
            else {}
        )
        candidate = Environment(**{**current, **attrs})
        candidate.clean()
        return attrs


class CheckSerializer(serializers.Serializer):
    name = serializers.CharField()
    outcome = serializers.ChoiceField(choices=["ok", "failed", "skipped"])
    detail = serializers.CharField()


class ConnectionReportSerializer(serializers.Serializer):
    ok = serializers.BooleanField()
    summary = serializers.CharField()
    server = serializers.CharField()
    # DRF's metaclass moves declared fields off the class: Field.context is not overridden.
    context = serializers.CharField()  # type: ignore[assignment]  # stubs: metaclass not modelled
    version = serializers.CharField()
    simulated = serializers.BooleanField()
    checks = CheckSerializer(many=True)


# --- deploy requests ------------------------------------------------------------------------------
class DeployEventSerializer(serializers.ModelSerializer):
    class Meta:
        model = DeployEvent
        fields = ["at", "kind", "level", "message"]


class DeployRequestSerializer(FieldsOnceMixin, serializers.ModelSerializer):
    environment = serializers.SlugRelatedField[Environment](slug_field="slug", read_only=True)
    model = serializers.SlugRelatedField[RegisteredModel](slug_field="name", read_only=True)
    version = serializers.IntegerField(source="version.version", read_only=True)
    requester = serializers.SerializerMethodField()
    done = serializers.BooleanField(read_only=True, help_text="True once the state is final.")
    web_url = serializers.SerializerMethodField()
    release = serializers.SerializerMethodField()
    cluster_unreachable_since = serializers.DateTimeField(
        read_only=True,
        allow_null=True,
        help_text="Since when the cluster could not be read (null once it answers again). A "
        "rollout whose deadline passes in this state fails; a rollback keeps retrying until "
        "the cluster answers or it is aborted.",
    )

    class Meta:
        model = DeployRequest
        fields = [
            "id",
            "environment",
            "model",
            "version",
            "kind",
            "state",
            "done",
            "requester",
            "reason",
            "replicas",
            "cpu_request",
            "cpu_limit",
            "memory_request",
            "memory_limit",
            "canary_traffic_percent",
            "removes_objects",
            "approval",
            "bypassed",
            "bypass_reason",
            "rollback_of",
            "status_reason",
            "error",
            "cluster_unreachable_since",
            "cluster_revision",
            "release",
            "created_at",
            "queued_at",
            "applying_at",
            "rolling_out_at",
            "finished_at",
            "web_url",
        ]
        read_only_fields = fields

    def get_requester(self, deploy: DeployRequest) -> str | None:
        requester = deploy.requester  # None without a query when the key is null
        return requester.get_username() if requester is not None else None

    def get_web_url(self, deploy: DeployRequest) -> str:
        return reverse("deployments:request-detail", args=[deploy.pk])

    def get_release(self, deploy: DeployRequest) -> int | None:
        succeeded = deploy.state == DeployRequest.State.SUCCEEDED
        release = getattr(deploy, "release", None) if succeeded else None
        return release.pk if release is not None else None


class DeployRequestDetailSerializer(DeployRequestSerializer):
    events = serializers.SerializerMethodField()
    plan = serializers.JSONField(read_only=True, help_text="[{kind, name, action, text}]")

    class Meta(DeployRequestSerializer.Meta):
        fields = [*DeployRequestSerializer.Meta.fields, "manifest", "plan", "plan_error", "events"]
        read_only_fields = fields

    def get_events(self, deploy: DeployRequest) -> list[dict[str, Any]]:
        events = deploy.events.order_by("at", "id")[:EVENTS_SHOWN]
        return DeployEventSerializer(events, many=True).data  # type: ignore[return-value]  # stubs: many=True makes a ListSerializer


class OptionsSerializer(serializers.Serializer):
    replicas = serializers.IntegerField(required=False, min_value=1, max_value=100)
    cpu_request = serializers.CharField(required=False, max_length=20)
    cpu_limit = serializers.CharField(required=False, max_length=20)
    memory_request = serializers.CharField(required=False, max_length=20)
    memory_limit = serializers.CharField(required=False, max_length=20)
    canary_traffic_percent = serializers.IntegerField(
        required=False, allow_null=True, min_value=1, max_value=100
    )


class DeployRequestCreateSerializer(OptionsSerializer):
    model = serializers.CharField(max_length=256, help_text="Registered model name")
    version = serializers.IntegerField(min_value=1)
    environment = serializers.CharField(max_length=40, help_text="Environment slug")
    reason = serializers.CharField(required=False, allow_blank=True, max_length=2000)
    bypass_reason = serializers.CharField(
        required=False,
        allow_blank=True,
        max_length=2000,
        help_text="Staff only: go round a freeze, deny window or promotion order, saying why.",
    )

    def validate_environment(self, slug: str) -> Environment:
        try:
            return Environment.objects.select_related("protection").get(slug=slug)
        except Environment.DoesNotExist:
            raise ValidationError(f"No environment “{slug}”.") from None

    def validate(self, attrs: dict) -> dict:
        version = catalog_selectors.version_by_model_name(attrs["model"], attrs["version"])
        if version is not None:
            attrs["model_version"] = version
        elif catalog_selectors.model_by_name(attrs["model"]) is None:
            raise ValidationError({"model": f"No model “{attrs['model']}” in the catalog."})
        else:
            raise ValidationError(
                {"version": f"{attrs['model']} has no version {attrs['version']}."}
            )
        return attrs


class DeployRequestReviseSerializer(OptionsSerializer):
    version = serializers.IntegerField(min_value=1, required=False)


class ReasonSerializer(serializers.Serializer):
    reason = serializers.CharField(required=False, allow_blank=True, max_length=2000)


class ObjectPlanSerializer(serializers.Serializer):
    kind = serializers.CharField()
    name = serializers.CharField()
    action = serializers.ChoiceField(choices=["create", "update", "unchanged"])
    text = serializers.CharField(help_text="Unified diff of live vs planned YAML")


class BlockerSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=["freeze", "window", "promotion"])
    message = serializers.CharField()


class ActiveRequestErrorSerializer(ErrorSerializer):
    """409: another request for the same (environment, model) is still active."""

    active_request = serializers.IntegerField(allow_null=True)


class BlockedErrorSerializer(ErrorSerializer):
    """400 with `code` "blocked": a freeze, deny window or promotion order stops it now."""

    blockers = BlockerSerializer(many=True, required=False)


class DryRunSerializer(serializers.Serializer):
    objects = ObjectPlanSerializer(many=True)
    plan_error = serializers.CharField()
    manifest = serializers.CharField()
    rules = serializers.ListField(child=serializers.CharField())
    blockers = BlockerSerializer(many=True)
    active_request = serializers.IntegerField(allow_null=True)


class ReleaseSerializer(serializers.ModelSerializer):
    environment = serializers.SlugRelatedField[Environment](slug_field="slug", read_only=True)
    model = serializers.SlugRelatedField[RegisteredModel](slug_field="name", read_only=True)
    version = serializers.IntegerField(source="version.version", read_only=True)
    live = serializers.BooleanField(source="is_live", read_only=True)

    class Meta:
        model = Release
        fields = [
            "id",
            "environment",
            "model",
            "version",
            "live",
            "live_from",
            "live_until",
            "deploy_request",
            "ended_by",
            "requested_by",
            "approved_by",
            "storage_uri",
            "replicas",
            "canary_traffic_percent",
            "cluster_revision",
            "alias",
            "alias_moved_at",
            "health",
            "health_detail",
            "drift",
            "checked_at",
        ]
        read_only_fields = fields


class MatrixCellSerializer(serializers.Serializer):
    release = serializers.IntegerField(source="pk")
    version = serializers.IntegerField(source="version.version")
    live_from = serializers.DateTimeField()
    requested_by = serializers.CharField()
    approved_by = serializers.ListField(child=serializers.CharField())
    health = serializers.CharField()
    drift = serializers.ListField(child=serializers.CharField())
    deploy_request = serializers.IntegerField(source="deploy_request_id")


class MatrixRowSerializer(serializers.Serializer):
    model = serializers.CharField(source="model.name")
    owner_team = serializers.SerializerMethodField()
    environments = serializers.SerializerMethodField()

    def get_owner_team(self, row: selectors.MatrixRow) -> str | None:
        team = row.model.owner_team  # None without a query when the key is null
        return team.slug if team is not None else None

    @extend_schema_field(serializers.DictField(child=MatrixCellSerializer(allow_null=True)))
    def get_environments(self, row: selectors.MatrixRow) -> dict[str, Any]:
        return {
            cell.environment.slug: (
                MatrixCellSerializer(cell.release).data if cell.release is not None else None
            )
            for cell in row.cells
        }
