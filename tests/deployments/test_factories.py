"""The deploy factories make rows the database and the services accept, without a cluster."""

from __future__ import annotations

import pytest

from apps.deployments import selectors as deploy_selectors
from apps.deployments.models import DeployEvent, DeployRequest, Release
from apps.deployments.planning import DeployOptions
from tests.catalog.factories import ModelVersionFactory
from tests.database import assert_rejected_by_database
from tests.deployments.factories import (
    DeployEventFactory,
    DeployRequestFactory,
    EnvironmentFactory,
    ReleaseFactory,
)

# Factory-built rows need no cluster and no MLflow: reaching one fails the test.
pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("offline")]

STAMPS = ("queued_at", "applying_at", "rolling_out_at", "finished_at")
# Each state trait, and the timestamps the services would have set by then, in order.
STAMPED_BY_TRAIT = {
    "pending_approval": (),
    "queued": ("queued_at",),
    "applying": ("queued_at", "applying_at"),
    "rolling_out": ("queued_at", "applying_at", "rolling_out_at"),
    "succeeded": STAMPS,
    "failed": STAMPS,
    "rolled_back": STAMPS,
    "cancelled": ("finished_at",),
    "rejected": ("finished_at",),
}


def test_every_state_has_a_trait() -> None:
    assert set(STAMPED_BY_TRAIT) == set(DeployRequest.State.values)


@pytest.mark.parametrize(("trait", "stamped"), STAMPED_BY_TRAIT.items())
def test_state_trait_sets_state_and_matching_timestamps(
    trait: str, stamped: tuple[str, ...]
) -> None:
    request = DeployRequestFactory(**{trait: True})
    request.refresh_from_db()
    request.full_clean()  # fields, choices and every constraint, as Django checks them

    assert request.state == trait
    assert {name: getattr(request, name) is not None for name in STAMPS} == {
        name: name in stamped for name in STAMPS
    }
    times = [request.created_at, *(getattr(request, name) for name in stamped)]
    assert times == sorted(times)
    assert request.heartbeat_at == times[-1]
    assert request.is_active == (trait in DeployRequest.ACTIVE_STATES)
    assert request.done == (request.finished_at is not None)


def test_default_request_is_queued_deploy_with_the_environments_options() -> None:
    environment = EnvironmentFactory(
        replicas=2, max_replicas=4, cpu_request="250m", memory_limit="2Gi"
    )
    version = ModelVersionFactory()

    request = DeployRequestFactory(environment=environment, version=version)

    assert (request.kind, request.state) == ("deploy", "queued")
    assert request.model == version.model
    assert request.is_active
    assert deploy_selectors.deploy_request_active(environment, version.model_id) == request
    assert DeployOptions.of_deploy(request) == DeployOptions.for_environment(environment)
    assert request.options_text() == "replicas 2, cpu 250m/1, memory 512Mi/2Gi"


def test_options_can_be_given_like_the_service_takes_them() -> None:
    environment = EnvironmentFactory(replicas=1, max_replicas=3)
    options = DeployOptions.for_environment(environment, replicas=3, cpu_limit="2")

    request = DeployRequestFactory(environment=environment, options=options)

    assert DeployOptions.of_deploy(request) == options


def test_planned_request_plans_to_create_each_rendered_object() -> None:
    environment = EnvironmentFactory(serving_kind="deployment")
    version = ModelVersionFactory(model__name="fraud")

    request = DeployRequestFactory(planned=True, environment=environment, version=version)

    assert DeployRequestFactory().plan == []  # unplanned by default
    assert [(item["kind"], item["name"], item["action"]) for item in request.plan] == [
        ("Deployment", "fraud", "create"),
        ("Service", "fraud", "create"),
    ]
    assert request.plan[0]["text"].startswith("--- /dev/null\n+++ planned Deployment/fraud\n")
    assert f"value: {version.source}" in request.plan[0]["text"]


def test_model_must_be_the_versions() -> None:
    with pytest.raises(ValueError, match=r"model must be version\.model"):
        DeployRequestFactory(model=ModelVersionFactory().model)


