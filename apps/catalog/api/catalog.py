"""The catalog API: registered models (with owner and card verbs) and versions."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import serializers, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound, PermissionDenied
from rest_framework.request import Request
from rest_framework.response import Response

from apps.accounts.http import signed_in_user
from apps.catalog import selectors, services
from apps.catalog.api.serializers import (
    CardReturnSerializer,
    ModelCardSerializer,
    ModelListRows,
    ModelVersionSerializer,
    OwnerSerializer,
    RegisteredModelDetailSerializer,
    RegisteredModelSerializer,
    model_list_rows,
)
from apps.catalog.models import ModelCard, ModelVersion, RegisteredModel
from apps.catalog.permissions import (
    can_edit_model_card,
    can_review_model_card,
    teams_user_may_give_model_to,
)

MODEL_FILTERS = [
    OpenApiParameter("search", str, description="Part of the name or description"),
    OpenApiParameter("name", str, description="Exact model name"),
    OpenApiParameter("team", str, description="Owner team slug, or `none`"),
    OpenApiParameter("tag", str, description="`key` or `key=value`"),
    OpenApiParameter("alias", str, description="Has this alias"),
    OpenApiParameter("include_deleted", bool),
    OpenApiParameter("ordering", str, enum=list(selectors.MODEL_SORTS)),
]


@extend_schema_view(
    list=extend_schema(parameters=MODEL_FILTERS, responses=RegisteredModelSerializer(many=True))
)
class RegisteredModelViewSet(viewsets.ReadOnlyModelViewSet[RegisteredModel]):
    """Registered models mirrored from MLflow. Every signed-in user may read them."""

    def list(self, request: Request) -> Response:
        rows = ModelListRows(self.get_queryset())
        # DRF's paginator only counts and slices what it is given, as Django's Paginator does.
        page: list[dict[str, Any]] | None = self.paginate_queryset(rows)  # type: ignore[arg-type]  # stubs: QuerySet or Sequence only
        return self.get_paginated_response(model_list_rows(page or []))

    def get_queryset(self) -> QuerySet[RegisteredModel]:
        if self.action != "list":
            return RegisteredModel.objects.select_related("owner_team", "card")
        params = self.request.query_params
        models = selectors.models_filtered(
            search=params.get("search", "")[:200],
            team=params.get("team", ""),
            tag=params.get("tag", "")[:300],
            alias=params.get("alias", ""),
            include_deleted=params.get("include_deleted", "").lower() in {"1", "true", "yes"},
            sort=params.get("ordering", "name"),
        )
        if params.get("name"):
            models = models.filter(name=params["name"])
        return models

    def get_serializer_class(self) -> type[serializers.BaseSerializer[Any]]:
        if self.action == "retrieve":
            return RegisteredModelDetailSerializer
        if self.action == "owner":
            return OwnerSerializer
        if self.action in {"card", "card_return"}:
            return ModelCardSerializer if self.action == "card" else CardReturnSerializer
        return RegisteredModelSerializer

    @extend_schema(
        request=OwnerSerializer, responses=RegisteredModelSerializer, summary="Set the owner team"
    )
    @action(detail=True, methods=["put"])
    def owner(self, request: Request, pk: str) -> Response:
        model = self.get_object()
        data = OwnerSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        team = data.validated_data["team"]
        allowed = teams_user_may_give_model_to(request.user, model)
        if not allowed:
            raise PermissionDenied(
                "Only staff or the owning team's maintainers can change the owner."
            )
        if team is not None and team not in allowed:
            raise PermissionDenied(f"You cannot give this model to {team.slug}.")
        model = services.model_owner_set(actor=signed_in_user(request), model=model, team=team)
        return Response(RegisteredModelSerializer(self.get_queryset().get(pk=model.pk)).data)

    @extend_schema(methods=["GET"], responses=ModelCardSerializer, summary="Read the model card")
    @extend_schema(
        methods=["PUT"],
        request=ModelCardSerializer,
        responses=ModelCardSerializer,
        summary="Write the model card",
    )
    @action(detail=True, methods=["get", "put"])
    def card(self, request: Request, pk: str) -> Response:
        model = self.get_object()
        if request.method == "GET":
            card = (
                ModelCard.objects.filter(model=model)
                .select_related("updated_by", "approved_by")
                .first()
            )
            if card is None:
                raise NotFound("This model has no card yet.")
            return Response(ModelCardSerializer(card).data)
        if not can_edit_model_card(request.user, model):
            raise PermissionDenied("Only the owning team or staff can edit this model's card.")
        data = ModelCardSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        card = services.model_card_update(
            actor=signed_in_user(request),
            model=model,
            content=data.validated_data.get("content", ""),
            risk=data.validated_data.get("risk", ModelCard.Risk.UNKNOWN),
        )
        return Response(ModelCardSerializer(card).data)

    def _card_transition(self, request: Request, verb: str) -> Response:
        model = self.get_object()
        if verb == "submit":
            if not can_edit_model_card(request.user, model):
                raise PermissionDenied("Only the owning team or staff can submit this card.")
            card = services.model_card_submit(actor=signed_in_user(request), model=model)
        elif verb == "approve":
            if not can_review_model_card(request.user):
                raise PermissionDenied("Only card reviewers can approve model cards.")
            card = services.model_card_approve(actor=signed_in_user(request), model=model)
        else:
            if not can_review_model_card(request.user):
                raise PermissionDenied("Only card reviewers can send a card back.")
            data = CardReturnSerializer(data=request.data)
            data.is_valid(raise_exception=True)
            card = services.model_card_return(
                actor=signed_in_user(request), model=model, reason=data.validated_data["reason"]
            )
        return Response(ModelCardSerializer(card).data)

    @extend_schema(
        request=None, responses=ModelCardSerializer, summary="Submit the card for review"
    )
    @action(detail=True, methods=["post"], url_path="card/submit")
    def card_submit(self, request: Request, pk: str) -> Response:
        return self._card_transition(request, "submit")

    @extend_schema(request=None, responses=ModelCardSerializer, summary="Approve the card")
    @action(detail=True, methods=["post"], url_path="card/approve")
    def card_approve(self, request: Request, pk: str) -> Response:
        return self._card_transition(request, "approve")

    @extend_schema(
        request=CardReturnSerializer, responses=ModelCardSerializer, summary="Send the card back"
    )
    @action(detail=True, methods=["post"], url_path="card/return")
    def card_return(self, request: Request, pk: str) -> Response:
        return self._card_transition(request, "return")


VERSION_FILTERS = [
    OpenApiParameter("name", str, description="Model name"),
    OpenApiParameter("team", str, description="Owner team slug"),
    OpenApiParameter("tag", str, description="Version tag: `key` or `key=value`"),
    OpenApiParameter("alias", str, description="Only the version holding this alias"),
    OpenApiParameter("include_deleted", bool),
]


@extend_schema_view(list=extend_schema(parameters=VERSION_FILTERS))
class ModelVersionViewSet(viewsets.ReadOnlyModelViewSet[ModelVersion]):
    """Model versions across the catalog, with their run's metrics and params."""

    serializer_class = ModelVersionSerializer

    def get_queryset(self) -> QuerySet[ModelVersion]:
        params = self.request.query_params
        return selectors.versions_filtered(
            name=params.get("name", ""),
            team=params.get("team", ""),
            tag=params.get("tag", "")[:300],
            alias=params.get("alias", ""),
            include_deleted=params.get("include_deleted", "").lower() in {"1", "true", "yes"},
        )
