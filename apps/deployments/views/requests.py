"""Browser pages for deploy requests: the self-service form, the list, the live request page."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.urls import NoReverseMatch, reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django.views.decorators.vary import vary_on_headers
from django_htmx.http import HttpResponseStopPolling

from apps.accounts.http import AuthedHttpRequest
from apps.approvals import selectors as approval_selectors
from apps.catalog import selectors as catalog_selectors
from apps.catalog.selectors import models_filtered
from apps.deployments import policy, selectors, services
from apps.deployments.forms import DeployRequestForm, DeployRequestReviseForm, ReasonForm
from apps.deployments.models import DeployRequest, Environment
from apps.deployments.permissions import (
    can_bypass_deploy_policy,
    can_cancel_deploy,
    can_operate_deploy,
    can_request_deploy,
    can_roll_back_release,
)
from apps.deployments.planning import DeployOptions
from apps.web.http import render_page_or_partial
from apps.web.params import clean_text

REQUESTS_PER_PAGE = 25
MODEL_MATCHES = 30
VERSIONS_SHOWN = 100
EVENTS_SHOWN = 300
POLL_SECONDS = 2


# --- the form -------------------------------------------------------------------------------------
def _int(value: str | None) -> int | None:
    try:
        return int(value) if value not in (None, "") else None
    except ValueError:
        return None


def _choices(request: AuthedHttpRequest, values: dict[str, Any]) -> dict[str, Any]:
    """Models matching the search, the chosen model's versions, the environments."""
    search = clean_text(values.get("q"))
    matches = list(models_filtered(search=search)[:MODEL_MATCHES])
    model = None
    # A new search picks its first match; otherwise the chosen model stays chosen.
    model_id = None if values.get("refresh") == "model" else _int(str(values.get("model") or ""))
    if model_id is not None:
        model = catalog_selectors.model_live(model_id)
    if model is None and matches and search:
        model = matches[0]
    if model is not None and model not in matches:
        matches.insert(0, model)
    versions = (
        list(catalog_selectors.versions_of(model)[:VERSIONS_SHOWN]) if model is not None else []
    )
    environments = list(selectors.environments_all())
    environment = next(
        (env for env in environments if env.slug == values.get("environment")),
        environments[0] if environments else None,
    )
    return {
        "search": search,
        "model_matches": matches,
        "chosen_model": model,
        "versions": versions,
        "environments": environments,
        "chosen_environment": environment,
        "may_deploy_model": model is None or can_request_deploy(request.user, model),
    }


def _initial(values: dict[str, Any], choices: dict[str, Any]) -> dict[str, Any]:
    """Form values: what was typed, except options follow a newly chosen environment."""
    environment: Environment | None = choices["chosen_environment"]
    model = choices["chosen_model"]
    initial: dict[str, Any] = {
        "model": model.pk if model else None,
        "environment": environment.slug if environment else None,
        "reason": values.get("reason", ""),
    }
    versions = [version.version for version in choices["versions"]]
    chosen = _int(str(values.get("version") or ""))
    initial["version"] = chosen if chosen in versions else (versions[0] if versions else None)
    if environment is not None:
        defaults = DeployOptions.for_environment(environment).as_fields()
        same = values.get("options_for") == environment.slug
        for name in DeployRequestForm.OPTION_FIELDS:
            initial[name] = values.get(name, defaults[name]) if same else defaults[name]
    return initial


def _form_context(
    request: AuthedHttpRequest, form: DeployRequestForm, values: dict[str, Any]
) -> dict[str, Any]:
    choices = _choices(request, values)
    environment = choices["chosen_environment"]
    return {
        "form": form,
        **choices,
        "knative": environment is not None and environment.is_knative,
        "rules": (
            policy.describe_environment(environment, now=timezone.now()) if environment else []
        ),
        "can_bypass": can_bypass_deploy_policy(request.user),
    }


