"""Chart geometry for the dashboard's server-drawn SVG charts (no JavaScript library is
available offline): bars stacked per label, values above zero upwards and below it
downwards, with a few gridlines. The template only draws the rectangles computed here."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

WIDTH, HEIGHT, LEFT, BOTTOM, TOP = 720, 240, 56, 24, 12


@dataclass(frozen=True)
class Series:
    name: str
    color: str
    values: list[Decimal]


@dataclass
class Chart:
    title: str
    width: int = WIDTH
    height: int = HEIGHT
    bars: list[dict] = field(default_factory=list)
    labels: list[dict] = field(default_factory=list)
    grid: list[dict] = field(default_factory=list)
    legend: list[dict] = field(default_factory=list)


def _nice_step(span: float) -> float:
    raw = span / 4 or 1
    magnitude = 10 ** (len(str(int(raw))) - 1)
    for step in (1, 2, 2.5, 5, 10):
        if step * magnitude >= raw:
            return step * magnitude
    return 10 * magnitude


def bar_chart(*, title: str, labels: list[str], series: list[Series]) -> Chart:
    """Stacked bars, one group per label."""
    chart = Chart(title=title)
    ups = [sum(max(s.values[i], 0) for s in series) for i in range(len(labels))]
    downs = [sum(min(s.values[i], 0) for s in series) for i in range(len(labels))]
    top, bottom = float(max(ups, default=0) or 1), float(min(downs, default=0))
    step = _nice_step(top - bottom)
    top = step * (int(top / step) + (0 if top % step == 0 else 1)) or step
    bottom = -step * (int(-bottom / step) + (0 if -bottom % step == 0 else 1)) if bottom < 0 else 0.0
    plot_height = HEIGHT - BOTTOM - TOP

    def y(value: float) -> float:
        return round(TOP + (top - value) / (top - bottom) * plot_height, 1)

    tick = bottom
    while tick <= top + 1e-9:
        label = f"{tick:,.0f}" if float(step).is_integer() else f"{tick:,.2f}"
        chart.grid.append({"y": y(tick), "label": label, "zero": abs(tick) < 1e-9})
        tick += step
    slot = (WIDTH - LEFT) / max(len(labels), 1)
    width = round(slot * 0.6, 1)
    for index, label in enumerate(labels):
        x = round(LEFT + index * slot + (slot - width) / 2, 1)
        chart.labels.append({"x": round(x + width / 2, 1), "y": HEIGHT - 6, "text": label})
        up = down = 0.0
        for item in series:
            value = float(item.values[index])
            if value == 0:
                continue
            start = up if value > 0 else down
            end = start + value
            if value > 0:
                up = end
            else:
                down = end
            chart.bars.append({"x": x, "y": y(max(start, end)), "width": width, "height": round(abs(y(start) - y(end)), 1),
                               "color": item.color, "tip": f"{label} {item.name}: {item.values[index]}"})
    chart.legend = [{"name": item.name, "color": item.color, "x": LEFT + 130 * position} for position, item in enumerate(series)]
    return chart
