"""/api/v1/deploy-requests/, /releases/ and /deploy-matrix/: what a CI pipeline uses.

Filing, its dry run and carrying requests out go to the simulated cluster (`dev`); refusals,
lists and what was live when are read from rows the factories make (`dev_offline`)."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.test import Client
from django.utils import timezone

from apps.deployments import services
from apps.deployments.models import DeployRequest, Release
from tests.api_errors import api_error
from tests.deployments.factories import DeployRequestFactory
from tests.deployments.support import (
    drive,
    environment_on,
    request_deploy,
    v2_live_after_v1,
    version,
)

URL = "/api/v1/deploy-requests/"


@pytest.fixture
def dev(kubeconfig):
    """dev on the simulated cluster."""
    return environment_on(kubeconfig, "dev", 10)


@pytest.fixture
def dev_offline(kubeconfig_file):
    """dev with no cluster behind it: reaching one fails the test."""
    return environment_on(kubeconfig_file, "dev", 10)


def signed_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def post(client: Client, url: str, body: dict):
    return client.post(url, body, content_type="application/json")


@pytest.mark.django_db
def test_anonymous_callers_get_401(client) -> None:
    api_error(client.get(URL), 401, "not_authenticated")
    api_error(client.get("/api/v1/deploy-matrix/"), 401, "not_authenticated")


@pytest.mark.django_db
def test_create_then_follow_to_the_end(sim, dev, fraud, member) -> None:
    api = signed_in(member)
    response = post(
        api, URL, {"model": "fraud", "version": 2, "environment": "dev", "reason": "CI run 17"}
    )
    assert response.status_code == 201, response.json()
    body = response.json()
    assert (body["state"], body["done"], body["version"], body["requester"]) == (
        "queued",
        False,
        2,
        "mo",
    )
    assert body["plan"][0]["action"] == "create"
    assert body["web_url"] == f"/deployments/requests/{body['id']}/"
    drive(sim, body["id"])
    final = api.get(f"{URL}{body['id']}/").json()
    assert (final["state"], final["done"]) == ("succeeded", True)
    assert final["release"] == Release.objects.get().pk
    assert [e["kind"] for e in final["events"]][:2] == ["state", "state"]
    assert any("Succeeded" in e["message"] for e in final["events"])


@pytest.mark.django_db
def test_bad_input_is_a_400_naming_the_field(dev_offline, fraud, member) -> None:
    api = signed_in(member)
    missing = post(api, URL, {"model": "fraud", "version": 9, "environment": "dev"})
    assert api_error(missing, 400, "invalid") == {
        "detail": "version: fraud has no version 9.",
        "code": "invalid",
        "errors": {"version": ["fraud has no version 9."]},
    }
    unknown = post(api, URL, {"model": "fruad", "version": 1, "environment": "dev"})
    assert api_error(unknown, 400)["errors"] == {"model": ["No model “fruad” in the catalog."]}
    too_many = post(api, URL, {"model": "fraud", "version": 1, "environment": "dev", "replicas": 5})
    assert api_error(too_many, 400)["errors"]["replicas"] == [
        "Choose 1 to 1 replicas in dev (its autoscaling ceiling)."
    ]
    canary = post(
        api,
        URL,
        {"model": "fraud", "version": 1, "environment": "dev", "canary_traffic_percent": 10},
    )
    assert api_error(canary, 400)["errors"]["canary_traffic_percent"] == [
        "Canary traffic needs KServe in Knative mode; dev is not."
    ]
    nowhere = post(api, URL, {"model": "fraud", "version": 1, "environment": "nope"})
    assert api_error(nowhere, 400)["errors"] == {"environment": ["No environment “nope”."]}
    assert not DeployRequest.objects.exists()


@pytest.mark.django_db
def test_blocked_is_a_400_listing_the_blockers(dev, fraud, member, staff) -> None:
    services.deploy_freeze_create(actor=staff, environment=dev, reason="Migration")
    response = post(signed_in(member), URL, {"model": "fraud", "version": 1, "environment": "dev"})
    body = api_error(response, 400, "blocked")
    assert body["detail"] == "dev is frozen: Migration"
    assert body["blockers"] == [{"kind": "freeze", "message": "dev is frozen: Migration"}]
    bypass = post(
        signed_in(staff),
        URL,
        {"model": "fraud", "version": 1, "environment": "dev", "bypass_reason": "INC-7 fix"},
    )
    assert bypass.status_code == 201
    assert bypass.json()["bypassed"] == ["dev is frozen: Migration"]


@pytest.mark.django_db
def test_outsiders_get_403_and_do_not_see_others_requests(
    dev_offline, fraud, member, outsider
) -> None:
    request = DeployRequestFactory(
        environment=dev_offline, version=version(fraud, 1), requester=member
    )
    api = signed_in(outsider)
    filed = post(api, URL, {"model": "fraud", "version": 1, "environment": "dev"})
    api_error(filed, 403, "permission_denied")
    api_error(api.get(f"{URL}{request.pk}/"), 404, "not_found")
    assert api.get(URL).json()["count"] == 0
    api_error(post(api, f"{URL}{request.pk}/cancel/", {}), 404, "not_found")


@pytest.mark.django_db
def test_list_filters_in_bounded_queries(
    dev_offline, fraud, member, django_assert_max_num_queries
) -> None:
    for number in range(1, 4):
        DeployRequestFactory(
            cancelled=True,
            environment=dev_offline,
            version=version(fraud, number),
            requester=member,
        )
    DeployRequestFactory(environment=dev_offline, version=version(fraud, 1), requester=member)
    api = signed_in(member)
    with django_assert_max_num_queries(6):
        body = api.get(URL, {"environment": "dev"}).json()
    assert body["count"] == 4
    assert [r["state"] for r in api.get(URL, {"active": "true"}).json()["results"]] == ["queued"]
    assert api.get(URL, {"state": "cancelled", "model": "fra"}).json()["count"] == 3


@pytest.mark.django_db
def test_dry_run_shows_the_diff_and_changes_nothing(sim, dev, fraud, member) -> None:
    api = signed_in(member)
    drive(sim, request_deploy(member, dev, fraud, 1).pk)
    body = post(
        api, f"{URL}dry-run/", {"model": "fraud", "version": 2, "environment": "dev"}
    ).json()
    deployment = body["objects"][0]
    assert (deployment["kind"], deployment["action"]) == ("Deployment", "update")
    assert "+          value: s3://models/fraud/2" in deployment["text"]
    assert body["rules"] == ["No approval needed: the request goes straight to the queue."]
    assert (body["blockers"], body["active_request"]) == ([], None)
    assert DeployRequest.objects.count() == 1


@pytest.mark.django_db
def test_cancel_abort_and_rollback_through_the_api(sim, dev, fraud, member) -> None:
    api = signed_in(member)
    first = request_deploy(member, dev, fraud, 1)
    cancelled = post(api, f"{URL}{first.pk}/cancel/", {"reason": "oops"})
    assert (cancelled.status_code, cancelled.json()["state"]) == (200, "cancelled")
    assert (
        "already cancelled" in api_error(post(api, f"{URL}{first.pk}/cancel/", {}), 400)["detail"]
    )
    drive(sim, request_deploy(member, dev, fraud, 1).pk)
    drive(sim, request_deploy(member, dev, fraud, 2).pk)
    third = request_deploy(member, dev, fraud, 3)
    from apps.deployments.services import deploy_request_execute

    deploy_request_execute(third.pk, third.token)
    aborted = post(api, f"{URL}{third.pk}/abort/", {"reason": "p99 up"})
    assert aborted.status_code == 201
    assert (aborted.json()["kind"], aborted.json()["rollback_of"]) == ("rollback", third.pk)
    drive(sim, aborted.json()["id"])
    live = Release.objects.get(live_until__isnull=True)
    assert live.version.version == 2
    rollback = post(api, f"/api/v1/releases/{live.pk}/rollback/", {"reason": "back to v1"})
    assert rollback.status_code == 201, rollback.json()
    assert (rollback.json()["version"], rollback.json()["state"]) == (1, "queued")
    again = post(api, f"/api/v1/releases/{live.pk}/rollback/", {})
    assert api_error(again, 409, "active_request")["active_request"] == rollback.json()["id"]


@pytest.mark.django_db
def test_releases_matrix_and_time_travel(kubeconfig_file, dev_offline, fraud, member) -> None:
    environment_on(kubeconfig_file, "production", 30)
    v2_live_after_v1(dev_offline, fraud, member, ago=timedelta(hours=2))
    api = signed_in(member)
    live = api.get("/api/v1/releases/", {"live": "true"}).json()["results"]
    assert [(r["model"], r["version"], r["live"]) for r in live] == [("fraud", 2, True)]
    an_hour_ago = (timezone.now() - timedelta(hours=1)).isoformat()
    past = api.get("/api/v1/releases/", {"at": an_hour_ago}).json()["results"]
    assert [r["version"] for r in past] == [1]
    matrix = api.get("/api/v1/deploy-matrix/").json()
    assert matrix["environments"] == ["dev", "production"]
    row = matrix["results"][0]
    assert (row["model"], row["environments"]["production"]) == ("fraud", None)
    assert row["environments"]["dev"]["version"] == 2
    assert row["environments"]["dev"]["requested_by"] == "mo"
    then = api.get("/api/v1/deploy-matrix/", {"at": an_hour_ago}).json()
    assert then["results"][0]["environments"]["dev"]["version"] == 1
    yesterday = api_error(api.get("/api/v1/deploy-matrix/", {"at": "yesterday"}), 400)
    assert yesterday["errors"]["at"] == [
        "“yesterday” is not a time: use ISO 8601. For example 2025-06-01T14:30:00Z."
    ]


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_twenty_concurrent_requests_one_accepted_nineteen_conflicts(dev, fraud, member) -> None:
    clients = [signed_in(member) for _ in range(20)]
    barrier = threading.Barrier(20)
    results: list = []
    lock = threading.Lock()

    def file(client: Client) -> None:
        try:
            barrier.wait()
            response = post(client, URL, {"model": "fraud", "version": 1, "environment": "dev"})
            with lock:
                results.append(response)
        finally:
            connection.close()  # each thread had its own connection

    threads = [threading.Thread(target=file, args=(client,)) for client in clients]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(response.status_code for response in results) == [201] + [409] * 19
    accepted = next(response.json() for response in results if response.status_code == 201)
    refused = [response for response in results if response.status_code != 201]
    for body in (api_error(response, 409, "active_request") for response in refused):
        assert body["active_request"] == accepted["id"]
        assert body["detail"].startswith(
            f"fraud already has an active request in dev: #{accepted['id']}"
        )
    assert DeployRequest.objects.count() == 1


@pytest.mark.django_db
def test_dry_run_is_for_people_who_may_deploy(dev_offline, fraud, outsider) -> None:
    body = {"model": "fraud", "version": 1, "environment": "dev"}
    response = post(signed_in(outsider), f"{URL}dry-run/", body)
    assert api_error(response, 403, "permission_denied") == {
        "detail": "Only fraud's owning team or staff can deploy it.",
        "code": "permission_denied",
        "errors": {},
    }


@pytest.mark.django_db
def test_odd_query_strings_are_400s_or_empty_never_500s(member) -> None:
    api = signed_in(member)
    assert api.get("/api/v1/releases/", {"at": "0420-06-22T20:21:54.1+23:31"}).status_code == 200
    api_error(api.get("/api/v1/releases/", {"at": "0001-01-01T00:00:00+23:59"}), 400)
    api_error(api.get(URL, {"model": "a\x00b", "environment": "\x00"}), 400, "nul_character")
    api_error(api.get("/api/v1/deploy-matrix/", {"search": "\x00", "team": "x\x00"}), 400)
    api_error(api.get("/api/v1/releases/", {"model": "\x00"}), 400, "nul_character")


@pytest.mark.django_db
def test_null_characters_in_a_body_are_a_400(dev_offline, fraud, member) -> None:
    api = signed_in(member)
    for field in ("environment", "model"):
        body = {"model": "fraud", "version": 1, "environment": "dev", field: "d\x00v"}
        api_error(post(api, URL, body), 400, "nul_character")
        api_error(post(api, f"{URL}dry-run/", body), 400, "nul_character")
    unknown = post(api, URL, {"model": "fraud", "version": 1, "environment": "qa"})
    assert api_error(unknown, 400)["errors"] == {"environment": ["No environment “qa”."]}
