# ruff: noqa: F811  (the worker and cluster fixtures are imported, then requested by name)
"""In Chromium, on-call works an incident: opens it, adds a note, links the deploy that
preceded it from "what changed", rolls back from the incident and resolves it; at desktop and
phone widths, with no sideways scrolling."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from playwright.sync_api import expect

from apps.deployments.models import DeployRequest, Release
from apps.incidents.models import Incident, LinkedChange
from tests.accounts.factories import PASSWORD
from tests.deployments.support import environment_on, model_with_versions, request_deploy
from tests.deployments.worker_fixtures import (  # noqa: F401  (fixtures)
    deploy_worker,
    wait_for,
)
from tests.fixtures.browser import sign_in

pytestmark = [pytest.mark.browser, pytest.mark.worker, pytest.mark.django_db(transaction=True)]
# Where screenshots go when SCREENSHOTS_DIR is set (to look at the page by eye).
SCREENSHOTS = os.environ.get("SCREENSHOTS_DIR", "")


# The deepest element sticking out on the right, to say what overflows.
WIDEST = """() => {
  const limit = document.documentElement.clientWidth;
  let found = "";
  for (const el of document.querySelectorAll("body *")) {
    const right = el.getBoundingClientRect().right;
    if (right > limit + 1) found = `${el.tagName}.${el.className} (${Math.round(right)} px)`;
  }
  return found;
}"""


def _no_sideways_scroll(page) -> None:
    width = page.evaluate("document.documentElement.scrollWidth")
    viewport = page.viewport_size["width"]
    assert width <= viewport, (
        f"the page is {width} px wide in a {viewport} px window: {page.evaluate(WIDEST)}"
    )


def _shoot(page, name: str) -> None:
    if SCREENSHOTS:
        page.screenshot(path=str(Path(SCREENSHOTS) / f"{name}.png"), full_page=True)


@pytest.mark.parametrize("width", [1366, 390])
def test_on_call_opens_notes_links_rolls_back_and_resolves(
    new_page, running_cluster, deploy_worker, team, member, tmp_path, width
) -> None:
    dev = environment_on(running_cluster.write_kubeconfig(tmp_path / "kubeconfig"))
    fraud = model_with_versions(team, 2)
    wait_for(request_deploy(member, dev, fraud, 1).pk, {"succeeded"}, deploy_worker)
    bad = request_deploy(member, dev, fraud, 2)
    wait_for(bad.pk, {"succeeded"}, deploy_worker)

    page = new_page()
    page.set_viewport_size({"width": width, "height": 900})
    page.on("dialog", lambda dialog: dialog.accept())
    sign_in(page, member.username, PASSWORD)
    page.goto("/incidents/")
    expect(page.locator(".empty")).to_contain_text("No incidents yet.")
    page.get_by_role("link", name="Open an incident").click()
    page.fill("#id_title", "Fraud scores drifted to zero")
    page.check("input[name=severity][value=sev2]")
    page.check(f"input[name=environments][value='{dev.pk}']")
    page.fill("#id_models", fraud.name)
    _shoot(page, f"incident-open-{width}")
    page.get_by_role("button", name="Open incident").click()
    page.wait_for_url(re.compile(r"/incidents/\d+/$"))
    incident = Incident.objects.get()
    expect(page.locator("h1")).to_contain_text("Fraud scores drifted to zero")

    page.fill("#id_body", "Scores are **all zero** since the v2 deploy.")
    page.get_by_role("button", name="Add note").click()
    expect(page.locator("#timeline strong", has_text="all zero")).to_be_visible()

    change = page.locator("#changes .change", has_text=f"Deploy #{bad.pk}")
    expect(change).to_contain_text("same model and environment")
    change.get_by_role("button", name="Link").click()
    expect(page.locator("#changes .change", has_text=f"Deploy #{bad.pk}")).to_contain_text("linked")
    assert LinkedChange.objects.get().object_id == bad.pk

    page.get_by_role("button", name="Roll back to last good").click()
    expect(page.locator("#incident .message-success")).to_contain_text("Rollback #")
    rollback = DeployRequest.objects.get(kind="rollback")
    assert wait_for(rollback.pk, {"succeeded", "failed"}, deploy_worker).state == "succeeded"
    live = Release.objects.get(live_until__isnull=True)
    assert live.version.version == 1
    # The rollback's own events reach the open page through the timeline's polling.
    expect(page.locator("#timeline")).to_contain_text(f"#{rollback.pk} rollback of fraud v1")
    expect(page.locator("#timeline")).to_contain_text("Succeeded", timeout=20_000)

    page.locator("form[action$='/status/']", has=page.locator("input[value=resolved]")).get_by_role(
        "button"
    ).click()
    expect(page.locator("#incident .message-success")).to_contain_text("Now resolved.")
    incident.refresh_from_db()
    assert incident.status == "resolved" and incident.resolved_at is not None
    _shoot(page, f"incident-{width}")
    _no_sideways_scroll(page)
    assert page.console_errors == []
