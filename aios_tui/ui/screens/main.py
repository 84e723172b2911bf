"""The main screen: header, four panes (a grid when the terminal is large, tabs when it is not), the
filter/command prompt and the footer."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import ClassVar, Literal

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Container
from textual.events import Resize
from textual.screen import Screen
from textual.widgets import Input, Static

from aios_tui.domain import FleetSnapshot
from aios_tui.render.kinds import PANES, lookup
from aios_tui.ui.commands import APP_COMMANDS, CommandSuggester, PromptInput
from aios_tui.ui.messages import ActionRequested, CommandEntered, OpenDetail
from aios_tui.ui.screens.acting import action_bindings, selection
from aios_tui.ui.widgets.fleet_table import FleetTable
from aios_tui.ui.widgets.footer import Footer
from aios_tui.ui.widgets.header import FleetHeader
from aios_tui.ui.widgets.pane import PaneBar, PaneBox

MIN_WIDTH, MIN_HEIGHT = 80, 24
"""Below this the console says so instead of drawing garbage."""
GRID_WIDTH, GRID_HEIGHT = 120, 36
"""From this size up the four panes share the screen; below it they are tabs."""

SORT_LETTERS = "ACEHLMNPQRSTUWZ"


class MainScreen(Screen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        # The app's own q, again here so that the footer lists it first: Textual's footer lists the focused
        # widget's keys, then the screen's, then the app's, and cuts what does not fit; at 80 columns the
        # app's came last and were cut.
        Binding("q", "app.quit", "Quit"),
        Binding("1", "show_pane('nodes')", "Nodes", show=False),
        Binding("2", "show_pane('gpus')", "GPUs", show=False),
        Binding("3", "show_pane('jobs')", "Jobs", show=False),
        Binding("4", "show_pane('endpoints')", "Endpoints", show=False),
        Binding("tab", "cycle(1)", "Next pane", show=False),
        Binding("shift+tab", "cycle(-1)", "Previous pane", show=False),
        Binding("slash", "prompt('filter')", "Filter"),
        Binding("colon", "prompt('command')", "Command"),
        *action_bindings(("nodes", "gpus", "jobs", "endpoints")),
        Binding("z", "zoom", "Zoom", show=False),
        Binding("escape", "escape", "Clear", show=False),
        *[Binding(letter, f"sort('{letter}')", f"Sort {letter}", show=False) for letter in SORT_LETTERS],
    ]

    DEFAULT_CSS = """
    MainScreen #panes { layout: grid; grid-size: 2 2; grid-gutter: 0; height: 1fr; }
    MainScreen.-tabs #panes, MainScreen.-zoom #panes { layout: vertical; }
    MainScreen.-tabs PaneBox, MainScreen.-zoom PaneBox { display: none; }
    MainScreen.-tabs PaneBox.-active, MainScreen.-zoom PaneBox.-active { display: block; }
    MainScreen.-tabs PaneBox { border: none; }
    MainScreen.-tabs PaneBar, MainScreen.-zoom PaneBar { display: block; }
    MainScreen #prompt {
        dock: bottom; display: none; border: none; height: 1; padding: 0 1; margin-bottom: 1;
    }
    MainScreen.-prompt #prompt { display: block; }
    MainScreen #progress {
        dock: bottom; display: none; height: 1; padding: 0 1; margin-bottom: 1;
        background: $warning 20%; color: $text;
    }
    MainScreen.-busy #progress { display: block; }
    MainScreen.-busy.-prompt #progress { display: none; }
    MainScreen #too-small { display: none; width: 100%; height: 100%; content-align: center middle;
                            text-align: center; padding: 1 2; }
    MainScreen.-too-small > * { display: none; }
    MainScreen.-too-small > #too-small { display: block; }
    MainScreen.-too-small > PaneBar { display: none; }  /* -tabs shows it, and it outranks the line above */
    """

    def __init__(
        self,
        *,
        read_only: bool,
        ascii: bool,
        default_pane: str = "nodes",
        snapshot: Callable[[], FleetSnapshot | None] = lambda: None,
        key_state: Callable[[str, Sequence[str]], bool | None] = lambda name, targets: True,
    ) -> None:
        super().__init__()
        self._snapshot = snapshot
        self._key_state = key_state
        self.read_only = read_only
        self.ascii = ascii
        self.panes = [PaneBox(kind, ascii=ascii) for kind in PANES.values()]
        first = lookup(default_pane)
        self.active = first.name if first is not None and first.pane else "nodes"
        self.prompt_mode: Literal["filter", "command"] = "filter"

    def compose(self) -> ComposeResult:
        yield FleetHeader(read_only=self.read_only, ascii=self.ascii, id="header")
        yield PaneBar(id="pane-bar")
        with Container(id="panes"):
            yield from self.panes
        yield PromptInput(id="prompt", suggester=self._suggester(), compact=True)
        yield Static(id="progress")
        yield Footer()
        yield Static(id="too-small")

    def _suggester(self) -> CommandSuggester:
        return CommandSuggester(
            APP_COMMANDS,
            snapshot=self._snapshot,
            columns=lambda: [c.key for c in self.table().kind.columns if c.sort],
            themes=lambda: self.app.available_themes,
        )

    def on_mount(self) -> None:
        self._apply_size(self.app.size.width, self.app.size.height)
        self.show_pane(self.active)

    # --- data -------------------------------------------------------------------------------------------

    @property
    def tables(self) -> list[FleetTable]:
        return [p.table for p in self.panes]

    def table(self, name: str | None = None) -> FleetTable:
        name = name or self.active
        return next(p.table for p in self.panes if p.kind.name == name)

    def update_snapshot(self, snapshot: FleetSnapshot, now: float) -> None:
        self.query_one(FleetHeader).show(snapshot, now)
        for table in self.tables:
            table.update_snapshot(snapshot, now)
        self._titles()

    def _titles(self) -> None:
        for i, pane in enumerate(self.panes, start=1):
            pane.update_title(i)
        self.query_one(PaneBar).draw(self.tables, self.active, ascii=self.ascii)

    # --- layout -----------------------------------------------------------------------------------------

    async def _on_resize(self, event: Resize) -> None:
        # Textual runs every class's ``_on_resize`` from this one down, so the layout classes for the new
        # size are set before ``Screen._on_resize`` lays the screen out and paints it. As ``on_resize`` (after
        # it) the first frame at a new size showed the old layout squeezed into it (four panes at 100
        # columns), and a second full paint followed.
        self._apply_size(event.size.width, event.size.height)

    def _apply_size(self, width: int, height: int) -> None:
        too_small = width < MIN_WIDTH or height < MIN_HEIGHT
        self.set_class(too_small, "-too-small")
        self.set_class(width < GRID_WIDTH or height < GRID_HEIGHT, "-tabs")
        if too_small:
            self.query_one("#too-small", Static).update(
                f"aios-tui needs a terminal of at least {MIN_WIDTH}×{MIN_HEIGHT}.\n"
                f"This one is {width}×{height}.\n\nEnlarge the window (or use a smaller font); q quits."
            )

    def show_pane(self, name: str) -> None:
        self.active = name
        for pane in self.panes:
            pane.set_class(pane.kind.name == name, "-active")
        table = self.table()
        if not self.has_class("-prompt"):
            self.set_focus(table)
        self._titles()
        self.refresh_bindings()

    def action_show_pane(self, name: str) -> None:
        self.show_pane(name)

    def action_cycle(self, step: int) -> None:
        names = [p.kind.name for p in self.panes]
        self.show_pane(names[(names.index(self.active) + step) % len(names)])

    def action_zoom(self) -> None:
        self.toggle_class("-zoom")

    @on(FleetTable.Selected)
    def _open_detail(self, event: FleetTable.Selected) -> None:
        kind = PANES[event.kind]
        self.post_message(OpenDetail(kind.detail, event.key, (kind.title,)))

    def on_descendant_focus(self) -> None:
        focused = self.focused
        if isinstance(focused, FleetTable) and focused.kind.name != self.active:
            self.active = focused.kind.name
            for pane in self.panes:
                pane.set_class(pane.kind.name == self.active, "-active")
            self._titles()
            self.refresh_bindings()

    # --- sort, filter, commands -------------------------------------------------------------------------

    def action_sort(self, letter: str) -> None:
        table = self.table()
        col = table.kind.sort_column_for(letter)
        if col is None:
            self.notify(f"{table.kind.title} has no column on {letter}", severity="warning", timeout=2)
            return
        table.sort_by(col.key)

    def action_prompt(self, mode: Literal["filter", "command"]) -> None:
        self.prompt_mode = mode
        prompt = self.query_one("#prompt", Input)
        prompt.value = self.table().filter_text if mode == "filter" else ""
        prompt.placeholder = (
            f"filter {self.table().kind.title.lower()}: words must all match, !word excludes"
            if mode == "filter"
            else ":nodes :gpus :jobs :endpoints :pods :events :sort COL :scale NS/NAME N :ctx :q"
        )
        prompt.border_title = None
        self.add_class("-prompt")
        self.set_focus(prompt)  # at once: the keys typed after ':' are the prompt's

    @on(Input.Changed, "#prompt")
    def _prompt_changed(self, event: Input.Changed) -> None:
        if self.prompt_mode == "filter" and self.has_class("-prompt"):
            self.table().set_filter(event.value.strip())
            self._titles()

    @on(Input.Submitted, "#prompt")
    def _prompt_submitted(self, event: Input.Submitted) -> None:
        self._close_prompt()
        if self.prompt_mode == "command":
            self.post_message(CommandEntered(event.value))

    def _close_prompt(self) -> None:
        self.remove_class("-prompt")
        self.set_focus(self.table())

    def action_escape(self) -> None:
        if self.has_class("-prompt"):
            if self.prompt_mode == "filter":
                self.table().set_filter("")
            self._close_prompt()
        elif self.table().marked:
            self.table().clear_marks()
        elif self.table().filter_text:
            self.table().set_filter("")
        elif self.has_class("-zoom"):
            self.remove_class("-zoom")
        self._titles()

    def set_filter(self, text: str) -> None:
        self.table().set_filter(text)
        self._titles()

    # --- actions ----------------------------------------------------------------------------------------

    def show_progress(self, message: str | None, *, stoppable: bool = False) -> None:
        """The running action's latest step on one line above the footer; ``None`` hides it."""
        self.set_class(message is not None, "-busy")
        if message is not None:
            hint = "(x stops it after this step) " if stoppable else ""
            self.query_one("#progress", Static).update(f"{'>' if self.ascii else '▶'} {hint}{message}")

    def targets_for(self, action: str) -> Sequence[str]:
        """The targets ``action`` gets here: the marked rows of the active pane, or the row under its
        cursor, when the pane offers the action."""
        return selection(action, self.active, self.table())

    def action_act(self, name: str) -> None:
        from aios_tui.ops import get

        targets = self.targets_for(name)
        if get(name).target is None or targets:
            self.post_message(ActionRequested(name, tuple(targets)))

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "act" and parameters:
            from aios_tui.ops import get

            name = str(parameters[0])
            if self.active not in get(name).panes:
                return False
            return self._key_state(name, self.targets_for(name))  # None: dimmed, a press says why
        return True

    @on(FleetTable.MarksChanged)
    def _marks_changed(self) -> None:
        self._titles()
