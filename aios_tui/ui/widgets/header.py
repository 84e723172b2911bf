"""The two header lines, drawn by ``render.header``; the clock and the stale ages tick every second, whatever
the sources do (a hung source must not freeze them), and a click on the header opens the sources view."""

from __future__ import annotations

from rich.text import Text
from textual.geometry import Region
from textual.strip import Strip
from textual.widget import Widget

from aios_tui.domain import FleetSnapshot
from aios_tui.render.header import header_lines
from aios_tui.ui.widgets.lines import changed_span


class FleetHeader(Widget):
    """Two lines; each second only the cells that changed are repainted (the clock's digits, an age), so
    the header costs the terminal a few bytes a second, not two whole lines."""

    DEFAULT_CSS = """
    FleetHeader { height: 2; background: $panel; color: $foreground; padding: 0 1; }
    """

    def __init__(self, *, read_only: bool = False, ascii: bool = False, id: str | None = None) -> None:
        super().__init__(id=id)
        self.read_only = read_only
        self.ascii = ascii
        self._snapshot: FleetSnapshot | None = None
        self._now = 0.0
        self._texts: tuple[Text, Text] | None = None
        self._strips: dict[int, Strip] = {}

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
        self._strips.clear()
        self._texts = None
        self._draw()
        self.refresh()

    @property
    def lines(self) -> tuple[Text, Text] | None:
        """The two lines as drawn last (for tests)."""
        return self._texts

    def _draw(self) -> None:
        if self._snapshot is None:
            return
        width = max(20, self.content_region.width or self.size.width)
        texts = header_lines(
            self._snapshot,
            self._now,
            width,
            read_only=self.read_only,
            ascii=self.ascii,
            seconds=not getattr(self.app, "low_bandwidth", False),
        )
        if texts == self._texts:
            return
        self._texts = texts
        for y in (0, 1):
            old = self._strips.pop(y, None)
            new = self.render_line(y)
            span = changed_span(old, new) if old is not None else (0, new.cell_length)
            if span is not None:
                # Regions are in the content's coordinates (Textual adds the padding): adding the gutter here
                # drew the changed digit one cell to the right of where it belongs once repaints were cropped
                # at the span's start (``ui.terminal.CroppedChops``).
                self.refresh(Region(span[0], y, span[1] - span[0], 1))

    def render_line(self, y: int) -> Strip:
        strip = self._strips.get(y)
        if strip is not None:
            return strip
        width = self.content_region.width or self.size.width
        style = self.rich_style
        if self._texts is None or not 0 <= y < 2 or width <= 0:
            return Strip.blank(width, style)
        segments = [s for s in self._texts[y].render(self.app.console) if s.text != "\n"]
        strip = Strip(segments).apply_style(style).adjust_cell_length(width, style)
        self._strips[y] = strip
        return strip
