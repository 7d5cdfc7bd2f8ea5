"""What people do on an incident's page. Each posts to a verb; an htmx post gets the page's
`incident` partial back (every part that shows the changed state), a plain one a redirect."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from apps.accounts.http import AuthedHttpRequest
from apps.accounts.models import User
from apps.deployments.services import ActiveRequestExistsError
from apps.incidents import services
from apps.incidents.forms import (
    DismissForm,
    MomentsForm,
    NoteForm,
    ReasonForm,
    RoleForm,
    SeverityForm,
    StatusForm,
)
from apps.incidents.models import ChangeKind, Incident
from apps.incidents.selectors import incident_live_releases
from apps.incidents.views.pages import incident_context, incident_or_404, refuse


def _answer(
    request: AuthedHttpRequest, incident: Incident, *, done: str = "", error: str = ""
) -> HttpResponse:
    if request.htmx:
        fresh = incident_or_404(request, incident.pk)
        context = incident_context(request, fresh, action_done=done, action_error=error)
        return render(
            request,
            "incidents/incident_detail.html#incident",
            context,
            status=400 if error else 200,
        )
    if error:
        messages.error(request, error)
    elif done:
        messages.success(request, done)
    return redirect("incidents:incident-detail", pk=incident.pk)


def _act(
    request: AuthedHttpRequest, pk: int, form_class: type[Any], verb: Callable[..., str]
) -> HttpResponse:
    """Read the form, call the verb; a refusal is shown where the page shows errors."""
    incident = incident_or_404(request, pk)
    form = form_class(request.POST)
    if not form.is_valid():
        errors = "; ".join(f"{name}: {' '.join(errs)}" for name, errs in form.errors.items())
        return _answer(request, incident, error=errors.replace("__all__: ", ""))
    try:
        done = verb(incident, form.cleaned_data)
    except (PermissionDenied, ValidationError) as exc:
        return _answer(request, incident, error=refuse(exc))
    return _answer(request, incident, done=done)


@require_POST
def incident_status_view(request: AuthedHttpRequest, pk: int) -> HttpResponse:
    def verb(incident: Incident, data: dict[str, Any]) -> str:
        services.incident_status_set(
            actor=request.user, incident=incident, status=data["status"], note=data["note"]
        )
        return f"Now {incident.get_status_display().lower()}."

    return _act(request, pk, StatusForm, verb)


@require_POST
def incident_dismiss_view(request: AuthedHttpRequest, pk: int) -> HttpResponse:
    def verb(incident: Incident, data: dict[str, Any]) -> str:
        services.incident_dismiss(actor=request.user, incident=incident, reason=data["reason"])
        return "Dismissed."

    return _act(request, pk, DismissForm, verb)


@require_POST
def incident_severity_view(request: AuthedHttpRequest, pk: int) -> HttpResponse:
    def verb(incident: Incident, data: dict[str, Any]) -> str:
        services.incident_severity_set(
            actor=request.user, incident=incident, severity=data["severity"]
        )
        return f"Severity {incident.get_severity_display()}."

    return _act(request, pk, SeverityForm, verb)


@require_POST
def incident_role_view(request: AuthedHttpRequest, pk: int) -> HttpResponse:
    def verb(incident: Incident, data: dict[str, Any]) -> str:
        name = data["person"].strip()
        person = User.objects.filter(username=name).first() if name else None
        if name and person is None:
            raise ValidationError(f"Nobody is called {name}.")
        services.incident_role_set(
            actor=request.user, incident=incident, role=data["role"], person=person
        )
        return "Role updated."

    return _act(request, pk, RoleForm, verb)


@require_POST
def incident_note_view(request: AuthedHttpRequest, pk: int) -> HttpResponse:
    def verb(incident: Incident, data: dict[str, Any]) -> str:
        services.incident_note_add(actor=request.user, incident=incident, body=data["body"])
        return "Note added."

    return _act(request, pk, NoteForm, verb)


@require_POST
def incident_moments_view(request: AuthedHttpRequest, pk: int) -> HttpResponse:
    def verb(incident: Incident, data: dict[str, Any]) -> str:
        services.incident_update(
            actor=request.user,
            incident=incident,
            changes={name: data[name] for name in MomentsForm.base_fields},
        )
        return "Times saved."

    return _act(request, pk, MomentsForm, verb)


@require_POST
def timeline_entry_pin_view(request: AuthedHttpRequest, pk: int, entry_pk: int) -> HttpResponse:
    incident = incident_or_404(request, pk)
    entry = incident.timeline.filter(pk=entry_pk).first()
    if entry is None:
        raise Http404("No such timeline entry.")
    try:
        services.timeline_entry_pin(
            actor=request.user, entry=entry, pinned=request.POST.get("pinned") == "1"
        )
    except PermissionDenied as exc:
        return _answer(request, incident, error=refuse(exc))
    return _answer(request, incident, done="Pinned." if entry.pinned else "Unpinned.")


@require_POST
def incident_link_view(request: AuthedHttpRequest, pk: int) -> HttpResponse:
    incident = incident_or_404(request, pk)
    kind = request.POST.get("kind", "")
    try:
        object_id = int(request.POST.get("object_id", ""))
    except ValueError:
        return _answer(request, incident, error="Choose a change to link.")
    if kind not in ChangeKind.values:
        return _answer(request, incident, error="Choose a change to link.")
    try:
        link = services.incident_change_link(
            actor=request.user, incident=incident, kind=kind, object_id=object_id
        )
    except (PermissionDenied, ValidationError) as exc:
        return _answer(request, incident, error=refuse(exc))
    return _answer(request, incident, done=f"Linked {link.label}.")


@require_POST
def incident_unlink_view(request: AuthedHttpRequest, pk: int, link_pk: int) -> HttpResponse:
    incident = incident_or_404(request, pk)
    link = incident.changes.filter(pk=link_pk).first()
    if link is None:
        raise Http404("No such link.")
    try:
        services.incident_change_unlink(actor=request.user, link=link)
    except PermissionDenied as exc:
        return _answer(request, incident, error=refuse(exc))
    return _answer(request, incident, done=f"Unlinked {link.label}.")


@require_POST
def incident_rollback_view(request: AuthedHttpRequest, pk: int, release_pk: int) -> HttpResponse:
    incident = incident_or_404(request, pk)
    release = next((r for r in incident_live_releases(incident) if r.pk == release_pk), None)
    if release is None:
        raise Http404("That is not a live release of this incident's models and environments.")
    form = ReasonForm(request.POST)
    reason = form.cleaned_data["reason"] if form.is_valid() else ""
    try:
        rollback = services.incident_rollback(
            actor=request.user, incident=incident, release=release, reason=reason
        )
    except ActiveRequestExistsError as exc:
        return _answer(request, incident, error=refuse(exc))
    except (PermissionDenied, ValidationError) as exc:
        return _answer(request, incident, error=refuse(exc))
    return _answer(request, incident, done=f"Rollback #{rollback.pk} started.")
