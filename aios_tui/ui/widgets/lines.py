"""Repainting only what changed on screen: the span of cells where a new line differs from the one the
terminal shows. Textual sends a widget's whole region when it is refreshed without one; a table refreshed on
every snapshot re-sent 85 % of its bytes unchanged (docs/benchmarks.md, issue 14)."""

from __future__ import annotations

from rich.cells import cell_len
from rich.style import Style
from textual.strip import Strip

__all__ = ["GAP", "changed_spans"]


def _cells(strip: Strip) -> list[tuple[int, str, Style | None]]:
    """(column, character, style) for each character of a line."""
    out: list[tuple[int, str, Style | None]] = []
    x = 0
    for seg in strip:
        style = seg.style
        for ch in seg.text:
            out.append((x, ch, style))
            x += cell_len(ch)
    return out


GAP = 12
"""Unchanged cells between two changed runs of a line that are sent anyway rather than split into two
spans: a cursor move and the style written again cost about as much."""


def changed_spans(old: Strip, new: Strip) -> list[tuple[int, int]]:
    """The runs of columns [start, end) where ``new`` differs from ``old``, left to right; two runs closer
    than :data:`GAP` cells are one. Empty when nothing differs."""
    if old == new:
        return []
    a, b = _cells(old), _cells(new)
    if len(a) != len(b):
        return [(0, max(old.cell_length, new.cell_length))]
    spans: list[tuple[int, int]] = []
    start = end = -1
    for p, q in zip(a, b, strict=True):
        if p[1:] == q[1:]:
            continue
        x, x_end = q[0], q[0] + cell_len(q[1])
        if start >= 0 and x - end < GAP:
            end = x_end
            continue
        if start >= 0:
            spans.append((start, end))
        start, end = x, x_end
    if start >= 0:
        spans.append((start, end))
    return spans
