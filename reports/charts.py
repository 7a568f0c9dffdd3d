"""Small inline SVG charts for the report: no dependency, no script, the same in a browser and in
WeasyPrint. Labels and numbers arrive formatted in the report's language (`count` formats a total); every
text is escaped."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from html import escape

from markupsafe import Markup

# Two charts side by side on an A4 page: text of size 11 prints at about 7 points.
WIDTH, HEIGHT = 440, 210
LEFT, RIGHT, TOP, BOTTOM = 50, 12, 18, 40
SEVERITY_COLOURS = {"major": "#b42318", "important": "#dc8a00", "general": "#6b7a90"}
LINE_COLOUR, TARGET_COLOUR = "#1f4e79", "#b42318"
# The report's fonts, named again: a chart's text is set by the SVG renderer, not by the page's CSS.
FONTS = "Noto Sans CJK SC Subset, Noto Sans CJK SC, Noto Sans SC, WenQuanYi Micro Hei, sans-serif"


def _svg(body: list[str], label: str, height: int = HEIGHT) -> Markup:
    return Markup(f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {height}" width="{WIDTH}" '
                  f'height="{height}" role="img" aria-label="{escape(label)}" class="chart">'
                  + "".join(body) + "</svg>")


def _text(x: float, y: float, words: str, *, anchor: str = "middle", size: int = 11, fill: str = "#333") -> str:
    return (f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}" font-family="{FONTS}" font-size="{size}" '
            f'fill="{fill}">{escape(words)}</text>')


def _period(x: float, words: str, slot: float) -> str:
    """A period under the axis; one too wide for its slot (October 2026) on two lines."""
    wide = sum(1.0 if ord(ch) > 0x2e80 else 0.56 for ch in words) * 11
    if wide <= slot or " " not in words:
        return _text(x, HEIGHT - 22, words)
    first, second = words.rsplit(" ", 1)
    return _text(x, HEIGHT - 24, first) + _text(x, HEIGHT - 11, second)


def stacked_bars(periods: Sequence[str], stacks: Sequence[Sequence[tuple[str, int]]], label: str,
                 count: Callable[[int], str]) -> Markup:
    """One bar per period, stacked by severity (most severe at the bottom), its total above it.

    `stacks[i]` is [(severity, count), ...] for `periods[i]`.
    """
    totals = [sum(number for _, number in stack) for stack in stacks]
    top = max([*totals, 1])
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    slot = plot_w / max(len(periods), 1)
    bar = min(48.0, slot * 0.6)
    body = [f'<line x1="{LEFT}" y1="{TOP + plot_h}" x2="{WIDTH - RIGHT}" y2="{TOP + plot_h}" stroke="#999"/>']
    for index, (period, stack, total) in enumerate(zip(periods, stacks, totals, strict=True)):
        x = LEFT + slot * index + (slot - bar) / 2
        y = TOP + plot_h
        for severity, number in stack:
            height = plot_h * number / top
            y -= height
            body.append(f'<rect x="{x:.1f}" y="{y:.1f}" width="{bar:.1f}" height="{height:.1f}" '
                        f'fill="{SEVERITY_COLOURS.get(severity, LINE_COLOUR)}"/>')
        body.append(_text(x + bar / 2, y - 4, count(total)))
        body.append(_period(x + bar / 2, period, slot))
    return _svg(body, label)


def line(periods: Sequence[str], values: Sequence[float | None], shown: Sequence[str], target: float | None,
         target_label: str, label: str) -> Markup:
    """A figure over the periods, with its target as a dashed line; `shown` are the points' labels.

    The scale spans the values and the target, so a small move stays visible.
    """
    known = [v for v in values if v is not None] + ([target] if target is not None else [])
    low, high = (min(known), max(known)) if known else (0.0, 1.0)
    pad = (high - low) * 0.15 or max(abs(high) * 0.05, 0.01)
    low, high = low - pad, high + pad
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    slot = plot_w / max(len(periods), 1)

    def y_of(value: float) -> float:
        return TOP + plot_h * (high - value) / (high - low)

    body = [f'<line x1="{LEFT}" y1="{TOP + plot_h}" x2="{WIDTH - RIGHT}" y2="{TOP + plot_h}" stroke="#999"/>']
    if target is not None:
        ty = y_of(target)
        body.append(f'<line x1="{LEFT}" y1="{ty:.1f}" x2="{WIDTH - RIGHT}" y2="{ty:.1f}" stroke="{TARGET_COLOUR}" '
                    'stroke-dasharray="5 4"/>')
        body.append(_text(LEFT - 4, ty + 4, target_label, anchor="end", size=11, fill=TARGET_COLOUR))
    points = [(LEFT + slot * (i + 0.5), y_of(v)) for i, v in enumerate(values) if v is not None]
    if len(points) > 1:
        path = " ".join(f"{x:.1f},{y:.1f}" for x, y in points)
        body.append(f'<polyline points="{path}" fill="none" stroke="{LINE_COLOUR}" stroke-width="2"/>')
    previous: float | None = None
    for index, (period, value, words) in enumerate(zip(periods, values, shown, strict=True)):
        x = LEFT + slot * (index + 0.5)
        body.append(_period(x, period, slot))
        if value is not None:
            y = y_of(value)
            body.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3.5" fill="{LINE_COLOUR}"/>')
            # Below a point the line falls to, above one it rises to: the label stays off the line.
            below = previous is not None and value < previous and y + 16 < TOP + plot_h
            body.append(_text(x, y + 16 if below else y - 8, words, size=11))
            previous = value
    return _svg(body, label)


def horizontal_bars(rows: Sequence[tuple[str, Sequence[tuple[str, int]]]], label: str,
                    count: Callable[[int], str]) -> Markup:
    """One bar per department (or rule), split by severity, its total at the end."""
    row_h = 22
    height = TOP + row_h * max(len(rows), 1) + 8
    name_w = 200  # room for a department's name with its id: 客服三部（现场服务）（CS3）
    plot_w = WIDTH - name_w - RIGHT - 36
    top = max([sum(c for _, c in stack) for _, stack in rows] + [1])
    body: list[str] = []
    for index, (name, stack) in enumerate(rows):
        y = TOP + row_h * index
        body.append(_text(name_w - 6, y + 14, name, anchor="end", size=11))
        x = float(name_w)
        for severity, number in stack:
            width = plot_w * number / top
            body.append(f'<rect x="{x:.1f}" y="{y + 3}" width="{width:.1f}" height="{row_h - 8}" '
                        f'fill="{SEVERITY_COLOURS.get(severity, LINE_COLOUR)}"/>')
            x += width
        body.append(_text(x + 4, y + 14, count(sum(c for _, c in stack)), anchor="start"))
    return _svg(body, label, height)
