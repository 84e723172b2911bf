"""Repainting only what changed on screen: the span of cells where a new line differs from the one the
terminal shows. Textual sends a widget's whole region when it is refreshed without one; a table refreshed on
every snapshot re-sent 85 % of its bytes unchanged (docs/benchmarks.md, issue 14)."""

from __future__ import annotations

from rich.cells import cell_len
from rich.style import Style
from textual.strip import Strip

__all__ = ["changed_span"]


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


def changed_span(old: Strip, new: Strip) -> tuple[int, int] | None:
    """The columns [start, end) where ``new`` differs from ``old``; None when it does not."""
    if old == new:
        return None
    a, b = _cells(old), _cells(new)
    if len(a) != len(b):
        return (0, max(old.cell_length, new.cell_length))
    first = next((i for i, (p, q) in enumerate(zip(a, b, strict=True)) if p[1:] != q[1:]), None)
    if first is None:
        return None
    last = next(i for i in range(len(b) - 1, first - 1, -1) if a[i][1:] != b[i][1:])
    end = b[last][0] + cell_len(b[last][1])
    return (b[first][0], end)
