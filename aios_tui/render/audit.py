"""The action log: what was done from this console and others sharing the audit file, newest first."""

from __future__ import annotations

from collections.abc import Sequence

from rich.table import Table
from rich.text import Text

from aios_tui.ops.audit import AuditEntry
from aios_tui.render.glyphs import DIM_STYLE, FAIL_STYLE, OK_STYLE, WARN_STYLE

OUTCOME_STYLE = {"ok": OK_STYLE, "failed": FAIL_STYLE, "refused": WARN_STYLE}


def audit_table(entries: Sequence[AuditEntry]) -> Table | Text:
    """Entries (oldest first, as read) as a table, newest on top."""
    if not entries:
        return Text("No action has been taken yet (the audit log is empty).", DIM_STYLE)
    table = Table(box=None, padding=(0, 1), header_style="bold", expand=True)
    table.add_column("WHEN (UTC)", no_wrap=True)
    table.add_column("WHO", no_wrap=True)
    table.add_column("OUTCOME", no_wrap=True)
    table.add_column("WHAT", ratio=2, overflow="fold")
    table.add_column("RESULT", ratio=3, overflow="fold")
    for e in reversed(entries):
        when = e.ts.replace("T", " ")[:19]
        table.add_row(
            when,
            f"{e.user}@{e.host}" if e.host else e.user,
            Text(e.outcome, OUTCOME_STYLE.get(e.outcome, "")),
            e.title or f"{e.action} {e.target}",
            e.message,
        )
    return table
