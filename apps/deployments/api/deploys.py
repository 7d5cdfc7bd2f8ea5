"""REST API for deploy requests, releases and the "what is live where" matrix.

A CI pipeline files a request (POST /deploy-requests/), then polls GET /deploy-requests/{id}/
until `done` is true and reads `state` (see README, "Deploy requests").
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.db.models import QuerySet
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound, PermissionDenied, ValidationError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.accounts.http import signed_in_user
from apps.catalog import selectors as catalog_selectors
from apps.deployments import selectors, services
from apps.deployments.api.serializers import (
    ActiveRequestErrorSerializer,
    BlockedErrorSerializer,
    DeployRequestCreateSerializer,
    DeployRequestDetailSerializer,
    DeployRequestReviseSerializer,
    DeployRequestSerializer,
    DryRunSerializer,
    MatrixRowSerializer,
    ReasonSerializer,
    ReleaseSerializer,
)
from apps.deployments.models import DeployRequest, Environment, Release
from apps.deployments.permissions import can_cancel_deploy, can_operate_deploy
from apps.deployments.planning import DeployOptions
from apps.web.pagination import PagePagination
from apps.web.params import clean_text, parse_moment


# --- helpers --------------------------------------------------------------------------------------
def parse_at(value: str | None) -> datetime | None:
    """An ISO 8601 time for time travel; a naive one is UTC."""
    try:
        return parse_moment(value or "")
    except ValueError as exc:
        raise ValidationError({"at": f"{exc} For example 2025-06-01T14:30:00Z."}) from None


def _options(
    environment: Environment, data: dict[str, Any], base: DeployOptions | None = None
) -> DeployOptions:
    names = ("replicas", "cpu_request", "cpu_limit", "memory_request", "memory_limit")
    given = {name: data[name] for name in names if name in data}
    start = base or DeployOptions.for_environment(environment)
    canary = data.get("canary_traffic_percent", start.canary_traffic_percent)
    return DeployOptions(**{**start.as_fields(), **given, "canary_traffic_percent": canary})


REQUEST_FILTERS = [
    OpenApiParameter("state", str, enum=DeployRequest.State.values),
    OpenApiParameter("environment", str, description="Environment slug"),
    OpenApiParameter("model", str, description="Part of the model name"),
    OpenApiParameter("kind", str, enum=DeployRequest.Kind.values),
    OpenApiParameter("requester", str, description="Username"),
    OpenApiParameter("active", bool, description="Only active (true) or finished (false)"),
]


# --- views ----------------------------------------------------------------------------------------
@extend_schema_view(
    list=extend_schema(parameters=REQUEST_FILTERS, summary="Deploy requests you may see"),
    retrieve=extend_schema(summary="One deploy request with its events, manifest and diff"),
)
class DeployRequestViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet[DeployRequest]
):
    """Deploy requests: file one, follow it, cancel or abort it."""

    def get_queryset(self) -> QuerySet[DeployRequest]:
        params = self.request.query_params
        active = params.get("active", "").lower()
        requests = selectors.deploy_requests_filtered(
            self.request.user,
            state=clean_text(params.get("state")),
            environment=clean_text(params.get("environment")),
            model=clean_text(params.get("model")),
            kind=clean_text(params.get("kind")),
            requester=clean_text(params.get("requester"), 150),
            active={"true": True, "1": True, "false": False, "0": False}.get(active),
        )
        return requests.select_related("release")

    def get_serializer_class(self) -> type[serializers.BaseSerializer[Any]]:
        return (
            DeployRequestDetailSerializer if self.action == "retrieve" else DeployRequestSerializer
        )

    def _detail(self, deploy: DeployRequest, code: int = 200) -> Response:
        """The request as it is now, after a verb that has already checked the permission."""
        fresh = selectors.deploy_request_for_response(deploy.pk)
        return Response(DeployRequestDetailSerializer(fresh).data, status=code)

    @extend_schema(
        request=DeployRequestCreateSerializer,
        responses={
            201: DeployRequestDetailSerializer,
            400: BlockedErrorSerializer,
            409: ActiveRequestErrorSerializer,
        },
        summary="File a deploy request (409 names the active request for the same pair)",
    )
    def create(self, request: Request) -> Response:
        data = DeployRequestCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        environment = values["environment"]
        created = services.deploy_request_create(
            actor=signed_in_user(request),
            environment=environment,
            version=values["model_version"],
            options=_options(environment, values),
            reason=values.get("reason", ""),
            bypass_reason=values.get("bypass_reason", ""),
        )
        # The service returns the row as it wrote it, with everything the answer reads loaded.
        return Response(DeployRequestDetailSerializer(created).data, status.HTTP_201_CREATED)

    @extend_schema(
        request=DeployRequestCreateSerializer,
        responses=DryRunSerializer,
        summary="Dry run: the manifest diff against what is live, the rules, what blocks it",
    )
    @action(detail=False, methods=["post"], url_path="dry-run")
    def dry_run(self, request: Request) -> Response:
        data = DeployRequestCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        environment = values["environment"]
        preview = services.deploy_request_preview(
            actor=signed_in_user(request),
            environment=environment,
            version=values["model_version"],
            options=_options(environment, values),
        )
        body = {
            "objects": preview.plan.objects,
            "plan_error": preview.plan.error,
            "manifest": preview.manifest,
            "rules": preview.rules,
            "blockers": [{"kind": b.kind, "message": b.message} for b in preview.blockers],
            "active_request": preview.active.pk if preview.active else None,
        }
        return Response(DryRunSerializer(body).data)

    @extend_schema(
        request=DeployRequestReviseSerializer,
        responses=DeployRequestDetailSerializer,
        summary="Change the version or options of a request waiting for approval",
    )
    def partial_update(self, request: Request, pk: str) -> Response:
        deploy = self.get_object()
        data = DeployRequestReviseSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        version = deploy.version
        if "version" in values:
            chosen = catalog_selectors.version_of(deploy.model, values["version"])
            if chosen is None:
                raise ValidationError({"version": f"No version {values['version']}."})
            version = chosen
        options = _options(deploy.environment, values, DeployOptions.of_deploy(deploy))
        revised = services.deploy_request_revise(
            actor=signed_in_user(request), deploy=deploy, version=version, options=options
        )
        return self._detail(revised)

    @extend_schema(
        request=ReasonSerializer,
        responses=DeployRequestDetailSerializer,
        summary="Cancel a request that has not been applied",
    )
    @action(detail=True, methods=["post"])
    def cancel(self, request: Request, pk: str) -> Response:
        deploy = self.get_object()
        if not can_cancel_deploy(request.user, deploy):
            raise PermissionDenied("Only the requester or staff can cancel this request.")
        data = ReasonSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        services.deploy_request_cancel(
            actor=signed_in_user(request),
            deploy=deploy,
            reason=data.validated_data.get("reason", ""),
        )
        return self._detail(deploy)

    @extend_schema(
        request=ReasonSerializer,
        responses={201: DeployRequestDetailSerializer, 200: DeployRequestDetailSerializer},
        summary="Abort a rollout in progress (201: the rollback it started), or a rollback "
        "rolling out or waiting for the cluster (200: the rollback, now failed; no other starts)",
    )
    @action(detail=True, methods=["post"])
    def abort(self, request: Request, pk: str) -> Response:
        deploy = self.get_object()
        if not can_operate_deploy(request.user, deploy):
            raise PermissionDenied("Only the model's team, the requester or staff can abort this.")
        data = ReasonSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        rollback = services.deploy_request_abort(
            actor=signed_in_user(request),
            deploy=deploy,
            reason=data.validated_data.get("reason", ""),
        )
        if rollback is None:
            return self._detail(deploy)
        return self._detail(rollback, status.HTTP_201_CREATED)


RELEASE_FILTERS = [
    OpenApiParameter("environment", str, description="Environment slug"),
    OpenApiParameter("model", str, description="Exact model name"),
    OpenApiParameter("live", bool, description="Only the live release of each pair"),
    OpenApiParameter("at", OpenApiTypes.DATETIME, description="Time travel: live at this time"),
]


@extend_schema_view(
    list=extend_schema(parameters=RELEASE_FILTERS, summary="Releases: what went live where"),
    retrieve=extend_schema(summary="One release"),
)
class ReleaseViewSet(viewsets.ReadOnlyModelViewSet[Release]):
    """What went live where, from when until when; `?at=` shows a past moment."""

    serializer_class = ReleaseSerializer

    def get_queryset(self) -> QuerySet[Release]:
        params = self.request.query_params
        return selectors.releases_filtered(
            at=parse_at(params.get("at")),
            live=params.get("live", "").lower() in {"1", "true"},
            environment=clean_text(params.get("environment")),
            model=clean_text(params.get("model"), 256),
        )

    @extend_schema(
        request=ReasonSerializer,
        responses={201: DeployRequestDetailSerializer, 409: ActiveRequestErrorSerializer},
        summary="Roll back to last good: the newest earlier version that stayed live long enough",
    )
    @action(detail=True, methods=["post"])
    def rollback(self, request: Request, pk: str) -> Response:
        release = self.get_object()
        data = ReasonSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        rollback = services.release_rollback(
            actor=signed_in_user(request),
            release=release,
            reason=data.validated_data.get("reason", ""),
        )
        fresh = selectors.deploy_requests_visible_to(request.user).filter(pk=rollback.pk).first()
        if fresh is None:
            raise NotFound()
        return Response(DeployRequestDetailSerializer(fresh).data, status=status.HTTP_201_CREATED)


class DeployMatrixView(APIView):
    """Models × environments: the release live in each (now, or at `?at=`)."""

    @extend_schema(
        parameters=[
            OpenApiParameter("at", OpenApiTypes.DATETIME, description="Time travel"),
            OpenApiParameter("search", str, description="Part of the model name"),
            OpenApiParameter("team", str, description="Owner team slug"),
            OpenApiParameter("page", int),
            OpenApiParameter("page_size", int),
        ],
        responses=OpenApiTypes.OBJECT,
        summary="What is live where: one row per model, one cell per environment",
    )
    def get(self, request: Request) -> Response:
        at = parse_at(request.query_params.get("at"))
        models = selectors.matrix_models(
            at=at,
            search=clean_text(request.query_params.get("search")),
            team=clean_text(request.query_params.get("team")),
        )
        paginator = PagePagination()
        page = paginator.paginate_queryset(models, request, view=self)
        matrix = selectors.matrix_for(page or [], at=at)
        slugs = [environment.slug for environment in matrix.environments]
        rows = MatrixRowSerializer(matrix.rows, many=True).data
        response = paginator.get_paginated_response(rows)
        response.data["at"] = at.isoformat() if at else None
        response.data["environments"] = slugs
        return response
