"""The Alertmanager receiver at /hooks/alertmanager/ (alerts.py has the rules it applies)."""

from __future__ import annotations

from django.contrib.auth.decorators import login_not_required
from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt

from apps.incidents.alerts import AlertRejectedError, alert_delivery_accept, authenticate, parse
from apps.web.api_errors import error_body


@csrf_exempt  # Alertmanager authenticates with a token; there is no session or form
@login_not_required
def alertmanager_webhook_view(request: HttpRequest) -> JsonResponse:
    """Authenticate, validate and record a notification, answer 202 at once; a task applies it."""
    if request.method != "POST":
        response = JsonResponse(
            error_body("Notifications are POSTed.", "method_not_allowed"), status=405
        )
        response["Allow"] = "POST"
        return response
    try:
        authenticate(request.headers)
        payload = parse(request.body)
    except AlertRejectedError as exc:
        response = JsonResponse(error_body(exc.detail, exc.code, exc.errors), status=exc.status)
        if exc.status == 401:
            response["WWW-Authenticate"] = 'Bearer realm="alertmanager"'
        return response
    delivery = alert_delivery_accept(payload)
    return JsonResponse({"status": "accepted", "delivery": delivery.pk}, status=202)
