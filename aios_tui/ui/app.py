"""The Textual application: holds the live snapshot, routes requests to ``ops`` and shows the results.

The app never computes a placement or calls an SDK: it shows snapshots from the poller and plans from
``ops``, and asks ``ops`` to act.
"""

from __future__ import annotations

import asyncio
import gc
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from typing import ClassVar

from textual.app import App, SystemCommand
from textual.binding import Binding, BindingType
from textual.reactive import reactive
from textual.screen import Screen

from aios_tui.config import Settings
from aios_tui.domain import FleetSnapshot
from aios_tui.ops import Ops, denial
from aios_tui.poll import Poller
from aios_tui.render.table import KINDS, kind_for
from aios_tui.render.views import view_for
from aios_tui.ui import forms
from aios_tui.ui.messages import FleetUpdated
from aios_tui.ui.screens.actions import ActionLogScreen
from aios_tui.ui.screens.detail import DetailScreen
from aios_tui.ui.screens.help import HelpScreen
from aios_tui.ui.screens.main import MainScreen
from aios_tui.ui.screens.plan import Confirmed, PlanScreen
from aios_tui.ui.screens.views import CordonScreen, IdleScreen, PoolsScreen, ViewScreen


class AiosApp(App[None]):
    TITLE = "aios-tui"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("question_mark", "help", "Help"),
        Binding("a", "action_log", "Actions"),
        Binding("i", "view('idle')", "Idle GPUs", show=False),
        Binding("h", "view('cordon')", "Health", show=False),
        Binding("p", "view('pools')", "Pools", show=False),
        Binding("ctrl+r", "refresh", "Refresh", show=False),
        Binding("q", "quit", "Quit"),
    ]

    fleet: reactive[FleetSnapshot | None] = reactive(None, always_update=True, init=False)

    def __init__(
        self,
        poller: Poller,
        ops: Ops,
        settings: Settings | None = None,
        *,
        live: bool = True,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__()
        self.poller = poller
        self.ops = ops
        self.settings = settings or Settings()
        self.live = live
        self.clock = clock
        self.progress_messages: deque[str] = deque(maxlen=500)
        """What running actions reported, newest last (the progress line shows the latest)."""
        if self.settings.theme in self.available_themes:
            self.theme = self.settings.theme

    # --- lifecycle --------------------------------------------------------------------------------------

    def get_default_screen(self) -> Screen[None]:
        return MainScreen(
            read_only=self.ops.read_only, ascii=self.settings.ascii, default_pane=self.settings.default_pane
        )

    @property
    def main(self) -> MainScreen:
        screen = self.screen_stack[0]
        assert isinstance(screen, MainScreen)
        return screen

    def on_mount(self) -> None:
        self.run_worker(self._follow(), name="poll", group="poll", exclusive=True, exit_on_error=False)

    async def _follow(self) -> None:
        if not self.live:
            self.post_message(FleetUpdated(await self.poller.refresh()))
            return
        self.poller.start()
        try:
            async for snapshot in self.poller.updates():
                self.post_message(FleetUpdated(snapshot))
                # Repaint at most once per refresh interval; updates() hands over only the newest snapshot.
                await asyncio.sleep(self.settings.refresh_interval)
        finally:
            await self.poller.stop()

    def on_fleet_updated(self, message: FleetUpdated) -> None:
        first = self.fleet is None
        self.fleet = message.snapshot
        if first:
            # What exists now (the app, the sources' state, the first snapshot) lives for the whole run:
            # move it out of the cyclic collector's reach, so that full collections stop rescanning it
            # (at 5,000 nodes they paused ticks by ~100 ms; see docs/benchmarks.md). Refcounting still
            # frees these objects when they go.
            gc.freeze()

    def watch_fleet(self, snapshot: FleetSnapshot | None) -> None:
        if snapshot is None:
            return
        now = self.clock()
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
        else:
            self.fleet = await self.poller.refresh()

    # --- navigation -------------------------------------------------------------------------------------

    def open_detail(self, kind: str, key: str) -> None:
        if self.fleet is None:
            return
        self.push_screen(
            DetailScreen(kind, key, self.fleet, self.clock(), self._history, ascii=self.settings.ascii)
        )

    def _history(self, kind: str, key: str, metric: str) -> Sequence[float]:
        return self.poller.history(kind, key, metric)

    def _progress(self, message: str) -> None:
        """A running action's step: on the progress line; waits and failures also as notifications."""
        self.progress_messages.append(message)
        self.main.show_progress(message)
        if "waiting" in message or "failed" in message:
            self.notify(message, severity="warning", timeout=8)

    def _reload_action_log(self) -> None:
        if isinstance(self.screen, ActionLogScreen):
            self.screen.reload()

    def action_action_log(self) -> None:
        if not isinstance(self.screen, ActionLogScreen):
            self.push_screen(ActionLogScreen(self.ops.audit))

    def action_view(self, name: str) -> None:
        """``i`` / ``:idle``: the allocated-but-idle GPUs; ``h`` / ``:health``: the nodes to cordon; ``p`` /
        ``:pools``: the node pools. The same key again (or esc) goes back."""
        screen_type: type[ViewScreen] = {"idle": IdleScreen, "pools": PoolsScreen}.get(name, CordonScreen)
        if isinstance(self.screen, screen_type) or not isinstance(
            self.screen, (MainScreen, ViewScreen, DetailScreen)
        ):
            return
        while isinstance(self.screen, (ViewScreen, DetailScreen)):
            self.pop_screen()
        self.push_screen(screen_type(read_only=self.ops.read_only, ascii=self.settings.ascii))

    def action_help(self) -> None:
        self.push_screen(HelpScreen(read_only=self.ops.read_only))

    def run_command(self, line: str) -> None:
        """``:`` command mode."""
        words = line.strip().lstrip(":").split()
        if not words:
            return
        cmd, args = words[0].lower(), words[1:]
        kind = kind_for(cmd)
        view = view_for(cmd)
        if view is not None:
            self.action_view(view.name)
            if args and isinstance(self.screen, ViewScreen):
                self.screen.table.set_filter(" ".join(args))
        elif kind is not None:
            while isinstance(self.screen, (ViewScreen, DetailScreen)):
                self.pop_screen()
            self.main.show_pane(kind.name)
            if args:
                self.main.set_filter(" ".join(args))
        elif cmd in ("q", "q!", "quit", "exit"):
            self.exit()
        elif cmd in ("help", "h", "?"):
            self.action_help()
        elif cmd in ("audit", "log", "actions"):
            self.action_action_log()
        elif cmd in ("refresh", "r"):
            self.run_worker(self.action_refresh())
        elif cmd == "filter":
            self.main.set_filter(" ".join(args))
        elif cmd == "sort" and args:
            table = self.screen.table if isinstance(self.screen, ViewScreen) else self.main.table()
            col = next((c for c in table.kind.columns if args[0].lower() in (c.key, c.title.lower())), None)
            if col is None or col.sort is None:
                names = ", ".join(c.key for c in table.kind.columns if c.sort)
                self.notify(f"{table.kind.title} cannot sort by {args[0]!r}; try {names}", severity="warning")
            else:
                table.sort_by(col.key)
        elif cmd == "theme" and args:
            if args[0] in self.available_themes:
                self.theme = args[0]
            else:
                self.notify(
                    f"no theme {args[0]!r}; try {', '.join(sorted(self.available_themes))}",
                    severity="warning",
                )
        elif cmd == "scale" and args:
            self.start_scale(args[0], args[1] if len(args) > 1 else None)
        elif cmd in ("scale-pool", "scalepool") and args:
            self.start_scale_pool(args[0], args[1] if len(args) > 1 else None)
        elif cmd in ("ctx", "context"):
            self.notify(f"context: {self.fleet.context if self.fleet else '…'}")
        else:
            self.notify(
                f"unknown command {cmd!r}: try :nodes :gpus :jobs :endpoints :idle :health :pools :sort "
                ":theme :scale :scale-pool :q",
                severity="warning",
            )

    def get_system_commands(self, screen: Screen[object]) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        for i, kind in enumerate(KINDS.values(), start=1):
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
            "Nodes to cordon",
            "Nodes whose GPUs report XIDs, ECC errors or throttling; cordon from there (h, :health)",
            lambda: self.action_view("cordon"),
        )
        yield SystemCommand(
            "Node pools",
            "Node pools: size, limits, $/h, queued jobs that fit; scale one from there (p, :pools)",
            lambda: self.action_view("pools"),
        )
        yield SystemCommand(
            "Refresh now", "Fetch every source now (ctrl+r)", lambda: self.run_command("refresh")
        )
        yield SystemCommand("Keys and commands", "Show the help screen (?)", self.action_help)
        yield SystemCommand(
            "Action log", "What was done, by whom, with what outcome (a)", self.action_action_log
        )
        if self.can_act("scale") and self.fleet is not None:
            for ep in self.fleet.endpoints[:200]:
                yield SystemCommand(
                    f"Scale {ep.key}",
                    f"{ep.replicas_ready}/{ep.replicas_desired} ready",
                    lambda key=ep.key: self.start_scale(key),
                )

    # --- actions ----------------------------------------------------------------------------------------

    def can_act(self, action: str) -> bool:
        """Whether to offer the action's key. Read-only mode and the role hide it; a backend's own refusal
        (RBAC, a read-only cluster) leaves it visible, and pressing it says why."""
        return denial(action, self.ops.actor.role, read_only=self.ops.read_only) is None

    def start_scale(self, endpoint_key: str, replicas: str | None = None) -> None:
        self._open_form(
            "scale", endpoint_key, lambda snap: forms.scale_form(self.ops, snap, endpoint_key, replicas)
        )

    def start_scale_pool(self, pool: str, desired: str | None = None) -> None:
        self._open_form("scale-pool", pool, lambda snap: forms.scale_pool_form(self.ops, snap, pool, desired))

    def start_redeploy(self, endpoint_key: str) -> None:
        self._open_form(
            "redeploy", endpoint_key, lambda snap: forms.redeploy_form(self.ops, snap, endpoint_key)
        )

    def start_cordon(self, nodes: Sequence[str]) -> None:
        action = forms.cordon_action(self.fleet, nodes) if self.fleet else "cordon"
        self._open_form(action, nodes[0], lambda snap: forms.cordon_form(self.ops, snap, nodes))

    def start_drain(self, nodes: Sequence[str]) -> None:
        self._open_form("drain", nodes[0], lambda snap: forms.drain_form(self.ops, nodes))

    def start_launch(self) -> None:
        name = f"{self.ops.actor.user}/train-{int(self.clock()) % 100_000:05d}"
        self._open_form("launch", None, lambda snap: forms.launch_form(self.ops, name))

    def _open_form(
        self, action: str, target: str | None, build: Callable[[FleetSnapshot], PlanScreen]
    ) -> None:
        """Open an action's plan screen, unless ``ops`` says the action is not allowed (read-only, role)."""
        reason = self.ops.check(action, target)
        if reason is not None:
            self.notify(reason, title=f"{action.capitalize()} not allowed", severity="error")
            return
        if self.fleet is None:
            return
        try:
            screen = build(self.fleet)
        except LookupError as exc:
            self.notify(str(exc).strip("'\""), severity="error")
            return
        self.push_screen(screen, self._confirmed)

    def _confirmed(self, confirmed: Confirmed | None) -> None:
        if confirmed is not None:
            self.run_worker(self._execute(confirmed), group="actions", exit_on_error=False)

    async def _execute(self, confirmed: Confirmed) -> None:
        plan = confirmed.plan
        self._progress(f"{plan.title} …")
        try:
            result = await self.ops.execute(
                plan, confirmation=confirmed.confirmation, progress=self._progress
            )
        except Exception as exc:  # refusals and failures are reported, never crash the console
            self.main.show_progress(None)
            self.notify(
                str(exc) or type(exc).__name__, title=f"{plan.action} failed", severity="error", timeout=10
            )
            self._reload_action_log()
            return
        self.main.show_progress(None)
        self.notify(
            result.message,
            title=plan.title,
            severity="information" if result.ok else "error",
            timeout=6 if result.ok else 12,
        )
        self._reload_action_log()
        if plan.action in ("drain", "cordon", "uncordon"):
            self.main.table("nodes").clear_marks()
        if not self.live:
            self.fleet = await self.poller.refresh()
