from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.db.models import Count
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_POST
from django.views.decorators.vary import vary_on_headers

from apps.accounts import selectors, services
from apps.accounts.forms import (
    ApiTokenCreateForm,
    TeamCreateForm,
    TeamMemberAddForm,
    TeamMemberRoleForm,
)
from apps.accounts.http import AuthedHttpRequest
from apps.accounts.models import Membership, Team
from apps.accounts.permissions import can_create_team, can_manage_team
from apps.web.http import render_page_or_partial

TEAMS_PER_PAGE = 25


def _profile_context(request: AuthedHttpRequest, **extra: object) -> dict[str, object]:
    return {
        "memberships": selectors.memberships_of(request.user),
        "tokens": selectors.api_tokens_of(request.user),
        "token_form": extra.pop("token_form", None) or ApiTokenCreateForm(),
        **extra,
    }


@require_GET
def profile_view(request: AuthedHttpRequest) -> HttpResponse:
    return render(request, "accounts/profile.html", _profile_context(request))


@require_POST
@vary_on_headers("HX-Request")
def api_token_create_view(request: AuthedHttpRequest) -> HttpResponse:
    form = ApiTokenCreateForm(request.POST)
    new_token = None
    if form.is_valid():
        try:
            token, raw = services.api_token_create(
                user=request.user,
                name=form.cleaned_data["name"],
                expires_in_days=form.cleaned_data["expires_in_days"],
            )
        except ValidationError as exc:
            form.add_error(None, exc)
        else:
            new_token = {"token": token, "raw": raw}
            form = ApiTokenCreateForm()
    # The secret is rendered into this one response and nowhere else: no redirect, no message.
    response = render_page_or_partial(
        request,
        "accounts/profile.html",
        "tokens",
        _profile_context(request, token_form=form, new_token=new_token),
    )
    response["Cache-Control"] = "no-store"
    return response


@require_POST
@vary_on_headers("HX-Request")
def api_token_revoke_view(request: AuthedHttpRequest, pk: int) -> HttpResponse:
    token = get_object_or_404(selectors.api_tokens_of(request.user), pk=pk)
    services.api_token_revoke(actor=request.user, token=token)
    if request.htmx:
        return render(request, "accounts/profile.html#tokens", _profile_context(request))
    messages.success(request, f"Token “{token.name}” revoked.")
    return redirect("accounts:profile")


@require_GET
def team_list_view(request: AuthedHttpRequest) -> HttpResponse:
    teams = selectors.teams_with_counts()
    page = Paginator(teams, TEAMS_PER_PAGE).get_page(request.GET.get("page"))
    return render(
        request,
        "accounts/team_list.html",
        {
            "page": page,
            "can_create": can_create_team(request.user),
            "form": TeamCreateForm() if can_create_team(request.user) else None,
        },
    )


@require_POST
def team_create_view(request: AuthedHttpRequest) -> HttpResponse:
    if not can_create_team(request.user):
        raise PermissionDenied("Only staff can create teams.")
    form = TeamCreateForm(request.POST)
    if form.is_valid():
        try:
            team = services.team_create(actor=request.user, **form.cleaned_data)
        except ValidationError as exc:
            form.add_error(None, exc)
        else:
            messages.success(request, f"Team “{team.name}” created.")
            return redirect("accounts:team-detail", slug=team.slug)
    teams = selectors.teams_with_counts()
    page = Paginator(teams, TEAMS_PER_PAGE).get_page(1)
    return render(
        request,
        "accounts/team_list.html",
        {"page": page, "can_create": True, "form": form},
        status=400,
    )


def _team_or_404(slug: str) -> Team:
    team = selectors.team_with_members(slug=slug).annotate(member_count=Count("memberships"))
    try:
        return team.get()
    except Team.DoesNotExist:
        raise Http404("No such team.") from None


def _team_context(request: AuthedHttpRequest, team: Team, **extra: object) -> dict[str, object]:
    can_manage = can_manage_team(request.user, team)
    return {
        "team": team,
        "can_manage": can_manage,
        "add_form": extra.pop("add_form", None) or (TeamMemberAddForm() if can_manage else None),
        "roles": Membership.Role.choices,
        **extra,
    }


@require_GET
def team_detail_view(request: AuthedHttpRequest, slug: str) -> HttpResponse:
    team = _team_or_404(slug)
    return render(request, "accounts/team_detail.html", _team_context(request, team))


def _require_manage(request: AuthedHttpRequest, team: Team) -> None:
    if not can_manage_team(request.user, team):
        raise PermissionDenied("Only the team's maintainers or staff can change its members.")


def _members_response(request: AuthedHttpRequest, slug: str, **extra: object) -> HttpResponse:
    team = _team_or_404(slug)
    if request.htmx:
        return render(
            request, "accounts/team_detail.html#members", _team_context(request, team, **extra)
        )
    error = extra.get("error")
    if error:
        messages.error(request, str(error))
    return redirect("accounts:team-detail", slug=slug)


@require_POST
@vary_on_headers("HX-Request")
def team_member_add_view(request: AuthedHttpRequest, slug: str) -> HttpResponse:
    team = _team_or_404(slug)
    _require_manage(request, team)
    form = TeamMemberAddForm(request.POST)
    if form.is_valid():
        try:
            services.team_member_add(
                actor=request.user,
                team=team,
                user=form.cleaned_data["username"],
                role=form.cleaned_data["role"],
            )
        except ValidationError as exc:
            form.add_error(None, exc)
        else:
            return _members_response(request, slug)
    if not request.htmx:
        return render(
            request,
            "accounts/team_detail.html",
            _team_context(request, team, add_form=form),
            status=400,
        )
    return _members_response(request, slug, add_form=form)


def _membership_or_404(team: Team, pk: int) -> Membership:
    return get_object_or_404(Membership.objects.select_related("user", "team"), team=team, pk=pk)


@require_POST
@vary_on_headers("HX-Request")
def team_member_update_view(request: AuthedHttpRequest, slug: str, pk: int) -> HttpResponse:
    team = _team_or_404(slug)
    _require_manage(request, team)
    membership = _membership_or_404(team, pk)
    form = TeamMemberRoleForm(request.POST)
    if not form.is_valid():
        return _members_response(request, slug, error="Choose member or maintainer.")
    try:
        services.team_member_set_role(
            actor=request.user, membership=membership, role=form.cleaned_data["role"]
        )
    except ValidationError as exc:
        return _members_response(request, slug, error=exc.messages[0])
    return _members_response(request, slug)


@require_POST
@vary_on_headers("HX-Request")
def team_member_remove_view(request: AuthedHttpRequest, slug: str, pk: int) -> HttpResponse:
    team = _team_or_404(slug)
    _require_manage(request, team)
    membership = _membership_or_404(team, pk)
    try:
        services.team_member_remove(actor=request.user, membership=membership)
    except ValidationError as exc:
        return _members_response(request, slug, error=exc.messages[0])
    return _members_response(request, slug)
