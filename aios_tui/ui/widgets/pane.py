"""A pane: one FleetTable in a titled box, and the one-line tab bar used when panes become tabs."""

from __future__ import annotations

from typing import Any, Self

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.geometry import Region
from textual.widgets import Static

from aios_tui.render.table import ResourceKind
from aios_tui.ui.widgets.fleet_table import FleetTable


class PaneBox(Vertical):
    _title_only = False
    """Set while the title changes: :meth:`refresh` repaints the top border alone."""
    DEFAULT_CSS = """
    PaneBox { border: round $primary-muted; border-title-color: $text; height: 1fr; }
    PaneBox:focus-within { border: round $accent; border-title-style: bold; }
    """

    def __init__(self, kind: ResourceKind, *, ascii: bool) -> None:
        super().__init__(id=f"pane-{kind.name}")
        self.kind = kind
        self.table = FleetTable(kind, ascii=ascii, id=f"table-{kind.name}")
        self._label = ""

    def compose(self) -> ComposeResult:
        yield self.table

    def update_title(self, number: int) -> None:
        """The title in the top border, repainted alone: setting ``border_title`` repaints the whole pane,
        its table included, and a 5,000-node fleet's Jobs count changes every few seconds (the fifth of the
        bytes the console sent at 120×40)."""
        label = pane_label(number, self.table)
        if label != self._label:
            self._label = label
            self._title_only = True
            try:
                self.border_title = label
            finally:
                self._title_only = False

    def refresh(self, *regions: Region, **kwargs: Any) -> Self:
        if self._title_only and not regions and not kwargs.get("layout"):
            # Regions are in the content's coordinates: the top border is the line above it.
            top = self.styles.gutter.top
            return super().refresh(Region(-self.styles.gutter.left, -top, self.outer_size.width, 1), **kwargs)
        return super().refresh(*regions, **kwargs)


def pane_label(number: int, table: FleetTable) -> str:
    label = f"{number} {table.kind.title} {table.row_count:,}"
    if table.filter_text:
        label += f" /{table.filter_text}"
    if table.marked:
        label += f" ({len(table.marked)} marked)"
    return label


class PaneBar(Static):
    """``1 Nodes 200 │ 2 GPUs 1,600 │ …`` with the active pane highlighted."""

    DEFAULT_CSS = """
    PaneBar { height: 1; background: $panel; padding: 0 1; display: none; }
    """

    _drawn: Text | None = None

    def draw(self, tables: list[FleetTable], active: str, *, ascii: bool) -> None:
        out = Text()
        for i, table in enumerate(tables, start=1):
            if i > 1:
                out.append(" | " if ascii else " │ ", "dim")
            is_active = table.kind.name == active
            out.append(f" {pane_label(i, table)} ", "bold reverse" if is_active else "")
        if out != self._drawn:  # one line whatever it says: no layout pass, and nothing when unchanged
            self._drawn = out
            self.update(out, layout=False)


__all__ = ["PaneBar", "PaneBox", "pane_label"]