@require_http_methods(["GET", "POST"])
@vary_on_headers("HX-Request", "HX-Target")
def deploy_request_create_view(request: AuthedHttpRequest) -> HttpResponse:
    """The self-service form; htmx re-renders its fields as the model or environment changes."""
    template = "deployments/request_form.html"
    if request.method == "GET":
        values = request.GET.dict()
        choices = _choices(request, values)
        form = DeployRequestForm(initial=_initial(values, choices))
        return render_page_or_partial(
            request, template, "deploy-fields", _form_context(request, form, values)
        )
    form = DeployRequestForm(request.POST)
    status = 400
    if form.is_valid():
        try:
            created = services.deploy_request_create(
                actor=request.user,
                environment=form.cleaned_data["environment"],
                version=form.cleaned_data["model_version"],
                options=form.options(),
                reason=form.cleaned_data["reason"],
                bypass_reason=form.cleaned_data["bypass_reason"],
            )
        except services.ActiveRequestExistsError as exc:
            form.add_error(None, exc)
            status = 409
        except PermissionDenied as exc:
            form.add_error(None, str(exc))
            status = 403
        except ValidationError as exc:
            form.add_error(None, exc)
        else:
            messages.success(request, f"Deploy request #{created.pk} filed.")
            return redirect("deployments:request-detail", pk=created.pk)
    context = _form_context(request, form, request.POST.dict())
    return render(request, template, context, status=status)


@require_POST
def deploy_request_preview_view(request: AuthedHttpRequest) -> HttpResponse:
    """The diff against what is live, the rules that apply, and what blocks it (htmx)."""
    form = DeployRequestForm(request.POST)
    context: dict[str, Any] = {"form": form}
    if form.is_valid():
        try:
            context["preview"] = services.deploy_request_preview(
                actor=request.user,
                environment=form.cleaned_data["environment"],
                version=form.cleaned_data["model_version"],
                options=form.options(),
            )
        except ValidationError as exc:
            context["preview_errors"] = exc.messages
        except PermissionDenied as exc:
            context["preview_errors"] = [str(exc)]
    else:
        context["preview_errors"] = [
            (
                f"{form.fields[name].label or name.replace('_', ' ').capitalize()}: "
                + " ".join(map(str, errs))
            )
            if name != "__all__"
            else " ".join(map(str, errs))
            for name, errs in form.errors.items()
        ]
    return render(request, "deployments/request_form.html#preview", context)


# --- list and detail ------------------------------------------------------------------------------
@require_GET
@vary_on_headers("HX-Request")
def deploy_request_list_view(request: AuthedHttpRequest) -> HttpResponse:
    params = request.GET
    requests = selectors.deploy_requests_filtered(
        request.user,
        state=params.get("state", "") if params.get("state") in DeployRequest.State.values else "",
        environment=clean_text(params.get("environment")),
        model=clean_text(params.get("model")),
        requester=request.user.get_username() if params.get("mine") else "",
        active={"active": True, "done": False}.get(params.get("show", "")),
    )
    page = Paginator(requests, REQUESTS_PER_PAGE).get_page(params.get("page"))
    return render_page_or_partial(
        request,
        "deployments/request_list.html",
        "results",
        {
            "page": page,
            "requests": list(page.object_list),
            "states": DeployRequest.State.choices,
            "environments": list(selectors.environments_all()),
            "filtered": any(params.get(key) for key in ("state", "environment", "model", "mine")),
        },
    )


def _visible_or_404(request: AuthedHttpRequest, pk: int) -> DeployRequest:
    found = (
        selectors.deploy_requests_visible_to(request.user)
        .select_related("approval", "rollback_of", "rollback_of__version")
        .filter(pk=pk)
        .first()
    )
    if found is None:
        raise Http404("No such deploy request.")
    return found


def _approval_url(deploy: DeployRequest) -> str:
    if deploy.approval_id is None:
        return ""
    try:
        return reverse("approvals:request-detail", args=[deploy.approval_id])
    except NoReverseMatch:  # the approvals pages are not installed
        return ""


