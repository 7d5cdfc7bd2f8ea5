"""Keep every statement the sync sends under PostgreSQL's limit on parameters."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from django.db import models
from django.db.models import QuerySet

# PostgreSQL takes at most 65,535 parameters in one statement, and the portal sends them apart
# from the SQL (see portal/env.py). Every helper here reads this at call time, so a test that
# patches it (to 1, say) makes every list in the sync span several statements.
BULK_BATCH = 2000


def batches(values: Iterable[Any]) -> Iterator[list[Any]]:
    """At most BULK_BATCH values at a time."""
    items = list(values)
    for start in range(0, len(items), BULK_BATCH):
        yield items[start : start + BULK_BATCH]


def rows_where_in[M: models.Model](
    queryset: QuerySet[M], field: str, values: Iterable[Any], *columns: str
) -> Iterator[dict[str, Any]]:
    """`columns` of the rows whose `field` is one of `values`, one query per batch."""
    for batch in batches(values):
        yield from queryset.filter(**{f"{field}__in": batch}).values(*columns)


def bulk_update[M: models.Model](model: type[M], rows: list[M], fields: Sequence[str]) -> None:
    """`model.objects.bulk_update` in batches of BULK_BATCH rows."""
    model._default_manager.bulk_update(rows, fields, batch_size=BULK_BATCH)
