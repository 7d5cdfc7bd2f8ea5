"""A small line chart drawn as SVG on the server: one metric across a model's versions."""

from __future__ import annotations

from dataclasses import dataclass

WIDTH, HEIGHT = 640, 240
PAD_LEFT, PAD_RIGHT, PAD_TOP, PAD_BOTTOM = 56, 16, 12, 32
TICKS = 4


@dataclass(frozen=True)
class ChartPoint:
    x: float
    y: float
    version: int
    value: float


@dataclass(frozen=True)
class Tick:
    position: float
    label: str


@dataclass(frozen=True)
class LineChart:
    width: int
    height: int
    points: list[ChartPoint]
    y_ticks: list[Tick]
    x_ticks: list[Tick]
    plot_left: int
    plot_right: int
    plot_top: int
    plot_bottom: int

    @property
    def polyline(self) -> str:
        return " ".join(f"{p.x:.1f},{p.y:.1f}" for p in self.points)


def _label(value: float) -> str:
    return f"{value:.4g}"


def line_chart(series: list[tuple[int, float]]) -> LineChart | None:
    """Scale (version, value) pairs into the chart's box; None when there is nothing to draw."""
    if not series:
        return None
    versions = [version for version, _ in series]
    values = [value for _, value in series]
    low, high = min(values), max(values)
    if low == high:  # a flat line still needs a visible range
        low, high = low - (abs(low) or 1) * 0.05, high + (abs(high) or 1) * 0.05
    left, right = PAD_LEFT, WIDTH - PAD_RIGHT
    top, bottom = PAD_TOP, HEIGHT - PAD_BOTTOM
    first, last = versions[0], versions[-1]
    span = (last - first) or 1

    def x_of(version: int) -> float:
        if first == last:
            return (left + right) / 2
        return left + (version - first) / span * (right - left)

    def y_of(value: float) -> float:
        return bottom - (value - low) / (high - low) * (bottom - top)

    points = [ChartPoint(x_of(v), y_of(value), v, value) for v, value in series]
    y_ticks = [
        Tick(y_of(low + (high - low) * i / TICKS), _label(low + (high - low) * i / TICKS))
        for i in range(TICKS + 1)
    ]
    step = max(1, len(versions) // 8)
    x_ticks = [Tick(x_of(v), f"v{v}") for v in versions[::step]]
    return LineChart(WIDTH, HEIGHT, points, y_ticks, x_ticks, left, right, top, bottom)
