"""The screens an on-call engineer coming from k9s reaches for: the pods view (``:pods``), the events view
(``:events``, ``v``; ``V`` for what changed in the last 15 minutes), a pod's logs (``l``), an object as YAML
(``y``), a describe-style text (``d``) and the "quit while an action runs?" question (ctrl+c).

Logs and YAML are read in workers through ``ops`` (:mod:`aios_tui.ops.inspect`: the pod's or object's own
source), never on the event loop; a failure is said in words in the screen, which stays open.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import ClassVar

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import ModalScreen, Screen
from textual.widgets import Input, Log, Static

from aios_tui.domain import Event, FleetSnapshot, Pod
from aios_tui.domain.errors import describe_error
from aios_tui.domain.text import clean
from aios_tui.ops.audit import AuditRecord
from aios_tui.render.glyphs import DIM_STYLE, FAIL_STYLE, WARN_STYLE
from aios_tui.render.triage import EVENTS, PODS, event_rows
from aios_tui.ui.messages import OpenDetail
from aios_tui.ui.screens.acting import ScreenContext
from aios_tui.ui.screens.views import ViewScreen, _sort_bindings
from aios_tui.ui.widgets.fleet_table import FleetTable
from aios_tui.ui.widgets.footer import Footer

__all__ = [
    "DETAIL_KINDS",
    "MAX_LOG_LINES",
    "EventsScreen",
    "LogScreen",
    "PodsScreen",
    "QuitScreen",
    "TextScreen",
    "audit_events",
    "parse_since",
]

MAX_LOG_LINES = 5000
"""Lines a log screen keeps; older ones are dropped (a chatty pod must not grow the console's memory)."""
LOG_TAIL = 500
"""Lines asked for when a log screen opens."""
DETAIL_KINDS = ("node", "gpu", "pod", "job", "endpoint")
ReadLog = Callable[[Pod, str, bool, int], Awaitable[list[str]]]
"""(pod, container, previous, tail) → its last lines (``Ops.read_log``)."""
FollowLog = Callable[[Pod, str, int], AsyncIterator[str]]
"""(pod, container, tail) → its last lines, then each new one (``Ops.follow_log``)."""


class PodsScreen(ViewScreen):
    """``:pods``: every pod with its owner, node, GPUs, phase (and why), restarts and age; enter opens it."""

    KIND = PODS
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "back", "Back"),
        Binding("slash", "filter", "Filter"),
        *_sort_bindings(PODS),
    ]

    @on(FleetTable.Selected)
    def _selected(self, event: FleetTable.Selected) -> None:
        event.stop()
        self.post_message(OpenDetail("pod", event.key, ("Pods",)))


def parse_since(word: str) -> float | None:
    """``15m`` → 900.0, ``2h``, ``30s``, ``1d``; None when ``word`` is not a duration."""
    units = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
    word = word.strip().lower()
    if len(word) < 2 or word[-1] not in units:
        return None
    try:
        n = float(word[:-1])
    except ValueError:
        return None
    return n * units[word[-1]] if n > 0 else None


def audit_events(records: Sequence[AuditRecord]) -> list[Event]:
    """The audited actions as events: who did what to which target, and how it ended."""
    out = []
    for r in records:
        last = r.end or (r.steps[-1] if r.steps else r.first)
        try:
            when = dt.datetime.fromisoformat(last.ts).timestamp()
        except ValueError:
            continue
        first = r.first
        outcome = r.outcome
        out.append(
            Event(
                time=when,
                kind="action",
                key=clean(first.target) or first.action,
                reason=first.action,
                message=clean(f"{first.user}: {first.title or first.action} — {outcome}. {last.message}"),
                warning=outcome not in ("ok", "unfinished"),
                source="audit",
            )
        )
    return out


