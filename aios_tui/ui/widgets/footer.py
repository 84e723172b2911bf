"""The key footer: Textual's, recomposed only when what it shows changes."""

from __future__ import annotations

from typing import Any

from textual.app import ComposeResult
from textual.screen import Screen
from textual.widgets import Footer as TextualFooter
from textual.widgets._footer import FooterKey


class Footer(TextualFooter):
    """Textual's footer, with two costs taken out of every screen's start.

    Textual's recomposes the footer at every bindings signal (focus moves, a screen resumes: five times in
    the console's first second), whatever changed; and each key it makes is born compact and is then told
    the footer is not, restyling itself twice (at 40 nodes, 85 restyles and ~27 ms of the event loop before
    the first frame with data). Here a signal that leaves the keys shown as they are recomposes nothing,
    the signals before a recompose runs share it, and a key is born in the footer's style. What is drawn is
    Textual's.
    """

    _composed: Any = None
    """The shown bindings the keys on screen were made from (:meth:`_shown`)."""
    _recompose_due = False

    @staticmethod
    def _shown(screen: Screen[Any]) -> tuple[Any, ...]:
        return tuple(
            (binding, enabled, tooltip)
            for _, binding, enabled, tooltip in screen.active_bindings.values()
            if binding.show
        )

    def compose(self) -> ComposeResult:
        if self._bindings_ready:
            self._composed = self._shown(self.screen)
        for widget in super().compose():
            if isinstance(widget, FooterKey) and not widget.has_class("-command-palette"):
                widget.set_reactive(FooterKey.compact, self.compact)  # what data_bind sets it to
            yield widget

    def bindings_changed(self, screen: Screen[Any]) -> None:
        self._bindings_ready = True
        if not screen.app.app_focus or not self.is_attached or screen is not self.screen:
            return
        if not self._recompose_due and self._shown(screen) != self._composed:
            self._recompose_due = True  # the signals before it runs are answered by the same recompose
            self.call_after_refresh(self._recompose)

    async def _recompose(self) -> None:
        self._recompose_due = False
        await self.recompose()
