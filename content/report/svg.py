"""Small inline SVG charts for the analytics report: bars, horizontal bars and a heat grid. No script, no
external resource: each function returns one ``<svg>`` element as text, its labels escaped."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape
from typing import Final

INK: Final = "#1f2933"
MUTED: Final = "#7b8794"
BAR: Final = "#2f6f9f"
ACCENT: Final = "#d9822b"
GRID: Final = "#e4e7eb"


def _fmt(value: float) -> str:
    return f"{value:.0f}" if abs(value) >= 10 or float(value).is_integer() else f"{value:.2g}"


def _svg(width: int, height: int, body: list[str], title: str) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
        f'role="img" aria-label="{escape(title)}" font-size="11" fill="{INK}">' + "".join(body) + "</svg>"
    )


def no_data(title: str, width: int = 560, height: int = 60) -> str:
    text = f'<text x="{width / 2}" y="{height / 2}" text-anchor="middle" fill="{MUTED}">— no data / 无数据 —</text>'
    return _svg(width, height, [text], title)


def bars(
    labels: Sequence[str],
    values: Sequence[float],
    *,
    title: str,
    top: float | None = None,
    marks: Sequence[float | None] = (),
    percent: bool = False,
    width: int = 560,
    height: int = 200,
) -> str:
    """Vertical bars with a value axis from 0 to ``top`` (default: the largest value); ``marks`` draws an accent
    tick per bar (e.g. the peak over the mean); ``percent`` shows values as percentages."""
    if not values:
        return no_data(title, width)
    left, bottom, right, head = 40, 34, 8, 10
    plot_w, plot_h = width - left - right, height - bottom - head
    scale = top or max([*values, *(m for m in marks if m is not None)], default=0.0) or 1.0
    step = plot_w / len(values)
    body = []
    for i in range(5):  # value grid lines: 0, 1/4, ..., top
        y = head + plot_h - plot_h * i / 4
        tick = scale * i / 4
        text = f"{tick * 100:.0f}%" if percent else _fmt(tick)
        body.append(f'<line x1="{left}" x2="{width - right}" y1="{y:.1f}" y2="{y:.1f}" stroke="{GRID}"/>')
        body.append(f'<text x="{left - 4}" y="{y + 4:.1f}" text-anchor="end" fill="{MUTED}">{text}</text>')
    every = max(1, round(len(labels) / 12))  # at most about 12 labels under the axis
    for i, (label, value) in enumerate(zip(labels, values, strict=True)):
        h = plot_h * min(value, scale) / scale
        x = left + i * step + step * 0.15
        shown = f"{value * 100:.0f}%" if percent else _fmt(value)
        body.append(
            f'<rect x="{x:.1f}" y="{head + plot_h - h:.1f}" width="{step * 0.7:.1f}" height="{h:.1f}" fill="{BAR}">'
            f"<title>{escape(label)}: {shown}</title></rect>"
        )
        if i % every == 0:
            cx = left + i * step + step / 2
            body.append(f'<text x="{cx:.1f}" y="{height - bottom + 14}" text-anchor="middle">{escape(label)}</text>')
    for i, mark in enumerate(marks):
        if mark is not None:
            y = head + plot_h - plot_h * min(mark, scale) / scale
            x = left + i * step + step * 0.1
            body.append(
                f'<line x1="{x:.1f}" x2="{x + step * 0.8:.1f}" y1="{y:.1f}" y2="{y:.1f}" stroke="{ACCENT}" '
                'stroke-width="2"/>'
            )
    return _svg(width, height, body, title)


def hbars(rows: Sequence[tuple[str, float, str]], *, title: str, width: int = 560) -> str:
    """Horizontal bars, one per ``(label, value, note)``, the note written after the bar."""
    if not rows:
        return no_data(title, width)
    line, label_w, note_w = 22, 170, 150
    top = max(value for _, value, _ in rows) or 1.0
    plot_w = width - label_w - note_w
    body = []
    for i, (label, value, note) in enumerate(rows):
        y = i * line + 4
        w = plot_w * value / top
        body.append(f'<text x="{label_w - 6}" y="{y + 13}" text-anchor="end">{escape(label)}</text>')
        body.append(f'<rect x="{label_w}" y="{y}" width="{w:.1f}" height="{line - 8}" fill="{BAR}"/>')
        body.append(f'<text x="{label_w + w + 6:.1f}" y="{y + 13}">{escape(note)}</text>')
    return _svg(width, len(rows) * line + 8, body, title)


def heat_grid(cells: Sequence[Sequence[float]], *, title: str, column0: int = 0, row0: int = 0) -> str:
    """One square per floor cell, darker for more visitor-seconds; rows drawn top to bottom from ``row0``."""
    if not cells or not cells[0]:
        return no_data(title)
    columns, rows = len(cells[0]), len(cells)
    size = max(8, min(36, 520 // max(columns, rows)))
    left, head = 34, 16
    peak = max(v for row in cells for v in row) or 1.0
    body = []
    for r, row in enumerate(cells):
        for c, value in enumerate(row):
            shade = value / peak
            fill = f"rgba(47,111,159,{0.06 + 0.94 * shade:.3f})" if value else "#f5f7fa"
            body.append(
                f'<rect x="{left + c * size}" y="{head + r * size}" width="{size - 1}" height="{size - 1}" '
                f'fill="{fill}"><title>{column0 + c},{row0 + r}: {value:.0f} s</title></rect>'
            )
    for c in range(0, columns, max(1, columns // 8)):
        x = left + c * size + size / 2
        body.append(f'<text x="{x:.1f}" y="{head - 4}" text-anchor="middle" fill="{MUTED}">{column0 + c}</text>')
    for r in range(0, rows, max(1, rows // 8)):
        y = head + r * size + size / 2 + 4
        body.append(f'<text x="{left - 4}" y="{y:.1f}" text-anchor="end" fill="{MUTED}">{row0 + r}</text>')
    return _svg(left + columns * size + 4, head + rows * size + 4, body, title)
