"""The action log: what was done from this console and others sharing the audit file, newest first, one row
per action (its intent, the steps it finished and how it ended), refusals and interruptions included."""

from __future__ import annotations

from collections.abc import Sequence

from rich.table import Table
from rich.text import Text

from aios_tui.ops.audit import AuditRecord
from aios_tui.render.glyphs import DIM_STYLE, FAIL_STYLE, OK_STYLE, WARN_STYLE

OUTCOME_STYLE = {
    "ok": OK_STYLE,
    "failed": FAIL_STYLE,
    "refused": WARN_STYLE,
    "cancelled": WARN_STYLE,
    "interrupted": FAIL_STYLE,
    "unfinished": WARN_STYLE,
}


def _result(record: AuditRecord) -> str:
    if record.end is not None:
        return record.end.message
    planned = len(record.planned)
    return f"no outcome yet: running, or interrupted; {len(record.done)} of {planned} steps done"


def audit_table(records: Sequence[AuditRecord]) -> Table | Text:
    """Records (oldest first, as read) as a table, newest on top."""
    if not records:
        return Text("No action has been taken yet (the audit log is empty).", DIM_STYLE)
    table = Table(box=None, padding=(0, 1), header_style="bold", expand=True)
    table.add_column("WHEN (UTC)", no_wrap=True)
    table.add_column("WHO", no_wrap=True)
    table.add_column("OUTCOME", no_wrap=True)
    table.add_column("WHAT", ratio=2, overflow="fold")
    table.add_column("RESULT", ratio=3, overflow="fold")
    for record in reversed(records):
        first = record.first
        when = first.ts.replace("T", " ")[:19]
        outcome = record.outcome
        table.add_row(
            when,
            f"{first.user}@{first.host}" if first.host else first.user,
            Text(outcome, OUTCOME_STYLE.get(outcome, "")),
            first.title or f"{first.action} {first.target}",
            _result(record),
        )
    return table
