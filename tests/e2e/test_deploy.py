# ruff: noqa: F811  (the worker and cluster fixtures are imported, then requested by name)
"""In Chromium, with a real worker and the simulated cluster: file a deploy request, see the diff,
watch it reach succeeded on its own page, and roll it back to the last good version."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from apps.deployments.models import DeployRequest, Release
from tests.accounts.factories import PASSWORD
from tests.deployments.support import environment_on, model_with_versions, request_deploy
from tests.deployments.worker_fixtures import (  # noqa: F401  (fixtures)
    deploy_worker,
    wait_for,
)
from tests.fixtures.browser import sign_in

pytestmark = [pytest.mark.browser, pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def test_file_watch_and_roll_back_a_deploy(
    new_page, running_cluster, deploy_worker, team, member, tmp_path
) -> None:
    dev = environment_on(running_cluster.write_kubeconfig(tmp_path / "kubeconfig"))
    fraud = model_with_versions(team, 2)
    model_with_versions(None, 1, name="churn")
    first = request_deploy(member, dev, fraud, 1)
    wait_for(first.pk, {"succeeded"}, deploy_worker)  # v1 is live: the last good version

    page = new_page()
    sign_in(page, member.username, PASSWORD)
    page.goto("/deployments/requests/new/")
    page.fill("#id_q", "frau")
    expect(page.locator("#id_model option")).to_have_count(1)
    expect(page.locator("#id_model option:checked")).to_have_text(re.compile(r"^fraud"))
    page.select_option("#id_version", "2")
    page.get_by_role("button", name="Preview the change").click()
    preview = page.locator("#preview")
    expect(preview.locator(".badge", has_text="update").first).to_be_visible()
    expect(preview.locator(".diff-add", has_text="value: s3://models/fraud/2")).to_be_visible()
    expect(preview).to_contain_text("No approval needed")
    page.get_by_role("button", name="File deploy request").click()
    page.wait_for_url(re.compile(r"/deployments/requests/\d+/$"))
    filed = DeployRequest.objects.exclude(pk=first.pk).get()
    status = page.locator("#status-panel [data-state]").first
    expect(status).to_have_attribute("data-state", "succeeded", timeout=30_000)  # htmx polling
    expect(page.locator("#status-panel")).not_to_have_attribute("hx-trigger", re.compile("every"))
    assert Release.objects.get(live_until__isnull=True).deploy_request_id == filed.pk

    page.get_by_role("link", name="Roll back to last good…").click()
    page.wait_for_url(re.compile(r"/deployments/releases/\d+/rollback/$"))
    expect(page.locator("h1")).to_have_text("Roll back fraud in dev")
    page.fill("#id_reason", "error rate up after v2")
    page.get_by_role("button", name="Confirm: roll back to v1").click()
    page.wait_for_url(re.compile(r"/deployments/requests/\d+/$"))
    rollback = DeployRequest.objects.get(kind="rollback")
    expect(page.locator("h1")).to_contain_text("Roll back fraud v1")
    expect(page.locator("#status-panel [data-state]").first).to_have_attribute(
        "data-state", "succeeded", timeout=30_000
    )
    live = Release.objects.get(live_until__isnull=True)
    assert (live.version.version, live.deploy_request_id) == (1, rollback.pk)
    assert page.console_errors == []
