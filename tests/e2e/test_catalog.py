"""In Chromium: search the catalog as you type, open a model, compare two versions."""

import pytest
from playwright.sync_api import expect

from tests.accounts.factories import PASSWORD, UserFactory
from tests.catalog.factories import ModelAliasFactory, ModelVersionFactory, RegisteredModelFactory
from tests.fixtures.browser import sign_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_search_then_compare_versions(new_page) -> None:
    UserFactory(username="lena")
    fraud = RegisteredModelFactory(name="fraud-cards", description="Scores **card** payments")
    RegisteredModelFactory(name="home-ranking", description="Orders the home feed")
    for number, auc in ((1, 0.90), (2, 0.94), (3, 0.92)):
        ModelVersionFactory(
            model=fraud,
            version=number,
            run_metrics={"auc": auc},
            run_params={"depth": str(number + 3)},
        )
    ModelAliasFactory(model=fraud, alias="champion", version=2)

    page = new_page()
    sign_in(page, "lena", PASSWORD)
    page.goto("/catalog/")
    assert page.locator("#results tbody tr").count() == 2
    page.fill("#id_q", "card")
    expect(page.locator("#results tbody tr")).to_have_count(1)
    assert "q=card" in page.url  # the search is in the address bar, so it can be shared
    page.get_by_role("link", name="fraud-cards").click()
    page.wait_for_url(f"**/catalog/models/{fraud.pk}/")
    assert page.locator("h1").inner_text().startswith("fraud-cards")

    page.get_by_label("Compare v1").check()  # v3 and v2 are pre-ticked; add v1
    page.get_by_role("button", name="Compare selected").click()
    page.wait_for_url("**/compare/**")
    headers = page.locator("table.compare").first.locator("thead th").all_inner_texts()
    assert headers == ["METRIC", "V1", "V2", "V3"]
    best = page.locator("table.compare td.best")
    assert best.count() == 1 and best.inner_text() == "0.94"
    assert page.locator("svg.chart circle").count() == 3
    assert page.console_errors == []
