"""Screens over one view of the fleet: the allocated-but-idle GPUs (``i``, ``:idle``), the nodes to cordon
(``h``, ``:health``) and the node pools (``p``, ``:pools``). Each is the header, a one-line summary and a
table that sorts like the panes (shift+letter, again to reverse) and filters with ``/``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, ClassVar

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.screen import Screen
from textual.widgets import Footer, Input, Static

from aios_tui.domain import FleetSnapshot
from aios_tui.render.glyphs import DIM_STYLE, FAIL_STYLE, OK_STYLE
from aios_tui.render.table import ResourceKind
from aios_tui.render.views import (
    CORDON,
    IDLE,
    POOLS,
    SOURCES,
    idle_summary,
    pools_summary,
    source_why,
    sources_summary,
)
from aios_tui.ui.screens.acting import action_bindings, selection
from aios_tui.ui.widgets.fleet_table import FleetTable
from aios_tui.ui.widgets.header import FleetHeader

if TYPE_CHECKING:
    from aios_tui.ui.app import AiosApp

__all__ = ["CordonScreen", "IdleScreen", "PoolsScreen", "SourcesScreen", "ViewScreen"]


class ViewScreen(Screen[None]):
    """A full-screen table of one view, kept up to date by the app with every snapshot."""

    KIND: ClassVar[ResourceKind]
    TABLE: ClassVar[type[FleetTable]] = FleetTable
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "back", "Back"),
        Binding("slash", "filter", "Filter"),
    ]

    DEFAULT_CSS = """
    ViewScreen #view-title { height: 1; padding: 0 1; background: $panel; }
    ViewScreen #view-filter { dock: bottom; display: none; border: none; height: 1; padding: 0 1;
                              margin-bottom: 1; }
    ViewScreen.-filter #view-filter { display: block; }
    """

    def __init__(self, *, read_only: bool, ascii: bool) -> None:
        super().__init__()
        self.read_only = read_only
        self.ascii = ascii
        self.table = self.TABLE(self.KIND, ascii=ascii, id=f"view-{self.KIND.name}")
        self._snapshot: FleetSnapshot | None = None

    @property
    def aios(self) -> AiosApp:
        from aios_tui.ui.app import AiosApp

        assert isinstance(self.app, AiosApp)
        return self.app

    def compose(self) -> ComposeResult:
        yield FleetHeader(read_only=self.read_only, ascii=self.ascii)
        yield Static(id="view-title")
        yield self.table
        yield Input(
            id="view-filter", compact=True, placeholder="filter: words must all match, !word excludes"
        )
        yield Footer()

    def on_mount(self) -> None:
        self.set_focus(self.table)
        if self.aios.fleet is not None:
            self.update_snapshot(self.aios.fleet, self.aios.clock())

    def update_snapshot(self, snapshot: FleetSnapshot, now: float) -> None:
        self._snapshot = snapshot
        self.query_one(FleetHeader).show(snapshot, now)
        self.table.update_snapshot(snapshot, now)
        self._title()

    def _title(self) -> None:
        if self._snapshot is not None:
            self.query_one("#view-title", Static).update(self.summary(self._snapshot))

    def summary(self, snapshot: FleetSnapshot) -> Text:
        return Text(f"{self.KIND.title}: {len(self.table.rows):,}", "bold")

    # --- keys -------------------------------------------------------------------------------------------

    def action_back(self) -> None:
        if self.has_class("-filter"):
            self._close_filter()
        elif self.table.filter_text:
            self.table.set_filter("")
            self._title()
        else:
            self.dismiss()

    def action_sort(self, letter: str) -> None:
        col = self.KIND.sort_column_for(letter)
        if col is None:
            self.notify(f"{self.KIND.title} has no column on {letter}", severity="warning", timeout=2)
            return
        self.table.sort_by(col.key)

    def action_filter(self) -> None:
        prompt = self.query_one("#view-filter", Input)
        prompt.value = self.table.filter_text
        self.add_class("-filter")
        self.set_focus(prompt)

    @on(Input.Changed, "#view-filter")
    def _filter_changed(self, event: Input.Changed) -> None:
        if self.has_class("-filter"):
            self.table.set_filter(event.value.strip())
            self._title()

    @on(Input.Submitted, "#view-filter")
    def _filter_submitted(self) -> None:
        self._close_filter()

    def _close_filter(self) -> None:
        self.remove_class("-filter")
        self.set_focus(self.table)

    # --- actions ----------------------------------------------------------------------------------------

    def targets_for(self, action: str) -> Sequence[str]:
        return selection(action, self.KIND.name, self.table)

    def action_act(self, name: str) -> None:
        targets = self.targets_for(name)
        if targets:
            self.aios.start_action(name, targets)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "act" and parameters:
            from aios_tui.ops import get

            name = str(parameters[0])
            if self.KIND.name not in get(name).panes:
                return False
            return self.aios.key_state(name, self.targets_for(name))  # None: dimmed, a press says why
        return True


def _sort_bindings(kind: ResourceKind) -> list[BindingType]:
    return [
        Binding(c.hotkey, f"sort('{c.hotkey}')", f"Sort {c.title.lower()}", show=False)
        for c in kind.columns
        if c.hotkey and c.sort is not None
    ]


class IdleScreen(ViewScreen):
    """``i``: allocated GPUs under 5 % for the idle window, longest idle first; enter shows the GPU."""

    KIND = IDLE
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,i", "back", "Back"),
        Binding("slash", "filter", "Filter"),
        *_sort_bindings(IDLE),
    ]

    def summary(self, snapshot: FleetSnapshot) -> Text:
        return idle_summary(snapshot, self.table.rows, filtered=bool(self.table.filter_text))

    @on(FleetTable.Selected)
    def _selected(self, event: FleetTable.Selected) -> None:
        event.stop()
        self.aios.open_detail("gpu", event.key)


class _SuggestionTable(FleetTable):
    """Enter on a suggestion acts on it: the footer says so."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("enter", "select", "Cordon plan")]


