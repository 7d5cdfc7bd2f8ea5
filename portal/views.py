from django.contrib.auth.decorators import login_not_required
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from apps.accounts import selectors as account_selectors
from apps.accounts.http import AuthedHttpRequest
from apps.approvals import selectors as approval_selectors
from apps.audit import selectors as audit_selectors
from apps.catalog import selectors as catalog_selectors
from portal.readiness import readiness_checks

RECENT_ACTIVITY = 10
TEAM_MODELS = 8
WAITING = 5


@require_GET
def dashboard_view(request: AuthedHttpRequest) -> HttpResponse:
    memberships = list(account_selectors.memberships_of(request.user))
    team_ids = [membership.team_id for membership in memberships]
    return render(
        request,
        "portal/dashboard.html",
        {
            "memberships": memberships,
            "team_models": catalog_selectors.models_of_teams(team_ids)[:TEAM_MODELS],
            "waiting_for_me": approval_selectors.approvals_waiting_for(request.user)[:WAITING],
            "recent_activity": audit_selectors.audit_events_by(request.user)[:RECENT_ACTIVITY],
        },
    )


@login_not_required
@never_cache
@require_GET
def healthz_view(request: HttpRequest) -> JsonResponse:
    """The process is up and answering; nothing else is checked (that is /readyz)."""
    return JsonResponse({"status": "ok"})


@login_not_required
@never_cache
@require_GET
def readyz_view(request: HttpRequest) -> JsonResponse:
    """200 when every dependency answers; 503 naming each one that does not."""
    results = {name: check() for name, check in readiness_checks().items()}
    ready = all(result.ok for result in results.values())
    body: dict[str, object] = {
        "status": "ok" if ready else "unavailable",
        "checks": {name: {"ok": r.ok, "detail": r.detail} for name, r in results.items()},
    }
    if not ready:
        body["failed"] = [name for name, result in results.items() if not result.ok]
    return JsonResponse(body, status=200 if ready else 503)
