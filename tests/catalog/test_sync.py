"""Registry sync against a real MLflow server."""

from __future__ import annotations

import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from apps.audit.models import AuditEvent
from apps.catalog.models import ModelAlias, ModelVersion, RegisteredModel, RegistrySyncState
from apps.catalog.registry import Registry, RegistryUnavailable
from apps.catalog.sync import (
    SyncAlreadyRunningError,
    SyncMode,
    batching,
    registry_fetch_runs,
    registry_sync,
    registry_sync_model,
)
from apps.catalog.sync.bookkeeping import claim_lease
from tests.accounts.factories import TeamFactory

pytestmark = [pytest.mark.mlflow, pytest.mark.django_db]
CATALOG_WRITE = re.compile(
    r'^\s*(INSERT INTO|UPDATE|DELETE FROM)\s+"?catalog_(registeredmodel|modelversion|modelalias)',
    re.IGNORECASE,
)


def catalog_writes(queries: CaptureQueriesContext) -> list[str]:
    return [q["sql"] for q in queries.captured_queries if CATALOG_WRITE.match(q["sql"])]


CATALOG_STATEMENT = re.compile(
    r'^\s*(SELECT .*? FROM|INSERT INTO|UPDATE|DELETE FROM)\s+"?catalog_', re.IGNORECASE
)
IN_LIST = re.compile(r"\bIN \(([^()]*)\)", re.IGNORECASE)


def catalog_in_lists(queries: CaptureQueriesContext) -> list[str]:
    """The values of every `IN (...)` list in statements on catalog tables."""
    return [
        values
        for q in queries.captured_queries
        if CATALOG_STATEMENT.match(q["sql"])
        for values in IN_LIST.findall(q["sql"])
    ]


def default_batches(monkeypatch: pytest.MonkeyPatch) -> None:
    """The sync batches as configured."""


def batches_of_one(monkeypatch: pytest.MonkeyPatch) -> None:
    """A batch of one row makes every list of ids span several statements."""
    monkeypatch.setattr(batching, "BULK_BATCH", 1)


def some_list_holds_two(in_lists: list[str]) -> bool:
    return any("," in values for values in in_lists)


def no_list_holds_two(in_lists: list[str]) -> bool:
    return all("," not in values for values in in_lists)


# The patched batch size reaches the sync: with batches of one, no `IN` list holds two values;
# with the default, at least one does (so the first check is not vacuous).
BATCHES = pytest.mark.parametrize(
    ("batches", "in_lists_are_right"),
    [(default_batches, some_list_holds_two), (batches_of_one, no_list_holds_two)],
    ids=["default-batches", "batches-of-one"],
)


@pytest.fixture
def fraud_model(registry_builder, mlflow_client):
    TeamFactory(slug="fraud-detection", name="Fraud Detection")
    name = registry_builder.model(
        "fraud", description="Scores card payments.", tags={"portal.team": "fraud-detection"}
    )
    registry_builder.version(name, metrics={"auc": 0.91, "loss": 0.3}, params={"depth": "4"})
    registry_builder.version(name, metrics={"auc": 0.93, "loss": 0.25}, params={"depth": "6"})
    mlflow_client.set_registered_model_alias(name, "champion", "1")
    mlflow_client.set_registered_model_alias(name, "challenger", "2")
    return name


def test_full_sync_creates_the_mirror(mlflow_uri, fraud_model) -> None:
    counts = registry_sync(mode=SyncMode.FULL)
    assert counts.models_created >= 1
    model = RegisteredModel.objects.get(name=fraud_model)
    assert model.description == "Scores card payments."
    assert model.owner_team is not None
    assert model.owner_team.slug == "fraud-detection"
    assert (model.latest_version, model.version_count) == (2, 2)
    assert dict(ModelAlias.objects.filter(model=model).values_list("alias", "version")) == {
        "champion": 1,
        "challenger": 2,
    }
    versions = {v.version: v for v in ModelVersion.objects.filter(model=model)}
    assert versions[2].source.startswith(f"s3://models/{fraud_model}/")
    assert versions[2].status == "READY"
    assert versions[1].run_fetched_at is None  # metrics come in a separate, batched step

    assert registry_fetch_runs() >= 2
    versions[1].refresh_from_db()
    assert versions[1].run_metrics == {"auc": 0.91, "loss": 0.3}
    assert versions[1].run_params == {"depth": "4"}
    assert AuditEvent.objects.filter(action="registry.synced").count() == 1
    state = RegistrySyncState.objects.get()
    assert state.last_full_sync_at is not None
    assert state.unreachable_since is None


