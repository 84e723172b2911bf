"""The two header lines, drawn by ``render.header``; the clock and the stale ages tick every second, whatever
the sources do (a hung source must not freeze them), and a click on the header opens the sources view."""

from __future__ import annotations

from rich.console import Group
from textual.widgets import Static

from aios_tui.domain import FleetSnapshot
from aios_tui.render.header import header_lines


class FleetHeader(Static):
    DEFAULT_CSS = """
    FleetHeader { height: 2; background: $panel; color: $foreground; padding: 0 1; }
    """

    def __init__(self, *, read_only: bool = False, ascii: bool = False, id: str | None = None) -> None:
        super().__init__(id=id)
        self.read_only = read_only
        self.ascii = ascii
        self._snapshot: FleetSnapshot | None = None
        self._now = 0.0

    def show(self, snapshot: FleetSnapshot, now: float) -> None:
        self._snapshot, self._now = snapshot, now
        self._draw()

    def tick(self, now: float) -> None:
        """The clock moved: redraw the time and the ages, same snapshot."""
        if self._snapshot is not None and int(now) != int(self._now):
            self._now = now
            self._draw()

    async def on_click(self) -> None:
        await self.app.run_action("view('sources')")

    def on_resize(self) -> None:
        self._draw()

    def _draw(self) -> None:
        if self._snapshot is None:
            return
        width = max(20, self.content_region.width or self.size.width)
        line1, line2 = header_lines(
            self._snapshot, self._now, width, read_only=self.read_only, ascii=self.ascii
        )
        self.update(Group(line1, line2))
