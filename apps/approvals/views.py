from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django.views.decorators.vary import vary_on_headers

from apps.accounts.http import AuthedHttpRequest
from apps.accounts.selectors import team_slugs_of
from apps.approvals import promotions, selectors, services
from apps.approvals.engine import why_review_not_allowed
from apps.approvals.forms import AliasPolicyForm, PromotionForm, PromotionVersionForm, ReviewForm
from apps.approvals.models import AliasPolicy, AliasPromotion, ApprovalRequest
from apps.approvals.permissions import (
    can_cancel_request,
    can_manage_policies,
    can_rerun_checks,
)
from apps.approvals.registry import SUBJECT_KINDS
from apps.approvals.rules import Rules
from apps.catalog import selectors as catalog_selectors
from apps.catalog.models import RegisteredModel
from apps.catalog.registry import RegistryError
from apps.web.http import render_page_or_partial

REQUESTS_PER_PAGE = 25


@require_GET
@vary_on_headers("HX-Request")
def request_list_view(request: AuthedHttpRequest) -> HttpResponse:
    tab = request.GET.get("tab", "waiting")
    if tab not in selectors.TABS:
        tab = "waiting"
    state = request.GET.get("state", "")
    if state not in ApprovalRequest.State.values:
        state = ""
    if tab == "waiting":
        requests = selectors.approvals_waiting_for(request.user)
    elif tab == "mine":
        requests = selectors.approvals_of(request.user)
    else:
        requests = selectors.approvals_all(request.user, state=state)
    page = Paginator(requests, REQUESTS_PER_PAGE).get_page(request.GET.get("page"))
    return render_page_or_partial(
        request,
        "approvals/request_list.html",
        "results",
        {
            "tab": tab,
            "state": state,
            "states": ApprovalRequest.State.choices,
            "page": page,
            "waiting_count": selectors.approvals_waiting_for(request.user).count(),
        },
    )


def _request_or_404(request: AuthedHttpRequest, pk: int) -> ApprovalRequest:
    """The request, or 404 when there is none this person may see: one they may not see does
    not exist for them (a 403 would confirm it does)."""
    approval = selectors.approval_for_page(request.user, pk)
    if approval is None:
        raise Http404("No such approval request.")
    return approval


def _decision_context(
    request: AuthedHttpRequest, approval: ApprovalRequest, **extra: object
) -> dict[str, object]:
    rules = Rules.from_json(approval.rules)
    progress = selectors.approval_progress(approval)
    not_allowed = why_review_not_allowed(
        rules,
        requester_id=approval.requester_id,
        reviewer_id=request.user.pk,
        reviewer_teams=team_slugs_of(request.user),
        barred_ids=selectors.barred_ids_of(approval),
    )
    already = any(
        review.reviewer_id == request.user.pk and review.dismissed_at is None
        for review in approval.reviews.all()
    )
    return {
        "approval": approval,
        "rules": rules,
        "progress": progress,
        "can_review": approval.is_open and not not_allowed and not already,
        "review_blocked_reason": not_allowed if approval.is_open else "",
        "already_reviewed": already,
        "review_form": extra.pop("review_form", None) or ReviewForm(),
        "can_cancel": approval.is_open and can_cancel_request(request.user, approval),
        **extra,
    }


@require_GET
def request_detail_view(request: AuthedHttpRequest, pk: int) -> HttpResponse:
    approval = _request_or_404(request, pk)
    kind = SUBJECT_KINDS.get(approval.kind)
    panel = kind.panel(approval) if kind and kind.panel else None
    context = _decision_context(request, approval)
    context.update(
        subject_url=kind.url_of(approval) if kind and kind.url_of else "",
        panel_template=panel[0] if panel else "",
        panel=panel[1] if panel else {},
        check_history=list(approval.check_results.all())[:50],
    )
    return render(request, "approvals/request_detail.html", context)


@require_POST
@vary_on_headers("HX-Request")
def review_submit_view(request: AuthedHttpRequest, pk: int) -> HttpResponse:
    approval = _request_or_404(request, pk)
    form = ReviewForm(request.POST)
    error, refused = "", False
    if form.is_valid():
        try:
            services.approval_review_submit(
                approval=approval,
                reviewer=request.user,
                decision=form.cleaned_data["decision"],
                comment=form.cleaned_data["comment"],
            )
        except ValidationError as exc:
            error = exc.messages[0]
        except PermissionDenied as exc:
            # Said in the panel (a page opened before its reader was barred still has the form);
            # a plain post also answers 403.
            error, refused = str(exc), True
        else:
            if not request.htmx:
                messages.success(request, "Review recorded.")
                return redirect("approvals:request-detail", pk=pk)
            form = ReviewForm()
    context = _decision_context(
        request, _request_or_404(request, pk), review_form=form, review_error=error
    )
    failed = bool(error) or form.errors
    status = 200 if request.htmx or not failed else 403 if refused else 400
    return render_page_or_partial(
        request, "approvals/request_detail.html", "decision", context, status=status
    )


