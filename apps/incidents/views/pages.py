"""Browser pages for incidents: the list, opening one, and the incident's own page."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods
from django.views.decorators.vary import vary_on_headers
from django_htmx.http import HttpResponseStopPolling

from apps.accounts.http import AuthedHttpRequest
from apps.deployments.selectors import environments_all
from apps.incidents import selectors, services
from apps.incidents.forms import (
    DismissForm,
    IncidentOpenForm,
    MomentsForm,
    NoteForm,
    ReasonForm,
)
from apps.incidents.models import SEVERITY_DEFINITIONS, Incident, IncidentStatus, Role, Severity
from apps.incidents.permissions import can_work_incident
from apps.web.http import render_page_or_partial
from apps.web.params import clean_text

INCIDENTS_PER_PAGE = 25
TIMELINE_SHOWN = 500
POLL_SECONDS = 5


@require_GET
@vary_on_headers("HX-Request")
def incident_list_view(request: AuthedHttpRequest) -> HttpResponse:
    params = request.GET
    status = params.get("status", "")
    severity = params.get("severity", "")
    incidents = selectors.incidents_filtered(
        request.user,
        status=status if status in IncidentStatus.values else "",
        severity=severity if severity in Severity.values else "",
        environment=clean_text(params.get("environment")),
        model=clean_text(params.get("model")),
        open_only=params.get("show") == "open",
    )
    page = Paginator(incidents, INCIDENTS_PER_PAGE).get_page(params.get("page"))
    return render_page_or_partial(
        request,
        "incidents/incident_list.html",
        "results",
        {
            "page": page,
            "incidents": list(page.object_list),
            "statuses": IncidentStatus.choices,
            "severities": Severity.choices,
            "environments": list(environments_all()),
            "filtered": any(
                params.get(key) for key in ("status", "severity", "environment", "model", "show")
            ),
        },
    )


@require_http_methods(["GET", "POST"])
def incident_open_view(request: AuthedHttpRequest) -> HttpResponse:
    form = IncidentOpenForm(request.POST or None)
    status = 200
    if request.method == "POST":
        status = 400
        if form.is_valid():
            data = form.cleaned_data
            try:
                incident = services.incident_open(
                    actor=request.user,
                    title=data["title"],
                    severity=data["severity"],
                    summary=data["summary"],
                    started_at=data["started_at"],
                    affected=services.Affected(
                        environments=tuple(data["environments"]),
                        registered_models=tuple(data["models"]),
                    ),
                )
            except ValidationError as exc:
                _add_errors(form, exc)
            else:
                messages.success(request, f"{incident.reference} opened.")
                return redirect("incidents:incident-detail", pk=incident.pk)
    return render(
        request,
        "incidents/incident_form.html",
        {"form": form, "definitions": SEVERITY_DEFINITIONS},
        status=status,
    )


def _add_errors(form: Any, exc: ValidationError) -> None:
    """A service's field errors on the form's fields where it has them, the rest on top."""
    if not hasattr(exc, "error_dict"):
        form.add_error(None, exc)
        return
    for name, errors in exc.message_dict.items():
        form.add_error(name if name in form.fields else None, errors)


def incident_or_404(request: AuthedHttpRequest, pk: int) -> Incident:
    incident = selectors.incident_for_page(request.user, pk)
    if incident is None:
        raise Http404("No such incident.")
    return incident


def _hours(request: AuthedHttpRequest) -> int:
    try:
        return int(request.GET.get("hours") or selectors.DEFAULT_WINDOW_HOURS)
    except ValueError:
        return selectors.DEFAULT_WINDOW_HOURS


def _timeline_context(request: AuthedHttpRequest, incident: Incident) -> dict[str, Any]:
    show = request.GET.get("show", "")
    show = show if show in selectors.TIMELINE_FILTERS else ""
    pinned = request.GET.get("pinned") == "1"
    entries = list(selectors.timeline_of(incident, show=show, pinned_only=pinned)[:TIMELINE_SHOWN])
    return {
        "entries": entries,
        "show": show,
        "pinned_only": pinned,
        "timeline_filters": list(selectors.TIMELINE_FILTERS),
        "poll_seconds": POLL_SECONDS,
    }


def incident_context(
    request: AuthedHttpRequest, incident: Incident, **extra: Any
) -> dict[str, Any]:
    """What the incident page and every partial of it read."""
    may_work = can_work_incident(request.user, incident)
    return {
        "incident": incident,
        "may_work": may_work,
        "window": selectors.what_changed(request.user, incident, hours=_hours(request)),
        "window_hours": (6, 24, 72, 168),
        "roles": [(role, getattr(incident, role)) for role in Role.values],
        "role_choices": Role.choices,
        "severity_choices": Severity.choices,
        "definitions": SEVERITY_DEFINITIONS,
        "note_form": NoteForm(),
        "dismiss_form": DismissForm(),
        "reason_form": ReasonForm(),
        "moments_form": MomentsForm(
            initial={name: getattr(incident, name) for name in MomentsForm.base_fields}
        ),
        "live_releases": selectors.incident_live_releases(incident),
        **_timeline_context(request, incident),
        **extra,
    }


@require_GET
@vary_on_headers("HX-Request")
def incident_detail_view(request: AuthedHttpRequest, pk: int) -> HttpResponse:
    incident = incident_or_404(request, pk)
    return render(request, "incidents/incident_detail.html", incident_context(request, incident))


@require_GET
def incident_timeline_view(request: AuthedHttpRequest, pk: int) -> HttpResponse:
    """The timeline alone: the page polls it while the incident is open, and filters it."""
    incident = incident_or_404(request, pk)
    context = {"incident": incident, "may_work": can_work_incident(request.user, incident)}
    context.update(_timeline_context(request, incident))
    response = render(request, "incidents/incident_detail.html#timeline", context)
    if request.htmx and request.htmx.trigger_name == "poll" and not incident.is_open:
        stop = HttpResponseStopPolling(response.content)
        return stop
    return response


@require_GET
def incident_changes_view(request: AuthedHttpRequest, pk: int) -> HttpResponse:
    """ "What changed before it", for another window."""
    incident = incident_or_404(request, pk)
    context = {
        "incident": incident,
        "may_work": can_work_incident(request.user, incident),
        "window": selectors.what_changed(request.user, incident, hours=_hours(request)),
        "window_hours": (6, 24, 72, 168),
    }
    return render_page_or_partial(request, "incidents/incident_detail.html", "changes", context)


def refuse(exc: PermissionDenied | ValidationError) -> str:
    if isinstance(exc, ValidationError):
        return " ".join(exc.messages)
    return str(exc) or "You may not do that."
