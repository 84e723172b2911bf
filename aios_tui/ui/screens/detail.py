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

if TYPE_CHECKING:
    from aios_tui.ui.app import AiosApp

HistoryFn = Callable[[str, str, str], Sequence[float]]


class DetailScreen(Screen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,q,backspace", "app.pop_screen", "Back"),
        Binding("s", "scale", "Scale"),
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

    def action_scale(self) -> None:
        self.aios.start_scale(self.key)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "scale":
            return self.kind == "endpoint" and self.aios.can_act("scale")
        return True

    @property
    def aios(self) -> AiosApp:
        from aios_tui.ui.app import AiosApp

        assert isinstance(self.app, AiosApp)
        return self.app
