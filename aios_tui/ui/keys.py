"""Input ownership: a key typed ahead reaches only what the keys before it opened.

Textual hands each key to the widget focused *when the key is read*, and the effects of a key (the prompt
``:`` opens, the plan screen ``s`` pushes, the focus a closed prompt gives back) happen later, in other
widgets' queues. So a burst — a paste into a terminal without bracketed paste, typing ahead during an SSH
stall, ``tmux send-keys`` — used to reach the pane under the prompt: ``:scale …`` cordoned a node with its
``c``, and the final Enter confirmed a plan nobody had seen.

:class:`KeyGate` puts every key and paste in one line. A printable key for a focused text input goes straight
to it (its own queue keeps the order). Any other key is handed to its target, and the keys after it wait
until that key has been handled everywhere it travels — a barrier that follows it up through the target's
ancestors to the app, where bindings run — and until the screen on top is mounted and has its focus. Only
then does the next key go out, to whatever owns the input now: the prompt a ``:`` opened, the field of a plan
screen ``s`` pushed. A paste goes to the focused input only, never to a pane.

:class:`KeyedInput` and :func:`key_time` let a confirmation refuse an Enter typed before its plan was on
screen (see :class:`~aios_tui.ui.screens.plan.PlanScreen`).
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from textual import events
from textual.widgets import Input

if TYPE_CHECKING:
    from textual.app import App
    from textual.message_pump import MessagePump
    from textual.screen import Screen
    from textual.widget import Widget

__all__ = ["KeyGate", "KeyedInput"]

log = logging.getLogger("aios_tui.ui")

SETTLE_LIMIT_S = 2.0
"""A key whose effects have not settled after this long releases the keys behind it anyway (and says so in
the log): a stuck widget must not freeze the keyboard."""
_POLL_S = 0.005


class KeyedInput(Input):
    """An input that remembers when the last key it saw was typed (the key's own timestamp)."""

    last_key_time: float = 0.0

    async def _on_key(self, event: events.Key) -> None:
        self.last_key_time = event.time
        await super()._on_key(event)


class KeyGate:
    """Hands the app's keys and pastes out one owner at a time (see the module)."""

    def __init__(self, app: App[Any]) -> None:
        self._app = app
        self._held: deque[events.Key | events.Paste] = deque()
        self._busy = False
        self._round = 0
        self.released_late = 0
        """How many times a key's effects took longer than :data:`SETTLE_LIMIT_S` (for tests and logs)."""

    @property
    def holding(self) -> int:
        """Keys and pastes waiting for the owner of the input to settle."""
        return len(self._held)

    async def route(self, event: events.Key | events.Paste) -> None:
        """Take a key or paste as the terminal delivered it."""
        if self._busy or self._held:
            self._held.append(event)
            return
        await self._dispatch(event)

    async def _dispatch(self, event: events.Key | events.Paste) -> None:
        app = self._app
        if isinstance(event, events.Paste):
            focused = app.focused
            if isinstance(focused, Input):
                focused._forward_event(event)
            else:
                app.bell()  # a paste goes into an input, never to a pane as keystrokes
            return
        if await app._check_bindings(event.key, priority=True):
            self._settle(app.screen)
            return
        target = app.focused or app.screen
        target._forward_event(event)
        if isinstance(target, Input) and event.is_printable:
            return  # typed into the focused input; its own queue keeps the order
        self._settle(target)

    def _settle(self, target: Widget | Screen[Any]) -> None:
        """Hold the next keys until ``target``'s key has travelled up to the app and the screen is ready."""
        self._busy = True
        self._round += 1
        this_round = self._round
        self._pass(this_round, time.monotonic(), [*target.ancestors_with_self])
        self._app.set_timer(SETTLE_LIMIT_S, lambda: self._late(this_round))

    def _pass(self, this_round: int, started: float, pumps: list[MessagePump]) -> None:
        """A barrier through ``pumps`` in order, then the app twice (what its bindings deferred with
        ``call_later`` runs first): each hop is queued behind what that pump already has."""
        chain = [p for p in dict.fromkeys(pumps) if p is not self._app] + [self._app, self._app]

        def hop(index: int) -> Callable[[], None]:
            def run() -> None:
                if this_round != self._round:
                    return
                if index + 1 < len(chain):
                    if not _post(chain[index + 1], hop(index + 1)):
                        hop(index + 1)()
                else:
                    self._when_ready(this_round, started, chain)

            return run

        if not _post(chain[0], hop(0)):
            hop(0)()

    def _when_ready(self, this_round: int, started: float, chain: list[MessagePump]) -> None:
        """Release the keys once nothing the key set off is still on its way (a Submitted message bubbling
        to the screen that closes a prompt) and the screen on top is mounted with its focus."""
        if this_round != self._round:
            return
        app = self._app
        screen = app.screen
        focused = app.focused
        pumps = [*chain, screen, *(focused.ancestors_with_self if focused is not None else ())]
        pending = [p for p in dict.fromkeys(pumps) if not p._closed and p.message_queue_size]
        unready = not screen.is_mounted or (screen.focused is None and bool(screen.focus_chain))
        if (pending or unready) and time.monotonic() - started < SETTLE_LIMIT_S:
            if pending:
                self._pass(this_round, started, pumps)
            else:
                app.set_timer(_POLL_S, lambda: self._when_ready(this_round, started, chain))
            return
        self._release(this_round)

    def _late(self, this_round: int) -> None:
        if this_round == self._round and self._busy:
            self.released_late += 1
            log.warning("keys held for %.1fs without the input settling: released", SETTLE_LIMIT_S)
            self._release(this_round)

    def _release(self, this_round: int) -> None:
        if this_round != self._round or not self._busy:
            return
        self._busy = False
        self._round += 1
        if self._held:
            self._app.call_later(self._drain)

    async def _drain(self) -> None:
        while self._held and not self._busy:
            await self._dispatch(self._held.popleft())


def _post(pump: MessagePump, callback: Callable[[], None]) -> bool:
    """Queue ``callback`` behind what ``pump`` already has; False when the pump is gone."""
    if pump._closing or pump._closed:
        return False
    try:
        return bool(pump.call_later(callback))
    except Exception:  # a widget removed meanwhile
        return False
