from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_not_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django.views.decorators.vary import vary_on_headers

from apps.accounts.http import AuthedHttpRequest
from apps.accounts.models import Team
from apps.catalog import hooks, selectors, services
from apps.catalog.charts import line_chart
from apps.catalog.forms import CardReturnForm, CatalogFilterForm, ModelCardForm, OwnerForm
from apps.catalog.models import ModelCard, RegisteredModel
from apps.catalog.permissions import (
    can_edit_model_card,
    can_review_model_card,
    can_sync_registry,
    teams_user_may_give_model_to,
)
from apps.catalog.registry import RegistryError, mlflow_ui_url
from apps.catalog.webhooks import WebhookRejectedError, verify, webhook_delivery_accept
from apps.web.api_errors import error_body
from apps.web.http import render_page_or_partial

MODELS_PER_PAGE = 25
MAX_COMPARED = 6
MAX_WEBHOOK_BODY = 1024 * 1024


def _base_context(**extra: object) -> dict[str, object]:
    """Every catalog page shows how fresh the mirror is."""
    return {
        "sync_state": selectors.sync_state_or_none(),
        "registry_configured": bool(settings.MLFLOW_TRACKING_URI),
        **extra,
    }


def _model_or_404(pk: int) -> RegisteredModel:
    model = selectors.model_for_page(pk)
    if model is None:
        raise Http404("No such model in the catalog.")
    return model


@require_GET
@vary_on_headers("HX-Request")
def model_list_view(request: AuthedHttpRequest) -> HttpResponse:
    teams = list(Team.objects.order_by("name"))
    form = CatalogFilterForm(request.GET or None, teams=teams)
    filters = form.filters() if request.GET else CatalogFilterForm(teams=teams).filters()
    models = selectors.models_filtered(**filters)
    page = Paginator(models, MODELS_PER_PAGE).get_page(request.GET.get("page"))
    return render_page_or_partial(
        request,
        "catalog/model_list.html",
        "results",
        _base_context(form=form, page=page, can_sync=can_sync_registry(request.user)),
    )


def _model_context(request: AuthedHttpRequest, model: RegisteredModel, **extra: object) -> dict:
    give_to = teams_user_may_give_model_to(request.user, model)
    card = getattr(model, "card", None)
    return _base_context(
        model=model,
        versions=selectors.versions_of(model),
        aliases_by_version=selectors.aliases_by_version(model),
        card=card,
        mlflow_url=mlflow_ui_url(model.name),
        owner_form=extra.pop("owner_form", None)
        or (OwnerForm(initial={"team": model.owner_team}, teams=give_to) if give_to else None),
        can_edit_card=can_edit_model_card(request.user, model),
        can_review_card=can_review_model_card(request.user),
        return_form=CardReturnForm(),
        sections=hooks.sections_for(hooks.model_page_sections, request, model),
        **extra,
    )


@require_GET
def model_detail_view(request: AuthedHttpRequest, pk: int) -> HttpResponse:
    model = _model_or_404(pk)
    return render(request, "catalog/model_detail.html", _model_context(request, model))


@require_POST
@vary_on_headers("HX-Request")
def model_owner_view(request: AuthedHttpRequest, pk: int) -> HttpResponse:
    model = _model_or_404(pk)
    give_to = teams_user_may_give_model_to(request.user, model)
    if not give_to:
        raise PermissionDenied("Only staff or the owning team's maintainers can change the owner.")
    form = OwnerForm(request.POST, teams=give_to)
    error = None
    if not form.is_valid():
        error = "Choose one of the offered teams."
    else:
        try:
            services.model_owner_set(
                actor=request.user, model=model, team=form.cleaned_data["team"]
            )
        except ValidationError as exc:
            error = exc.messages[0]
        except RegistryError as exc:
            error = f"Nothing changed: {exc}"
    if error is None and not request.htmx:
        messages.success(request, "Owner updated, in the portal and in MLflow.")
        return redirect("catalog:model-detail", pk=pk)
    context = _model_context(
        request, _model_or_404(pk), owner_error=error, owner_saved=error is None
    )
    # htmx swaps only 2xx responses, so the partial carries the error with a 200.
    status = 200 if request.htmx or error is None else 400
    return render_page_or_partial(
        request, "catalog/model_detail.html", "owner", context, status=status
    )


@require_GET
def version_detail_view(request: AuthedHttpRequest, pk: int, number: int) -> HttpResponse:
    model = _model_or_404(pk)
    version = selectors.version_of(model, number)
    if version is None:
        raise Http404("No such version of this model.")
    return render(
        request,
        "catalog/version_detail.html",
        _base_context(
            model=model,
            version=version,
            aliases=selectors.aliases_by_version(model).get(number, []),
            mlflow_url=mlflow_ui_url(model.name, number),
            sections=hooks.sections_for(hooks.version_page_sections, request, model, version),
        ),
    )


def _requested_versions(request: HttpRequest) -> list[int]:
    numbers = []
    for raw in request.GET.getlist("v"):
        if not raw.isdigit():
            raise ValidationError(f"“{raw[:20]}” is not a version number.")
        numbers.append(int(raw))
    return sorted(set(numbers))


