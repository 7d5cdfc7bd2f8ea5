from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django.views.decorators.vary import vary_on_headers

from apps.accounts.http import AuthedHttpRequest
from apps.deployments import policy, selectors, services
from apps.deployments.connection import connection_of, environment_connection_test
from apps.deployments.forms import EnvironmentForm, FreezeForm, ProtectionRulesForm
from apps.deployments.kube.client import ClusterInfo, describe_cluster
from apps.deployments.models import DeployFreeze, Environment
from apps.deployments.permissions import can_manage_environments
from apps.web.http import render_page_or_partial

ENVIRONMENTS_PER_PAGE = 25


def _attach_cluster(environment: Environment) -> ClusterInfo:
    """Describe the environment's cluster and hang it on it as `.cluster` for the templates.

    Read from the kubeconfig file only (cached by modification time): no cluster call per row.
    """
    cluster = describe_cluster(connection_of(environment))
    setattr(environment, "cluster", cluster)  # noqa: B010  (no model field: for the templates)
    return cluster


def _environment_or_404(slug: str) -> Environment:
    environment = selectors.environment_by_slug(slug=slug).first()
    if environment is None:
        raise Http404("No such environment.")
    _attach_cluster(environment)
    return environment


def _require_manage(request: AuthedHttpRequest) -> None:
    if not can_manage_environments(request.user):
        raise PermissionDenied("Only staff can change environments.")


@require_GET
def environment_list_view(request: AuthedHttpRequest) -> HttpResponse:
    page = Paginator(selectors.environments_all(), ENVIRONMENTS_PER_PAGE).get_page(
        request.GET.get("page")
    )
    environments = list(page.object_list)
    clusters = [_attach_cluster(environment) for environment in environments]
    return render(
        request,
        "deployments/environment_list.html",
        {
            "page": page,
            "environments": environments,
            "any_simulated": any(cluster.simulated for cluster in clusters),
            "can_manage": can_manage_environments(request.user),
        },
    )


@require_http_methods(["GET", "POST"])
def environment_create_view(request: AuthedHttpRequest) -> HttpResponse:
    _require_manage(request)
    form = EnvironmentForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            environment = services.environment_create(actor=request.user, **form.cleaned_data)
        except ValidationError as exc:
            form.add_error(None, exc)
        else:
            messages.success(request, f"Environment “{environment.name}” created.")
            return redirect("deployments:environment-detail", slug=environment.slug)
    return render(
        request,
        "deployments/environment_form.html",
        {"form": form, "environment": None},
        status=400 if request.method == "POST" else 200,
    )


def _protection_context(environment: Environment) -> dict[str, object]:
    protection = policy.rules_of(environment)
    now = timezone.now()
    return {
        "protection": protection,
        "rules_text": policy.describe_rules(policy.approval_rules(protection)),
        "all_rules": policy.describe_environment(environment, now=now),
        "previous_environment": policy.previous_environment(environment),
        "freezes": list(
            environment.freezes.filter(lifted_at__isnull=True)
            .exclude(ends_at__lte=now)
            .select_related("created_by")
            .order_by("starts_at")[:20]
        ),
        "live_releases": list(
            selectors.releases_live_at()
            .filter(environment=environment)
            .order_by("model__name")[:100]
        ),
        "now": now,
    }


@require_GET
def environment_detail_view(request: AuthedHttpRequest, slug: str) -> HttpResponse:
    environment = _environment_or_404(slug)
    return render(
        request,
        "deployments/environment_detail.html",
        {
            "environment": environment,
            "can_manage": can_manage_environments(request.user),
            "freeze_form": FreezeForm(),
            **_protection_context(environment),
        },
    )


@require_http_methods(["GET", "POST"])
def protection_update_view(request: AuthedHttpRequest, slug: str) -> HttpResponse:
    """Staff edit an environment's protection rules."""
    _require_manage(request)
    environment = _environment_or_404(slug)
    form = ProtectionRulesForm(request.POST or None, instance=policy.rules_of(environment))
    if request.method == "POST" and form.is_valid():
        try:
            services.protection_rules_update(
                actor=request.user, environment=environment, **form.cleaned_data
            )
        except ValidationError as exc:
            form.add_error(None, exc)
        else:
            messages.success(request, f"Protection rules of “{environment.name}” saved.")
            return redirect("deployments:environment-detail", slug=environment.slug)
    return render(
        request,
        "deployments/protection_form.html",
        {"form": form, "environment": environment},
        status=400 if request.method == "POST" else 200,
    )


@require_POST
def freeze_create_view(request: AuthedHttpRequest, slug: str) -> HttpResponse:
    _require_manage(request)
    environment = _environment_or_404(slug)
    form = FreezeForm(request.POST)
    if form.is_valid():
        try:
            services.deploy_freeze_create(
                actor=request.user,
                environment=environment,
                reason=form.cleaned_data["reason"],
                ends_at=form.cleaned_data["ends_at"],
            )
        except ValidationError as exc:
            form.add_error(None, exc)
        else:
            messages.success(request, f"Deploys to “{environment.name}” are frozen.")
            return redirect("deployments:environment-detail", slug=environment.slug)
    return render(
        request,
        "deployments/environment_detail.html",
        {
            "environment": environment,
            "can_manage": True,
            "freeze_form": form,
            **_protection_context(environment),
        },
        status=400,
    )


@require_POST
def freeze_lift_view(request: AuthedHttpRequest, slug: str, pk: int) -> HttpResponse:
    _require_manage(request)
    environment = _environment_or_404(slug)
    freeze = get_object_or_404(DeployFreeze, pk=pk, environment=environment)
    try:
        services.deploy_freeze_lift(actor=request.user, freeze=freeze)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        messages.success(request, "Freeze lifted.")
    return redirect("deployments:environment-detail", slug=environment.slug)


@require_http_methods(["GET", "POST"])
def environment_update_view(request: AuthedHttpRequest, slug: str) -> HttpResponse:
    _require_manage(request)
    environment = _environment_or_404(slug)
    # The form validates into its own copy, so the page header keeps the saved name on errors.
    form = EnvironmentForm(
        request.POST or None, instance=Environment.objects.get(pk=environment.pk)
    )
    if request.method == "POST" and form.is_valid():
        try:
            environment = services.environment_update(
                actor=request.user, environment=environment, **form.cleaned_data
            )
        except ValidationError as exc:
            form.add_error(None, exc)
        else:
            messages.success(request, f"Environment “{environment.name}” saved.")
            return redirect("deployments:environment-detail", slug=environment.slug)
    return render(
        request,
        "deployments/environment_form.html",
        {"form": form, "environment": environment},
        status=400 if request.method == "POST" else 200,
    )


@require_POST
@vary_on_headers("HX-Request")
def environment_test_connection_view(request: AuthedHttpRequest, slug: str) -> HttpResponse:
    _require_manage(request)
    environment = _environment_or_404(slug)
    report = environment_connection_test(environment=environment)
    return render_page_or_partial(
        request,
        "deployments/environment_detail.html",
        "connection-panel",
        {"environment": environment, "can_manage": True, "report": report},
    )
