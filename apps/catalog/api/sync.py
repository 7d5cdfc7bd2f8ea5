"""The catalog API's sync state: how fresh the mirror is, and "sync now" for staff."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.permissions import IsAdminUser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.accounts.http import signed_in_user
from apps.catalog import selectors, services
from apps.catalog.api.serializers import SyncStateSerializer
from apps.catalog.models import RegistrySyncState


class SyncStateView(APIView):
    @extend_schema(responses=SyncStateSerializer, summary="How fresh the catalog is")
    def get(self, request: Request) -> Response:
        state = selectors.sync_state_or_none() or RegistrySyncState()
        return Response(SyncStateSerializer(state).data)


class SyncNowView(APIView):
    permission_classes = [IsAdminUser]

    @extend_schema(
        request=None, responses={202: OpenApiTypes.OBJECT}, summary="Queue a full sync (staff)"
    )
    def post(self, request: Request) -> Response:
        services.registry_sync_request(actor=signed_in_user(request))
        return Response({"status": "queued"}, status=status.HTTP_202_ACCEPTED)
