"""Everything about one object, with history sparklines, its own events and the objects related to it;
follows the live snapshot.

Drill-down is a stack of these screens: enter on a related row (an endpoint's replica, a job's rank, a pod's
node, a node's GPU, a GPU's pod or owner) opens that object's detail on top, with the breadcrumb of the way
there on the first line; esc goes back one step along it."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import ClassVar

from rich.console import Group, RenderableType
from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widgets import OptionList, Static
from textual.widgets.option_list import Option

from aios_tui.config import GrafanaSettings
from aios_tui.domain import FleetSnapshot, JobState
from aios_tui.render.detail import detail, find
from aios_tui.render.triage import (
    Related,
    breadcrumb,
    crumb,
    events_for,
    events_section,
    find_pod,
    grafana_line,
    grafana_url,
    pod_detail,
    related,
    related_section,
)
from aios_tui.ui.messages import ActionRequested, OpenDetail
from aios_tui.ui.screens.acting import action_bindings
from aios_tui.ui.widgets.footer import Footer

HistoryFn = Callable[[str, str, str], Sequence[float]]
KeyStateFn = Callable[[str, Sequence[str]], bool | None]


class DetailScreen(Screen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,q,backspace", "app.pop_screen", "Back"),
        Binding("pageup", "scroll_body(-1)", "Scroll up", show=False, priority=True),
        Binding("pagedown", "scroll_body(1)", "Scroll down", show=False, priority=True),
        *action_bindings(("nodes", "endpoints", "job")),
    ]

    DEFAULT_CSS = """
    DetailScreen #crumbs { height: 1; padding: 0 1; background: $panel; }
    DetailScreen VerticalScroll { padding: 0 1; height: 1fr; }
    DetailScreen #detail-body { width: 1fr; }
    DetailScreen #related-title { height: 1; padding: 0 1; }
    DetailScreen #related {
        height: auto; max-height: 8; border: none; padding: 0 1; text-wrap: nowrap; text-overflow: ellipsis;
    }
    """

    def __init__(
        self,
        kind: str,
        key: str,
        snapshot: FleetSnapshot,
        now: float,
        history: HistoryFn,
        *,
        ascii: bool = False,
        trail: tuple[str, ...] = (),
        grafana: GrafanaSettings | None = None,
        key_state: KeyStateFn | None = None,
    ) -> None:
        super().__init__()
        self.kind = kind
        self.key = key
        self.trail = trail
        """The breadcrumb up to (not including) this object: ``("Endpoints", "ml-prod/chat")``."""
        self._snapshot = snapshot
        self._now = now
        self._history = history
        self._ascii = ascii
        self._grafana = grafana or GrafanaSettings()
        self._key_state = key_state
        self.related: list[Related] = []

    @property
    def crumbs(self) -> tuple[str, ...]:
        """The whole breadcrumb, this object last."""
        return (*self.trail, crumb(self.kind, self.key, self._snapshot))

    def compose(self) -> ComposeResult:
        yield Static(id="crumbs")
        with VerticalScroll():
            yield Static(id="detail-body")
        yield Static(id="related-title")
        yield OptionList(id="related", compact=True)
        yield Footer()

    def on_mount(self) -> None:
        self._draw()
        self.set_focus(self.query_one("#related", OptionList))

    def on_resize(self) -> None:
        self._draw()

    def update_snapshot(self, snapshot: FleetSnapshot, now: float) -> None:
        self._snapshot, self._now = snapshot, now
        self._draw()

    def body(self) -> RenderableType:
        width = self.size.width or 100
        snap, now = self._snapshot, self._now
        if self.kind == "pod":
            pod = find_pod(snap, self.key)
            if pod is None:
                return Text(f"pod {self.key} is no longer in the fleet.")
            return pod_detail(pod, snap, now)
        body = detail(self.kind, self.key, snap, now, self._history, width=width, ascii=self._ascii)
        parts: list[RenderableType] = [body]
        url = grafana_url(self._grafana, self.kind, find(self.kind, self.key, snap))
        if url:
            parts += [Text(""), grafana_line(url)]
        if self.kind in ("node", "gpu", "job", "endpoint"):
            parts += [Text(""), events_section(events_for(snap, self.kind, self.key), now)]
        return Group(*parts)

    def _draw(self) -> None:
        width = self.size.width or 100
        self.query_one("#crumbs", Static).update(breadcrumb(self.crumbs, width - 2, ascii=self._ascii))
        self.query_one("#detail-body", Static).update(self.body())
        rows = related(self.kind, self.key, self._snapshot)
        self.query_one("#related-title", Static).update(related_section(rows))
        if [(r.kind, r.key) for r in rows] != [(r.kind, r.key) for r in self.related] or any(
            a.label != b.label for a, b in zip(rows, self.related, strict=True)
        ):
            options = self.query_one("#related", OptionList)
            keep = options.highlighted
            options.clear_options()
            options.add_options([Option(r.label, id=str(i)) for i, r in enumerate(rows)])
            if rows:
                options.highlighted = min(keep or 0, len(rows) - 1)
            self.related = rows
        self.query_one("#related", OptionList).display = bool(rows)

    def action_scroll_body(self, direction: int) -> None:
        """pgup / pgdn scroll the detail; the arrows move in the related list."""
        body = self.query_one(VerticalScroll)
        if direction < 0:
            body.scroll_page_up(animate=False)
        else:
            body.scroll_page_down(animate=False)

    @property
    def highlighted(self) -> Related | None:
        """The related row under the cursor, if any."""
        index = self.query_one("#related", OptionList).highlighted
        return self.related[index] if index is not None and 0 <= index < len(self.related) else None

    @on(OptionList.OptionSelected, "#related")
    def _open_related(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        row = self.related[event.option_index]
        self.post_message(OpenDetail(row.kind, row.key, self.crumbs))

    def _acts_here(self, name: str) -> bool:
        """An action on this object: the node's (cordon, drain …) on a node, the endpoint's on an endpoint;
        on a queued or failed job, a launch like it and growing the pool its what-if names."""
        from aios_tui.ops import Kind, get

        if self.kind == "job":
            job = self._snapshot.job_by_key.get(self.key)
            waiting = job is not None and job.state in (JobState.QUEUED, JobState.FAILED)
            return waiting and name in ("launch", "scale-pool")
        target = get(name).target
        return (self.kind, target) in (("node", Kind.NODES), ("endpoint", Kind.ENDPOINT))

    def targets_for(self, action: str) -> Sequence[str]:
        return (self.key,) if self._acts_here(action) and self.kind != "job" else ()

    def action_act(self, name: str) -> None:
        if self.kind == "job" and self._acts_here(name):
            self.post_message(ActionRequested(name, (), like=self.key))
        elif self._acts_here(name):
            self.post_message(ActionRequested(name, (self.key,)))

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "act" and parameters:
            name = str(parameters[0])
            if not self._acts_here(name):
                return False
            if self._key_state is None:
                return True
            return self._key_state(name, self.targets_for(name))  # None: dimmed, a press says why
        return True
