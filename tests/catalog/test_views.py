"""Catalog pages: list, search, model and version pages, compare, cards, permissions."""

from __future__ import annotations

import pytest
from django.test import Client

from apps.audit.models import AuditEvent
from apps.catalog.models import ModelCard
from tests.accounts.factories import MembershipFactory, TeamFactory, UserFactory
from tests.catalog.factories import (
    ModelAliasFactory,
    ModelCardFactory,
    ModelVersionFactory,
    RegisteredModelFactory,
)

pytestmark = pytest.mark.django_db
HTMX = {"HX-Request": "true"}


@pytest.fixture
def signed_in(client: Client, outsider) -> Client:
    client.force_login(outsider)
    return client


def make_models(count: int) -> None:
    teams = [TeamFactory() for _ in range(3)]
    models = RegisteredModelFactory.create_batch(count)
    for index, model in enumerate(models):
        model.owner_team = teams[index % 3]
        model.tags = {"domain": "payments" if index % 2 else "ads"}
        model.save()
        ModelAliasFactory(model=model, alias="champion", version=1)
        ModelAliasFactory(model=model, alias="challenger", version=2)


@pytest.mark.parametrize("count", [10, 500])
def test_catalog_list_runs_a_bounded_number_of_queries(
    signed_in, django_assert_max_num_queries, count: int
) -> None:
    make_models(count)
    with django_assert_max_num_queries(10):
        response = signed_in.get("/catalog/")
    assert response.status_code == 200
    assert response.content.decode().count("<tr>") >= min(count, 25)


def test_catalog_search_filters_and_htmx_partial(signed_in) -> None:
    fraud = RegisteredModelFactory(
        name="fraud-cards", description="Scores payments", tags={"domain": "payments"}
    )
    RegisteredModelFactory(name="ranking", description="Home feed", tags={"domain": "ads"})
    ModelAliasFactory(model=fraud, alias="champion")
    response = signed_in.get("/catalog/", {"q": "PAYMENT"}, headers=HTMX)
    html = response.content.decode()
    assert html.lstrip().startswith('<section class="card" id="results">')
    assert "fraud-cards" in html and "ranking" not in html
    assert (
        "ranking"
        in signed_in.get("/catalog/", {"tag": "domain=ads"}, headers=HTMX).content.decode()
    )
    assert (
        "fraud-cards"
        not in signed_in.get("/catalog/", {"tag": "domain=ads"}, headers=HTMX).content.decode()
    )
    by_alias = signed_in.get("/catalog/", {"alias": "champion"}, headers=HTMX).content.decode()
    assert "fraud-cards" in by_alias and "ranking" not in by_alias
    nothing = signed_in.get("/catalog/", {"q": "zzz"}, headers=HTMX).content.decode()
    assert "No models match these filters." in nothing


def test_deleted_models_are_hidden_unless_asked_for(signed_in) -> None:
    RegisteredModelFactory(name="gone-model", is_deleted=True)
    assert "gone-model" not in signed_in.get("/catalog/").content.decode()
    assert "gone-model" in signed_in.get("/catalog/", {"deleted": "on"}).content.decode()


def test_bad_filter_values_do_not_break_the_page(signed_in) -> None:
    response = signed_in.get("/catalog/", {"sort": "password", "team": "<script>", "page": "-4"})
    assert response.status_code == 200
    assert "<script>" not in response.content.decode().split("<main", 1)[1]


def test_model_page_sanitises_markdown_from_mlflow(signed_in) -> None:
    model = RegisteredModelFactory(
        description=(
            "# Title\n<script>alert(1)</script>\n[click](javascript:alert(2)) "
            '<img src=x onerror="alert(3)"> <a hx-get="/admin/" href="https://ok.example">ok</a>'
        )
    )
    html = signed_in.get(f"/catalog/models/{model.pk}/").content.decode()
    body = html.split('<div class="prose" hx-disable>', 1)[1].split("</div>", 1)[0]
    assert "<h1>Title</h1>" in body
    assert "<script" not in body and "javascript:" not in body
    assert "onerror" not in body and "hx-get" not in body
    assert 'href="https://ok.example"' in body


