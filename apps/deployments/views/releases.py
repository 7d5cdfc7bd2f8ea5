"""What is live where (the matrix, with time travel) and "roll back to last good"."""

from __future__ import annotations

from datetime import datetime

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods
from django.views.decorators.vary import vary_on_headers

from apps.accounts.http import AuthedHttpRequest
from apps.accounts.models import Team
from apps.deployments import policy, selectors, services
from apps.deployments.connection import connection_of
from apps.deployments.forms import ReasonForm
from apps.deployments.kube.client import describe_cluster
from apps.deployments.models import Release
from apps.deployments.permissions import can_roll_back_release
from apps.web.http import render_page_or_partial
from apps.web.params import clean_text, parse_moment

MODELS_PER_PAGE = 25


def _parse_at(text: str) -> tuple[datetime | None, str]:
    """A time-travel moment from the form (UTC); an error message when it cannot be used."""
    try:
        parsed = parse_moment(text)
    except ValueError as exc:
        return None, f"{exc} Showing now."
    if parsed is not None and parsed > timezone.now():
        return None, "That moment is in the future; showing now."
    return parsed, ""


@require_GET
@vary_on_headers("HX-Request")
def matrix_view(request: AuthedHttpRequest) -> HttpResponse:
    """Models × environments: the live version, since when, who asked, who approved, health."""
    at, at_error = _parse_at(request.GET.get("at", ""))
    models = selectors.matrix_models(
        at=at, search=clean_text(request.GET.get("q")), team=clean_text(request.GET.get("team"))
    )
    page = Paginator(models, MODELS_PER_PAGE).get_page(request.GET.get("page"))
    matrix = selectors.matrix_for(list(page.object_list), at=at)
    environments = matrix.environments
    # Read from the kubeconfig files only (cached by modification time): no cluster call.
    any_simulated = any(describe_cluster(connection_of(env)).simulated for env in environments)
    return render_page_or_partial(
        request,
        "deployments/matrix.html",
        "matrix",
        {
            "page": page,
            "matrix": matrix,
            "at": at,
            "at_value": at.strftime("%Y-%m-%dT%H:%M") if at else "",
            "at_error": at_error,
            "teams": Team.objects.order_by("name"),
            "any_simulated": any_simulated,
            "filtered": bool(request.GET.get("q") or request.GET.get("team")),
        },
    )


def _live_release_or_404(pk: int) -> Release:
    release = selectors.releases_all().filter(pk=pk).first()
    if release is None:
        raise Http404("No such release.")
    return release


@require_http_methods(["GET", "POST"])
def release_rollback_view(request: AuthedHttpRequest, pk: int) -> HttpResponse:
    """One click plus a confirmation: show what "last good" is, then roll back to it."""
    release = _live_release_or_404(pk)
    if not can_roll_back_release(request.user, release.model):
        raise PermissionDenied(
            f"Only {release.model.name}'s owning team, on-call or staff can roll it back."
        )
    form = ReasonForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            rollback = services.release_rollback(
                actor=request.user, release=release, reason=form.cleaned_data["reason"]
            )
        except (ValidationError, PermissionDenied) as exc:
            messages.error(request, " ".join(getattr(exc, "messages", [str(exc)])))
        else:
            messages.success(request, f"Rollback #{rollback.pk} filed.")
            return redirect("deployments:request-detail", pk=rollback.pk)
    protection = policy.rules_of(release.environment)
    needs_approval = not protection.allow_emergency_rollback and (
        policy.approval_rules(protection) is not None
    )
    return render(
        request,
        "deployments/release_rollback.html",
        {
            "release": release,
            "target": selectors.release_last_good(release) if release.is_live else None,
            "protection": protection,
            "needs_approval": needs_approval,
            "active": selectors.deploy_request_active(release.environment, release.model_id),
            "form": form,
        },
        status=400 if request.method == "POST" else 200,
    )
