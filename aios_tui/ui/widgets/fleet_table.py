"""A virtualised, keyed table of one resource kind.

Textual's DataTable measures every cell when rows are added (about a second per 10,000 rows), so a fleet of
5,000 nodes and 40,000 GPUs needs a table whose cost follows the rows on screen. This one keeps the selected
rows (filtered and sorted by ``render.table``, outside the widget) and renders only the visible lines, through
the Line API. Updates are keyed: the cursor stays on the same object and the scroll offset does not move when
a new snapshot arrives.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

from rich.style import Style
from rich.text import Text
from textual.binding import Binding, BindingType
from textual.dom import DOMNode
from textual.events import Click
from textual.geometry import Region, Size
from textual.message import Message
from textual.scroll_view import ScrollView
from textual.strip import Strip
from textual.widget import Widget

from aios_tui.domain import FleetSnapshot
from aios_tui.render.table import Column, ResourceKind, RowCtx, layout, render_header, render_row, select_rows
from aios_tui.ui.widgets.lines import changed_spans


class FleetTable(ScrollView, can_focus=True):
    """Rows of one :class:`ResourceKind`, with a sticky header and a cursor that follows its row's key."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("up,k", "cursor(-1)", "Up", show=False),
        Binding("down,j", "cursor(1)", "Down", show=False),
        Binding("pageup,ctrl+b", "page(-1)", "Page up", show=False),
        Binding("pagedown,ctrl+f", "page(1)", "Page down", show=False),
        Binding("space", "mark", "Mark", show=False),
        Binding("home,g", "jump(0)", "First", show=False),
        Binding("end,G", "jump(-1)", "Last", show=False),
        Binding("enter", "select", "Detail"),
    ]

    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "fleet-table--header",
        "fleet-table--cursor",
        "fleet-table--cursor-blurred",
        "fleet-table--marked",
    }

    DEFAULT_CSS = """
    FleetTable {
        overflow-x: hidden;
        overflow-y: auto;
        scrollbar-size-vertical: 1;
        height: 1fr;
        background: $surface;
    }
    FleetTable > .fleet-table--header { text-style: bold; color: $text-accent; background: $panel; }
    FleetTable > .fleet-table--cursor {
        background: $block-cursor-background;
        color: $block-cursor-foreground;
    }
    FleetTable > .fleet-table--cursor-blurred { background: $block-cursor-blurred-background; }
    FleetTable > .fleet-table--marked { background: $accent 35%; text-style: bold; }
    """

    class MarksChanged(Message):
        """The set of marked rows changed."""

        def __init__(self, kind: str) -> None:
            self.kind = kind
            super().__init__()

    class CursorMoved(Message):
        """The cursor went to another row (by key); only the latest one matters."""

        def __init__(self, kind: str, key: str | None) -> None:
            self.kind = kind
            self.key = key
            super().__init__()

        def can_replace(self, message: Message) -> bool:
            return isinstance(message, FleetTable.CursorMoved) and message.kind == self.kind

    class Selected(Message):
        """Enter was pressed on a row."""

        def __init__(self, kind: str, key: str) -> None:
            self.kind = kind
            self.key = key
            super().__init__()

    def __init__(self, kind: ResourceKind, *, ascii: bool = False, id: str | None = None) -> None:
        super().__init__(id=id)
        self.kind = kind
        self.ascii = ascii
        self.filter_text = ""
        self.sort_key = kind.default_sort
        self.reverse = False
        self.cursor_row = 0
        self.cursor_key: str | None = None
        self.marked: set[str] = set()
        """Keys marked with space, for actions on several rows (k9s habit)."""
        self._snapshot: FleetSnapshot | None = None
        self._now = 0.0
        self._ctx: RowCtx | None = None
        self._rows: Sequence[Any] = ()
        self._stale = False
        self._layout: list[tuple[Column, int]] = []
        self._layout_width = -1
        self._lines: dict[int, Strip] = {}
        self._drawn: dict[int, tuple[Text, int, Style, Strip]] = {}
        self._texts: dict[int, tuple[Any, tuple[object, ...], list[tuple[Column, int]], Text]] = {}
        """Row index → the object, its inputs (:attr:`ResourceKind.inputs`) and the columns its text was
        rendered from, and the text: a row whose object and inputs did not change is not rendered again."""
        """Row index → the text, width and style its line was last made from, and the line: a row whose
        text did not change (most Nodes and GPUs rows at a refresh) keeps its line."""

    # --- data ---------------------------------------------------------------------------------------------

    @property
    def rows(self) -> Sequence[Any]:
        return self._rows

    @property
    def row_count(self) -> int:
        """Rows the table shows, or would show: a hidden table counts its pending snapshot."""
        if self._stale and self._snapshot is not None and not self.filter_text:
            return len(self.kind.rows(self._snapshot))
        return len(self._rows)

    @property
    def cursor_object(self) -> Any | None:
        if 0 <= self.cursor_row < len(self._rows):
            return self._rows[self.cursor_row]
        return None

    def update_snapshot(self, snapshot: FleetSnapshot, now: float) -> None:
        """Take a new snapshot. A hidden table only remembers it and catches up when shown."""
        self._snapshot = snapshot
        self._now = now
        if self.shown:
            self._rebuild(redraw_changes_only=True)
        else:
            self._stale = True

    @property
    def shown(self) -> bool:
        """Mounted, and neither it nor any container above it is ``display: none`` (a pane in tab mode)."""
        node: DOMNode | None = self
        while isinstance(node, Widget):
            if not node.display:
                return False
            node = node.parent
        return self.is_mounted

    def on_show(self) -> None:
        if self._stale:
            self._rebuild()

    def set_filter(self, text: str) -> None:
        if text != self.filter_text:
            self.filter_text = text
            self._rebuild()

    def sort_by(self, key: str) -> None:
        """Sort by a column (metrics biggest first); asking for the current one flips the direction."""
        if key == self.sort_key:
            self.reverse = not self.reverse
        else:
            column = self.kind.column_by_key.get(key)
            self.sort_key, self.reverse = key, bool(column and column.descending)
        self._rebuild()

    def _rebuild(self, *, redraw_changes_only: bool = False) -> None:
        """Select, sort and lay the rows out again. ``redraw_changes_only`` (a new snapshot): repaint only the
        cells whose text or style changed on screen, so that a refresh sends the few numbers that moved, not
        every line again (issue 14: 87 % of the bytes re-sent what the terminal already showed)."""
        self._stale = False
        before = dict(self._lines) if redraw_changes_only else {}
        old_count = len(self._rows)
        old_size = self.virtual_size
        snap = self._snapshot
        if snap is None:
            return
        self._ctx = RowCtx(snapshot=snap, now=self._now, ascii=self.ascii)
        rows = select_rows(
            self.kind,
            snap,
            self._ctx,
            filter_text=self.filter_text,
            sort_key=self.sort_key,
            reverse=self.reverse,
        )
        self._rows = rows
        old_cursor = self.cursor_row
        self._relocate_cursor()
        self._lines.clear()
        top = round(self.scroll_y)  # lines scrolled past need not be remembered
        self._drawn = {i: d for i, d in self._drawn.items() if top <= i < top + self.size.height}
        self._texts = {i: t for i, t in self._texts.items() if top <= i < top + self.size.height}
        # Only the height follows the rows. The width is 0: the columns fit the viewport (never a horizontal
        # scrollbar), and a virtual size that followed the viewport's width changed on every resize, which
        # is a second layout pass and a second full paint (and the content width flipped by the scrollbar's
        # column between the two, repainting the table).
        size = Size(0, len(rows) + 1)
        if size != old_size and before:
            # A row more or fewer (a job started, a pod went): the scrollbar follows, the lines are compared
            # as usual. Set as a reactive, the size repainted the whole table, the third of the bytes a
            # 5,000-node fleet sent (its Jobs pane changes length every few seconds).
            scrollbar = self.show_vertical_scrollbar
            self.set_reactive(FleetTable.virtual_size, size)
            self._scroll_update(size)
            if self.show_vertical_scrollbar != scrollbar:  # the content's width changed: lay it out again
                self.refresh(layout=True)
                return
        elif size != old_size:
            self.virtual_size = size
        if not before or self.cursor_row != old_cursor:
            self.refresh()
            return
        self._refresh_changed(before, max(old_count, len(rows)))

    def _refresh_changed(self, before: dict[int, Strip], rows: int) -> None:
        """Refresh, line by line, the span of cells that differs from what ``before`` drew; the blank lines
        below the last of ``rows`` (the most there were before or are now) stay as they are."""
        top = round(self.scroll_y)
        region = self.scrollable_content_region
        width = region.width
        base = self.rich_style  # once, not per line: it walks up every container (~0.1 ms a call)
        for y in range(1, min(region.height, rows - top + 1)):
            old = before.get(top + y - 1)
            new = self._line(y, base)
            if old is None:
                self.refresh(Region(0, y, width, 1))
                continue
            for start, end in changed_spans(old, new):
                self.refresh(Region(start, y, end - start, 1))

    def _relocate_cursor(self) -> None:
        rows, key_of = self._rows, self.kind.key
        if not rows:
            self.cursor_row = 0
            return
        row = min(self.cursor_row, len(rows) - 1)
        if self.cursor_key is not None and key_of(rows[row]) != self.cursor_key:
            # The object moved (sort order changed) or went away: find it, or stay at the same height.
            row = next((i for i, r in enumerate(rows) if key_of(r) == self.cursor_key), row)
        self.cursor_row = row
        self.cursor_key = key_of(rows[row])

    # --- cursor -------------------------------------------------------------------------------------------

    @property
    def _page(self) -> int:
        return max(1, self.scrollable_content_region.height - 1)

    def move_cursor(self, row: int) -> None:
        if not self._rows:
            return
        row = max(0, min(len(self._rows) - 1, row))
        old = self.cursor_row
        self.cursor_row = row
        self.cursor_key = self.kind.key(self._rows[row])
        top = round(self.scroll_y)
        if row < top:
            self.scroll_to(y=row, animate=False, immediate=True)
        elif row > top + self._page - 1:
            self.scroll_to(y=row - self._page + 1, animate=False, immediate=True)
        self._lines.pop(old, None)
        self._lines.pop(row, None)
        self.refresh()
        if row != old:
            self.post_message(self.CursorMoved(self.kind.name, self.cursor_key))

    def action_cursor(self, delta: int) -> None:
        self.move_cursor(self.cursor_row + delta)

    def action_page(self, direction: int) -> None:
        self.move_cursor(self.cursor_row + direction * self._page)

    def action_jump(self, row: int) -> None:
        self.move_cursor(row if row >= 0 else len(self._rows) - 1)

    def action_select(self) -> None:
        if self.cursor_key is not None:
            self.post_message(self.Selected(self.kind.name, self.cursor_key))

    def action_mark(self) -> None:
        """Mark or unmark the row under the cursor, then move down."""
        if self.cursor_key is None:
            return
        self.marked.symmetric_difference_update({self.cursor_key})
        self._lines.pop(self.cursor_row, None)
        self.post_message(self.MarksChanged(self.kind.name))
        self.action_cursor(1)

    def clear_marks(self) -> None:
        if self.marked:
            self.marked.clear()
            self._lines.clear()
            self.refresh()
            self.post_message(self.MarksChanged(self.kind.name))

    def targets(self) -> list[str]:
        """The marked keys still shown, in row order, or else the key under the cursor."""
        if self.marked:
            chosen = [k for r in self._rows if (k := self.kind.key(r)) in self.marked]
            if chosen:
                return chosen
        return [self.cursor_key] if self.cursor_key is not None else []

    def select_key(self, key: str) -> bool:
        """Put the cursor on the row with this key; False when it is not shown."""
        for i, r in enumerate(self._rows):
            if self.kind.key(r) == key:
                self.move_cursor(i)
                return True
        return False

    def on_click(self, event: Click) -> None:
        if event.y >= 1:
            self.move_cursor(round(self.scroll_y) + event.y - 1)
            if event.chain == 2:
                self.action_select()

    def on_focus(self) -> None:
        self._lines.clear()
        self.refresh()

    def on_blur(self) -> None:
        self._lines.clear()
        self.refresh()

    def on_resize(self) -> None:
        # The lines cached keep: ``_columns`` drops them when the width changes, and a line does not depend
        # on the height. Dropping them here, after the layout had painted the table, left the next snapshot
        # nothing to compare against: it repainted the whole table.
        if self._stale:
            self._rebuild()

    # --- rendering ----------------------------------------------------------------------------------------

    def _columns(self, width: int) -> list[tuple[Column, int]]:
        if width != self._layout_width:
            self._layout = layout(self.kind.columns, width)
            self._layout_width = width
            self._lines.clear()
        return self._layout

    def render_line(self, y: int) -> Strip:
        return self._line(y, None)

    def _line(self, y: int, base: Style | None) -> Strip:
        """Line ``y``; ``base``: the widget's style where the caller has it (else read when needed: a line
        drawn already is returned as it is)."""
        width = self.scrollable_content_region.width
        cols = self._columns(width)
        if y == 0:
            header = render_header(
                cols, self.sort_key or self.kind.default_sort, self.reverse, ascii=self.ascii
            )
            base = self.rich_style if base is None else base
            return self._strip(header, width, base + self.get_component_rich_style("fleet-table--header"))
        index = round(self.scroll_y) + y - 1
        if index >= len(self._rows) or self._ctx is None:
            return Strip.blank(width, self.rich_style if base is None else base)
        strip = self._lines.get(index)
        if strip is None:
            base = self.rich_style if base is None else base
            row = self._rows[index]
            text = self._row_text(index, row, cols, self._ctx)
            style = base
            marked = self.marked and self.kind.key(row) in self.marked
            if marked or index == self.cursor_row:
                text = text.copy()  # the rendered text stays as it is for the next refresh
            if marked:
                text.stylize(self.get_component_rich_style("fleet-table--marked"))
            if index == self.cursor_row:
                name = "fleet-table--cursor" if self.has_focus else "fleet-table--cursor-blurred"
                text.stylize(self.get_component_rich_style(name))
            drawn = self._drawn.get(index)
            if drawn is not None and drawn[1] == width and drawn[2] == style and drawn[0] == text:
                strip = drawn[3]
            else:
                strip = self._strip(text, width, style)
                self._drawn[index] = (text, width, style, strip)
            self._lines[index] = strip
        return strip

    def _row_text(self, index: int, row: Any, cols: list[tuple[Column, int]], ctx: RowCtx) -> Text:
        """Row ``index``'s text: the last one where its object, its inputs and the columns are the same."""
        inputs = self.kind.inputs
        if inputs is None:
            return render_row(cols, row, ctx)
        now = inputs(row, ctx)
        last = self._texts.get(index)
        if last is not None and last[2] is cols and (last[0] is row or last[0] == row) and last[1] == now:
            return last[3]
        text = render_row(cols, row, ctx)
        self._texts[index] = (row, now, cols, text)
        return text

    def _strip(self, text: Any, width: int, style: Style) -> Strip:
        segments = [s for s in text.render(self.app.console) if s.text != "\n"]
        return Strip(segments).apply_style(style).adjust_cell_length(width, style)

    def row_text(self, index: int) -> str:
        """The plain text of a row as rendered at the current width (for tests and copy)."""
        if self._ctx is None or not 0 <= index < len(self._rows):
            return ""
        return render_row(
            self._columns(self.scrollable_content_region.width), self._rows[index], self._ctx
        ).plain


__all__ = ["FleetTable"]
