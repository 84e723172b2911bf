"""The two header lines, drawn by ``render.header``; the clock and the stale ages tick every second, whatever
the sources do (a hung source must not freeze them), and a click on the header opens the sources view."""

from __future__ import annotations

from rich.text import Text
from textual.geometry import Region
from textual.strip import Strip
from textual.widget import Widget

from aios_tui.domain import FleetSnapshot
from aios_tui.render.header import header_lines
from aios_tui.ui.widgets.lines import changed_spans


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
        self._drawn_width = -1
        """The width :attr:`_texts` were laid out for."""
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

    @property
    def lines(self) -> tuple[Text, Text] | None:
        """The two lines as drawn last (for tests)."""
        return self._texts

    def _width(self) -> int:
        return self.content_region.width or self.size.width

    def _draw(self, *, repaint: bool = True) -> None:
        """Lay the two lines out for the current width; repaint the cells that changed (``repaint``)."""
        if self._snapshot is None:
            return
        width = self._width()
        texts = header_lines(
            self._snapshot,
            self._now,
            max(20, width),
            read_only=self.read_only,
            ascii=self.ascii,
            seconds=not getattr(self.app, "low_bandwidth", False),
        )
        if texts == self._texts and width == self._drawn_width:
            return
        self._texts, self._drawn_width = texts, width
        for y in (0, 1):
            old = self._strips.pop(y, None)
            new = self.render_line(y)
            spans = changed_spans(old, new) if old is not None else [(0, new.cell_length)]
            for start, end in spans if repaint else ():
                # Regions are in the content's coordinates (Textual adds the padding): adding the gutter here
                # drew the changed digit one cell to the right of where it belongs once repaints were cropped
                # at the span's start (``ui.terminal.CroppedChops``).
                self.refresh(Region(start, y, end - start, 1))

    def render_line(self, y: int) -> Strip:
        """A line at the width the header has now: after a resize, the layout that resized it repaints it,
        and the lines are laid out again here for the new width (repainting from ``on_resize`` was a
        further full frame per resize, and the first frame at the new size showed the old width's lines)."""
        width = self._width()
        if width != self._drawn_width and self._snapshot is not None and width > 0:
            self._strips.clear()
            self._draw(repaint=False)
        strip = self._strips.get(y)
        if strip is not None:
            return strip
        style = self.rich_style
        if self._texts is None or not 0 <= y < 2 or width <= 0:
            return Strip.blank(width, style)
        segments = [s for s in self._texts[y].render(self.app.console) if s.text != "\n"]
        strip = Strip(segments).apply_style(style).adjust_cell_length(width, style)
        self._strips[y] = strip
        return strip
