"""Charts as inline SVG, drawn server-side: no script, no external asset, printable as is.

Each chart is a small function of plain numbers; every plotted value is also an attribute
(`data-value`) and a tooltip (`<title>`), so the page can be read by people and machines.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from html import escape

FONT = "font-family:system-ui,sans-serif;font-size:11px"


@dataclass(frozen=True, slots=True)
class Series:
    """A named line of values (None: no data that month)."""

    name: str
    values: Sequence[float | None]
    css: str


def _num(value: float) -> str:
    return f"{value:.1f}".rstrip("0").rstrip(".")


def line_chart(
    labels: Sequence[str],
    series: Sequence[Series],
    *,
    objective: float | None,
    title: str,
    width: int = 680,
    height: int = 240,
) -> str:
    """Shares (0..1) per period as lines on a 0-100 % scale, with the objective dashed."""
    left, right, top, bottom = 44, 12, 14, 64
    plot_w, plot_h = width - left - right, height - top - bottom
    step = plot_w / max(len(labels) - 1, 1)

    def x(i: int) -> float:
        return left + i * step

    def y(share: float) -> float:
        return top + plot_h * (1 - share)

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" role="img" '
        f'viewBox="0 0 {width} {height}" width="{width}" height="{height}" style="{FONT}">',
        f"<title>{escape(title)}</title>",
    ]
    for pct in (0, 25, 50, 75, 100):
        gy = y(pct / 100)
        parts.append(
            f'<line x1="{left}" x2="{width - right}" y1="{_num(gy)}" y2="{_num(gy)}" '
            'stroke="#ddd"/>'
            f'<text x="{left - 6}" y="{_num(gy + 4)}" text-anchor="end">{pct} %</text>'
        )
    for i, label in enumerate(labels):
        parts.append(
            f'<text x="{_num(x(i))}" y="{height - bottom + 16}" text-anchor="end" '
            f'transform="rotate(-40 {_num(x(i))} {height - bottom + 16})">{escape(label)}</text>'
        )
    if objective is not None:
        oy = _num(y(objective))
        parts.append(
            f'<line class="objective" data-value="{objective}" x1="{left}" '
            f'x2="{width - right}" y1="{oy}" y2="{oy}" stroke="#b00" stroke-dasharray="6 4">'
            f"<title>objective {objective * 100:.1f} %</title></line>"
            f'<text x="{width - right}" y="{_num(y(objective) - 4)}" text-anchor="end" '
            f'fill="#b00">objective {objective * 100:.1f} %</text>'
        )
    for s in series:
        points = [(i, v) for i, v in enumerate(s.values) if v is not None]
        if len(points) > 1:
            path = " ".join(f"{_num(x(i))},{_num(y(v))}" for i, v in points)
            parts.append(
                f'<polyline class="{s.css}" points="{path}" fill="none" stroke-width="2"/>'
            )
        for i, v in points:
            parts.append(
                f'<circle class="{s.css}" data-series="{escape(s.name)}" '
                f'data-period="{escape(labels[i])}" data-value="{v}" cx="{_num(x(i))}" '
                f'cy="{_num(y(v))}" r="3.5"><title>{escape(s.name)} {escape(labels[i])}: '
                f"{v * 100:.1f} % on time</title></circle>"
            )
    legend_x = left
    for s in series:
        parts.append(
            f'<rect class="{s.css}" x="{legend_x}" y="{height - 12}" width="10" height="10"/>'
            f'<text x="{legend_x + 14}" y="{height - 3}">{escape(s.name)}</text>'
        )
        legend_x += 24 + 7 * len(s.name)
    parts.append("</svg>")
    return "".join(parts)


@dataclass(frozen=True, slots=True)
class Bar:
    """One row of a horizontal bar chart: a label and one value per measure."""

    label: str
    values: Sequence[float | None]


def bar_chart(
    bars: Sequence[Bar],
    *,
    measures: Sequence[tuple[str, str]],
    title: str,
    text: Callable[[float], str],
    width: int = 680,
    marker: float | None = None,
    marker_label: str = "",
) -> str:
    """Horizontal bars, one group of `measures` (name, css class) per row, scaled to the
    largest value; `text` renders a value next to its bar; an optional vertical `marker`."""
    label_w, right, top, row_gap = 220, 70, 8, 6
    bar_h = 12
    row_h = bar_h * len(measures) + row_gap
    height = top + row_h * max(len(bars), 1) + 22
    largest = max(
        [v for b in bars for v in b.values if v is not None] + ([marker] if marker else []),
        default=0.0,
    )
    scale = (width - label_w - right) / largest if largest > 0 else 0.0
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" role="img" '
        f'viewBox="0 0 {width} {height}" width="{width}" height="{height}" style="{FONT}">',
        f"<title>{escape(title)}</title>",
    ]
    if not bars:
        parts.append(f'<text x="{label_w}" y="{top + 12}">no data in this period</text>')
    for row, bar in enumerate(bars):
        y0 = top + row * row_h
        parts.append(
            f'<text x="{label_w - 8}" y="{y0 + bar_h * len(measures) / 2 + 4:.1f}" '
            f'text-anchor="end">{escape(bar.label)}</text>'
        )
        for m, ((name, css), value) in enumerate(zip(measures, bar.values, strict=True)):
            y = y0 + m * bar_h
            if value is None:
                continue
            w = max(value * scale, 1.0)
            parts.append(
                f'<rect class="{css}" data-row="{escape(bar.label)}" data-measure="{escape(name)}" '
                f'data-value="{value}" x="{label_w}" y="{y}" width="{w:.1f}" '
                f'height="{bar_h - 2}"><title>{escape(bar.label)}, {escape(name)}: '
                f"{escape(text(value))}</title></rect>"
                f'<text x="{label_w + w + 4:.1f}" y="{y + bar_h - 3}">{escape(text(value))}</text>'
            )
    if marker is not None and scale > 0:
        mx = label_w + marker * scale
        parts.append(
            f'<line x1="{mx:.1f}" x2="{mx:.1f}" y1="{top}" y2="{height - 20}" stroke="#b00" '
            f'stroke-dasharray="4 3"/><text x="{mx:.1f}" y="{height - 6}" text-anchor="middle" '
            f'fill="#b00">{escape(marker_label)}</text>'
        )
    legend_x = label_w
    for name, css in measures:
        parts.append(
            f'<rect class="{css}" x="{legend_x}" y="{height - 14}" width="10" height="10"/>'
            f'<text x="{legend_x + 14}" y="{height - 5}">{escape(name)}</text>'
        )
        legend_x += 28 + 7 * len(name)
    parts.append("</svg>")
    return "".join(parts)


def column_chart(
    columns: Sequence[tuple[str, int]], *, title: str, width: int = 340, height: int = 180
) -> str:
    """Vertical bars of counts (e.g. ratings 1..5), each labelled with its count."""
    left, bottom, top = 30, 24, 16
    plot_h = height - top - bottom
    slot = (width - left - 10) / max(len(columns), 1)
    largest = max((c for _, c in columns), default=0)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" role="img" '
        f'viewBox="0 0 {width} {height}" width="{width}" height="{height}" style="{FONT}">',
        f"<title>{escape(title)}</title>",
        f'<line x1="{left}" x2="{width - 10}" y1="{height - bottom}" y2="{height - bottom}" '
        'stroke="#999"/>',
    ]
    for i, (label, count) in enumerate(columns):
        h = plot_h * count / largest if largest else 0
        x = left + i * slot + slot * 0.15
        y = height - bottom - h
        parts.append(
            f'<rect class="rating" data-label="{escape(label)}" data-value="{count}" '
            f'x="{x:.1f}" y="{y:.1f}" width="{slot * 0.7:.1f}" height="{h:.1f}">'
            f"<title>{escape(label)}: {count}</title></rect>"
            f'<text x="{x + slot * 0.35:.1f}" y="{y - 3:.1f}" text-anchor="middle">{count}</text>'
            f'<text x="{x + slot * 0.35:.1f}" y="{height - 8}" text-anchor="middle">'
            f"{escape(label)}</text>"
        )
    parts.append("</svg>")
    return "".join(parts)
