"""Screens over one view of the fleet: the allocated-but-idle GPUs (``i``, ``:idle``), node health
(``h``, ``:health``), the node pools (``p``, ``:pools``) and the free capacity (``f``, ``:free``). Each is
the header, a one-line summary and a table that sorts like the panes (shift+letter, again to reverse) and
filters with ``/``."""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from typing import ClassVar

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.screen import Screen
from textual.widgets import Input, Static

from aios_tui.alloc.freecap import FreeDomain
from aios_tui.domain import FleetSnapshot
from aios_tui.render.glyphs import DIM_STYLE
from aios_tui.render.table import ResourceKind
from aios_tui.render.views import (
    CAPACITY,
    CORDON,
    IDLE,
    IDLE_OWNERS,
    POOLS,
    SOURCES,
    IdleOwner,
    capacity_summary,
    health_summary,
    idle_summary,
    pools_summary,
    source_why,
    sources_summary,
)
from aios_tui.ui.messages import ActionRequested, CommandEntered, OpenDetail
from aios_tui.ui.screens.acting import ScreenContext, action_bindings, selection
from aios_tui.ui.widgets.fleet_table import FleetTable
from aios_tui.ui.widgets.footer import Footer
from aios_tui.ui.widgets.header import FleetHeader

__all__ = ["CapacityScreen", "CordonScreen", "IdleScreen", "PoolsScreen", "SourcesScreen", "ViewScreen"]


class ViewScreen(Screen[None]):
    """A full-screen table of one view, kept up to date by the app with every snapshot."""

    KIND: ClassVar[ResourceKind]
    TABLE: ClassVar[type[FleetTable]] = FleetTable
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("q", "app.quit", "Quit"),  # the app's q, listed before the keys an 80-column footer cuts
        Binding("escape", "back", "Back"),
        Binding("slash", "filter", "Filter"),
    ]

    DEFAULT_CSS = """
    ViewScreen #view-title { height: 1; padding: 0 1; background: $panel; }
    ViewScreen #view-filter { dock: bottom; display: none; border: none; height: 1; padding: 0 1;
                              margin-bottom: 1; }
    ViewScreen.-filter #view-filter { display: block; }
    """

    def __init__(self, *, read_only: bool, ascii: bool, context: ScreenContext | None = None) -> None:
        super().__init__()
        self.ctx = context or ScreenContext()
        self.read_only = read_only
        self.ascii = ascii
        self.table = self.TABLE(self.KIND, ascii=ascii, id=f"view-{self.KIND.name}")
        self._snapshot: FleetSnapshot | None = None

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
        fleet = self.ctx.fleet()
        if fleet is not None:
            self.update_snapshot(fleet, self.ctx.clock())

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
        kind = self.table.kind  # the idle view switches between two tables
        col = kind.sort_column_for(letter)
        if col is None:
            self.notify(f"{kind.title} has no column on {letter}", severity="warning", timeout=2)
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
        return selection(action, self.table.kind.name, self.table)

    def action_act(self, name: str) -> None:
        targets = self.targets_for(name)
        if targets:
            self.post_message(ActionRequested(name, tuple(targets)))

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "act" and parameters:
            from aios_tui.ops import get

            name = str(parameters[0])
            if self.table.kind.name not in get(name).panes:
                return False
            return self.ctx.key_state(name, self.targets_for(name))  # None: dimmed, a press says why
        return True


def _sort_bindings(kind: ResourceKind) -> list[BindingType]:
    return [
        Binding(c.hotkey, f"sort('{c.hotkey}')", f"Sort {c.title.lower()}", show=False)
        for c in kind.columns
        if c.hotkey and c.sort is not None
    ]


