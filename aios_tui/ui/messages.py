"""Messages that travel up the DOM. Frequent ones replace their older copies in the queue."""

from __future__ import annotations

from textual.message import Message

from aios_tui.domain import FleetSnapshot


class FleetUpdated(Message):
    """A new merged snapshot from the poller. Only the newest one matters."""

    def __init__(self, snapshot: FleetSnapshot) -> None:
        self.snapshot = snapshot
        super().__init__()

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, FleetUpdated)