def test_model_page_lists_versions_with_aliases_and_mlflow_link(signed_in, settings) -> None:
    settings.MLFLOW_TRACKING_URI = "http://mlflow.internal:5000"
    model = RegisteredModelFactory(name="fraud cards")
    ModelVersionFactory(model=model, version=1)
    ModelVersionFactory(model=model, version=2)
    ModelAliasFactory(model=model, alias="champion", version=2)
    html = signed_in.get(f"/catalog/models/{model.pk}/").content.decode()
    assert "http://mlflow.internal:5000/#/models/fraud%20cards" in html
    assert f"/catalog/models/{model.pk}/versions/2/" in html
    assert "@champion" in html


def test_unknown_model_and_version_are_404(signed_in) -> None:
    model = RegisteredModelFactory()
    assert signed_in.get("/catalog/models/999999/").status_code == 404
    assert signed_in.get(f"/catalog/models/{model.pk}/versions/7/").status_code == 404


def test_version_page_shows_run_metrics_and_params(signed_in) -> None:
    version = ModelVersionFactory(run_metrics={"auc": 0.912345}, run_params={"depth": "6"})
    html = signed_in.get(
        f"/catalog/models/{version.model_id}/versions/{version.version}/"
    ).content.decode()
    assert "0.912345" in html and "depth" in html


def test_compare_highlights_differences_and_the_best_metric(signed_in) -> None:
    model = RegisteredModelFactory()
    ModelVersionFactory(
        model=model,
        version=1,
        run_metrics={"auc": 0.90, "log_loss": 0.30, "n": 5},
        run_params={"depth": "4", "lr": "0.1"},
    )
    ModelVersionFactory(
        model=model,
        version=2,
        run_metrics={"auc": 0.93, "log_loss": 0.35, "n": 5},
        run_params={"depth": "6", "lr": "0.1"},
    )
    response = signed_in.get(f"/catalog/models/{model.pk}/compare/", {"v": ["1", "2"]})
    assert response.status_code == 200
    rows = {row.name: row for row in response.context["metrics"]}
    assert rows["auc"].differs and rows["auc"].best_index == 1
    assert rows["log_loss"].best_index == 0  # lower is better for a loss
    assert not rows["n"].differs and rows["n"].best_index is None
    params = {row.name: row for row in response.context["params"]}
    assert params["depth"].differs and not params["lr"].differs
    html = response.content.decode()
    assert 'class="differs"' in html and "best" in html
    assert "<svg" in html and "<polyline" in html


def test_compare_chart_partial_swaps_the_metric(signed_in) -> None:
    model = RegisteredModelFactory()
    for number, auc in enumerate([0.8, 0.85, 0.9], start=1):
        ModelVersionFactory(model=model, version=number, run_metrics={"auc": auc, "f1": 0.5})
    response = signed_in.get(
        f"/catalog/models/{model.pk}/compare/",
        {"metric": "f1"},
        headers={**HTMX, "HX-Target": "metric-chart"},
    )
    html = response.content.decode()
    assert html.lstrip().startswith('<section class="card spaced-top" id="metric-chart">')
    assert html.count("<circle") == 3
    assert '<option value="f1" selected>' in html


def test_compare_rejects_bad_and_unknown_versions_with_400(signed_in) -> None:
    model = RegisteredModelFactory()
    ModelVersionFactory(model=model, version=1)
    bad = signed_in.get(f"/catalog/models/{model.pk}/compare/", {"v": ["1", "x"]})
    assert bad.status_code == 400 and "is not a version number" in bad.content.decode()
    unknown = signed_in.get(f"/catalog/models/{model.pk}/compare/", {"v": ["1", "9"]})
    assert unknown.status_code == 400 and "No version 9" in unknown.content.decode()


