"""The structured log lines a test caused, as the portal writes them (JSON objects)."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import structlog

# Renders a record as the portal's JSON log line does (a traceback under "exception"), whatever
# LOG_FORMAT the test run has.
_JSON_LINE = structlog.stdlib.ProcessorFormatter(
    processors=[
        structlog.stdlib.ProcessorFormatter.remove_processors_meta,
        structlog.processors.format_exc_info,
        structlog.processors.JSONRenderer(),
    ]
)


class LogLines(logging.Handler):
    """Every line logged while it is installed, rendered when it is logged (so that a line
    logged with its exception carries the traceback)."""

    def __init__(self) -> None:
        super().__init__()
        self.lines: list[dict[str, Any]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(json.loads(_JSON_LINE.format(record)))

    def of(self, event: str) -> list[dict[str, Any]]:
        """The lines whose event is `event`, oldest first."""
        return [line for line in self.lines if line.get("event") == event]


@contextmanager
def log_lines() -> Iterator[LogLines]:
    """The lines logged (at the portal's LOG_LEVEL or above) inside the block."""
    handler = LogLines()
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        yield handler
    finally:
        root.removeHandler(handler)
