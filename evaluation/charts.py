"""Small server-side SVG charts for the report pages (no JavaScript, nothing fetched).

The SVG is built with ``xml.etree.ElementTree`` so that every label is escaped. Each chart is an accessible
image: ``role="img"``, an ``aria-label`` and a ``<title>``, and every bar or point carries its own ``<title>``
with the exact value (shown as a tooltip, read by screen readers). Values in 0..1 are drawn and labelled as
percentages; other values as plain numbers.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from xml.etree import ElementTree

# The site's accent first, then a palette that stays distinguishable for colour-blind readers (Okabe-Ito).
PALETTE = ("#000091", "#e69f00", "#009e73", "#cc79a7", "#56b4e9", "#d55e00", "#5c5c5c", "#f0e442")
WIDTH, HEIGHT = 640, 320
LEFT, RIGHT, TOP, BOTTOM = 64, 16, 56, 56
# Average width of a character of the 12px label font, to shorten labels that would overlap their neighbours.
CHAR_WIDTH = 6.5
TEXT_STYLE = {"font-family": "system-ui, sans-serif", "font-size": "12", "fill": "#1b1b1b"}
MAX_X_LABELS = 12
# Category labels under grouped bars wrap onto this many lines before being shortened.
LABEL_LINES = 2


def _scale_top(values: Sequence[float]) -> tuple[float, bool]:
    """Top of the value axis and whether values are fractions shown as percentages."""
    if all(0.0 <= value <= 1.0 for value in values):
        return 1.0, True
    return max(max(values, default=1.0), 1e-9), False


def _format(value: float, percent: bool) -> str:
    text = f"{value * 100:.1f} %" if percent else f"{value:.3g}"
    return text.replace(".", ",")


def _svg(title: str) -> ElementTree.Element:
    root = ElementTree.Element(
        "svg",
        {
            "xmlns": "http://www.w3.org/2000/svg",
            "viewBox": f"0 0 {WIDTH} {HEIGHT}",
            "width": "100%",
            "role": "img",
            "aria-label": title,
            "class": "chart",
        },
    )
    ElementTree.SubElement(root, "title").text = title
    _text(root, LEFT, 20, title, **{"font-size": "14", "font-weight": "bold"})
    return root


def _text(parent: ElementTree.Element, x: float, y: float, text: str, **attributes: str) -> None:
    element = ElementTree.SubElement(parent, "text", {"x": f"{x:.1f}", "y": f"{y:.1f}", **TEXT_STYLE, **attributes})
    element.text = text


def _axes(root: ElementTree.Element, top_value: float, percent: bool) -> None:
    plot_height = HEIGHT - TOP - BOTTOM
    for step in range(5):
        value = top_value * step / 4
        y = HEIGHT - BOTTOM - plot_height * step / 4
        grid = {"x1": str(LEFT), "x2": str(WIDTH - RIGHT), "y1": f"{y:.1f}", "y2": f"{y:.1f}", "stroke": "#dddddd"}
        ElementTree.SubElement(root, "line", grid)
        _text(root, LEFT - 6, y + 4, _format(value, percent), **{"text-anchor": "end"})


def _fitted(label: str, width: float) -> str:
    """``label`` shortened with an ellipsis to fit ``width`` pixels (the full label stays in a tooltip)."""
    room = max(int(width / CHAR_WIDTH), 3)
    return label if len(label) <= room else label[: room - 1].rstrip() + "…"


def _wrapped(label: str, width: float, *, lines: int = LABEL_LINES) -> list[str]:
    """``label`` on at most ``lines`` lines of ``width`` pixels, cut at spaces; the last line is shortened."""
    room = max(int(width / CHAR_WIDTH), 3)
    rows: list[str] = []
    for word in label.split():
        if rows and len(rows[-1]) + 1 + len(word) <= room:
            rows[-1] += " " + word
        else:
            rows.append(word)
    if len(rows) > lines:
        rows = rows[: lines - 1] + [" ".join(rows[lines - 1:])]
    return [_fitted(row, width) for row in rows]


def distinct_labels(labels: Sequence[str], width: float) -> list[list[str]]:
    """Each label wrapped to ``width``; labels that would read the same once shortened ("Administration
    fiscale", "Administration sociale" -> "Administrat…") keep their distinguishing end instead."""
    shown = [_wrapped(label, width) for label in labels]
    seen: dict[tuple[str, ...], int] = {}
    for lines in shown:
        seen[tuple(lines)] = seen.get(tuple(lines), 0) + 1
    for index, label in enumerate(labels):
        if seen[tuple(shown[index])] > 1 and shown[index] != [label]:
            room = max(int(width / CHAR_WIDTH), 3)
            shown[index] = ["…" + label[-(room - 1):].lstrip()]
    return shown


def _legend(root: ElementTree.Element, names: Sequence[str]) -> None:
    x = LEFT
    for index, name in enumerate(names):
        colour = PALETTE[index % len(PALETTE)]
        swatch = {"class": "legend", "x": str(x), "y": "30", "width": "10", "height": "10", "fill": colour}
        ElementTree.SubElement(root, "rect", swatch)
        _text(root, x + 14, 39, name)
        x += 24 + 7 * len(name)


def _y(value: float, top_value: float) -> float:
    plot_height = HEIGHT - TOP - BOTTOM
    return HEIGHT - BOTTOM - plot_height * min(max(value / top_value, 0.0), 1.0)


def bar_chart(series: Mapping[str, Mapping[str, float]], title: str) -> str:
    """Grouped bars: one group per category, one bar per series, e.g. ``{"Base": {"Fiscalité": 0.81, ...},
    "Affiné": {...}}`` for a metric per domain. A series without a value for a category has no bar there."""
    names = list(series)
    categories = list(dict.fromkeys(category for values in series.values() for category in values))
    top_value, percent = _scale_top([value for values in series.values() for value in values.values()])
    root = _svg(title)
    _axes(root, top_value, percent)
    _legend(root, names)

    group_width = (WIDTH - LEFT - RIGHT) / max(len(categories), 1)
    bar_width = group_width * 0.8 / max(len(names), 1)
    labels = distinct_labels(categories, group_width)
    for group_index, category in enumerate(categories):
        group_left = LEFT + group_index * group_width + group_width * 0.1
        for series_index, name in enumerate(names):
            value = series[name].get(category)
            if value is None:
                continue
            y = _y(value, top_value)
            bar = ElementTree.SubElement(
                root,
                "rect",
                {
                    "class": "bar",
                    "x": f"{group_left + series_index * bar_width:.1f}",
                    "y": f"{y:.1f}",
                    "width": f"{bar_width:.1f}",
                    "height": f"{HEIGHT - BOTTOM - y:.1f}",
                    "fill": PALETTE[series_index % len(PALETTE)],
                },
            )
            ElementTree.SubElement(bar, "title").text = f"{name}, {category} : {_format(value, percent)}"
        for line_index, line in enumerate(labels[group_index]):
            _text(root, group_left + group_width * 0.4, HEIGHT - BOTTOM + 16 + 14 * line_index, line, **{"text-anchor": "middle"})
            if labels[group_index] != [category]:
                ElementTree.SubElement(root[-1], "title").text = category
    return ElementTree.tostring(root, encoding="unicode")


def line_chart(points: Sequence[tuple[str, Mapping[str, float]]], title: str) -> str:
    """Lines over ordered x labels, e.g. ``[("v3 (12/05)", {"Def-only MRR@10": 0.71, ...}), ...]`` for the
    history of champions. A series missing at some x is drawn only where it has values."""
    names = list(dict.fromkeys(name for _, values in points for name in values))
    top_value, percent = _scale_top([value for _, values in points for value in values.values()])
    root = _svg(title)
    _axes(root, top_value, percent)
    _legend(root, names)

    plot_width = WIDTH - LEFT - RIGHT
    step = plot_width / max(len(points), 1)
    xs = [LEFT + step * (index + 0.5) for index in range(len(points))]
    label_every = max(1, -(-len(points) // MAX_X_LABELS))
    for index, (label, _) in enumerate(points):
        if index % label_every == 0:
            _text(root, xs[index], HEIGHT - BOTTOM + 16, label, **{"text-anchor": "middle"})

    for series_index, name in enumerate(names):
        colour = PALETTE[series_index % len(PALETTE)]
        series_points = [
            (xs[index], _y(values[name], top_value), label, values[name])
            for index, (label, values) in enumerate(points)
            if name in values
        ]
        ElementTree.SubElement(
            root,
            "polyline",
            {
                "class": "line",
                "points": " ".join(f"{x:.1f},{y:.1f}" for x, y, _, _ in series_points),
                "fill": "none",
                "stroke": colour,
                "stroke-width": "2",
            },
        )
        for x, y, label, value in series_points:
            point = ElementTree.SubElement(
                root, "circle", {"class": "point", "cx": f"{x:.1f}", "cy": f"{y:.1f}", "r": "4", "fill": colour}
            )
            ElementTree.SubElement(point, "title").text = f"{name}, {label} : {_format(value, percent)}"
    return ElementTree.tostring(root, encoding="unicode")