@require_POST
def checks_rerun_view(request: AuthedHttpRequest, pk: int) -> HttpResponse:
    approval = _request_or_404(request, pk)
    if not can_rerun_checks(request.user, approval):
        raise PermissionDenied("Only the requester, its reviewers or staff can re-run checks.")
    try:
        services.approval_checks_rerun(approval=approval, actor=request.user)
    except ValidationError as exc:
        messages.error(request, exc.messages[0])
    else:
        messages.success(request, "Checks re-run.")
    return redirect("approvals:request-detail", pk=pk)


@require_POST
def request_cancel_view(request: AuthedHttpRequest, pk: int) -> HttpResponse:
    approval = _request_or_404(request, pk)
    try:
        services.approval_request_cancel(approval=approval, actor=request.user)
    except ValidationError as exc:
        messages.error(request, exc.messages[0])
    else:
        messages.success(request, "Request cancelled.")
    return redirect("approvals:request-detail", pk=pk)


def _model_or_404(pk: int) -> RegisteredModel:
    return get_object_or_404(catalog_selectors.models_filtered(include_deleted=True), pk=pk)


@require_http_methods(["GET", "POST"])
def promote_view(request: AuthedHttpRequest, model_pk: int) -> HttpResponse:
    """Move an alias: directly if unprotected, through an approval request if protected."""
    model = _model_or_404(model_pk)
    form = PromotionForm(request.POST or None, initial={"alias": request.GET.get("alias", "")})
    if request.method == "POST" and form.is_valid():
        alias, version = form.cleaned_data["alias"], form.cleaned_data["version"]
        try:
            if promotions.policy_for(alias) is None:
                promotions.alias_move_direct(
                    actor=request.user, model=model, alias=alias, version=version
                )
                messages.success(request, f"@{alias} now points at v{version}, in MLflow too.")
                return redirect("catalog:model-detail", pk=model.pk)
            promotion = promotions.alias_promotion_request(
                actor=request.user, model=model, alias=alias, version=version
            )
            messages.success(request, f"Promotion requested; @{alias} moves once it is approved.")
            return redirect(
                "approvals:request-detail", pk=promotions.approval_of_promotion(promotion).pk
            )
        except ValidationError as exc:
            form.add_error(None, exc.messages[0])
        except RegistryError as exc:
            form.add_error(None, f"Nothing changed: {exc}")
    return render(
        request,
        "approvals/promote.html",
        {
            "model": model,
            "form": form,
            "versions": model.versions.filter(is_deleted=False)
            .order_by("-version")
            .only("version"),
            "policies": selectors.policies(),
        },
        status=400 if request.method == "POST" else 200,
    )


@require_POST
def promotion_version_view(request: AuthedHttpRequest, pk: int) -> HttpResponse:
    promotion = get_object_or_404(AliasPromotion.objects.select_related("model"), pk=pk)
    form = PromotionVersionForm(request.POST)
    approval = promotions.approval_of_promotion(promotion)
    if not form.is_valid():
        messages.error(request, "Give a version number.")
    else:
        try:
            promotions.alias_promotion_change_version(
                actor=request.user, promotion=promotion, version=form.cleaned_data["version"]
            )
        except ValidationError as exc:
            messages.error(request, exc.messages[0])
        else:
            messages.info(request, "Version changed; earlier reviews were dismissed.")
    return redirect("approvals:request-detail", pk=approval.pk)


@require_GET
def policy_list_view(request: AuthedHttpRequest) -> HttpResponse:
    return render(
        request,
        "approvals/policy_list.html",
        {"policies": selectors.policies(), "can_manage": can_manage_policies(request.user)},
    )


@require_http_methods(["GET", "POST"])
def policy_edit_view(request: AuthedHttpRequest, pk: int | None = None) -> HttpResponse:
    if not can_manage_policies(request.user):
        raise PermissionDenied("Only staff can change alias policies.")
    policy = get_object_or_404(AliasPolicy, pk=pk) if pk else None
    form = AliasPolicyForm(request.POST or None, instance=policy)
    if request.method == "POST" and form.is_valid():
        try:
            promotions.alias_policy_save(actor=request.user, policy=policy, data=form.cleaned_data)
        except ValidationError as exc:
            form.add_error(None, exc)
        else:
            messages.success(request, "Alias policy saved.")
            return redirect("approvals:policy-list")
    return render(
        request,
        "approvals/policy_form.html",
        {"form": form, "policy": policy},
        status=400 if request.method == "POST" else 200,
    )


@require_POST
def policy_delete_view(request: AuthedHttpRequest, pk: int) -> HttpResponse:
    if not can_manage_policies(request.user):
        raise PermissionDenied("Only staff can change alias policies.")
    promotions.alias_policy_delete(actor=request.user, policy=get_object_or_404(AliasPolicy, pk=pk))
    messages.success(request, "Alias policy deleted; that alias is no longer protected.")
    return redirect("approvals:policy-list")