def _detail_context(request: AuthedHttpRequest, deploy: DeployRequest) -> dict[str, Any]:
    events = list(deploy.events.order_by("-at", "-id")[:EVENTS_SHOWN])
    events.reverse()
    release = (
        getattr(deploy, "release", None) if deploy.state == DeployRequest.State.SUCCEEDED else None
    )
    progress = None
    # A null foreign key reads as None without a query.
    if deploy.state == DeployRequest.State.PENDING_APPROVAL and deploy.approval is not None:
        progress = approval_selectors.approval_progress(deploy.approval)
    return {
        "deploy": deploy,
        "events": events,
        "release": release,
        "rollbacks": list(deploy.rollbacks.select_related("version").order_by("created_at")),
        "approval_url": _approval_url(deploy),
        "approval_progress": progress,
        "can_cancel": deploy.cancellable and can_cancel_deploy(request.user, deploy),
        "can_revise": deploy.revisable and can_cancel_deploy(request.user, deploy),
        "can_abort": deploy.abortable and can_operate_deploy(request.user, deploy),
        "can_rollback": release is not None
        and release.live_until is None
        and can_roll_back_release(request.user, deploy.model),
        "poll_seconds": POLL_SECONDS,
        "steps": _steps(deploy),
        "cluster_warning": _cluster_warning(deploy),
    }


def _utc_clock(moment: datetime) -> str:
    return f"{moment.astimezone(UTC):%H:%M:%S} UTC"


def _cluster_warning(deploy: DeployRequest) -> str:
    """What the page says while a worker cannot read the cluster for this request."""
    since = deploy.cluster_unreachable_since
    if since is None or deploy.done:
        return ""
    text = f"Cluster unreachable since {_utc_clock(since)}; "
    deadline = deploy.rollout_deadline_at
    if deploy.is_rollback:
        return text + "retrying until the cluster answers; abort to stop."
    if deploy.state == DeployRequest.State.ROLLING_OUT and deadline is not None:
        return text + f"the rollout fails at {_utc_clock(deadline)} if it stays so."
    return text + f"trying again, up to {settings.DEPLOY_MAX_ATTEMPTS} attempts in all."


# The step a request in each active state is at (it has begun, or is waiting for it).
CURRENT_STEP = {
    DeployRequest.State.PENDING_APPROVAL: "Approved",
    DeployRequest.State.QUEUED: "Queued",
    DeployRequest.State.APPLYING: "Applying",
    DeployRequest.State.ROLLING_OUT: "Rolling out",
}
# How the last step of a finished request looks: a success, a failure, or just ended.
FINAL_STEP = {
    DeployRequest.State.SUCCEEDED: "done",
    DeployRequest.State.FAILED: "failed",
    DeployRequest.State.ROLLED_BACK: "failed",
    DeployRequest.State.REJECTED: "failed",
    DeployRequest.State.CANCELLED: "ended",
}


def _steps(deploy: DeployRequest) -> list[tuple[str, str, datetime | None]]:
    """The path a request walks, each step done / current / to do / skipped, with its time;
    the last step of a finished request says how it ended (done, failed, ended)."""
    path = [
        ("Requested", deploy.created_at),
        ("Approved", deploy.queued_at if deploy.approval_id else None),
        ("Queued", deploy.queued_at),
        ("Applying", deploy.applying_at),
        ("Rolling out", deploy.rolling_out_at),
        (deploy.get_state_display() if deploy.done else "Finished", deploy.finished_at),
    ]
    if not deploy.approval_id:
        path.pop(1)
    if deploy.done:
        *walked, (label, stamp) = path
        steps = [(name, "done" if at else "skipped", at) for name, at in walked]
        return [*steps, (label, FINAL_STEP[DeployRequest.State(deploy.state)], stamp)]
    current = CURRENT_STEP[DeployRequest.State(deploy.state)]
    names = [name for name, _ in path]
    reached = names.index(current)
    return [
        (name, "current" if i == reached else "done" if i < reached and at else "todo", at)
        for i, (name, at) in enumerate(path)
    ]