class CordonScreen(ViewScreen):
    """``h``: the nodes whose GPUs say to cordon them; enter or ``c`` opens the cordon plan for one, ``d``
    the drain plan."""

    KIND = CORDON
    TABLE = _SuggestionTable
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,h", "back", "Back"),
        *action_bindings([CORDON.name]),
        Binding("slash", "filter", "Filter"),
        *_sort_bindings(CORDON),
    ]

    def summary(self, snapshot: FleetSnapshot) -> Text:
        n = len(self.table.rows)
        if not n and not self.table.filter_text:
            return Text("No node to cordon: no GPU reports an XID, ECC errors or throttling", OK_STYLE)
        out = Text.assemble(
            (f"{n} node{'s' if n != 1 else ''} to cordon", FAIL_STYLE),
            ("  enter: cordon plan for the node under the cursor" if not self.read_only else "", DIM_STYLE),
        )
        return out

    @on(FleetTable.Selected)
    def _selected(self, event: FleetTable.Selected) -> None:
        event.stop()
        self.aios.start_action("cordon", [event.key])


class _PoolTable(FleetTable):
    """Enter on a pool scales it: the footer says so."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("enter", "select", "Scale pool")]


class PoolsScreen(ViewScreen):
    """``p``: the node pools; ``s`` or enter opens the scale plan for the pool under the cursor."""

    KIND = POOLS
    TABLE = _PoolTable
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,p", "back", "Back"),
        *action_bindings([POOLS.name]),
        Binding("slash", "filter", "Filter"),
        *_sort_bindings(POOLS),
    ]

    def summary(self, snapshot: FleetSnapshot) -> Text:
        out = pools_summary(snapshot, self.table.rows)
        if not self.read_only and self.aios.can_act("scale-pool"):
            out.append("  s: scale the pool under the cursor", DIM_STYLE)
        return out

    @on(FleetTable.Selected)
    def _selected(self, event: FleetTable.Selected) -> None:
        event.stop()
        self.aios.start_action("scale-pool", [event.key])


class SourcesScreen(ViewScreen):
    """``e``, ``:sources`` (or a click on the header): each source and its hosts or targets — state, last
    good reading, the last error in plain words, latency, when it is tried next; the row under the cursor's
    whole error below the table (a row cuts it to the width)."""

    KIND = SOURCES
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,e", "back", "Back"),
        Binding("slash", "filter", "Filter"),
    ]

    DEFAULT_CSS = """
    SourcesScreen #why { dock: bottom; height: auto; max-height: 8; padding: 0 1; margin-bottom: 1; }
    """

    def compose(self) -> ComposeResult:
        yield from super().compose()
        yield Static(id="why")

    def summary(self, snapshot: FleetSnapshot) -> Text:
        return sources_summary(snapshot)

    def update_snapshot(self, snapshot: FleetSnapshot, now: float) -> None:
        super().update_snapshot(snapshot, now)
        self._why(now)

    def tick(self, now: float) -> None:
        """Ages and "next try" count on between snapshots."""
        if self._snapshot is not None:
            self.table.update_snapshot(self._snapshot, now)
            self._why(now)

    @on(FleetTable.CursorMoved)
    def _moved(self) -> None:
        self._why(self.aios.clock())

    def _why(self, now: float) -> None:
        row = self.table.cursor_object
        self.query_one("#why", Static).update(source_why(row, now) if row is not None else "")
