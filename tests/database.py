"""Checks on what the database itself refuses."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from django.db import IntegrityError, transaction


def assert_rejected_by_database(make: Callable[[], object]) -> None:
    """`make()` breaks a constraint: the database raises, and the test goes on afterwards."""
    with pytest.raises(IntegrityError), transaction.atomic():
        make()
