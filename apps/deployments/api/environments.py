"""REST API for environments."""

from __future__ import annotations

from django.db.models import QuerySet
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, permissions, serializers, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import PermissionDenied
from rest_framework.request import Request
from rest_framework.response import Response

from apps.accounts.http import signed_in_user
from apps.deployments import selectors, services
from apps.deployments.api.serializers import ConnectionReportSerializer, EnvironmentSerializer
from apps.deployments.connection import environment_connection_test
from apps.deployments.models import Environment
from apps.deployments.permissions import can_manage_environments, can_view_environments


class EnvironmentPermission(permissions.BasePermission):
    """Everyone signed in reads; staff write."""

    message = "Only staff can change environments."

    def has_permission(self, request: Request, view: object) -> bool:
        if request.method in permissions.SAFE_METHODS:
            return can_view_environments(request.user)
        return can_manage_environments(request.user)


class EnvironmentViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    viewsets.GenericViewSet[Environment],
):
    """Deployment environments, in promotion order; staff create and change them."""

    serializer_class = EnvironmentSerializer
    permission_classes = [permissions.IsAuthenticated, EnvironmentPermission]
    lookup_field = "slug"
    lookup_value_regex = r"[-a-zA-Z0-9_]+"

    def get_queryset(self) -> QuerySet[Environment]:
        return selectors.environments_all()

    def perform_create(self, serializer: serializers.BaseSerializer[Environment]) -> None:
        data = dict(serializer.validated_data)
        serializer.instance = services.environment_create(
            actor=signed_in_user(self.request), name=data.pop("name"), **data
        )

    def perform_update(self, serializer: serializers.BaseSerializer[Environment]) -> None:
        environment = serializer.instance
        assert environment is not None, "update() hands over the environment it looked up"
        serializer.instance = services.environment_update(
            actor=signed_in_user(self.request),
            environment=environment,
            **serializer.validated_data,
        )

    @extend_schema(
        request=None,
        responses=ConnectionReportSerializer,
        summary="Test the connection: version, namespace and permissions, as the cluster says",
    )
    @action(detail=True, methods=["post"], url_path="test-connection")
    def test_connection(self, request: Request, slug: str) -> Response:
        environment = self.get_object()
        if not can_manage_environments(request.user):
            raise PermissionDenied("Only staff can test environment connections.")
        report = environment_connection_test(environment=environment)
        return Response(ConnectionReportSerializer(report).data)
