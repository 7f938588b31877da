"""Bar charts as SVG geometry, computed here and drawn by `templates/charts.html`: no chart library, no script."""

import math
from dataclasses import dataclass

WIDTH, HEIGHT = 720, 200
_TOP, _BOTTOM, _LEFT = 12, 28, 56
_TICKS = 4
_WIDEST_BAR = 48


@dataclass(frozen=True, slots=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    label: str
    value: str
    """Shown in the bar's tooltip and read by screen readers: the label and the exact value."""


@dataclass(frozen=True, slots=True)
class Tick:
    y: float
    text: str


@dataclass(frozen=True, slots=True)
class BarChart:
    title: str
    bars: list[Bar]
    ticks: list[Tick]
    labels: list[Bar]
    """The bars whose label is printed under the axis (every one when few, else a spread)."""
    width: int = WIDTH
    height: int = HEIGHT
    left: int = _LEFT
    baseline: float = HEIGHT - _BOTTOM


def bar_chart(title: str, points: list[tuple[str, float, str]], *, unit: str = "") -> BarChart:
    """`points` are (label, value, value as text); the scale starts at zero and ends at a round number."""
    top = _round_up(max((value for _, value, _ in points), default=0.0))
    plot_height = HEIGHT - _TOP - _BOTTOM
    slot = (WIDTH - _LEFT) / max(len(points), 1)
    bar_width = min(slot * 0.7, _WIDEST_BAR)
    bars = [
        Bar(
            x=_LEFT + index * slot + (slot - bar_width) / 2,
            y=HEIGHT - _BOTTOM - value / top * plot_height,
            width=bar_width,
            height=value / top * plot_height,
            label=label,
            value=f"{label}: {text}{unit}",
        )
        for index, (label, value, text) in enumerate(points)
    ]
    ticks = [
        Tick(y=HEIGHT - _BOTTOM - step / _TICKS * plot_height, text=_number(top * step / _TICKS))
        for step in range(_TICKS + 1)
    ]
    every = max(1, len(bars) // 6)
    return BarChart(title=title, bars=bars, ticks=ticks, labels=bars[::every])


def _round_up(value: float) -> float:
    """The smallest of 1, 2 or 5 times a power of ten at or above `value` (1 for an empty chart)."""
    if value <= 0:
        return 1.0
    scale = 10.0 ** math.floor(math.log10(value))
    return next(step * scale for step in (1, 2, 5, 10) if value <= step * scale)


def _number(value: float) -> str:
    return f"{value:,.0f}" if value >= 10 else f"{value:,.2f}".rstrip("0").rstrip(".")