def test_two_active_requests_for_one_pair_are_refused() -> None:
    first = DeployRequestFactory(pending_approval=True)

    assert_rejected_by_database(
        lambda: DeployRequestFactory(environment=first.environment, version=first.version)
    )


def test_finished_requests_for_one_pair_sit_beside_an_active_one() -> None:
    first = DeployRequestFactory(succeeded=True)
    same_pair = {"environment": first.environment, "version": first.version}

    DeployRequestFactory(failed=True, **same_pair)
    DeployRequestFactory(rolled_back=True, **same_pair)
    active = DeployRequestFactory(rolling_out=True, **same_pair)

    assert DeployRequest.objects.filter(environment=first.environment).count() == 4
    assert deploy_selectors.deploy_request_active(first.environment, first.model_id) == active


def test_rollback_trait_combines_with_a_state_and_may_remove_objects() -> None:
    request = DeployRequestFactory(rollback=True, succeeded=True, removes_objects=True)

    assert (request.kind, request.state) == ("rollback", "succeeded")
    assert request.revision.startswith("roll back to ")


def test_only_a_rollback_may_remove_objects() -> None:
    assert_rejected_by_database(lambda: DeployRequestFactory(removes_objects=True))


def test_release_is_live_and_records_its_succeeded_request() -> None:
    release = ReleaseFactory()
    release.refresh_from_db()
    release.full_clean()
    request = release.deploy_request

    assert release.is_live
    assert request.state == "succeeded"
    assert (release.environment, release.model, release.version) == (
        request.environment,
        request.model,
        request.version,
    )
    assert release.live_from == request.finished_at
    assert release.storage_uri == request.version.source
    assert release.replicas == request.replicas
    assert request.requester is not None
    assert release.requested_by == request.requester.username
    assert request.baseline_version() == release.version
    assert deploy_selectors.release_live(release.environment_id, release.model_id) == release


def test_release_for_a_given_environment_and_version() -> None:
    environment, version = EnvironmentFactory(), ModelVersionFactory()

    release = ReleaseFactory(
        deploy_request__environment=environment, deploy_request__version=version
    )

    assert (release.environment, release.version, release.model) == (
        environment,
        version,
        version.model,
    )


def test_release_must_match_its_request() -> None:
    with pytest.raises(ValueError, match=r"environment must be deploy_request\.environment"):
        ReleaseFactory(environment=EnvironmentFactory())


def test_ended_releases_are_history_beside_the_live_one() -> None:
    ended = ReleaseFactory(ended=True)
    ended.refresh_from_db()
    ended.full_clean()
    pair = {
        "deploy_request__environment": ended.environment,
        "deploy_request__version": ended.version,
    }
    ReleaseFactory(ended=True, **pair)
    live = ReleaseFactory(**pair)

    assert not ended.is_live
    assert ended.live_until is not None
    assert ended.live_until >= ended.live_from
    assert list(Release.objects.filter(live_until__isnull=True)) == [live]
    assert deploy_selectors.release_live(ended.environment_id, ended.model_id) == live


def test_two_live_releases_for_one_pair_are_refused() -> None:
    live = ReleaseFactory()

    assert_rejected_by_database(
        lambda: ReleaseFactory(
            deploy_request__environment=live.environment, deploy_request__version=live.version
        )
    )


def test_deploy_event_is_a_state_note_on_its_request() -> None:
    event = DeployEventFactory(request__succeeded=True)
    event.refresh_from_db()
    event.full_clean()

    assert (event.kind, event.level, event.key) == ("state", "info", "")
    assert event.message == "Succeeded."
    assert list(event.request.events.all()) == [event]


def test_kubernetes_events_are_kept_once_per_key() -> None:
    request = DeployRequestFactory(rolling_out=True)
    first = DeployEventFactory(request=request, kubernetes=True)
    DeployEventFactory(request=request, kubernetes=True)
    DeployEventFactory(request=request)
    DeployEventFactory(request=request)

    assert first.kind == DeployEvent.Kind.KUBERNETES
    assert first.key
    assert request.events.count() == 4
    assert_rejected_by_database(
        lambda: DeployEventFactory(request=request, kubernetes=True, key=first.key)
    )
