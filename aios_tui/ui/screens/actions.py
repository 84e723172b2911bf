"""``a``: the action log, read from the audit file, refreshed after every action: one row per action."""

from __future__ import annotations

from typing import ClassVar

from rich.console import Group
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widgets import Static

from aios_tui.ops import AuditLog
from aios_tui.render.audit import audit_table
from aios_tui.ui.widgets.footer import Footer

LIMIT = 200


class ActionLogScreen(Screen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape,q,a", "app.pop_screen", "Back")]

    DEFAULT_CSS = """
    ActionLogScreen VerticalScroll { padding: 0 1; }
    """

    def __init__(self, audit: AuditLog) -> None:
        super().__init__()
        self._audit = audit

    def compose(self) -> ComposeResult:
        with VerticalScroll():
            yield Static(id="log-body")
        yield Footer()

    def on_mount(self) -> None:
        self.reload()

    def reload(self) -> None:
        try:
            body = audit_table(self._audit.records(limit=LIMIT * 4)[-LIMIT:])
        except OSError as exc:
            body = Text(f"Cannot read the audit log {self._audit.path}: {exc.strerror or exc}", "bold red")
        title = Text.assemble(
            ("Action log", "bold underline"), (f"  {self._audit.path}  (last {LIMIT})", "dim")
        )
        self.query_one("#log-body", Static).update(Group(title, Text(""), body))
