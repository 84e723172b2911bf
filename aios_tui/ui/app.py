"""The Textual application: holds the live snapshot, routes requests to ``ops`` and shows the results.

The app never computes a placement or calls an SDK: it shows snapshots from the poller and plans from
``ops``, and asks ``ops`` to act. Every action it offers — keys, ``:`` commands, the palette — comes from the
action registry (:func:`aios_tui.ops.all_actions`); every key and paste passes the :class:`KeyGate`, so a key
typed ahead reaches only what the keys before it opened.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import shlex
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from rich.console import RenderableType
from textual import events
from textual._compositor import ChopsUpdate
from textual.app import App, SystemCommand
from textual.binding import Binding, BindingType
from textual.filter import LineFilter
from textual.reactive import reactive
from textual.screen import Screen

from aios_tui.config import Settings
from aios_tui.domain import Event, FleetSnapshot, JobState, Pod, SourceState, clock
from aios_tui.ops import ArgError, CancelToken, Kind, Ops, Plan, all_actions, lookup
from aios_tui.ops.actions.launch import values_like
from aios_tui.ops.actions.scale_pool import pool_fix
from aios_tui.ops.argv import parse_words
from aios_tui.poll import Poller
from aios_tui.render import kinds
from aios_tui.render.kinds import PANES, REGISTRY
from aios_tui.render.triage import describe, owner_kind
from aios_tui.ui import forms
from aios_tui.ui.commands import APP_COMMANDS
from aios_tui.ui.keys import KeyGate
from aios_tui.ui.messages import ActionRequested, CommandEntered, FleetUpdated, OpenDetail
from aios_tui.ui.screens.acting import ScreenContext
from aios_tui.ui.screens.actions import ActionLogScreen
from aios_tui.ui.screens.detail import DetailScreen
from aios_tui.ui.screens.help import HelpScreen
from aios_tui.ui.screens.main import MainScreen
from aios_tui.ui.screens.plan import Confirmed
from aios_tui.ui.screens.triage import (
    DETAIL_KINDS,
    EventsScreen,
    LogScreen,
    PodsScreen,
    QuitScreen,
    TextScreen,
    parse_since,
)
from aios_tui.ui.screens.views import (
    CapacityScreen,
    CordonScreen,
    IdleScreen,
    PoolsScreen,
    SourcesScreen,
    ViewScreen,
)
from aios_tui.ui.terminal import CroppedChops, terminal_filters
from aios_tui.ui.widgets.header import FleetHeader

PERMISSION_WAIT_S = 2.0
"""How long a key press waits for an access review that has not answered (a real kube-apiserver answers one
in milliseconds) before it says "checking permissions…" instead of opening a plan."""
_COMMAND_ALIASES = {
    "q": "quit",
    "q!": "quit",
    "exit": "quit",
    "?": "help",
    "log": "audit",
    "actions": "audit",
}


@dataclass
class Running:
    """An action under way: what it is, and how to stop it between two steps."""

    plan: Plan[Any]
    cancel: CancelToken


LOW_BANDWIDTH_REPAINT_S = 10.0
"""``--low-bandwidth``: the panes show data at most this old (``ctrl+r`` repaints at once)."""


YOUNG_COLLECTION = 10_000
"""Allocations between two collections of the youngest generation once the console runs (Python's default:
700). A refresh at 5,000 nodes allocates tens of thousands of objects (readings, rows, segments) that
reference counting frees within the tick; collected every 700, the survivors of the moment were scanned
eight times a second: 139 ms of collection per 30 s idle at 5,000 nodes (0.46 % of a core), 55 ms with
this (docs/benchmarks.md). Cycles are still collected, the oldest generation every few minutes."""


class AiosApp(App[None]):
    TITLE = "aios-tui"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("question_mark", "help", "Help"),
        Binding("a", "action_log", "Actions"),
        Binding("i", "view('idle')", "Idle GPUs", show=False),
        Binding("h", "view('cordon')", "Health", show=False),
        Binding("p", "view('pools')", "Pools", show=False),
        Binding("f", "view('capacity')", "Free capacity", show=False),
        Binding("e", "view('sources')", "Sources", show=False),
        Binding("v", "view('events')", "Events", show=False),
        Binding("V", "recent_events", "Last 15 min", show=False),
        Binding("l", "logs", "Logs", show=False),
        Binding("y", "yaml", "YAML", show=False),
        Binding("d", "describe", "Describe", show=False),
        Binding("Y", "copy_name", "Copy name", show=False),
        Binding("ctrl+c", "quit_asking", "Quit", show=False, priority=True),
        Binding("x", "cancel_action", "Stop action"),
        Binding("ctrl+r", "refresh", "Refresh", show=False),
        Binding("q", "quit", "Quit"),
    ]

    fleet: reactive[FleetSnapshot | None] = reactive(None, always_update=True, init=False, repaint=False)
    """The live snapshot. Setting it repaints nothing by itself (a reactive repaints the whole screen by
    default: 85 % of the bytes sent were lines the terminal already showed); each widget refreshes what
    changed."""

    def __init__(
        self,
        poller: Poller,
        ops: Ops,
        settings: Settings | None = None,
        *,
        live: bool = True,
        clock: Callable[[], float] = clock.now,
        owns_poller: bool = True,
        who: Callable[[], Sequence[str]] | None = None,
    ) -> None:
        super().__init__()
        self.poller = poller
        self.owns_poller = owns_poller
        """False: the poller is shared and its owner starts and stops it (``aios-tui serve``: one poller,
        a console per SSH session); the app only follows its updates, and leaves the process's garbage
        collector alone (other consoles live in the same process)."""
        self.who = who
        """``aios-tui serve``: the sessions on the same server, a line each, read when ``:who`` opens (who is
        connected, with what role, whom they follow, what they are running). The server keeps the sessions;
        the app only reads this. None: a console of its own."""
        self.ops = ops
        self.settings = settings or Settings()
        self.live = live
        self.clock = clock
        self.keys = KeyGate(self)
        self.screen_context = ScreenContext(lambda: self.fleet, self.clock, self.can_act, self.key_state)
        """What screens may ask of the app without importing it."""
        self.progress_messages: deque[str] = deque(maxlen=500)
        """What running actions reported, newest last (the progress line shows the latest)."""
        self.running: list[Running] = []
        """Actions under way, oldest first (``x`` stops the newest)."""
        self._key_states: tuple[bool | None, ...] = ()
        self._repaint_now = asyncio.Event()
        """``ctrl+r`` was pressed: paint the next snapshot without waiting out the repaint interval."""
        if self.settings.theme in self.available_themes:
            self.theme = self.settings.theme
        self._terminal_filters = terminal_filters(ascii=self.settings.ascii, no_color=self.no_color)

    def _display(self, screen: Screen[Any], renderable: RenderableType | None) -> None:
        """Partial repaints write only the spans that changed (:class:`CroppedChops`)."""
        if type(renderable) is ChopsUpdate:
            renderable = CroppedChops.of(renderable)
        super()._display(screen, renderable)

    def get_line_filters(self) -> Sequence[LineFilter]:
        """Ours (ASCII only, alarms without colour), then Textual's (colours grey under NO_COLOR)."""
        return [*self._terminal_filters, *super().get_line_filters()]

    def get_key_display(self, binding: Binding) -> str:
        """In ASCII mode a key's name where Textual draws a sign: ``enter``, not ``⏎``."""
        shown = super().get_key_display(binding)
        return binding.key if self.settings.ascii and not shown.isascii() else shown

    # --- lifecycle --------------------------------------------------------------------------------------

    def get_default_screen(self) -> Screen[None]:
        return MainScreen(
            read_only=self.ops.read_only,
            ascii=self.settings.ascii,
            default_pane=self.settings.default_pane,
            snapshot=lambda: self.fleet,
            key_state=self.key_state,
        )

    @property
    def main(self) -> MainScreen:
        screen = self.screen_stack[0]
        assert isinstance(screen, MainScreen)
        return screen

    async def on_event(self, event: events.Event) -> None:
        # Keys and pastes from the terminal go through the gate; keys bubbling back from widgets do not.
        if isinstance(event, events.Key | events.Paste) and not event.is_forwarded:
            if isinstance(event, events.Key):
                self.app_focus = True
            await self.keys.route(event)
            return
        await super().on_event(event)

    def on_mount(self) -> None:
        self.run_worker(self._follow(), name="poll", group="poll", exclusive=True, exit_on_error=False)
        self.run_worker(self._report_unfinished(), name="unfinished", exit_on_error=False)
        if self.live:
            self.set_interval(1.0, self._tick)

    def _tick(self) -> None:
        """Every second: the header's clock and stale ages, and the sources view's ages, move on even
        when no snapshot comes (a hung source)."""
        now = self.clock()
        for screen in self.screen_stack:
            for header in screen.query(FleetHeader):
                header.tick(now)
            if screen is self.screen and isinstance(screen, SourcesScreen):
                screen.tick(now)

    async def _report_unfinished(self) -> None:
        """Actions a killed console left half done: said once, and kept in the action log."""
        for sentence in await asyncio.to_thread(self.ops.unfinished):
            self.progress_messages.append(sentence)
            self.notify(sentence, title="Interrupted action", severity="warning", timeout=30)

    @property
    def low_bandwidth(self) -> bool:
        """For a slow or metered link (``--low-bandwidth``): panes repainted at most every
        ``LOW_BANDWIDTH_REPAINT_S``, the header's clock in minutes."""
        return self.settings.low_bandwidth

    @property
    def repaint_interval(self) -> float:
        """Seconds at least between two repaints from new snapshots."""
        interval = self.settings.refresh_interval
        return max(interval, LOW_BANDWIDTH_REPAINT_S) if self.low_bandwidth else interval

    async def _follow(self) -> None:
        if not self.live:
            self.post_message(FleetUpdated(await self.poller.refresh()))
            return
        if self.owns_poller:
            self.poller.start()
        elif any(s.state is not SourceState.STARTING for s in self.poller.snapshot.sources):
            self.post_message(FleetUpdated(self.poller.snapshot))  # what the shared poller has already
        try:
            async for snapshot in self.poller.updates():
                self.post_message(FleetUpdated(snapshot))
                # Repaint at most once per interval (updates() hands over only the newest snapshot), sooner
                # when the operator asks (``ctrl+r``).
                self._repaint_now.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._repaint_now.wait(), self.repaint_interval)
        finally:
            if self.owns_poller:
                await self.poller.stop()

    def on_fleet_updated(self, message: FleetUpdated) -> None:
        first = self.fleet is None
        self.fleet = message.snapshot
        if first and self.owns_poller:
            # What exists now (the app, the sources' state, the first snapshot) lives for the whole run:
            # move it out of the cyclic collector's reach, so that full collections stop rescanning it
            # (at 5,000 nodes they paused ticks by ~100 ms; see docs/benchmarks.md). Refcounting still
            # frees these objects when they go. The collector comes back on (``cli.run_console`` keeps it
            # off until this first snapshot), its youngest generation collected every YOUNG_COLLECTION
            # allocations rather than Python's 700.
            gc.freeze()
            gc.set_threshold(YOUNG_COLLECTION, *gc.get_threshold()[1:])
            gc.enable()

    def watch_fleet(self, snapshot: FleetSnapshot | None) -> None:
        if snapshot is None:
            return
        now = self.clock()
        self._refresh_keys()
        with self.batch_update():
            self.main.update_snapshot(snapshot, now)
            for screen in self.screen_stack[1:]:
                # A view stays current under a plan opened from it, for when the plan closes.
                if isinstance(screen, ViewScreen) or (
                    screen is self.screen and isinstance(screen, DetailScreen)
                ):
                    screen.update_snapshot(snapshot, now)

    async def action_refresh(self) -> None:
        if self.live:
            self.poller.poke()
            self._repaint_now.set()
        else:
            self.fleet = await self.poller.refresh()

    # --- navigation -------------------------------------------------------------------------------------

    def open_detail(self, kind: str, key: str, trail: tuple[str, ...] = ()) -> None:
        """Push the detail screen of one object; ``trail`` is the breadcrumb of the way there."""
        if self.fleet is None:
            return
        self.push_screen(
            DetailScreen(
                kind,
                key,
                self.fleet,
                self.clock(),
                self._history,
                ascii=self.settings.ascii,
                trail=trail,
                grafana=self.settings.grafana,
                key_state=self.key_state,
            )
        )

    def on_open_detail(self, message: OpenDetail) -> None:
        self.open_detail(message.kind, message.key, message.trail)

    def on_action_requested(self, message: ActionRequested) -> None:
        snap = self.fleet
        job = snap.job_by_key.get(message.like) if snap is not None and message.like else None
        if snap is None or job is None or job.state not in (JobState.QUEUED, JobState.FAILED):
            self.start_action(message.action, message.targets)
        elif message.action == "launch":
            self.start_action("launch", (), values_like(job, snap))
        elif message.action == "scale-pool":
            fix = pool_fix(job, snap)
            if fix is None:
                self.notify(f"{job.key}: no node pool would fit it (see Why pending)", severity="warning")
            else:
                self.start_action("scale-pool", (fix[0],), {"desired": f"+{fix[1]}"})

    def on_command_entered(self, message: CommandEntered) -> None:
        self.run_command(message.line)

    def _history(self, kind: str, key: str, metric: str) -> Sequence[float]:
        return self.poller.history(kind, key, metric)

    def _progress(self, message: str) -> None:
        """A running action's step: on the progress line; waits and failures also as notifications."""
        self.progress_messages.append(message)
        self.main.show_progress(message, stoppable=bool(self.running))
        if "waiting" in message or "failed" in message:
            self.notify(message, severity="warning", timeout=8)

    def _reload_action_log(self) -> None:
        if isinstance(self.screen, ActionLogScreen):
            self.screen.reload()

    def action_action_log(self) -> None:
        if not isinstance(self.screen, ActionLogScreen):
            self.push_screen(ActionLogScreen(self.ops.audit))

    def action_view(self, name: str) -> None:
        """``i`` / ``:idle``: the allocated-but-idle GPUs; ``h`` / ``:health``: node health; ``p`` /
        ``:pools``: the node pools. The same key again (or esc) goes back."""
        screens: dict[str, type[ViewScreen]] = {
            "idle": IdleScreen,
            "pools": PoolsScreen,
            "capacity": CapacityScreen,
            "sources": SourcesScreen,
            "pods": PodsScreen,
            "events": EventsScreen,
        }
        screen_type = screens.get(name, CordonScreen)
        if isinstance(self.screen, screen_type) or not isinstance(
            self.screen, (MainScreen, ViewScreen, DetailScreen, LogScreen, TextScreen)
        ):
            return
        while isinstance(self.screen, (ViewScreen, DetailScreen, LogScreen, TextScreen)):
            self.pop_screen()
        if screen_type is EventsScreen:
            self.push_screen(
                EventsScreen(
                    read_only=self.ops.read_only,
                    ascii=self.settings.ascii,
                    audit=lambda: self.ops.audit.records(limit=500),
                    context=self.screen_context,
                )
            )
        else:
            self.push_screen(
                screen_type(
                    read_only=self.ops.read_only, ascii=self.settings.ascii, context=self.screen_context
                )
            )

    def action_recent_events(self) -> None:
        """``V``: what changed in the last 15 minutes (the events view, that window only)."""
        self.action_view("events")
        if isinstance(self.screen, EventsScreen):
            self.screen.set_since(EventsScreen.RECENT_S)

    def action_help(self) -> None:
        self.push_screen(HelpScreen(read_only=self.ops.read_only, allowed=self.can_act, why=self.ops.check))

    # --- the object under the cursor: logs, YAML, describe, copy ---------------------------------------

    def cursor_ref(self, *, own: bool = False) -> tuple[str, str] | None:
        """(kind, key) of the object under the cursor: a pane's or view's row, a detail screen's highlighted
        related row (``own``: the detail screen's own object)."""
        screen = self.screen
        if isinstance(screen, DetailScreen):
            row = None if own else screen.highlighted
            return (row.kind, row.key) if row is not None else (screen.kind, screen.key)
        if isinstance(screen, MainScreen):
            table = screen.table()
            key = table.cursor_key
            return (PANES[screen.active].detail, key) if key is not None else None
        if isinstance(screen, ViewScreen):
            row = screen.table.cursor_object
            if isinstance(row, Event):
                return (row.kind, row.key)
            key = screen.table.cursor_key
            return (screen.table.kind.detail, key) if key is not None else None
        return None

    def _log_pods(self, kind: str, key: str) -> tuple[Sequence[Pod], int]:
        """The pods ``l`` offers for an object, and which to show first: a pod among its owner's others, an
        endpoint's replicas (ready first), a job's ranks (rank 0), a GPU's pod, a node's pods."""
        snap = self.fleet
        if snap is None:
            return (), 0
        pods = self.ops.pods_of(kind, key)
        if kind in ("pod", "gpu") and len(pods) == 1:
            pod = pods[0]
            owner = owner_kind(snap, pod.owner)
            siblings = self.ops.pods_of(owner, pod.owner) if owner else ()
            if pod in siblings:
                return siblings, siblings.index(pod)
        return pods, 0

    def action_logs(self) -> None:
        """``l``: the log of the pod under the cursor (an endpoint's first replica, a job's rank 0)."""
        ref = self.cursor_ref()
        if isinstance(self.screen, DetailScreen) and ref is not None and ref[0] not in ("pod", "gpu"):
            ref = self.cursor_ref(own=True)
        if ref is None or isinstance(self.screen, LogScreen):
            return
        pods, index = self._log_pods(*ref)
        if not pods:
            self.notify(f"{ref[0]} {ref[1]} has no pod to show the log of", severity="warning", timeout=4)
            return
        self.push_screen(
            LogScreen(
                pods,
                lambda p, container, previous, tail: self.ops.read_log(p.key, container, previous, tail),
                lambda p, container, tail: self.ops.follow_log(p.key, container, tail),
                index=index,
            )
        )

    def action_yaml(self) -> None:
        """``y``: the object as its source holds it (Kubernetes: YAML), read in a worker."""
        ref = self._inspectable()
        if ref is None or self.fleet is None:
            return
        kind, key = ref
        self.push_screen(TextScreen(f"YAML {kind} {key}", read=lambda: self.ops.read_object(kind, key)))

    def action_describe(self) -> None:
        """``d``: a describe-style summary of the object under the cursor: what it is, its state, its
        events."""
        ref = self._inspectable()
        if ref is None or self.fleet is None:
            return
        kind, key = ref
        self.push_screen(TextScreen(f"Describe {kind} {key}", describe(kind, key, self.fleet, self.clock())))

    def _inspectable(self) -> tuple[str, str] | None:
        """The object under the cursor for ``y`` and ``d``: a node, GPU, pod, job or endpoint."""
        if isinstance(self.screen, TextScreen | LogScreen):
            return None
        ref = self.cursor_ref(own=True)
        if ref is not None and ref[0] not in DETAIL_KINDS:
            self.notify("y and d show nodes, GPUs, pods, jobs and endpoints", severity="warning", timeout=4)
            return None
        return ref

    def action_copy_name(self) -> None:
        """``Y``: copy the name under the cursor to the clipboard (OSC 52, through the terminal)."""
        ref = self.cursor_ref()
        if ref is None:
            return
        self.copy_to_clipboard(ref[1])
        self.notify(f"copied {ref[1]}", timeout=3)

    def action_quit_asking(self) -> None:
        """ctrl+c: quit; while an action runs, ask first."""
        if not self.running:
            self.exit()
        elif not isinstance(self.screen, QuitScreen):
            self.push_screen(
                QuitScreen([r.plan.title for r in self.running]), lambda yes: self.exit() if yes else None
            )

    def _contexts(self) -> None:
        """``:ctx``: every source with its context and state, and which context the console watches."""
        snap = self.fleet
        if snap is None:
            self.notify("context: …", timeout=4)
            return
        lines = [f"watching {snap.context or 'the embedded fleet'}"]
        lines += [
            f"{'*' if snap.context and snap.context in s.name else ' '} {s.name} ({s.kind}): {s.state}"
            for s in snap.sources
        ]
        self.notify("\n".join(lines), title="Contexts", timeout=8)

    def _who(self) -> None:
        """``:who``: who is connected to the same ``aios-tui serve``, and who is acting."""
        if self.who is None:
            self.notify(":who lists the sessions of a console served over SSH (aios-tui serve)", timeout=4)
            return
        self.push_screen(TextScreen("Who is connected", "\n".join(self.who())))

    # --- command mode -----------------------------------------------------------------------------------

    def run_command(self, line: str) -> None:
        """``:`` command mode: a pane or view, an app command, or an action with the CLI's arguments."""
        try:
            words = shlex.split(line.strip().lstrip(":"))
        except ValueError as exc:  # an unclosed quote
            self.notify(f"cannot read {line!r}: {exc}", severity="warning")
            return
        if not words:
            return
        cmd, args = words[0].lower(), words[1:]
        cmd = _COMMAND_ALIASES.get(cmd, cmd)
        entry = kinds.lookup(cmd)
        if entry is not None and not entry.pane:
            self.action_view(entry.name)
            since = parse_since(args[0]) if args and entry.name == "events" else None
            if since is not None and isinstance(self.screen, EventsScreen):
                self.screen.set_since(since)
                args = args[1:]
            if args and isinstance(self.screen, ViewScreen):
                self.screen.table.set_filter(" ".join(args))
        elif entry is not None:
            while isinstance(self.screen, (ViewScreen, DetailScreen, LogScreen, TextScreen)):
                self.pop_screen()
            self.main.show_pane(entry.name)
            if args:
                self.main.set_filter(" ".join(args))
        elif cmd == "quit":
            self.exit()
        elif cmd == "help":
            self.action_help()
        elif cmd == "audit":
            self.action_action_log()
        elif cmd == "refresh":
            self.run_worker(self.action_refresh())
        elif cmd == "filter":
            self.main.set_filter(" ".join(args))
        elif cmd == "sort":
            self._sort_command(args)
        elif cmd == "theme":
            self._theme_command(args)
        elif cmd in ("ctx", "context", "contexts"):
            self._contexts()
        elif cmd == "who":
            self._who()
        elif (action := lookup(cmd)) is not None:
            self._action_command(action.name, args)
        else:
            known = [e.name if e.name != "cordon" else "health" for e in REGISTRY] + [*APP_COMMANDS]
            known += [a.name for a in all_actions()]
            self.notify(
                f"unknown command {cmd!r}: try {', '.join(':' + k for k in known)} (? lists them)",
                severity="warning",
            )

    def _sort_command(self, args: Sequence[str]) -> None:
        table = self.screen.table if isinstance(self.screen, ViewScreen) else self.main.table()
        names = ", ".join(c.key for c in table.kind.columns if c.sort)
        if not args:
            self.notify(f":sort COLUMN: sort {table.kind.title} by one of {names}", severity="warning")
            return
        col = next((c for c in table.kind.columns if args[0].lower() in (c.key, c.title.lower())), None)
        if col is None or col.sort is None:
            self.notify(f"{table.kind.title} cannot sort by {args[0]!r}; try {names}", severity="warning")
        else:
            table.sort_by(col.key)

    def _theme_command(self, args: Sequence[str]) -> None:
        themes = ", ".join(sorted(self.available_themes))
        if not args:
            self.notify(f":theme NAME: one of {themes} (now {self.theme})", severity="warning")
        elif args[0] in self.available_themes:
            self.theme = args[0]
        else:
            self.notify(f"no theme {args[0]!r}; try {themes}", severity="warning")

    def _action_command(self, name: str, words: Sequence[str]) -> None:
        """``:scale ml/chat +2``, ``:drain`` (the marked nodes), ``:launch --workers 2``: the action's plan
        screen with the fields filled in; nothing runs before it is confirmed there."""
        action = lookup(name)
        assert action is not None
        try:
            values = parse_words(action, words)
        except ArgError as exc:
            self.notify(str(exc), title=f":{name}", severity="warning", timeout=8)
            return
        param = action.target_param
        targets: Sequence[str] = ()
        if param is not None:
            given = values.pop(param.name, None)
            if given:
                targets = tuple(given) if isinstance(given, list) else (str(given),)
            else:
                targets = self._selection_for(action.name)
            if not targets:
                self.notify(f"usage: :{action.usage}", title=f":{name}", severity="warning", timeout=8)
                return
        self.start_action(name, targets, values)

    def _selection_for(self, name: str) -> Sequence[str]:
        """The targets the screen on top offers for ``name`` (marked rows, or the row under the cursor)."""
        screen = self.screen
        offer = getattr(screen, "targets_for", None)
        return offer(name) if callable(offer) else ()

    def get_system_commands(self, screen: Screen[object]) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        for i, kind in enumerate(PANES.values(), start=1):
            yield SystemCommand(
                f"Show {kind.title}",
                f"Switch to the {kind.title} pane (key {i})",
                lambda name=kind.name: self.run_command(name),
            )
        yield SystemCommand(
            "Idle GPUs",
            "Allocated GPUs under 5% for the idle window, with their cost per hour (i, :idle)",
            lambda: self.action_view("idle"),
        )
        yield SystemCommand(
            "Node health",
            "Each node's verdict (watch, drain, reset, reboot, RMA) after NVIDIA's guidance; cordon or drain "
            "from there (h, :health)",
            lambda: self.action_view("cordon"),
        )
        yield SystemCommand(
            "Node pools",
            "Node pools: size, limits, $/h, queued jobs that fit; scale one from there (p, :pools)",
            lambda: self.action_view("pools"),
        )
        yield SystemCommand(
            "Pods",
            "Every pod: owner, node, GPUs, phase and why, restarts, age; enter opens one (:pods)",
            lambda: self.action_view("pods"),
        )
        yield SystemCommand(
            "Events",
            "Warnings first, newest first, audited actions too; w warnings only, m last 15 min (v, :events)",
            lambda: self.action_view("events"),
        )
        yield SystemCommand(
            "What changed in the last 15 minutes",
            "The events of the last 15 minutes (V)",
            self.action_recent_events,
        )
        yield SystemCommand(
            "Sources",
            "Each source and its hosts: state, last good reading, the last error in words (e, :sources)",
            lambda: self.action_view("sources"),
        )
        yield SystemCommand(
            "Refresh now", "Fetch every source now (ctrl+r)", lambda: self.run_command("refresh")
        )
        yield SystemCommand("Keys and commands", "Show the help screen (?)", self.action_help)
        yield SystemCommand(
            "Action log", "What was done, by whom, with what outcome (a)", self.action_action_log
        )
        yield from self._action_commands(screen)

    def _action_commands(self, screen: Screen[object]) -> Iterable[SystemCommand]:
        """One palette entry per action and target that makes sense now, from the registry."""
        snap = self.fleet
        if snap is None:
            return
        for action in all_actions():
            if not self.can_act(action.name):
                continue
            key = f" ({action.key})" if action.key else ""
            if action.target is None:
                if self.ops.check(action.name) is None:  # what RBAC denies is not offered
                    yield SystemCommand(
                        action.label, f"{action.summary}{key}", self._starter(action.name, ())
                    )
                continue
            names: Sequence[str]
            if action.target is Kind.ENDPOINT:
                names = [e.key for e in snap.endpoints[:200]]
            elif action.target is Kind.POOL:
                names = [p.name for p in snap.pools[:200]]
            else:
                names = list(self.main.table("nodes").targets())
                names += [s.node for s in _suggestions(snap) if s.node not in names][:20]
            for name in names:
                if self.ops.check(action.name, (name,)) is not None:
                    continue
                yield SystemCommand(
                    f"{action.label} {name}", f"{action.summary}{key}", self._starter(action.name, (name,))
                )

    def _starter(self, name: str, targets: Sequence[str]) -> Callable[[], None]:
        return lambda: self.start_action(name, targets)

    # --- actions ----------------------------------------------------------------------------------------

    def can_act(self, action: str) -> bool:
        """Whether to offer the action at all: read-only mode and the role hide it."""
        return self.ops.allowed(action) is None

    def key_state(self, action: str, targets: Sequence[str] = ()) -> bool | None:
        """How a screen's footer shows the action's key (Textual's ``check_action``): False hides it
        (read-only mode, the role), None dims it (the source refuses: RBAC as its access reviews answered, a
        read-only cluster; pressing it says why), True offers it (allowed, or still being checked)."""
        if not self.can_act(action):
            return False
        return None if self.ops.check(action, targets or None) is not None else True

    def _refresh_keys(self) -> None:
        """Redraw the footer when what the screen's keys may do changed (an access review answered)."""
        offer = getattr(self.screen, "targets_for", None)
        states = tuple(
            self.key_state(a.name, offer(a.name) if callable(offer) else ()) for a in all_actions() if a.key
        )
        if states != self._key_states:
            self._key_states = states
            self.refresh_bindings()

    def explain_key(self, key: str) -> bool:
        """A key whose action is dimmed here was pressed: say why, without opening a plan; True when it was
        one."""
        active = self.screen.active_bindings.get(key)
        if active is None or active.enabled or not active.binding.action.startswith("act("):
            return False
        name = active.binding.action[len("act('") : -len("')")]
        offer = getattr(self.screen, "targets_for", None)
        targets: Sequence[str] = offer(name) if callable(offer) else ()
        reason = self.ops.check(name, targets or None)
        if reason is None:
            return False
        self._refused(name, targets, reason)
        return True

    def on_key(self, event: events.Key) -> None:
        if self.explain_key(event.key):
            event.stop()

    def _refused(self, name: str, targets: Sequence[str], reason: str) -> None:
        self.notify(reason, title=f"{name.capitalize()} not allowed", severity="error")
        self.run_worker(
            asyncio.to_thread(self.ops.refuse_request, name, " ".join(targets), reason),
            group="audit",
            exit_on_error=False,
        )

    def start_action(
        self, name: str, targets: Sequence[str] = (), values: Mapping[str, Any] | None = None
    ) -> None:
        """Open the plan screen of action ``name`` on ``targets`` with ``values`` typed in its fields,
        unless ``ops`` refuses it now (read-only, role, the source's own refusal): then say why, audited."""
        if self.ops.pending(name, targets or None):
            # Its source's access reviews have not answered: wait a moment for them, never guess.
            self.run_worker(self._when_checked(name, targets, values), group="permissions", exclusive=True)
            return
        reason = self.ops.check(name, targets or None)
        if reason is not None:
            self._refused(name, targets, reason)
            return
        if self.fleet is None:
            return
        try:
            screen = forms.plan_screen(self.ops, name, targets, values or {})
        except (LookupError, ArgError) as exc:
            self.notify(str(exc).strip("'\""), severity="error")
            return
        self.push_screen(screen, self._confirmed)

    async def _when_checked(
        self, name: str, targets: Sequence[str], values: Mapping[str, Any] | None
    ) -> None:
        """Start the action once its permission is known, if that is within :data:`PERMISSION_WAIT_S`; else
        say that it is still being checked (pressing again later works)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + PERMISSION_WAIT_S
        while loop.time() < deadline:
            if not self.ops.pending(name, targets or None):
                self.start_action(name, targets, values)
                return
            await asyncio.sleep(0.05)
        waiting = ", ".join(self.ops.pending(name, targets or None)) or "the source"
        self.notify(
            f"checking permissions… ({waiting} has not answered its access review yet: nothing was opened; "
            "try again in a moment)",
            title=f"{name.capitalize()}: not yet",
            severity="warning",
        )

    def _confirmed(self, confirmed: Confirmed | None) -> None:
        if confirmed is not None:
            self.run_worker(self._execute(confirmed), group="actions", exit_on_error=False)

    def action_cancel_action(self) -> None:
        """``x``: stop the newest running action after its current step (it says what was done)."""
        if not self.running:
            self.notify("No action is running.", timeout=3)
            return
        running = self.running[-1]
        running.cancel.cancel(self.ops.actor.user)
        self._progress(f"{running.plan.title}: stopping after the current step …")

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "cancel_action":
            return bool(self.running)
        return True

    async def _execute(self, confirmed: Confirmed) -> None:
        plan = confirmed.plan
        running = Running(plan, CancelToken())
        self.running.append(running)
        self.refresh_bindings()
        self._progress(f"{plan.title} …")
        try:
            result = await self.ops.execute(
                plan, confirmation=confirmed.confirmation, progress=self._progress, cancel=running.cancel
            )
        except Exception as exc:  # refusals and failures are reported, never crash the console
            self.notify(
                str(exc) or type(exc).__name__, title=f"{plan.action} failed", severity="error", timeout=10
            )
            self._reload_action_log()
            return
        finally:
            self.running.remove(running)
            self.refresh_bindings()
            if not self.running:
                self.main.show_progress(None)
        self.notify(
            result.message,
            title=plan.title,
            severity="information" if result.ok else "warning" if result.cancelled else "error",
            timeout=6 if result.ok else 12,
        )
        self._reload_action_log()
        if plan.action in ("drain", "cordon", "uncordon"):
            self.main.table("nodes").clear_marks()
        if not self.live:
            self.fleet = await self.poller.refresh()


def _suggestions(snap: FleetSnapshot) -> list[Any]:
    from aios_tui.ops import suggest_cordons

    return list(suggest_cordons(snap))