@pytest.mark.parametrize("second_mode", [SyncMode.FULL, SyncMode.INCREMENTAL])
def test_sync_of_an_unchanged_registry_writes_no_catalog_rows(
    mlflow_uri, fraud_model, second_mode
) -> None:
    registry_sync(mode=SyncMode.FULL)
    registry_fetch_runs()
    audit_before = AuditEvent.objects.count()
    with CaptureQueriesContext(connection) as queries:
        counts = registry_sync(mode=second_mode)
        assert registry_fetch_runs() == 0
    assert counts.changed == 0
    assert catalog_writes(queries) == []
    assert AuditEvent.objects.count() == audit_before


def test_incremental_sync_reads_only_what_changed(
    mlflow_uri, fraud_model, registry_builder
) -> None:
    registry_sync(mode=SyncMode.FULL)
    registry_builder.version(fraud_model, metrics={"auc": 0.95})
    counts = registry_sync(mode=SyncMode.INCREMENTAL)
    assert counts.versions_created == 1
    assert counts.models_seen < 10 and counts.versions_seen < 10  # not a full read
    assert RegisteredModel.objects.get(name=fraud_model).latest_version == 3


@BATCHES
def test_incremental_sync_picks_up_a_new_model(
    mlflow_uri, fraud_model, registry_builder, monkeypatch, batches, in_lists_are_right
) -> None:
    batches(monkeypatch)
    registry_sync(mode=SyncMode.FULL)
    newcomer = registry_builder.model("newcomer")
    registry_builder.version(newcomer)
    registry_builder.version(newcomer)
    registry_builder.version(fraud_model)
    with CaptureQueriesContext(connection) as queries:
        counts = registry_sync(mode=SyncMode.INCREMENTAL)
    assert counts.versions_created == 3
    assert RegisteredModel.objects.get(name=newcomer).version_count == 2
    assert RegisteredModel.objects.get(name=fraud_model).latest_version == 3
    in_lists = catalog_in_lists(queries)
    assert in_lists
    assert in_lists_are_right(in_lists)


@BATCHES
def test_full_sync_notices_deletions(
    mlflow_uri,
    fraud_model,
    registry_builder,
    mlflow_client,
    monkeypatch,
    batches,
    in_lists_are_right,
) -> None:
    batches(monkeypatch)
    doomed = [registry_builder.model("doomed"), registry_builder.model("doomed-too")]
    for name in doomed:
        registry_builder.version(name)
    registry_sync(mode=SyncMode.FULL)
    for name in doomed:
        mlflow_client.delete_registered_model(name)
    mlflow_client.delete_model_version(fraud_model, "1")
    with CaptureQueriesContext(connection) as queries:
        counts = registry_sync(mode=SyncMode.FULL)
    assert counts.models_deleted == 2
    for gone in RegisteredModel.objects.filter(name__in=doomed):
        assert gone.is_deleted and gone.deleted_at is not None
        assert ModelVersion.objects.get(model=gone).is_deleted
    fraud = RegisteredModel.objects.get(name=fraud_model)
    assert ModelVersion.objects.get(model=fraud, version=1).is_deleted
    assert (fraud.latest_version, fraud.version_count) == (2, 1)
    # the alias on the deleted version went with it in MLflow, and so here
    aliases = ModelAlias.objects.filter(model=fraud).values_list("alias", flat=True)
    assert list(aliases) == ["challenger"]
    in_lists = catalog_in_lists(queries)
    assert in_lists
    assert in_lists_are_right(in_lists)


