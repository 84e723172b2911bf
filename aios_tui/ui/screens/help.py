"""``?``: every key and command, including the sort letters of each pane. The actions' part is made from the
action registry: key, where it works, its ``:`` command, what it does and who may."""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar

from rich.console import Group
from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from aios_tui.ops import all_actions
from aios_tui.render.kinds import REGISTRY

GENERAL = [
    ("1 2 3 4", "Nodes, GPUs, Jobs, Endpoints"),
    ("tab / shift+tab", "next / previous pane"),
    ("↑ ↓ j k, pgup pgdn, g G", "move"),
    ("enter", "details with history, the object's events and related objects; enter on one opens it"),
    ("esc", "back one step (a detail screen's breadcrumb shows the way: Endpoints › ml-prod/chat › pod …)"),
    ("/", "filter the pane (words must all match, !word excludes; esc clears)"),
    (
        ":",
        "command mode: :nodes :gpus :jobs :endpoints :pods (:po) :events [15m] :idle :health :pools :free "
        ":ctx :sort COL :theme NAME :audit :who (under aios-tui serve) :q, "
        "and every action below with the CLI's arguments (tab completes)",
    ),
    ("i", "allocated-but-idle GPUs: under 5% for the idle window, owner, idle for, $/h (:idle)"),
    ("h", "node health: verdict (watch … RMA), why, what it hits, who cordoned; c cordon, D drain (:health)"),
    ("p", "node pools: nodes/desired, min–max, zones, $/h, queued jobs that fit; s scales one (:pools)"),
    (
        "f",
        "free capacity per zone, rack and pool: free GPUs, whole free nodes, 1/2/4/8-GPU slots, the share "
        "the next request cannot use, blocked nodes; enter shows the nodes (:free)",
    ),
    (
        "v",
        "events: warnings first, newest first, audited actions too; w warnings only, m last 15 min (:events)",
    ),
    ("V", "what changed in the last 15 minutes (:events 15m)"),
    (
        "l",
        "logs of the pod under the cursor (an endpoint's first replica, a job's rank 0): f follow, "
        "p previous container, c next container, o another replica or rank, / filter",
    ),
    ("y", "the object as YAML, as its source holds it"),
    ("d", "describe: what the object is, its state and its events (drain moved to D)"),
    ("Y", "copy the name under the cursor to the clipboard (OSC 52)"),
    ("shift+letter", "sort by that column; again to reverse (letters below)"),
    ("z", "zoom the pane (wide layout)"),
    ("a", "action log: every action taken, by whom, and its outcome (:audit)"),
    ("x", "stop the running action after its current step (it says what was done)"),
    ("ctrl+r", "refresh now"),
    ("ctrl+p", "command palette"),
    ("?", "this help"),
    ("q, ctrl+c", "quit (ctrl+c asks first while an action runs)"),
]

PANE_NAMES = {"nodes": "Nodes", "jobs": "Jobs", "endpoints": "Endpoints", "pools": "Pools (p)"}
PANE_NAMES |= {"cordon": "Health (h)"}
PANE_NAMES |= {"idle-owners": "Idle GPUs (i)", "job": "a queued job's detail"}


def action_rows(
    allowed: Callable[[str], bool], why: Callable[[str], str | None] = lambda _: None
) -> list[tuple[str, str]]:
    """One row per registered action the session may run: ``s`` → "Endpoints: set an endpoint's replicas …
    (:scale ENDPOINT REPLICAS; operator)", and where its source refuses it (``why``: RBAC), the reason:
    "… — not allowed: you may not cordon nodes in k8s:rig: RBAC denies patch on nodes"."""
    rows = [("space", "mark a row; actions on nodes apply to every marked node (esc clears the marks)")]
    for action in all_actions():
        if not allowed(action.name):
            continue
        where = ", ".join(PANE_NAMES.get(p, p) for p in action.panes)
        role = str(action.min_role) + (
            f", {action.min_role_many} for several" if action.min_role_many else ""
        )
        role += f", {action.min_role_shrink} to shrink" if action.min_role_shrink else ""
        denied = why(action.name)
        not_now = f" — not allowed: {denied}" if denied else ""
        rows.append((action.key or "", f"{where}: {action.summary} (:{action.usage}; {role}){not_now}"))
    rows.append(("", "every action: plan first, confirm (typed name when destructive), progress, audit"))
    return rows


class HelpScreen(ModalScreen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape,q,question_mark", "app.pop_screen", "Close")]

    DEFAULT_CSS = """
    HelpScreen { align: center middle; }
    HelpScreen > VerticalScroll {
        width: 90%; max-width: 96; height: 90%; border: thick $accent; background: $surface; padding: 0 1;
    }
    """

    def __init__(
        self,
        *,
        read_only: bool,
        allowed: Callable[[str], bool] = lambda _: True,
        why: Callable[[str], str | None] = lambda _: None,
    ) -> None:
        super().__init__()
        self._read_only = read_only
        self._allowed = allowed
        self._why = why

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
        for k, what in action_rows(self._allowed, self._why) if not self._read_only else []:
            acts.add_row(k, what)
        sorts = Table.grid(padding=(0, 2))
        sorts.add_column(style="bold", no_wrap=True)
        sorts.add_column()
        for kind in (e.kind for e in REGISTRY):
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
