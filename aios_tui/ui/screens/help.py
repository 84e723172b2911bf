"""``?``: every key and command, including the sort letters of each pane."""

from __future__ import annotations

from typing import ClassVar

from rich.console import Group
from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from aios_tui.render.table import KINDS
from aios_tui.render.views import VIEWS

GENERAL = [
    ("1 2 3 4", "Nodes, GPUs, Jobs, Endpoints"),
    ("tab / shift+tab", "next / previous pane"),
    ("↑ ↓ j k, pgup pgdn, g G", "move"),
    ("enter", "details with history"),
    ("/", "filter the pane (words must all match, !word excludes; esc clears)"),
    (
        ":",
        "command mode (:nodes :gpus :jobs :endpoints :idle :health :pools :sort COL :theme NAME "
        ":scale NS/NAME N :scale-pool POOL N :audit :q)",
    ),
    ("i", "allocated-but-idle GPUs: under 5% for the idle window, owner, idle for, $/h (:idle)"),
    ("h", "nodes to cordon: GPUs with an XID, ECC errors or throttling; enter opens the plan (:health)"),
    ("p", "node pools: nodes/desired, min–max, zones, $/h, queued jobs that fit; s scales one (:pools)"),
    ("shift+letter", "sort by that column; again to reverse (letters below)"),
    ("z", "zoom the pane (wide layout)"),
    ("a", "action log: every action taken, by whom, and its outcome (:audit)"),
    ("ctrl+r", "refresh now"),
    ("ctrl+p", "command palette"),
    ("?", "this help"),
    ("q", "quit"),
]

ACTIONS = [
    ("space", "mark a row; actions on nodes apply to every marked node (esc clears the marks)"),
    ("c", "Nodes: cordon the marked nodes or the one under the cursor (uncordon when all are cordoned)"),
    ("d", "Nodes: drain: where each pod goes, what cannot move and why, gangs that restart"),
    ("s", "Endpoints: scale (fit check, $/h, HPA warning)"),
    ("r", "Endpoints: redeploy (rolling restart, or a new image tag)"),
    ("s", "Pools (p): scale a node pool (new desired, $/h, jobs it unblocks, nodes that go)"),
    ("n", "Jobs: launch a training job (gang placement, or why not and what capacity would fix it)"),
    ("", "every action: plan first, confirm (typed name when destructive), progress, audit"),
]


class HelpScreen(ModalScreen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape,q,question_mark", "app.pop_screen", "Close")]

    DEFAULT_CSS = """
    HelpScreen { align: center middle; }
    HelpScreen > VerticalScroll {
        width: 90%; max-width: 96; height: 90%; border: thick $accent; background: $surface; padding: 0 1;
    }
    """

    def __init__(self, *, read_only: bool) -> None:
        super().__init__()
        self._read_only = read_only

    def compose(self) -> ComposeResult:
        with VerticalScroll():
            yield Static(self._content())

    def _content(self) -> Group:
        keys = Table.grid(padding=(0, 2))
        keys.add_column(style="bold cyan", no_wrap=True)
        keys.add_column()
        for k, what in GENERAL:
            keys.add_row(k, what)
        acts = Table.grid(padding=(0, 2))
        acts.add_column(style="bold cyan", no_wrap=True)
        acts.add_column()
        if self._read_only:
            acts.add_row("", "read-only mode: no actions")
        for k, what in ACTIONS if not self._read_only else []:
            acts.add_row(k, what)
        sorts = Table.grid(padding=(0, 2))
        sorts.add_column(style="bold", no_wrap=True)
        sorts.add_column()
        for kind in (*KINDS.values(), *VIEWS.values()):
            letters = "  ".join(f"{c.hotkey} {c.title.lower()}" for c in kind.columns if c.hotkey)
            sorts.add_row(kind.title, letters)
        return Group(
            Text("aios-tui keys", "bold underline"),
            keys,
            Text(""),
            Text("Actions", "bold underline"),
            acts,
            Text(""),
            Text("Sort letters (shift+letter)", "bold underline"),
            sorts,
        )