def test_full_sync_reconciles_tags_and_alias_moves(mlflow_uri, fraud_model, mlflow_client) -> None:
    registry_sync(mode=SyncMode.FULL)
    mlflow_client.set_registered_model_alias(fraud_model, "champion", "2")
    mlflow_client.set_registered_model_tag(fraud_model, "portal.team", "nobody-here")
    mlflow_client.set_model_version_tag(fraud_model, "2", "validation_status", "passed")
    counts = registry_sync(mode=SyncMode.FULL)
    assert counts.aliases_changed == 1
    model = RegisteredModel.objects.get(name=fraud_model)
    assert (model.owner_team, model.owner_tag) == (None, "nobody-here")
    assert ModelAlias.objects.get(model=model, alias="champion").version == 2
    assert ModelVersion.objects.get(model=model, version=2).tags == {"validation_status": "passed"}


def test_sync_model_applies_one_model_and_its_deletions(
    mlflow_uri, fraud_model, mlflow_client
) -> None:
    registry_sync(mode=SyncMode.FULL)
    mlflow_client.delete_model_version(fraud_model, "2")
    counts = registry_sync_model(name=fraud_model)
    assert counts.versions_deleted == 1
    mlflow_client.delete_registered_model(fraud_model)
    registry_sync_model(name=fraud_model)
    assert RegisteredModel.objects.get(name=fraud_model).is_deleted


def test_two_syncs_never_run_at_once(mlflow_uri) -> None:
    claim_lease()
    with pytest.raises(SyncAlreadyRunningError):
        registry_sync(mode=SyncMode.FULL)


def test_mlflow_stopping_mid_sync_changes_nothing_and_shows_the_outage(
    flaky_mlflow, fraud_model, registry_builder, monkeypatch, client, outsider
) -> None:
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    registry_sync(mode=SyncMode.FULL)
    registry_builder.version(fraud_model)
    before = list(ModelVersion.objects.order_by("id").values_list("id", "version", "is_deleted"))

    flaky_mlflow.stop_after = flaky_mlflow.requests_seen + 1  # models page passes, versions fail
    with pytest.raises(RegistryUnavailable):
        registry_sync(mode=SyncMode.FULL)
    after = list(ModelVersion.objects.order_by("id").values_list("id", "version", "is_deleted"))
    assert after == before
    state = RegistrySyncState.objects.get()
    assert state.unreachable_since is not None
    assert state.lease_until is None  # the lease is released even on failure

    client.force_login(outsider)
    page = client.get("/catalog/").content.decode()
    assert "MLflow registry unreachable since" in page
    assert fraud_model in page  # still readable from the mirror

    flaky_mlflow.restart()
    registry_sync(mode=SyncMode.FULL)
    assert RegisteredModel.objects.get(name=fraud_model).latest_version == 3
    assert RegistrySyncState.objects.get().unreachable_since is None
    assert "MLflow registry unreachable since" not in client.get("/catalog/").content.decode()


def test_sync_task_asks_for_a_retry_with_backoff_when_mlflow_is_down(
    flaky_mlflow, monkeypatch
) -> None:
    from celery.exceptions import Retry

    from apps.catalog.tasks import registry_sync_task

    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    flaky_mlflow.stop()
    retries = []

    def record_retry(*args, **kwargs):
        retries.append(kwargs)
        raise Retry(exc=kwargs.get("exc"), when=kwargs.get("countdown"))

    # Eager runs retry in-line; capture the request the worker would have scheduled instead.
    monkeypatch.setattr(registry_sync_task, "retry", record_retry)
    result = registry_sync_task.apply(kwargs={"mode": "full"})
    assert result.state == "RETRY"
    assert isinstance(retries[0]["exc"], RegistryUnavailable)
    # First retry: backoff of 5 s, with full jitter (anywhere from 0 to 5 s).
    assert 0 <= retries[0]["countdown"] <= 5
    assert RegistrySyncState.objects.get().unreachable_since is not None


def test_registry_errors_keep_mlflow_words(mlflow_uri) -> None:
    from apps.catalog.registry import RegistryNotFound

    with pytest.raises(RegistryNotFound, match=r"not found|does not exist|RESOURCE_DOES_NOT_EXIST"):
        Registry().get_model("no-such-model-anywhere")
