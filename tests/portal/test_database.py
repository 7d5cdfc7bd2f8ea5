"""The PostgreSQL connection as the portal configures it."""

from __future__ import annotations

import pytest
from django.db import connection

from apps.accounts.models import User
from portal import env

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]


def _prepared_user_lookups() -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT statement FROM pg_prepared_statements")
        statements = [row[0] for row in cursor.fetchall()]
    return [sql for sql in statements if 'WHERE "accounts_user"."username" = $' in sql]


def test_a_statement_run_again_is_prepared_once_and_reused() -> None:
    User.objects.create(username="prepared")
    for _ in range(env.PREPARE_AFTER_RUNS - 1):
        assert User.objects.filter(username="prepared").exists()
    assert _prepared_user_lookups() == []
    for _ in range(3):
        assert User.objects.filter(username="prepared").exists()
        assert not User.objects.filter(username="someone else").exists()
    # One statement for both names: the value is a parameter, not part of the SQL.
    assert len(_prepared_user_lookups()) == 1
