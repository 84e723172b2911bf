"""What every cloud's tests drive the same way: the CLI in-process, and the console's pools view over one
cloud source (the cloud's own test server behind it)."""

from __future__ import annotations

from pathlib import Path

import pytest

from aios_tui import cli
from aios_tui.config import Settings
from aios_tui.ops import Actor, Ops, Role
from aios_tui.ops.audit import AuditLog
from aios_tui.poll import Poller
from aios_tui.sources.clouds.base import CloudSource
from aios_tui.ui.app import AiosApp
from tests.ui.conftest import screen_text


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """``aios-tui <argv>``: its exit status, stdout and stderr."""
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


async def pools_view(source: CloudSource, tmp_path: Path) -> str:
    """The console's pools view (``p``) at 120x40 over ``source``, as the terminal shows it."""
    poller = Poller([source])
    audit = AuditLog(tmp_path / "audit.jsonl")
    ops = Ops({source.name: source}, lambda: poller.snapshot, audit, actor=Actor("oncall", Role.OPERATOR))
    try:
        await poller.refresh()
        app = AiosApp(poller, ops, Settings(), live=False)
        async with app.run_test(size=(120, 40)) as pilot:
            await app.workers.wait_for_complete()
            await pilot.pause()
            await pilot.press("p")
            await app.workers.wait_for_complete()
            await pilot.pause()
            return screen_text(app)
    finally:
        await poller.stop()
