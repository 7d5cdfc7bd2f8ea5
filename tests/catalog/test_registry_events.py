"""Registry events: what a sync saw change in MLflow on models the mirror already had."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from apps.catalog import hooks, selectors
from apps.catalog.models import RegisteredModel, RegistryEvent
from apps.catalog.sync import (
    SyncMode,
    events,
    registry_events_prune,
    registry_sync,
    registry_sync_model,
)
from apps.catalog.sync.events import tag_change
from tests.catalog.factories import ModelVersionFactory, RegisteredModelFactory
from tests.database import assert_rejected_by_database

Kind = RegistryEvent.Kind


def events_of(name: str) -> list[RegistryEvent]:
    return list(RegistryEvent.objects.filter(model__name=name).order_by("id"))


def summary(event: RegistryEvent) -> tuple[str, int | None, str, str]:
    return (event.kind, event.version, event.alias, event.detail)


@pytest.fixture
def fraud_model(registry_builder, mlflow_client) -> str:
    """v1 (@champion) and v2 (@challenger), no version tags."""
    name = registry_builder.model("fraud", tags={"domain": "payments"})
    registry_builder.version(name)
    registry_builder.version(name)
    mlflow_client.set_registered_model_alias(name, "champion", "1")
    mlflow_client.set_registered_model_alias(name, "challenger", "2")
    return name


@pytest.mark.mlflow
@pytest.mark.django_db
class TestSyncRecordsEvents:
    def test_a_first_sync_and_new_versions_and_models_record_none(
        self, mlflow_uri, fraud_model, registry_builder, mlflow_client
    ) -> None:
        counts = registry_sync(mode=SyncMode.FULL)
        assert counts.models_created >= 1
        assert counts.events_recorded == 0
        assert not RegistryEvent.objects.exists()

        registry_builder.version(fraud_model)  # a new version: dated by mlflow_created_at
        newcomer = registry_builder.model("newcomer", tags={"domain": "ads"})
        registry_builder.version(newcomer)
        mlflow_client.set_registered_model_alias(newcomer, "champion", "1")
        counts = registry_sync(mode=SyncMode.FULL)
        assert (counts.versions_created, counts.models_created) == (2, 1)
        assert not RegistryEvent.objects.exists()

    @pytest.mark.parametrize("second_mode", [SyncMode.FULL, SyncMode.INCREMENTAL])
    def test_an_unchanged_resync_records_none(self, mlflow_uri, fraud_model, second_mode) -> None:
        registry_sync(mode=SyncMode.FULL)
        with CaptureQueriesContext(connection) as queries:
            counts = registry_sync(mode=second_mode)
        assert (counts.changed, counts.events_recorded) == (0, 0)
        assert not RegistryEvent.objects.exists()
        assert not [q for q in queries.captured_queries if "catalog_registryevent" in q["sql"]]

    def test_moving_an_alias_records_one_alias_moved_event(
        self, mlflow_uri, fraud_model, mlflow_client
    ) -> None:
        registry_sync(mode=SyncMode.FULL)
        before = timezone.now()
        mlflow_client.set_registered_model_alias(fraud_model, "champion", "2")
        counts = registry_sync(mode=SyncMode.FULL)

        assert counts.events_recorded == 1
        [event] = events_of(fraud_model)
        assert summary(event) == (Kind.ALIAS_MOVED, 2, "champion", "@champion moved v1 → v2")
        assert event.data == {"old_version": 1, "new_version": 2}
        assert event.source == RegistryEvent.Source.SYNC
        assert before <= event.at <= timezone.now()
        assert event.get_kind_display() == "Alias moved"

    def test_setting_and_removing_aliases(self, mlflow_uri, fraud_model, mlflow_client) -> None:
        registry_sync(mode=SyncMode.FULL)
        mlflow_client.set_registered_model_alias(fraud_model, "shadow", "1")
        mlflow_client.delete_registered_model_alias(fraud_model, "challenger")
        registry_sync(mode=SyncMode.FULL)

        assert sorted(summary(event) for event in events_of(fraud_model)) == [
            (Kind.ALIAS_REMOVED, 2, "challenger", "@challenger removed (was v2)"),
            (Kind.ALIAS_SET, 1, "shadow", "@shadow set to v1"),
        ]

    def test_setting_a_version_tag_records_version_tags_changed(
        self, mlflow_uri, fraud_model, mlflow_client
    ) -> None:
        registry_sync(mode=SyncMode.FULL)
        mlflow_client.set_model_version_tag(fraud_model, "2", "validation_status", "passed")
        registry_sync(mode=SyncMode.FULL)

        [event] = events_of(fraud_model)
        assert summary(event) == (
            Kind.VERSION_TAGS_CHANGED,
            2,
            "",
            "v2 tags changed: validation_status",
        )
        assert event.data == {
            "keys": ["validation_status"],
            "old": {},
            "new": {"validation_status": "passed"},
        }

    def test_changing_model_tags_names_every_changed_key(
        self, mlflow_uri, fraud_model, mlflow_client
    ) -> None:
        registry_sync(mode=SyncMode.FULL)
        mlflow_client.set_registered_model_tag(fraud_model, "domain", "ads")
        mlflow_client.set_registered_model_tag(fraud_model, "stage", "beta")
        registry_sync(mode=SyncMode.FULL)

        [event] = events_of(fraud_model)
        assert summary(event) == (
            Kind.MODEL_TAGS_CHANGED,
            None,
            "",
            "tags changed: domain, stage",
        )
        assert event.data == {
            "keys": ["domain", "stage"],
            "old": {"domain": "payments"},
            "new": {"domain": "ads", "stage": "beta"},
        }

    def test_deleting_a_version_records_version_deleted(
        self, mlflow_uri, fraud_model, mlflow_client
    ) -> None:
        registry_sync(mode=SyncMode.FULL)
        mlflow_client.delete_model_version(fraud_model, "1")
        registry_sync(mode=SyncMode.FULL)

        # The alias on it went with it in MLflow, and that is an event of its own.
        assert sorted(summary(event) for event in events_of(fraud_model)) == [
            (Kind.ALIAS_REMOVED, 1, "champion", "@champion removed (was v1)"),
            (Kind.VERSION_DELETED, 1, "", "v1 deleted"),
        ]

    def test_the_webhook_path_records_its_events_as_webhook(
        self, mlflow_uri, fraud_model, mlflow_client
    ) -> None:
        registry_sync(mode=SyncMode.FULL)
        mlflow_client.delete_model_version(fraud_model, "2")
        registry_sync_model(name=fraud_model)
        mlflow_client.delete_registered_model(fraud_model)
        registry_sync_model(name=fraud_model)
        registry_sync(mode=SyncMode.FULL)  # already deleted here: nothing more to record

        assert [summary(event) for event in events_of(fraud_model)] == [
            (Kind.VERSION_DELETED, 2, "", "v2 deleted"),
            (Kind.ALIAS_REMOVED, 2, "challenger", "@challenger removed (was v2)"),
            (Kind.MODEL_DELETED, None, "", "model deleted"),
        ]
        assert {event.source for event in events_of(fraud_model)} == {"webhook"}

    def test_events_are_one_bulk_insert_and_add_no_query_per_event(
        self, mlflow_uri, registry_builder, mlflow_client, monkeypatch
    ) -> None:
        names = []
        for index in range(4):
            name = registry_builder.model(f"m{index}")
            registry_builder.version(name)
            registry_builder.version(name)
            mlflow_client.set_registered_model_alias(name, "champion", "1")
            names.append(name)
        registry_sync(mode=SyncMode.FULL)
        inserts: list[int] = []
        insert_rows = events.insert_rows

        def counted_insert_rows(model, fields, rows):
            inserts.append(len(rows))
            return insert_rows(model, fields, rows)

        monkeypatch.setattr(events, "insert_rows", counted_insert_rows)
        # Listeners above the catalog (approvals) make their own reads per alias change.
        monkeypatch.setattr(hooks, "alias_change_listeners", [])

        def change(models: list[str], alias_to: str) -> int:
            for name in models:
                mlflow_client.set_registered_model_alias(name, "champion", alias_to)
                mlflow_client.set_model_version_tag(name, alias_to, "checked", alias_to)
            with CaptureQueriesContext(connection) as queries:
                registry_sync(mode=SyncMode.FULL)
            return len(queries.captured_queries)

        one_model = change(names[:1], "2")
        three_models = change(names[1:], "2")
        assert inserts == [2, 6]  # an alias move and a version tag per model, in one insert
        assert three_models == one_model
        assert RegistryEvent.objects.filter(model__name__in=names).count() == 8


def event(model: RegisteredModel, at: datetime, **fields: object) -> RegistryEvent:
    defaults: dict[str, object] = {"kind": Kind.ALIAS_MOVED, "alias": "champion", "version": 2}
    return RegistryEvent.objects.create(
        model=model, at=at, detail="@champion moved v1 → v2", **{**defaults, **fields}
    )


@pytest.mark.django_db
class TestSelectors:
    def test_registry_events_between_returns_the_window_newest_first(
        self, django_assert_num_queries
    ) -> None:
        start = timezone.now() - timedelta(hours=6)
        end = start + timedelta(hours=4)
        watched, other = RegisteredModelFactory(), RegisteredModelFactory()
        on_start = event(watched, start)
        inside = event(watched, start + timedelta(hours=1), kind=Kind.VERSION_DELETED)
        on_end = event(watched, end)
        event(watched, start - timedelta(seconds=1))
        event(watched, end + timedelta(seconds=1))
        event(other, start + timedelta(hours=1))

        found = selectors.registry_events_between(model_ids=[watched.pk], start=start, end=end)
        with django_assert_num_queries(1):
            rows = [(e.pk, e.model.name) for e in found]
        assert rows == [(e.pk, watched.name) for e in (on_end, inside, on_start)]
        assert not selectors.registry_events_between(model_ids=[], start=start, end=end).exists()

    def test_versions_registered_between_by_mlflow_creation_time(
        self, django_assert_num_queries
    ) -> None:
        start = timezone.now() - timedelta(days=2)
        end = start + timedelta(days=1)
        watched, other = RegisteredModelFactory(), RegisteredModelFactory()

        def version(model: RegisteredModel, at: datetime, **fields: object):
            return ModelVersionFactory(model=model, mlflow_created_at=at, **fields)

        early = version(watched, start)
        late = version(watched, end)
        version(watched, start + timedelta(hours=1), is_deleted=True, deleted_at=end)
        version(watched, start - timedelta(seconds=1))
        version(watched, end + timedelta(seconds=1))
        version(other, start + timedelta(hours=1))

        found = selectors.versions_registered_between(model_ids={watched.pk}, start=start, end=end)
        with django_assert_num_queries(1):
            rows = [(v.pk, v.model.name) for v in found]
        assert rows == [(late.pk, watched.name), (early.pk, watched.name)]


@pytest.mark.django_db
def test_events_older_than_90_days_are_pruned() -> None:
    model = RegisteredModelFactory()
    now = timezone.now()
    kept = event(model, now - timedelta(days=89))
    event(model, now - timedelta(days=91))
    assert registry_events_prune(now=now) == 1
    assert list(RegistryEvent.objects.values_list("pk", flat=True)) == [kept.pk]


@pytest.mark.django_db
def test_the_database_refuses_an_unknown_kind_or_source() -> None:
    model = RegisteredModelFactory()
    assert_rejected_by_database(lambda: event(model, timezone.now(), kind="renamed"))
    assert_rejected_by_database(lambda: event(model, timezone.now(), source="cron"))


def test_tag_change_names_added_removed_and_changed_keys() -> None:
    assert tag_change({"a": "1"}, {"a": "1"}) is None
    assert tag_change({"a": "1", "gone": "x"}, {"a": "2", "new": ""}) == {
        "keys": ["a", "gone", "new"],
        "old": {"a": "1", "gone": "x"},
        "new": {"a": "2", "new": ""},
    }


def test_a_long_list_of_keys_is_shortened() -> None:
    log = events.EventLog(at=timezone.now(), source=RegistryEvent.Source.SYNC)
    log.tags_changed(1, {}, {f"key{i}": "v" for i in range(8)}, version=3)
    log.tags_changed(1, {}, {"k" * 400: "v"})
    details = [row[5] for row in log.rows]
    assert details[0] == "v3 tags changed: key0, key1, key2, key3, key4 and 3 more"
    assert len(details[1]) == 300 and details[1].endswith("…")
