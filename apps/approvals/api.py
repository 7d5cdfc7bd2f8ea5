"""REST API for approvals and alias promotions; the same rules as the pages."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    extend_schema,
    extend_schema_field,
    extend_schema_view,
)
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import PermissionDenied
from rest_framework.request import Request
from rest_framework.response import Response

from apps.accounts.http import signed_in_user
from apps.accounts.models import Team, User
from apps.approvals import promotions, selectors, services
from apps.approvals.forms import AliasPolicyForm
from apps.approvals.models import (
    MAX_COMMENT_CHARS,
    AliasPolicy,
    AliasPromotion,
    ApprovalRequest,
    Review,
)
from apps.approvals.permissions import can_cancel_request, can_manage_policies, can_rerun_checks
from apps.catalog import selectors as catalog_selectors


class ReviewSerializer(serializers.ModelSerializer):
    reviewer = serializers.CharField(source="reviewer.username", read_only=True)

    class Meta:
        model = Review
        fields = [
            "reviewer",
            "decision",
            "comment",
            "subject_revision",
            "created_at",
            "dismissed_at",
            "dismissed_reason",
        ]


class ReviewWriteSerializer(serializers.Serializer):
    decision = serializers.ChoiceField(choices=Review.Decision.choices)
    comment = serializers.CharField(
        required=False, allow_blank=True, max_length=MAX_COMMENT_CHARS, default=""
    )


class CheckStatusSerializer(serializers.Serializer):
    name = serializers.CharField()
    # DRF's metaclass moves declared fields off the class: Field.required is not overridden.
    required = serializers.BooleanField()  # type: ignore[assignment]  # stubs: metaclass not modelled
    passed = serializers.BooleanField(allow_null=True)
    detail = serializers.CharField()
    ran_at = serializers.DateTimeField(allow_null=True)


class ProgressSerializer(serializers.Serializer):
    approvals = serializers.IntegerField()
    approvals_needed = serializers.IntegerField()
    teams_missing = serializers.ListField(child=serializers.CharField())
    blockers = serializers.ListField(child=serializers.CharField())
    wait_remaining_seconds = serializers.IntegerField()
    checks = CheckStatusSerializer(many=True)


class ApprovalRequestSerializer(serializers.ModelSerializer):
    requester = serializers.CharField(source="requester.username", read_only=True)

    class Meta:
        model = ApprovalRequest
        fields = [
            "id", "kind", "title", "subject_revision", "requester", "state", "rules",
            "created_at", "wait_until", "expires_at", "decided_at", "decision_note",
        ]  # fmt: skip


class ApprovalRequestDetailSerializer(ApprovalRequestSerializer):
    reviews = ReviewSerializer(many=True, read_only=True)
    progress = serializers.SerializerMethodField()
    # Who changed the subject and so may not review it (besides the requester).
    barred_reviewers = serializers.SlugRelatedField[User](
        slug_field="username", many=True, read_only=True
    )

    class Meta(ApprovalRequestSerializer.Meta):
        fields = [*ApprovalRequestSerializer.Meta.fields, "reviews", "progress", "barred_reviewers"]

    @extend_schema_field(ProgressSerializer)
    def get_progress(self, approval: ApprovalRequest) -> dict[str, Any]:
        progress = selectors.approval_progress(approval)
        return ProgressSerializer(
            {
                "approvals": len(progress.counted),
                "approvals_needed": progress.approvals_needed,
                "teams_missing": progress.teams_missing,
                "blockers": progress.blockers,
                "wait_remaining_seconds": int(progress.wait_remaining.total_seconds()),
                "checks": progress.checks,
            }
        ).data


@extend_schema_view(
    list=extend_schema(
        parameters=[
            OpenApiParameter(
                "tab", str, enum=list(selectors.TABS), description="waiting (for me), mine, all"
            ),
            OpenApiParameter("state", str, enum=ApprovalRequest.State.values),
        ]
    )
)
class ApprovalRequestViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet[ApprovalRequest]
):
    """Approval requests: each is readable by those who may see its subject (and by whoever
    opened it or is asked to review it); to anyone else it does not exist (404). The engine
    decides who may review."""

    def get_queryset(self) -> QuerySet[ApprovalRequest]:
        if getattr(self, "swagger_fake_view", False):
            return ApprovalRequest.objects.none()
        user = signed_in_user(self.request)
        if self.action != "list":
            return selectors.approvals_in_detail(user)
        params = self.request.query_params
        tab = params.get("tab", "all")
        if tab == "waiting":
            return selectors.approvals_waiting_for(user)
        if tab == "mine":
            return selectors.approvals_of(user)
        state = params.get("state", "")
        return selectors.approvals_all(
            user, state=state if state in ApprovalRequest.State.values else ""
        )

    def get_serializer_class(self) -> type[serializers.BaseSerializer[Any]]:
        if self.action == "review":
            return ReviewWriteSerializer
        return (
            ApprovalRequestDetailSerializer if self.action != "list" else ApprovalRequestSerializer
        )

    def _detail(self, pk: int, code: int = status.HTTP_200_OK) -> Response:
        return Response(
            ApprovalRequestDetailSerializer(self.get_queryset().get(pk=pk)).data, status=code
        )

    @extend_schema(
        request=ReviewWriteSerializer,
        responses={201: ApprovalRequestDetailSerializer},
        summary="Review",
    )
    @action(detail=True, methods=["post"])
    def review(self, request: Request, pk: str) -> Response:
        approval = self.get_object()
        data = ReviewWriteSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        services.approval_review_submit(
            approval=approval, reviewer=signed_in_user(request), **data.validated_data
        )
        return self._detail(approval.pk, status.HTTP_201_CREATED)

    @extend_schema(request=None, responses=ApprovalRequestDetailSerializer, summary="Re-run checks")
    @action(detail=True, methods=["post"], url_path="rerun-checks")
    def rerun_checks(self, request: Request, pk: str) -> Response:
        approval = self.get_object()
        if not can_rerun_checks(request.user, approval):
            raise PermissionDenied("Only the requester, its reviewers or staff can re-run checks.")
        services.approval_checks_rerun(approval=approval, actor=signed_in_user(request))
        return self._detail(approval.pk)

    @extend_schema(request=None, responses=ApprovalRequestDetailSerializer, summary="Cancel")
    @action(detail=True, methods=["post"])
    def cancel(self, request: Request, pk: str) -> Response:
        approval = self.get_object()
        if not can_cancel_request(request.user, approval):
            raise PermissionDenied("Only the requester or staff can cancel this request.")
        services.approval_request_cancel(approval=approval, actor=signed_in_user(request))
        return self._detail(approval.pk)


class PromotionCreateSerializer(serializers.Serializer):
    model = serializers.PrimaryKeyRelatedField(queryset=catalog_selectors.models_filtered())
    alias = serializers.RegexField(r"^[A-Za-z0-9_\-.]{1,100}$", max_length=100)
    version = serializers.IntegerField(min_value=1)


class PromotionSerializer(serializers.ModelSerializer):
    model = serializers.CharField(source="model.name", read_only=True)
    version = serializers.IntegerField(source="version.version", read_only=True)
    requested_by = serializers.CharField(source="requested_by.username", read_only=True)
    approval_request = serializers.SerializerMethodField()

    class Meta:
        model = AliasPromotion
        fields = [
            "id",
            "model",
            "alias",
            "version",
            "state",
            "requested_by",
            "created_at",
            "applied_at",
            "previous_version",
            "approval_request",
        ]

    @extend_schema_field(OpenApiTypes.INT)
    def get_approval_request(self, promotion: AliasPromotion) -> int | None:
        approval = ApprovalRequest.objects.filter(
            kind=promotions.KIND, subject_id=promotion.pk
        ).first()
        return approval.pk if approval else None


class PromotionOutcomeSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=["moved", "pending_approval"])
    promotion = PromotionSerializer(allow_null=True)


class PromotionVersionSerializer(serializers.Serializer):
    version = serializers.IntegerField(min_value=1)


class PromotionViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet[AliasPromotion]
):
    """Move an alias. Protected: opens an approval request. Otherwise: moves it at once."""

    serializer_class = PromotionSerializer

    def get_queryset(self) -> QuerySet[AliasPromotion]:
        return AliasPromotion.objects.select_related("model", "version", "requested_by")

    @extend_schema(
        request=PromotionCreateSerializer,
        responses={200: PromotionOutcomeSerializer, 201: PromotionOutcomeSerializer},
    )
    def create(self, request: Request) -> Response:
        data = PromotionCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        model, alias, version = (data.validated_data[k] for k in ("model", "alias", "version"))
        if promotions.policy_for(alias) is None:
            promotions.alias_move_direct(
                actor=signed_in_user(request), model=model, alias=alias, version=version
            )
            return Response({"status": "moved", "promotion": None})
        promotion = promotions.alias_promotion_request(
            actor=signed_in_user(request), model=model, alias=alias, version=version
        )
        return Response(
            {"status": "pending_approval", "promotion": PromotionSerializer(promotion).data},
            status=status.HTTP_201_CREATED,
        )

    @extend_schema(
        request=PromotionVersionSerializer,
        responses=PromotionSerializer,
        summary="Choose another version",
    )
    def partial_update(self, request: Request, pk: str) -> Response:
        promotion = self.get_object()
        data = PromotionVersionSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        promotion = promotions.alias_promotion_change_version(
            actor=signed_in_user(request),
            promotion=promotion,
            version=data.validated_data["version"],
        )
        return Response(PromotionSerializer(promotion).data)


class AliasPolicySerializer(serializers.ModelSerializer):
    reviewer_teams = serializers.SlugRelatedField(
        slug_field="slug", many=True, queryset=Team.objects.all()
    )
    required_teams = serializers.SlugRelatedField(
        slug_field="slug", many=True, queryset=Team.objects.all(), required=False
    )

    class Meta:
        model = AliasPolicy
        fields = [
            "id", "alias_pattern", "description", "required_approvals", "reviewer_teams",
            "required_teams", "include_owning_team", "bar_requester_team", "wait_minutes",
            "expires_after_hours", "required_tags", "require_approved_card", "required_metrics",
            "metric_rules",
        ]  # fmt: skip

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        # The form holds the rules for tags, metric rules and who may approve: use it here too.
        form_data = {**attrs}
        for name in ("reviewer_teams", "required_teams"):
            form_data[name] = [team.pk for team in attrs.get(name, [])]
        form = AliasPolicyForm(data=form_data, instance=self.instance)
        if not form.is_valid():
            errors = {
                k if k != "__all__" else "non_field_errors": [str(message) for message in v]
                for k, v in form.errors.items()
            }
            raise serializers.ValidationError(errors)
        return attrs


class AliasPolicyViewSet(viewsets.ModelViewSet[AliasPolicy]):
    """Protected aliases. Everyone reads them; staff change them."""

    serializer_class = AliasPolicySerializer

    def get_queryset(self) -> QuerySet[AliasPolicy]:
        return selectors.policies()

    def _require_staff(self) -> None:
        if not can_manage_policies(self.request.user):
            raise PermissionDenied("Only staff can change alias policies.")

    def perform_create(self, serializer: serializers.BaseSerializer[AliasPolicy]) -> None:
        self._require_staff()
        serializer.instance = promotions.alias_policy_save(
            actor=signed_in_user(self.request), policy=None, data=serializer.validated_data
        )

    def perform_update(self, serializer: serializers.BaseSerializer[AliasPolicy]) -> None:
        self._require_staff()
        serializer.instance = promotions.alias_policy_save(
            actor=signed_in_user(self.request),
            policy=serializer.instance,
            data=serializer.validated_data,
        )

    def perform_destroy(self, instance: AliasPolicy) -> None:
        self._require_staff()
        promotions.alias_policy_delete(actor=signed_in_user(self.request), policy=instance)
