"""On PostgreSQL, trigram indexes make the catalog's "contains" search an index lookup.

Django's icontains compiles to UPPER(col) LIKE UPPER('%term%'), so the indexes are on UPPER(col).
SQLite (the no-setup default) has no pg_trgm; there the search scans, which is fine at its size.
"""

from django.db import migrations

CREATE = [
    "CREATE EXTENSION IF NOT EXISTS pg_trgm",
    "CREATE INDEX IF NOT EXISTS catalog_model_name_trgm "
    "ON catalog_registeredmodel USING gin (UPPER(name) gin_trgm_ops)",
    "CREATE INDEX IF NOT EXISTS catalog_model_description_trgm "
    "ON catalog_registeredmodel USING gin (UPPER(description) gin_trgm_ops)",
]
DROP = [
    "DROP INDEX IF EXISTS catalog_model_description_trgm",
    "DROP INDEX IF EXISTS catalog_model_name_trgm",
]


def create_indexes(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        for statement in CREATE:
            schema_editor.execute(statement, params=None)


def drop_indexes(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        for statement in DROP:
            schema_editor.execute(statement, params=None)


class Migration(migrations.Migration):
    dependencies = [("catalog", "0001_initial")]

    operations = [migrations.RunPython(create_indexes, drop_indexes)]
