"""Charts as inline SVG, drawn on the server: no JavaScript, nothing fetched from a CDN.

Each function returns one `<svg>` element, safe to put into a page (every text is escaped).
Colours and sizes come from attributes, not `style`, so a strict Content-Security-Policy
(no inline styles) still lets them render.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from markupsafe import Markup, escape

WIDTH, HEIGHT = 640, 220
LEFT, RIGHT, TOP, BOTTOM = 56, 12, 28, 28  # margins around the plot area
PLOT_W, PLOT_H = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
MAX_X_LABELS = 8

Format = Callable[[float], str]


@dataclass(frozen=True, slots=True)
class Series:
    name: str
    values: Sequence[float | None]  # one per label; None leaves a gap
    color: str


def number(value: float) -> str:
    """1234 → 1.2k: short axis labels."""
    for limit, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= limit:
            return f"{value / limit:.3g}{suffix}"
    return f"{value:.3g}"


def percent(value: float) -> str:
    return f"{value * 100:.0f}%"


def milliseconds(value: float) -> str:
    return f"{value / 1000:.3g}s" if value >= 1000 else f"{value:.3g}ms"


def nice_ceiling(value: float) -> float:
    """The smallest of 1, 2, 2.5, 5 × 10^n that is ≥ value (1 for nothing to show)."""
    if value <= 0:
        return 1.0
    scale = 10.0 ** math.floor(math.log10(value))
    for step in (1, 2, 2.5, 5, 10):
        if step * scale >= value:
            return step * scale
    return 10 * scale  # pragma: no cover - the loop always returns


def bar_chart(title: str, labels: Sequence[str], values: Sequence[float], *,
              color: str = "#3b7dd8", fmt: Format = number) -> Markup:
    top = nice_ceiling(max(values, default=0))
    slot = PLOT_W / max(len(values), 1)
    parts = _frame(title, labels, top, fmt)
    for index, value in enumerate(values):
        height = PLOT_H * value / top
        x = LEFT + index * slot + slot * 0.15
        parts.append(
            f'<rect class="bar" x="{x:.1f}" y="{TOP + PLOT_H - height:.1f}" '
            f'width="{slot * 0.7:.1f}" height="{height:.1f}" fill="{color}">'
            f"<title>{escape(labels[index])}: {escape(fmt(value))}</title></rect>"
        )
    return _svg(title, parts)


def line_chart(title: str, labels: Sequence[str], series: Sequence[Series], *,
               fmt: Format = number, top: float | None = None) -> Markup:
    present = [value for line in series for value in line.values if value is not None]
    top = top if top is not None else nice_ceiling(max(present, default=0))
    slot = PLOT_W / max(len(labels), 1)
    parts = _frame(title, labels, top, fmt)
    for position, line in enumerate(series):
        points: list[tuple[float, float]] = []
        segments: list[list[tuple[float, float]]] = [points]
        for index, value in enumerate(line.values):
            if value is None:
                points = []
                segments.append(points)
                continue
            x = LEFT + (index + 0.5) * slot
            y = TOP + PLOT_H - PLOT_H * min(value, top) / top
            points.append((x, y))
            parts.append(
                f'<circle class="point" cx="{x:.1f}" cy="{y:.1f}" r="2.5" fill="{line.color}">'
                f"<title>{escape(line.name)} {escape(labels[index])}: "
                f"{escape(fmt(value))}</title></circle>"
            )
        for segment in segments:
            if len(segment) > 1:
                coords = " ".join(f"{x:.1f},{y:.1f}" for x, y in segment)
                parts.append(f'<polyline class="line" points="{coords}" fill="none" '
                             f'stroke="{line.color}" stroke-width="2"/>')
        legend_x = WIDTH - RIGHT - 90 * (len(series) - position)
        parts.append(
            f'<rect x="{legend_x}" y="8" width="10" height="10" fill="{line.color}"/>'
            f'<text x="{legend_x + 14}" y="17" font-size="11">{escape(line.name)}</text>'
        )
    return _svg(title, parts)


def _frame(title: str, labels: Sequence[str], top: float, fmt: Format) -> list[str]:
    parts = [f'<text x="{LEFT}" y="17" font-size="13" font-weight="bold">{escape(title)}</text>']
    for step in range(5):  # horizontal grid lines with their values
        value = top * step / 4
        y = TOP + PLOT_H - PLOT_H * step / 4
        parts.append(
            f'<line x1="{LEFT}" y1="{y:.1f}" x2="{WIDTH - RIGHT}" y2="{y:.1f}" stroke="#ddd"/>'
            f'<text x="{LEFT - 6}" y="{y + 4:.1f}" font-size="10" text-anchor="end" '
            f'fill="#555">{escape(fmt(value))}</text>'
        )
    slot = PLOT_W / max(len(labels), 1)
    every = max(1, math.ceil(len(labels) / MAX_X_LABELS))
    for index in range(len(labels) - 1, -1, -every):  # always label the newest day
        x = LEFT + (index + 0.5) * slot
        parts.append(f'<text x="{x:.1f}" y="{HEIGHT - 8}" font-size="10" text-anchor="middle" '
                     f'fill="#555">{escape(labels[index])}</text>')
    return parts


def _svg(title: str, parts: list[str]) -> Markup:
    body = "".join(parts)
    return Markup(
        f'<svg class="chart" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" '
        f'role="img" aria-label="{escape(title)}">{body}</svg>'
    )
