"""A real MLflow server holding a large registry, filled in seconds through its SQL schema.

Creating 10,000 models through MLflow's REST API takes 20-75 minutes (reference/mlflow-server.md),
so rows go straight into the server's SQLite tables, in the shape the REST API writes them
(checked column by column against rows MLflow itself wrote). The server reads them back through
its normal code paths: nothing in MLflow caches registry rows.
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

WORKSPACE = "default"
TAGS_PER_MODEL = 3
FRAUD_EVERY = 100  # 1% of names contain "fraud", for the search benchmark


def model_name(index: int) -> str:
    prefix = "fraud-scorer" if index % FRAUD_EVERY == 0 else "model"
    return f"{prefix}-{index:05d}"


def populate(db_path: Path, *, models: int, versions_per_model: int) -> dict[str, int]:
    """Insert models, versions, tags and a `champion` alias on each model's last version."""
    now = int(time.time() * 1000) - models * 10
    connection = sqlite3.connect(db_path)
    try:
        with connection:
            connection.executemany(
                "INSERT INTO registered_models (name, creation_time, last_updated_time, "
                "description, workspace) VALUES (?, ?, ?, ?, ?)",
                (
                    (model_name(i), now + i * 10, now + i * 10 + 5, f"Bench model {i}.", WORKSPACE)
                    for i in range(models)
                ),
            )
            connection.executemany(
                'INSERT INTO registered_model_tags ("key", value, name, workspace) '
                "VALUES (?, ?, ?, ?)",
                (
                    (key, value, model_name(i), WORKSPACE)
                    for i in range(models)
                    for key, value in (
                        ("portal.team", f"bench-team-{i % 20}"),
                        ("domain", ("payments", "ads", "search")[i % 3]),
                        ("tier", str(i % 4)),
                    )[:TAGS_PER_MODEL]
                ),
            )
            connection.executemany(
                "INSERT INTO model_versions (name, version, creation_time, last_updated_time, "
                "description, user_id, current_stage, source, run_id, status, status_message, "
                "run_link, storage_location, workspace) "
                "VALUES (?, ?, ?, ?, '', NULL, 'None', ?, '', 'READY', NULL, '', ?, ?)",
                (
                    (
                        model_name(i),
                        v,
                        now + i * 10 + v,
                        now + i * 10 + v,
                        f"s3://bench/{model_name(i)}/{v}",
                        f"s3://bench/{model_name(i)}/{v}",
                        WORKSPACE,
                    )
                    for i in range(models)
                    for v in range(1, versions_per_model + 1)
                ),
            )
            connection.executemany(
                "INSERT INTO registered_model_aliases (alias, version, name, workspace) "
                "VALUES ('champion', ?, ?, ?)",
                ((versions_per_model, model_name(i), WORKSPACE) for i in range(models)),
            )
    finally:
        connection.close()
    return {
        "models": models,
        "versions": models * versions_per_model,
        "model_tags": models * TAGS_PER_MODEL,
        "aliases": models,
    }