class EventsScreen(ViewScreen):
    """``:events`` / ``v``: warnings first, newest first, with the audited actions merged in; ``w`` warnings
    only, ``m`` the last 15 minutes only (``:events 30m`` any window), ``/`` filters by object."""

    KIND = EVENTS
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "back", "Back"),
        Binding("slash", "filter", "Filter"),
        Binding("w", "toggle_warnings", "Warnings only"),
        Binding("m", "toggle_recent", "Last 15 min"),
        *_sort_bindings(EVENTS),
    ]

    RECENT_S = 900.0

    def __init__(
        self,
        *,
        read_only: bool,
        ascii: bool,
        audit: Callable[[], Sequence[AuditRecord]] = list,
        since_s: float | None = None,
        now: Callable[[], float] | None = None,
        context: ScreenContext | None = None,
    ) -> None:
        super().__init__(read_only=read_only, ascii=ascii, context=context)
        self.warnings_only = False
        self.since_s = since_s
        """Only what happened in the last this many seconds (None: everything kept)."""
        self._audit = audit
        self._audit_events: list[Event] = []
        self._raw: FleetSnapshot | None = None
        self._raw_now = 0.0

    @work(group="events-audit", exclusive=True, exit_on_error=False)
    async def _read_audit(self) -> None:
        records = await asyncio.to_thread(self._audit)  # a file read: off the event loop
        self._audit_events = audit_events(records)
        self._apply()

    def update_snapshot(self, snapshot: FleetSnapshot, now: float) -> None:
        """A new snapshot: its events at once, the action log's as soon as it is read again."""
        self._raw, self._raw_now = snapshot, now
        self._apply()
        self._read_audit()

    def _apply(self) -> None:
        if self._raw is None:
            return
        snapshot, now = self._raw, self._raw_now
        events = [*snapshot.events, *self._audit_events]
        if self.warnings_only:
            events = [e for e in events if e.warning]
        if self.since_s is not None:
            events = [e for e in events if e.time >= now - self.since_s]
        super().update_snapshot(dataclasses.replace(snapshot, events=tuple(event_rows(events))), now)

    def summary(self, snapshot: FleetSnapshot) -> Text:
        shown = self.table.rows
        warnings = sum(1 for e in shown if e.warning)
        out = Text.assemble(
            (f"Events: {len(shown)}", "bold"),
            (f", {warnings} warning{'s' if warnings != 1 else ''}", WARN_STYLE if warnings else DIM_STYLE),
        )
        if self.since_s is not None:
            out.append(f"  last {_duration(self.since_s)}", "bold")
        if self.warnings_only:
            out.append("  warnings only", "bold")
        return out

    def action_toggle_warnings(self) -> None:
        self.warnings_only = not self.warnings_only
        self._apply()

    def set_since(self, seconds: float | None) -> None:
        """Show only what happened in the last ``seconds`` (None: everything kept)."""
        self.since_s = seconds
        self._apply()

    def action_toggle_recent(self) -> None:
        self.set_since(None if self.since_s is not None else self.RECENT_S)

    @on(FleetTable.Selected)
    def _selected(self, event: FleetTable.Selected) -> None:
        event.stop()
        row = self.table.cursor_object
        if isinstance(row, Event) and row.kind in DETAIL_KINDS:
            self.post_message(OpenDetail(row.kind, row.key, ("Events",)))


