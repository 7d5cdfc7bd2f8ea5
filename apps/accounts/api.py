"""REST API for the signed-in user, teams and API tokens."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db.models import Count, Prefetch, QuerySet
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.authentication import SessionAuthentication
from rest_framework.decorators import action
from rest_framework.exceptions import PermissionDenied
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.accounts import selectors, services
from apps.accounts.http import signed_in_user
from apps.accounts.models import ApiToken, Membership, Team, User
from apps.accounts.permissions import can_create_team, can_manage_team


class MembershipOfUserSerializer(serializers.ModelSerializer[Membership]):
    team = serializers.SlugRelatedField[Team](slug_field="slug", read_only=True)

    class Meta:
        model = Membership
        fields = ["team", "role"]


class MeSerializer(serializers.ModelSerializer):
    memberships = MembershipOfUserSerializer(many=True, read_only=True)

    class Meta:
        model = User
        fields = ["id", "username", "email", "first_name", "last_name", "is_staff", "memberships"]


class MeView(APIView):
    @extend_schema(responses=MeSerializer, summary="The signed-in user and their teams")
    def get(self, request: Request) -> Response:
        me = signed_in_user(request)
        user = User.objects.prefetch_related(
            Prefetch("memberships", queryset=selectors.memberships_of(me))
        ).get(pk=me.pk)
        return Response(MeSerializer(user).data)


class TeamMemberSerializer(serializers.ModelSerializer):
    username = serializers.CharField(source="user.username", read_only=True)

    class Meta:
        model = Membership
        fields = ["username", "role", "created_at"]


class TeamSerializer(serializers.ModelSerializer):
    member_count = serializers.IntegerField(read_only=True)

    class Meta:
        model = Team
        fields = ["slug", "name", "description", "created_at", "member_count"]
        read_only_fields = ["created_at"]


class TeamDetailSerializer(TeamSerializer):
    members = TeamMemberSerializer(source="memberships", many=True, read_only=True)

    class Meta(TeamSerializer.Meta):
        fields = [*TeamSerializer.Meta.fields, "members"]


class TeamMemberWriteSerializer(serializers.Serializer):
    username = serializers.SlugRelatedField(
        slug_field="username", queryset=User.objects.filter(is_active=True)
    )
    role = serializers.ChoiceField(choices=Membership.Role.choices, default=Membership.Role.MEMBER)


class TeamMemberRoleSerializer(serializers.Serializer):
    role = serializers.ChoiceField(choices=Membership.Role.choices)


class TeamViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    viewsets.GenericViewSet[Team],
):
    """Teams; staff create them, maintainers manage their members."""

    lookup_field = "slug"
    lookup_value_regex = r"[-a-zA-Z0-9_]+"

    def get_queryset(self) -> QuerySet[Team]:
        teams = Team.objects.annotate(member_count=Count("memberships")).order_by("name")
        if self.action == "retrieve":
            teams = teams.prefetch_related(
                Prefetch("memberships", queryset=Membership.objects.select_related("user"))
            )
        return teams

    def get_serializer_class(self) -> type[serializers.BaseSerializer[Any]]:
        if self.action == "retrieve":
            return TeamDetailSerializer
        if self.action == "add_member":
            return TeamMemberWriteSerializer
        if self.action == "member":
            return TeamMemberRoleSerializer
        return TeamSerializer

    def perform_create(self, serializer: serializers.BaseSerializer[Team]) -> None:
        if not can_create_team(self.request.user):
            raise PermissionDenied("Only staff can create teams.")
        team = services.team_create(actor=signed_in_user(self.request), **serializer.validated_data)
        # Read back with its member count (none yet), as list and retrieve give it.
        serializer.instance = self.get_queryset().get(pk=team.pk)

    def _managed_team(self) -> Team:
        team = self.get_object()
        if not can_manage_team(self.request.user, team):
            raise PermissionDenied("Only the team's maintainers or staff can change its members.")
        return team

    @extend_schema(
        request=TeamMemberWriteSerializer,
        responses={201: TeamMemberSerializer},
        summary="Add a member",
    )
    @action(detail=True, methods=["post"], url_path="members")
    def add_member(self, request: Request, slug: str) -> Response:
        team = self._managed_team()
        data = TeamMemberWriteSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        membership = services.team_member_add(
            actor=signed_in_user(request),
            team=team,
            user=data.validated_data["username"],
            role=data.validated_data["role"],
        )
        return Response(TeamMemberSerializer(membership).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        methods=["PATCH"],
        request=TeamMemberRoleSerializer,
        responses=TeamMemberSerializer,
        summary="Change a member's role",
    )
    @extend_schema(
        methods=["DELETE"], request=None, responses={204: None}, summary="Remove a member"
    )
    @action(
        detail=True,
        methods=["patch", "delete"],
        url_path=r"members/(?P<username>[\w.@+-]+)",
    )
    def member(self, request: Request, slug: str, username: str) -> Response:
        team = self._managed_team()
        membership = get_object_or_404(
            Membership.objects.select_related("user", "team"), team=team, user__username=username
        )
        if request.method == "DELETE":
            services.team_member_remove(actor=signed_in_user(request), membership=membership)
            return Response(status=status.HTTP_204_NO_CONTENT)
        data = TeamMemberRoleSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        membership = services.team_member_set_role(
            actor=signed_in_user(request), membership=membership, role=data.validated_data["role"]
        )
        return Response(TeamMemberSerializer(membership).data)


class ApiTokenSerializer(serializers.ModelSerializer):
    prefix = serializers.CharField(source="display_prefix", read_only=True)
    status = serializers.CharField(read_only=True)
    ends_at = serializers.DateTimeField(
        read_only=True, help_text="When it stops working: its expiry, or API_TOKEN_MAX_DAYS."
    )
    expires_in_days = serializers.IntegerField(
        write_only=True,
        required=False,
        min_value=1,
        help_text="Lifetime in days, at most API_TOKEN_MAX_DAYS (90 by default, and the "
        "default); every token expires.",
    )

    class Meta:
        model = ApiToken
        fields = [
            "id",
            "name",
            "prefix",
            "status",
            "created_at",
            "expires_at",
            "ends_at",
            "last_used_at",
            "revoked_at",
            "expires_in_days",
        ]
        read_only_fields = ["created_at", "expires_at", "ends_at", "last_used_at", "revoked_at"]


class ApiTokenCreatedSerializer(ApiTokenSerializer):
    token = serializers.CharField(read_only=True, help_text="Shown once; store it now.")

    class Meta(ApiTokenSerializer.Meta):
        fields = [*ApiTokenSerializer.Meta.fields, "token"]


class ApiTokenViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet[ApiToken],
):
    """Your own API tokens. DELETE revokes (the row stays, for the audit trail)."""

    serializer_class = ApiTokenSerializer

    def get_queryset(self) -> QuerySet[ApiToken]:
        if getattr(self, "swagger_fake_view", False):  # schema generation has no user
            return ApiToken.objects.none()
        return selectors.api_tokens_of(signed_in_user(self.request))

    @extend_schema(request=ApiTokenSerializer, responses={201: ApiTokenCreatedSerializer})
    def create(self, request: Request) -> Response:
        if not isinstance(request.successful_authenticator, SessionAuthentication):
            raise PermissionDenied(
                "Create tokens from a signed-in session (your profile page): a token may not "
                "create another token."
            )
        data = ApiTokenSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        token, raw = services.api_token_create(
            user=signed_in_user(request),
            name=data.validated_data["name"],
            expires_in_days=data.validated_data.get("expires_in_days", settings.API_TOKEN_MAX_DAYS),
        )
        # The secret is no attribute of the token (only its hash is kept): this body's last key.
        body = {**ApiTokenSerializer(token).data, "token": raw}
        return Response(body, status=status.HTTP_201_CREATED)

    def perform_destroy(self, instance: ApiToken) -> None:
        services.api_token_revoke(actor=signed_in_user(self.request), token=instance)