@require_GET
@vary_on_headers("HX-Request")
def deploy_request_detail_view(request: AuthedHttpRequest, pk: int) -> HttpResponse:
    """The request page; its status panel polls itself while the request is active."""
    deploy = _visible_or_404(request, pk)
    context = _detail_context(request, deploy)
    if request.htmx and not request.htmx.boosted:
        html = render_to_string(
            "deployments/request_detail.html#status-panel", context, request=request
        )
        return HttpResponseStopPolling(html) if deploy.done else HttpResponse(html)
    return render(request, "deployments/request_detail.html", context)


@require_http_methods(["GET", "POST"])
def deploy_request_revise_view(request: AuthedHttpRequest, pk: int) -> HttpResponse:
    """Choose another version or other options while a request waits for approval."""
    deploy = _visible_or_404(request, pk)
    if not can_cancel_deploy(request.user, deploy):
        raise PermissionDenied("Only the requester or staff can change this request.")
    if deploy.state != DeployRequest.State.PENDING_APPROVAL:
        messages.info(
            request,
            f"Request #{deploy.pk} is {deploy.get_state_display().lower()}; "
            "only a request waiting for approval can change.",
        )
        return redirect("deployments:request-detail", pk=deploy.pk)
    versions = list(catalog_selectors.versions_of(deploy.model)[:VERSIONS_SHOWN])
    initial = {"version": deploy.version.version, **DeployOptions.of_deploy(deploy).as_fields()}
    form = DeployRequestReviseForm(request.POST or None, versions=versions, initial=initial)
    status = 200
    if request.method == "POST":
        status = 400
        if form.is_valid():
            try:
                revised = services.deploy_request_revise(
                    actor=request.user,
                    deploy=deploy,
                    version=form.chosen_version(),
                    options=form.options(),
                )
            except ValidationError as exc:
                form.add_error(None, exc)
            else:
                if revised.revision == deploy.revision:
                    messages.info(request, "Nothing changed.")
                else:
                    messages.success(
                        request,
                        f"Request #{deploy.pk} now deploys {revised.revision}; "
                        "reviews given before the change no longer count.",
                    )
                return redirect("deployments:request-detail", pk=deploy.pk)
    context = {
        "deploy": deploy,
        "form": form,
        "knative": deploy.environment.is_knative,
    }
    return render(request, "deployments/request_revise.html", context, status=status)


@require_POST
def deploy_request_cancel_view(request: AuthedHttpRequest, pk: int) -> HttpResponse:
    deploy = _visible_or_404(request, pk)
    form = ReasonForm(request.POST)
    form.is_valid()
    try:
        services.deploy_request_cancel(
            actor=request.user, deploy=deploy, reason=form.cleaned_data.get("reason", "")
        )
    except (PermissionDenied, ValidationError) as exc:
        messages.error(request, " ".join(getattr(exc, "messages", [str(exc)])))
    else:
        messages.success(request, f"Request #{deploy.pk} cancelled.")
    return redirect("deployments:request-detail", pk=deploy.pk)


@require_POST
def deploy_request_abort_view(request: AuthedHttpRequest, pk: int) -> HttpResponse:
    deploy = _visible_or_404(request, pk)
    form = ReasonForm(request.POST)
    form.is_valid()
    try:
        rollback = services.deploy_request_abort(
            actor=request.user, deploy=deploy, reason=form.cleaned_data.get("reason", "")
        )
    except (PermissionDenied, ValidationError) as exc:
        messages.error(request, " ".join(getattr(exc, "messages", [str(exc)])))
        return redirect("deployments:request-detail", pk=deploy.pk)
    if rollback is None:
        messages.warning(
            request,
            f"Aborted rollback #{deploy.pk}: no other rollback starts, and "
            f"{deploy.environment.name} needs a person to look at it.",
        )
        return redirect("deployments:request-detail", pk=deploy.pk)
    messages.success(request, f"Aborted #{deploy.pk}; rollback #{rollback.pk} started.")
    return redirect("deployments:request-detail", pk=rollback.pk)
