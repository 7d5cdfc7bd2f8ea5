"""On PostgreSQL the table refuses UPDATE and DELETE even in raw SQL."""

import pytest
from django.db import DatabaseError, connection, transaction

from apps.audit.services import record


@pytest.mark.postgres
@pytest.mark.django_db
@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE audit_auditevent SET action = 'tampered' WHERE id = %s",
        "DELETE FROM audit_auditevent WHERE id = %s",
    ],
)
def test_postgres_trigger_rejects_update_and_delete(statement: str) -> None:
    event = record("scheduler", "x.y")
    with (
        pytest.raises(DatabaseError, match="append-only"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute(statement, [event.pk])
    with connection.cursor() as cursor:
        cursor.execute("SELECT action FROM audit_auditevent WHERE id = %s", [event.pk])
        assert cursor.fetchone() == ("x.y",)


@pytest.mark.postgres
@pytest.mark.django_db
def test_postgres_trigger_allows_insert() -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO audit_auditevent (occurred_at, actor_label, action, object_type, "
            "object_id, object_repr, data, request_id) "
            "VALUES (now(), 'dba', 'manual.note', '', '', '', '{}', '') RETURNING id"
        )
        assert cursor.fetchone()[0] > 0