def _duration(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"


# --- logs -------------------------------------------------------------------------------------------------


class LogScreen(Screen[None]):
    """``l``: a pod's log, the last :data:`LOG_TAIL` lines; ``f`` follows (and stops following), ``p`` the
    previous container's run, ``c`` the next container, ``o`` another replica or rank of the same owner,
    ``/`` filters. At most :data:`MAX_LOG_LINES` lines are kept."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,q", "back", "Back"),
        Binding("f", "follow", "Follow"),
        Binding("p", "previous", "Previous"),
        Binding("c", "container", "Container"),
        Binding("o", "other", "Other pod"),
        Binding("slash", "filter", "Filter"),
    ]

    DEFAULT_CSS = """
    LogScreen #log-title { height: 1; padding: 0 1; background: $panel; }
    LogScreen #log-status { height: auto; padding: 0 1; }
    LogScreen Log { height: 1fr; }
    LogScreen #log-filter { dock: bottom; display: none; border: none; height: 1; padding: 0 1;
                            margin-bottom: 1; }
    LogScreen.-filter #log-filter { display: block; }
    """

    def __init__(self, pods: Sequence[Pod], read: ReadLog, follow: FollowLog, *, index: int = 0) -> None:
        super().__init__()
        self.pods = tuple(pods)
        """The pod shown and its siblings (an endpoint's replicas, a job's ranks): ``o`` moves among them."""
        self.index = index
        self._read_log = read
        self._follow_log = follow
        self.container = self.pod.containers[0] if self.pod.containers else ""
        self.previous = False
        self.following = False
        self.filter_text = ""
        self.lines: deque[str] = deque(maxlen=MAX_LOG_LINES)
        self.error = ""

    @property
    def pod(self) -> Pod:
        return self.pods[self.index]

    def compose(self) -> ComposeResult:
        yield Static(id="log-title")
        yield Static(id="log-status")
        yield Log(max_lines=MAX_LOG_LINES, id="log")
        yield Input(id="log-filter", compact=True, placeholder="filter: lines containing every word")
        yield Footer()

    def on_mount(self) -> None:
        self.set_focus(self.query_one(Log))
        self._load()

    def _title(self) -> None:
        p = self.pod
        parts = [f"Logs {p.key}"]
        if self.container:
            parts.append(f"container {self.container}")
        if self.previous:
            parts.append("previous run")
        parts.append("following" if self.following else "tail")
        if self.filter_text:
            parts.append(f"filter {self.filter_text!r}")
        if len(self.pods) > 1:
            parts.append(f"pod {self.index + 1} of {len(self.pods)} (o: next)")
        self.query_one("#log-title", Static).update(Text("  ·  ".join(parts), "bold"))
        status = self.query_one("#log-status", Static)
        status.update(Text(self.error, FAIL_STYLE) if self.error else "")
        status.display = bool(self.error)

    def _matches(self, line: str) -> bool:
        words = self.filter_text.lower().split()
        low = line.lower()
        return all(w in low for w in words)

    def _redraw(self) -> None:
        log = self.query_one(Log)
        log.clear()
        log.write_lines([line for line in self.lines if self._matches(line)])
        self._title()

    def _append(self, line: str) -> None:
        self.lines.append(line)
        if self._matches(line):
            self.query_one(Log).write_line(line)

    def _load(self) -> None:
        self.lines.clear()
        self.error = ""
        self._redraw()
        if self.following:
            self._follow()
        else:
            self._read()

    @work(group="log", exclusive=True, exit_on_error=False)
    async def _read(self) -> None:
        p = self.pod
        try:
            lines = await self._read_log(p, self.container, self.previous, LOG_TAIL)
        except Exception as exc:  # said in the screen, which stays open
            self.error = f"could not read the log of {p.key}: {describe_error(exc)}"
            self._title()
            return
        self.lines.extend(clean(line, 4096) for line in lines)
        self._redraw()

    @work(group="log", exclusive=True, exit_on_error=False)
    async def _follow(self) -> None:
        p = self.pod
        try:
            async for line in self._follow_log(p, self.container, LOG_TAIL):
                self._append(clean(line, 4096))
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self.error = f"stopped following {p.key}: {describe_error(exc)}"
            self.following = False
            self._title()

    def action_back(self) -> None:
        if self.has_class("-filter"):
            self.remove_class("-filter")
            self.set_focus(self.query_one(Log))
        else:
            self.workers.cancel_group(self, "log")
            self.dismiss()

    def action_follow(self) -> None:
        self.following = not self.following
        self.previous = False
        if self.following:
            self._load()
        else:
            self.workers.cancel_group(self, "log")
            self._title()

    def action_previous(self) -> None:
        self.previous = not self.previous
        self.following = False
        self._load()

    def action_container(self) -> None:
        names = self.pod.containers
        if len(names) < 2:
            self.notify(f"{self.pod.name} has one container", timeout=3)
            return
        self.container = (
            names[(names.index(self.container) + 1) % len(names)] if self.container in names else names[0]
        )
        self._load()

    def action_other(self) -> None:
        if len(self.pods) < 2:
            self.notify(f"{self.pod.name} has no other replica or rank", timeout=3)
            return
        self.index = (self.index + 1) % len(self.pods)
        self.container = self.pod.containers[0] if self.pod.containers else ""
        self._load()

    def action_filter(self) -> None:
        prompt = self.query_one("#log-filter", Input)
        prompt.value = self.filter_text
        self.add_class("-filter")
        self.set_focus(prompt)

    @on(Input.Changed, "#log-filter")
    def _filter_changed(self, event: Input.Changed) -> None:
        self.filter_text = event.value.strip()
        self._redraw()

    @on(Input.Submitted, "#log-filter")
    def _filter_submitted(self) -> None:
        self.remove_class("-filter")
        self.set_focus(self.query_one(Log))


# --- YAML and describe ------------------------------------------------------------------------------------


class TextScreen(Screen[None]):
    """A text the console shows whole: an object as YAML (``y``, read from its source in a worker) or its
    describe-style summary (``d``)."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape,q", "app.pop_screen", "Back")]

    DEFAULT_CSS = """
    TextScreen #text-title { height: 1; padding: 0 1; background: $panel; }
    TextScreen VerticalScroll { padding: 0 1; }
    """

    def __init__(
        self,
        title: str,
        text: str = "",
        *,
        read: Callable[[], Awaitable[str]] | None = None,
    ) -> None:
        super().__init__()
        self.title_text = title
        self.text = text
        self._read_text = read

    def compose(self) -> ComposeResult:
        yield Static(Text(self.title_text, "bold"), id="text-title")
        with VerticalScroll():
            yield Static(Text(self.text or "reading …", "" if self.text else DIM_STYLE), id="text-body")
        yield Footer()

    def on_mount(self) -> None:
        self.set_focus(self.query_one(VerticalScroll))
        if self._read_text is not None:
            self._read(self._read_text)

    def _show(self, text: Text) -> None:
        self.text = text.plain
        self.query_one("#text-body", Static).update(text)

    @work(group="object", exclusive=True, exit_on_error=False)
    async def _read(self, read: Callable[[], Awaitable[str]]) -> None:
        try:
            text = await read()
        except Exception as exc:  # said in the screen, which stays open
            self._show(Text(f"could not read it: {describe_error(exc)}", FAIL_STYLE))
            return
        self._show(Text(text))


class QuitScreen(ModalScreen[bool]):
    """ctrl+c while an action runs: quit anyway (y) or stay (n, esc)."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("y", "answer(True)", "Quit"),
        Binding("n,escape", "answer(False)", "Stay"),
    ]

    DEFAULT_CSS = """
    QuitScreen { align: center middle; }
    QuitScreen > Static {
        width: 64; height: auto; border: thick $warning; background: $surface; padding: 1 2;
    }
    """

    def __init__(self, running: Sequence[str]) -> None:
        super().__init__()
        self.running = tuple(running)

    def compose(self) -> ComposeResult:
        what = "; ".join(self.running)
        yield Static(
            f"An action is running: {what}.\nQuit anyway? It is left unfinished where it stands; the action "
            "log keeps what was done, and the next start says so.\n\ny: quit   n: stay"
        )

    def action_answer(self, quit_: bool) -> None:
        self.dismiss(quit_)
