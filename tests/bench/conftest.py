"""Benchmark helpers: time a callable, print the figures, and keep them as JSON under var/bench/."""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings


def timed(fn: Callable[[], Any], *, repeat: int, warmup: int = 3) -> list[float]:
    """Milliseconds per call, after a few untimed warm-up calls."""
    for _ in range(warmup):
        fn()
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - start) * 1000)
    return samples


def summary(samples_ms: list[float]) -> dict[str, float]:
    ordered = sorted(samples_ms)
    return {
        "n": len(ordered),
        "median_ms": round(statistics.median(ordered), 2),
        "p95_ms": round(ordered[max(0, int(len(ordered) * 0.95) - 1)], 2),
        "max_ms": round(ordered[-1], 2),
    }


class BenchReport:
    def __init__(self, name: str) -> None:
        self.name = name
        self.figures: dict[str, Any] = {}

    def add(self, key: str, value: Any) -> None:
        self.figures[key] = value
        print(f"[bench {self.name}] {key}: {value}")

    def write(self) -> Path:
        out_dir = Path(settings.VAR_DIR) / "bench"
        out_dir.mkdir(parents=True, exist_ok=True)
        path = out_dir / f"{self.name}.json"
        payload = {
            "name": self.name,
            "database": settings.DATABASES["default"]["ENGINE"],
            **self.figures,
        }
        path.write_text(json.dumps(payload, indent=2))
        print(f"[bench {self.name}] written to {path}")
        return path


@pytest.fixture
def bench_report(request: pytest.FixtureRequest):
    report = BenchReport(request.node.name.removeprefix("test_").removeprefix("bench_"))
    yield report
    report.write()
