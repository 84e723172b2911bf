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


class OpenDetail(Message):
    """A screen asks for the detail screen of one object (``kind``: node, gpu, pod, job, endpoint). ``trail``
    is the breadcrumb of the way there, ending with the screen it was opened from."""

    def __init__(self, kind: str, key: str, trail: tuple[str, ...] = ()) -> None:
        self.kind = kind
        self.key = key
        self.trail = trail
        super().__init__()


class ActionRequested(Message):
    """A screen asks for the plan of ``action`` on ``targets`` (nothing runs before it is confirmed)."""

    def __init__(self, action: str, targets: tuple[str, ...], *, like: str = "") -> None:
        self.action = action
        self.targets = targets
        self.like = like
        """A job's key: a launch's form filled in like that job (``n`` on a queued job)."""
        super().__init__()


class CommandEntered(Message):
    """A ``:`` command line typed in a prompt, for the app to run."""

    def __init__(self, line: str) -> None:
        self.line = line
        super().__init__()