class _OwnersTable(FleetTable):
    """Enter on an owner opens its job or endpoint: the footer says so."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("enter", "select", "Owner")]


class IdleScreen(ViewScreen):
    """``i``: allocated GPUs under 5 % for the idle window, rolled up by the workload that holds them (its
    namespace, idle GPUs, since when, $/h), dearest first; ``o`` switches to one row per GPU and back. On an
    owner, enter opens the job or endpoint and ``s`` the endpoint's scale plan; on a GPU, enter shows it."""

    KIND = IDLE_OWNERS
    TABLE = _OwnersTable
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,i", "back", "Back"),
        Binding("o", "per_gpu", "Per GPU / owner"),
        *action_bindings([IDLE_OWNERS.name]),
        Binding("slash", "filter", "Filter"),
        *_sort_bindings(IDLE_OWNERS),
        *_sort_bindings(IDLE),  # the same letters bind the same sort(letter): the table shown answers
    ]

    def __init__(self, *, read_only: bool, ascii: bool, context: ScreenContext | None = None) -> None:
        super().__init__(read_only=read_only, ascii=ascii, context=context)
        self.owners = self.table
        self.per_gpu = FleetTable(IDLE, ascii=ascii, id="view-idle")
        self.per_gpu.display = False

    def compose(self) -> ComposeResult:
        for widget in super().compose():
            yield widget
            if widget is self.owners:
                yield self.per_gpu

    def update_snapshot(self, snapshot: FleetSnapshot, now: float) -> None:
        other = self.per_gpu if self.table is self.owners else self.owners
        other.update_snapshot(snapshot, now)  # hidden: it only keeps the snapshot until shown
        super().update_snapshot(snapshot, now)

    def action_per_gpu(self) -> None:
        """Switch between the roll-up by owner and one row per GPU, keeping the filter."""
        shown, hidden = (
            (self.per_gpu, self.owners) if self.table is self.owners else (self.owners, self.per_gpu)
        )
        hidden.display = False
        shown.display = True
        shown.set_filter(hidden.filter_text)
        self.table = shown
        self.set_focus(shown)
        self._title()
        self.refresh_bindings()

    def summary(self, snapshot: FleetSnapshot) -> Text:
        out = idle_summary(snapshot, self.table.rows, filtered=bool(self.table.filter_text))
        hint = "o: per GPU, enter: owner" if self.table is self.owners else "o: by owner, enter: GPU"
        if self.table is self.owners and not self.read_only and self.ctx.can_act("scale"):
            hint += ", s: scale the endpoint"
        out.append(f"  {hint}", DIM_STYLE)
        return out

    def targets_for(self, action: str) -> Sequence[str]:
        """``s`` scales the endpoint under the cursor: not a job or a bare pod."""
        row = self.table.cursor_object
        if isinstance(row, IdleOwner) and row.kind != "endpoint":
            return ()
        return super().targets_for(action)

    def action_act(self, name: str) -> None:
        row = self.table.cursor_object
        if isinstance(row, IdleOwner) and row.kind != "endpoint":
            self.notify(f"{row.key} is a {row.kind}: only an endpoint scales (enter opens it)", timeout=3)
            return
        super().action_act(name)

    @on(FleetTable.Selected)
    def _selected(self, event: FleetTable.Selected) -> None:
        event.stop()
        row = self.table.cursor_object
        if not isinstance(row, IdleOwner):
            self.post_message(OpenDetail("gpu", event.key, (self.table.kind.title,)))
        elif row.kind in ("endpoint", "job"):
            self.post_message(OpenDetail(row.kind, row.key, (self.table.kind.title,)))
        else:
            self.notify(f"{row.key} is a pod no job or endpoint owns: o lists its GPUs", timeout=3)


class _HealthTable(FleetTable):
    """Enter on a node opens its detail (its GPUs, what each XID means and what to do): the footer says so."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("enter", "select", "Node detail")]


class CordonScreen(ViewScreen):
    """``h``, ``:health``: every node with a verdict (watch, drain, reset, reboot, RMA), worst first; ``c``
    opens the cordon plan for the marked nodes or the one under the cursor, the drain action's key its drain
    plan (the same plans and confirmation as from Nodes); enter opens the node's detail."""

    KIND = CORDON
    TABLE = _HealthTable
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,h", "back", "Back"),
        *action_bindings([CORDON.name]),
        Binding("slash", "filter", "Filter"),
        *_sort_bindings(CORDON),
    ]

    def summary(self, snapshot: FleetSnapshot) -> Text:
        out = health_summary(snapshot, self.table.rows, filtered=bool(self.table.filter_text))
        if snapshot.verdicts and not self.read_only:
            out.append("  c: cordon, enter: detail", DIM_STYLE)
        return out

    @on(FleetTable.Selected)
    def _selected(self, event: FleetTable.Selected) -> None:
        event.stop()
        self.post_message(OpenDetail("node", event.key, (self.KIND.title,)))


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
        if not self.read_only and self.ctx.can_act("scale-pool"):
            out.append("  s: scale the pool under the cursor", DIM_STYLE)
        return out

    @on(FleetTable.Selected)
    def _selected(self, event: FleetTable.Selected) -> None:
        event.stop()
        self.post_message(ActionRequested("scale-pool", (event.key,)))


class _CapacityTable(FleetTable):
    """Enter on a zone, rack or pool shows its nodes: the footer says so."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("enter", "select", "Its nodes")]


class CapacityScreen(ViewScreen):
    """``f``, ``:capacity``: free GPUs per zone, rack and node pool (and GPU model) — whole free nodes, the
    workers of 1, 2, 4 and 8 GPUs that fit on one node, the share of the free GPUs the next typical request
    cannot use, the nodes that cannot take pods; enter shows the domain's nodes in the Nodes pane."""

    KIND = CAPACITY
    TABLE = _CapacityTable
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,f", "back", "Back"),
        Binding("slash", "filter", "Filter"),
        *_sort_bindings(CAPACITY),
    ]

    def summary(self, snapshot: FleetSnapshot) -> Text:
        return capacity_summary(snapshot, ascii=self.ascii)

    @on(FleetTable.Selected)
    def _selected(self, event: FleetTable.Selected) -> None:
        event.stop()
        row = self.table.cursor_object
        if isinstance(row, FreeDomain):  # the Nodes pane, filtered to the domain's name and GPU model
            self.post_message(CommandEntered(shlex.join(["nodes", row.name, row.gpu_model.lower()])))


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
        self._why(self.ctx.clock())

    def _why(self, now: float) -> None:
        row = self.table.cursor_object
        self.query_one("#why", Static).update(source_why(row, now) if row is not None else "")
