"""Everything about one object, with history sparklines; follows the live snapshot."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer, Static

from aios_tui.domain import FleetSnapshot
from aios_tui.render.detail import detail
from aios_tui.ui.screens.acting import action_bindings

if TYPE_CHECKING:
    from aios_tui.ui.app import AiosApp

HistoryFn = Callable[[str, str, str], Sequence[float]]


class DetailScreen(Screen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,q,backspace", "app.pop_screen", "Back"),
        *action_bindings(("nodes", "endpoints")),
    ]

    DEFAULT_CSS = """
    DetailScreen VerticalScroll { padding: 0 1; }
    DetailScreen #detail-body { width: 1fr; }
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
    ) -> None:
        super().__init__()
        self.kind = kind
        self.key = key
        self._snapshot = snapshot
        self._now = now
        self._history = history
        self._ascii = ascii

    def compose(self) -> ComposeResult:
        with VerticalScroll():
            yield Static(id="detail-body")
        yield Footer()

    def on_mount(self) -> None:
        self._draw()

    def on_resize(self) -> None:
        self._draw()

    def update_snapshot(self, snapshot: FleetSnapshot, now: float) -> None:
        self._snapshot, self._now = snapshot, now
        self._draw()

    def _draw(self) -> None:
        body = detail(
            self.kind,
            self.key,
            self._snapshot,
            self._now,
            self._history,
            width=self.size.width or 100,
            ascii=self._ascii,
        )
        self.query_one("#detail-body", Static).update(body)

    def _acts_here(self, name: str) -> bool:
        """An action on this object: the node's (cordon, drain …) on a node, the endpoint's on an endpoint."""
        from aios_tui.ops import Kind, get

        target = get(name).target
        return (self.kind, target) in (("node", Kind.NODES), ("endpoint", Kind.ENDPOINT))

    def targets_for(self, action: str) -> Sequence[str]:
        return (self.key,) if self._acts_here(action) else ()

    def action_act(self, name: str) -> None:
        if self._acts_here(name):
            self.aios.start_action(name, [self.key])

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "act" and parameters:
            name = str(parameters[0])
            if not self._acts_here(name):
                return False
            return self.aios.key_state(name, self.targets_for(name))  # None: dimmed, a press says why
        return True

    @property
    def aios(self) -> AiosApp:
        from aios_tui.ui.app import AiosApp

        assert isinstance(self.app, AiosApp)
        return self.app
