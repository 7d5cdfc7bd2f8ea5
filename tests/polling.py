"""Waiting for something another process does: poll the state that shows it, with a deadline."""

from __future__ import annotations

import time
from collections.abc import Callable


def wait_until(
    check: Callable[[], object],
    *,
    timeout: float,
    explain: Callable[[], str] = lambda: "",
    interval: float = 0.05,
) -> None:
    """Poll `check` until it returns something true; after `timeout` seconds, fail with what
    `explain` says (a worker's log, say). How long it took is not the test's business."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() >= deadline:
            raise AssertionError(f"still not so after {timeout} s\n{explain()}")
        time.sleep(interval)