def test_card_is_editable_by_the_owning_team_only(client: Client, team, member, outsider) -> None:
    model = RegisteredModelFactory(owner_team=team)
    client.force_login(outsider)
    assert client.get(f"/catalog/models/{model.pk}/card/").status_code == 403
    assert (
        client.post(
            f"/catalog/models/{model.pk}/card/", {"risk": "low", "content": "x"}
        ).status_code
        == 403
    )
    client.force_login(member)
    response = client.post(
        f"/catalog/models/{model.pk}/card/", {"risk": "high", "content": "## Use\nFraud."}
    )
    assert response.status_code == 302
    card = ModelCard.objects.get(model=model)
    assert (card.risk, card.status, card.updated_by) == ("high", "draft", member)
    invalid = client.post(f"/catalog/models/{model.pk}/card/", {"risk": "extreme", "content": "x"})
    assert invalid.status_code == 400
    assert "Select a valid choice" in invalid.content.decode()


def test_card_review_flow_with_no_self_approval(client: Client, team, member) -> None:
    reviewers = TeamFactory(slug="risk-review", name="Risk")
    reviewer = MembershipFactory(team=reviewers).user
    MembershipFactory(team=reviewers, user=member)  # the author is a reviewer too
    model = RegisteredModelFactory(owner_team=team)
    ModelCardFactory(model=model, updated_by=member)
    client.force_login(member)
    client.post(f"/catalog/models/{model.pk}/card/submit/")
    client.post(f"/catalog/models/{model.pk}/card/approve/")
    assert ModelCard.objects.get(model=model).status == "in_review"  # no self-approval
    client.force_login(reviewer)
    client.post(f"/catalog/models/{model.pk}/card/approve/")
    card = ModelCard.objects.get(model=model)
    assert (card.status, card.approved_by) == ("approved", reviewer)
    actions = list(
        AuditEvent.objects.filter(action__startswith="model_card.").values_list("action", flat=True)
    )
    assert actions == ["model_card.approved", "model_card.submitted"]


def test_card_reviewer_sends_back_with_a_reason(client: Client, team, member) -> None:
    reviewer = UserFactory(is_staff=True)
    model = RegisteredModelFactory(owner_team=team)
    ModelCardFactory(model=model, status="in_review", submitted_by=member, updated_by=member)
    client.force_login(reviewer)
    empty = client.post(f"/catalog/models/{model.pk}/card/return/", {"reason": ""}, follow=True)
    assert "Say what needs to change" in empty.content.decode()
    client.post(f"/catalog/models/{model.pk}/card/return/", {"reason": "Add evaluation data."})
    assert ModelCard.objects.get(model=model).status == "draft"


def test_outsider_cannot_approve_cards(client: Client, team, outsider) -> None:
    model = RegisteredModelFactory(owner_team=team)
    ModelCardFactory(model=model, status="in_review")
    client.force_login(outsider)
    assert client.post(f"/catalog/models/{model.pk}/card/approve/").status_code == 403


def test_owner_change_is_refused_to_people_outside_the_owning_team(
    client: Client, team, member, outsider
) -> None:
    model = RegisteredModelFactory(owner_team=team)
    client.force_login(member)  # a member, not a maintainer
    assert client.post(f"/catalog/models/{model.pk}/owner/", {"team": "fraud"}).status_code == 403
    client.force_login(outsider)
    assert client.post(f"/catalog/models/{model.pk}/owner/", {"team": "fraud"}).status_code == 403


def test_sync_now_is_for_staff(
    client: Client, outsider, staff, django_capture_on_commit_callbacks
) -> None:
    client.force_login(outsider)
    assert client.post("/catalog/sync/").status_code == 403
    client.force_login(staff)
    with django_capture_on_commit_callbacks() as callbacks:
        assert client.post("/catalog/sync/").status_code == 302
    assert len(callbacks) == 1
    assert AuditEvent.objects.filter(action="registry.sync_requested", actor=staff).count() == 1
