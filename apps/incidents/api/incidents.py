"""REST API for incidents: open one, follow and change it, its timeline, what changed before
it, and a rollback from it.

Every read goes through `selectors.incidents_visible_to`: an incident the caller may not see is
a 404 on every route. Changing one needs `can_work_incident` (403); the verbs in `services`
decide the rest and raise, and the one exception handler shapes the answer.
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

from apps.accounts.http import signed_in_user
from apps.deployments.api.serializers import ActiveRequestErrorSerializer, BlockedErrorSerializer
from apps.incidents import selectors, services
from apps.incidents.api.serializers import (
    ChangeWindowSerializer,
    DismissSerializer,
    IncidentDetailSerializer,
    IncidentOpenSerializer,
    IncidentSerializer,
    IncidentUpdateSerializer,
    LinkedChangeSerializer,
    LinkSerializer,
    NoteSerializer,
    PinSerializer,
    RoleSerializer,
    RollbackSerializer,
    RollbackStartedSerializer,
    SeveritySerializer,
    StatusSerializer,
    TimelineEntrySerializer,
)
from apps.incidents.models import Incident, IncidentStatus, Severity
from apps.incidents.permissions import can_work_incident
from apps.web.pagination import PagePagination
from apps.web.params import clean_text, parse_moment

YES = {"true", "1", "yes"}
WORK_REFUSED = "Only the model's teams, on-call and staff can change this incident."


# --- helpers --------------------------------------------------------------------------------------
def _moment(params: Any, name: str) -> datetime | None:
    """An ISO 8601 time from the query string; a naive one is UTC."""
    try:
        return parse_moment(params.get(name, ""))
    except ValueError as exc:
        raise ValidationError({name: f"{exc} For example 2025-06-01T14:30:00Z."}) from None


def _hours(params: Any) -> int:
    text = clean_text(params.get("hours"), 10).strip()
    if not text:
        return selectors.DEFAULT_WINDOW_HOURS
    if not text.isdigit():
        raise ValidationError({"hours": "A whole number of hours, e.g. 24."})
    return int(text)


INCIDENT_FILTERS = [
    OpenApiParameter("status", str, enum=IncidentStatus.values),
    OpenApiParameter("severity", str, enum=Severity.values),
    OpenApiParameter("environment", str, description="Environment slug"),
    OpenApiParameter("model", str, description="Exact model name"),
    OpenApiParameter("team", str, description="Slug of a team owning one of its models"),
    OpenApiParameter("open", bool, description="Only open ones: drafts and those worked on"),
    OpenApiParameter("since", OpenApiTypes.DATETIME, description="Started at or after"),
    OpenApiParameter("until", OpenApiTypes.DATETIME, description="Started before"),
]
TIMELINE_PARAMETERS = [
    OpenApiParameter("show", str, enum=list(selectors.TIMELINE_FILTERS)),
    OpenApiParameter("pinned", bool, description="Only the pinned entries"),
]
CHANGES_PARAMETERS = [
    OpenApiParameter(
        "hours",
        int,
        description=f"How far back from the start to look (1 to {selectors.MAX_WINDOW_HOURS}, "
        f"default {selectors.DEFAULT_WINDOW_HOURS})",
    )
]


def _path_id(name: str, what: str) -> OpenApiParameter:
    return OpenApiParameter(name, int, OpenApiParameter.PATH, description=what)


# --- views ----------------------------------------------------------------------------------------
@extend_schema_view(
    list=extend_schema(parameters=INCIDENT_FILTERS, summary="Incidents you may see, newest first"),
    retrieve=extend_schema(summary="One incident: what it touches, who leads it, its moments"),
)
class IncidentViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet[Incident]
):
    """Incidents: open one, change it through its verbs, read its timeline and what changed
    before it, roll back from it."""

    def get_queryset(self) -> QuerySet[Incident]:
        if self.action != "list":
            return selectors.incidents_visible_to(self.request.user)
        params = self.request.query_params
        return selectors.incidents_filtered(
            self.request.user,
            status=clean_text(params.get("status"), 20),
            severity=clean_text(params.get("severity"), 10),
            environment=clean_text(params.get("environment"), 40),
            model=clean_text(params.get("model"), 256),
            team=clean_text(params.get("team"), 50),
            open_only=params.get("open", "").lower() in YES,
            since=_moment(params, "since"),
            until=_moment(params, "until"),
        )

    def get_serializer_class(self) -> type[serializers.BaseSerializer[Any]]:
        return IncidentSerializer if self.action == "list" else IncidentDetailSerializer

    def _workable(self) -> Incident:
        """The incident in the URL (404 when the caller may not see it), if they may change it."""
        incident = self.get_object()
        if not can_work_incident(self.request.user, incident):
            raise PermissionDenied(WORK_REFUSED)
        return incident

    def _detail(self, incident: Incident, code: int = status.HTTP_200_OK) -> Response:
        """The incident as it is now, after a verb (that checked the permission already)."""
        fresh = selectors.incident_for_page(self.request.user, incident.pk)
        # A change can take it out of the caller's sight (a scribe from another team releasing
        # their own role): then answer with the incident as the verb left it.
        return Response(IncidentDetailSerializer(fresh or incident).data, status=code)

    def retrieve(self, request: Request, pk: str) -> Response:
        found = selectors.incident_for_page(request.user, int(pk)) if pk.isdigit() else None
        if found is None:
            raise NotFound()
        return Response(IncidentDetailSerializer(found).data)

    @extend_schema(
        request=IncidentOpenSerializer,
        responses={201: IncidentDetailSerializer},
        summary="Open an incident (you acknowledge it by opening it)",
    )
    def create(self, request: Request) -> Response:
        data = IncidentOpenSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        incident = services.incident_open(
            actor=signed_in_user(request),
            title=values["title"],
            severity=values["severity"],
            summary=values.get("summary", ""),
            affected=data.affected(),
            started_at=values.get("started_at"),
            detected_at=values.get("detected_at"),
            commander=values.get("commander"),
        )
        return self._detail(incident, status.HTTP_201_CREATED)

    @extend_schema(
        request=IncidentUpdateSerializer,
        responses=IncidentDetailSerializer,
        summary="Change the title, summary or moments; add environments, models, releases",
    )
    def partial_update(self, request: Request, pk: str) -> Response:
        incident = self._workable()
        data = IncidentUpdateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        services.incident_update(
            actor=signed_in_user(request),
            incident=incident,
            changes=data.changes(),
            affected=data.affected(),
        )
        return self._detail(incident)

    @extend_schema(
        request=StatusSerializer,
        responses=IncidentDetailSerializer,
        summary="Move the status (to one of `next_statuses`), with an optional note",
    )
    @action(detail=True, methods=["post"], url_path="status")
    def status_set(self, request: Request, pk: str) -> Response:
        incident = self._workable()
        data = StatusSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        services.incident_status_set(
            actor=signed_in_user(request), incident=incident, **data.validated_data
        )
        return self._detail(incident)

    @extend_schema(
        request=DismissSerializer,
        responses=IncidentDetailSerializer,
        summary="Dismiss a draft: not an incident after all (the reason is kept)",
    )
    @action(detail=True, methods=["post"])
    def dismiss(self, request: Request, pk: str) -> Response:
        incident = self._workable()
        data = DismissSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        services.incident_dismiss(
            actor=signed_in_user(request), incident=incident, reason=data.validated_data["reason"]
        )
        return self._detail(incident)

    @extend_schema(
        request=SeveritySerializer, responses=IncidentDetailSerializer, summary="Set the severity"
    )
    @action(detail=True, methods=["post"], url_path="severity")
    def severity_set(self, request: Request, pk: str) -> Response:
        incident = self._workable()
        data = SeveritySerializer(data=request.data)
        data.is_valid(raise_exception=True)
        services.incident_severity_set(
            actor=signed_in_user(request),
            incident=incident,
            severity=data.validated_data["severity"],
        )
        return self._detail(incident)

    @extend_schema(
        request=RoleSerializer,
        responses=IncidentDetailSerializer,
        summary="Give a role (commander, scribe, communications) to someone, or release it",
    )
    @action(detail=True, methods=["post"], url_path="roles")
    def role_set(self, request: Request, pk: str) -> Response:
        incident = self._workable()
        data = RoleSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        services.incident_role_set(
            actor=signed_in_user(request), incident=incident, **data.validated_data
        )
        return self._detail(incident)

    @extend_schema(
        methods=["GET"],
        parameters=TIMELINE_PARAMETERS,
        responses=TimelineEntrySerializer(many=True),
        summary="The timeline, oldest first",
    )
    @extend_schema(
        methods=["POST"],
        request=NoteSerializer,
        responses={201: TimelineEntrySerializer},
        summary="Add a note (Markdown) to the timeline",
    )
    @action(detail=True, methods=["get", "post"])
    def timeline(self, request: Request, pk: str) -> Response:
        if request.method == "POST":
            incident = self._workable()
            data = NoteSerializer(data=request.data)
            data.is_valid(raise_exception=True)
            entry = services.incident_note_add(
                actor=signed_in_user(request), incident=incident, body=data.validated_data["body"]
            )
            return Response(TimelineEntrySerializer(entry).data, status=status.HTTP_201_CREATED)
        incident = self.get_object()
        params = request.query_params
        entries = selectors.timeline_of(
            incident,
            show=clean_text(params.get("show"), 20),
            pinned_only=params.get("pinned", "").lower() in YES,
        )
        paginator = PagePagination()
        page = paginator.paginate_queryset(entries, request, view=self)
        return paginator.get_paginated_response(TimelineEntrySerializer(page, many=True).data)

    @extend_schema(
        parameters=[_path_id("entry_id", "A timeline entry of this incident")],
        request=PinSerializer,
        responses=TimelineEntrySerializer,
        summary="Pin a timeline entry as a key moment, or unpin it",
    )
    @action(detail=True, methods=["post"], url_path=r"timeline/(?P<entry_id>[0-9]+)/pin")
    def pin(self, request: Request, pk: str, entry_id: str) -> Response:
        incident = self._workable()
        entry = incident.timeline.filter(pk=int(entry_id)).first()
        if entry is None:
            raise NotFound("This incident has no such timeline entry.")
        data = PinSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        services.timeline_entry_pin(
            actor=signed_in_user(request), entry=entry, pinned=data.validated_data["pinned"]
        )
        return Response(TimelineEntrySerializer(entry).data)

    @extend_schema(
        parameters=CHANGES_PARAMETERS,
        responses=ChangeWindowSerializer,
        summary="What changed before it: deploys, approvals, versions, registry events, flags",
    )
    @action(detail=True, methods=["get"])
    def changes(self, request: Request, pk: str) -> Response:
        incident = self.get_object()
        window = selectors.what_changed(
            signed_in_user(request), incident, hours=_hours(request.query_params)
        )
        return Response(ChangeWindowSerializer(window).data)

    @extend_schema(
        request=LinkSerializer,
        responses={201: LinkedChangeSerializer},
        summary="Link a change listed by /changes/ (a deploy's events then join the timeline)",
    )
    @action(detail=True, methods=["post"])
    def links(self, request: Request, pk: str) -> Response:
        incident = self._workable()
        data = LinkSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        link = services.incident_change_link(
            actor=signed_in_user(request), incident=incident, **data.validated_data
        )
        return Response(LinkedChangeSerializer(link).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        parameters=[_path_id("link_id", "A linked change of this incident")],
        request=None,
        responses={204: None},
        summary="Unlink a change",
    )
    @action(detail=True, methods=["delete"], url_path=r"links/(?P<link_id>[0-9]+)")
    def unlink(self, request: Request, pk: str, link_id: str) -> Response:
        incident = self._workable()
        link = incident.changes.filter(pk=int(link_id)).first()
        if link is None:
            raise NotFound("This incident has no such linked change.")
        services.incident_change_unlink(actor=signed_in_user(request), link=link)
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(
        request=RollbackSerializer,
        responses={
            201: RollbackStartedSerializer,
            400: BlockedErrorSerializer,
            409: ActiveRequestErrorSerializer,
        },
        summary="Roll a release the incident touches back to last good (a deploy request)",
    )
    @action(detail=True, methods=["post"])
    def rollback(self, request: Request, pk: str) -> Response:
        incident = self._workable()
        data = RollbackSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        deploy = services.incident_rollback(
            actor=signed_in_user(request), incident=incident, **data.validated_data
        )
        return Response(RollbackStartedSerializer(deploy).data, status=status.HTTP_201_CREATED)