@require_GET
@vary_on_headers("HX-Request")
def version_compare_view(request: AuthedHttpRequest, pk: int) -> HttpResponse:
    model = _model_or_404(pk)
    metric_names = selectors.metric_names_of(model)
    metric = request.GET.get("metric") or (metric_names[0] if metric_names else "")
    chart_context = {
        "model": model,
        "metric": metric,
        "metric_names": metric_names,
        "chart": line_chart(selectors.metric_series(model, metric)) if metric else None,
    }
    if request.htmx and request.htmx.target == "metric-chart":
        return render(request, "catalog/version_compare.html#chart", chart_context)
    error = None
    try:
        numbers = _requested_versions(request)
    except ValidationError as exc:
        numbers, error = [], exc.messages[0]
    versions = list(selectors.versions_of(model).filter(version__in=numbers))
    found = {v.version for v in versions}
    missing = [n for n in numbers if n not in found]
    if missing:
        error = f"No version {', '.join(map(str, missing))} of this model."
    if len(versions) > MAX_COMPARED:
        error = f"Compare at most {MAX_COMPARED} versions at a time."
        versions = versions[:MAX_COMPARED]
    versions.sort(key=lambda v: v.version)
    return render(
        request,
        "catalog/version_compare.html",
        _base_context(
            **chart_context,
            versions=versions,
            all_versions=selectors.versions_of(model).only("version"),
            metrics=selectors.compare_versions(versions, "run_metrics"),
            params=selectors.compare_versions(versions, "run_params"),
            error=error,
        ),
        status=400 if error else 200,
    )


def _card_or_new(model: RegisteredModel) -> ModelCard:
    return getattr(model, "card", None) or ModelCard(model=model, content=services.CARD_TEMPLATE)


@require_http_methods(["GET", "POST"])
def model_card_edit_view(request: AuthedHttpRequest, pk: int) -> HttpResponse:
    model = _model_or_404(pk)
    if not can_edit_model_card(request.user, model):
        raise PermissionDenied("Only the owning team or staff can edit this model's card.")
    form = ModelCardForm(request.POST or None, instance=_card_or_new(model))
    if request.method == "POST" and form.is_valid():
        services.model_card_update(
            actor=request.user,
            model=model,
            content=form.cleaned_data["content"],
            risk=form.cleaned_data["risk"],
        )
        messages.success(request, "Model card saved.")
        return redirect("catalog:model-detail", pk=pk)
    return render(
        request,
        "catalog/card_edit.html",
        _base_context(model=model, form=form),
        status=400 if request.method == "POST" else 200,
    )


@require_POST
def model_card_transition_view(
    request: AuthedHttpRequest, pk: int, transition: str
) -> HttpResponse:
    model = _model_or_404(pk)
    try:
        if transition == "submit":
            if not can_edit_model_card(request.user, model):
                raise PermissionDenied("Only the owning team or staff can submit this card.")
            services.model_card_submit(actor=request.user, model=model)
            messages.success(request, "Card submitted for review.")
        elif transition == "approve":
            if not can_review_model_card(request.user):
                raise PermissionDenied("Only card reviewers can approve model cards.")
            services.model_card_approve(actor=request.user, model=model)
            messages.success(request, "Card approved.")
        elif transition == "return":
            if not can_review_model_card(request.user):
                raise PermissionDenied("Only card reviewers can send a card back.")
            form = CardReturnForm(request.POST)
            if not form.is_valid():
                raise ValidationError("Say what needs to change (up to 2,000 characters).")
            services.model_card_return(
                actor=request.user, model=model, reason=form.cleaned_data["reason"]
            )
            messages.success(request, "Card sent back to the owning team.")
        else:
            raise Http404("No such card action.")
    except ValidationError as exc:
        messages.error(request, exc.messages[0])
    return redirect("catalog:model-detail", pk=pk)


@require_POST
def registry_sync_now_view(request: AuthedHttpRequest) -> HttpResponse:
    if not can_sync_registry(request.user):
        raise PermissionDenied("Only staff can start a registry sync.")
    services.registry_sync_request(actor=request.user)
    messages.info(request, "A full sync has been queued; the catalog updates when it finishes.")
    return redirect("catalog:model-list")


@csrf_exempt  # MLflow signs its deliveries with HMAC; there is no session or form
@login_not_required
def mlflow_webhook_view(request: HttpRequest) -> JsonResponse:
    """Verify and record an MLflow delivery, answer at once; a task applies it."""
    if request.method != "POST":
        response = JsonResponse(
            error_body("Deliveries are POSTed.", "method_not_allowed"), status=405
        )
        response["Allow"] = "POST"
        return response
    if int(request.headers.get("Content-Length") or 0) > MAX_WEBHOOK_BODY:
        return JsonResponse(error_body("Body too large.", "request_too_large"), status=413)
    try:
        payload = verify(request.headers, request.body)
    except WebhookRejectedError as exc:
        return JsonResponse(error_body(str(exc), "webhook_rejected"), status=exc.status)
    accepted = webhook_delivery_accept(
        delivery_id=request.headers["X-MLflow-Delivery-Id"], payload=payload
    )
    if accepted.ignored:
        return JsonResponse({"status": "ignored"}, status=200)
    if accepted.duplicate:
        return JsonResponse({"status": "duplicate"}, status=200)
    return JsonResponse({"status": "accepted"}, status=202)
