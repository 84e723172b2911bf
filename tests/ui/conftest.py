"""A console on the embedded fleet with a frozen clock: the same seed and clock draw the same screen."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from aios_tui.config import Settings
from aios_tui.ops import Actor, AuditLog, Ops, Role
from aios_tui.poll import Poller
from aios_tui.sources.sim import SimSource
from aios_tui.ui.app import AiosApp

START = 1_795_000_000.0  # 2026-11-17 10:13:20 UTC: mid-morning, traffic climbing


class FakeClock:
    def __init__(self, t: float = START) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += seconds


def screen_text(app: AiosApp) -> str:
    """What the terminal shows now, as plain text, one line per row."""
    return "\n".join(strip.text for strip in app.screen._compositor.render_strips())


MakeApp = Callable[..., AiosApp]


@pytest.fixture
def make_app(tmp_path: Path) -> MakeApp:
    def make(
        *,
        nodes: int = 40,
        seed: int = 7,
        read_only: bool = False,
        role: Role = Role.OPERATOR,
        clock: FakeClock | None = None,
    ) -> AiosApp:
        clock = clock or FakeClock()
        sim = SimSource(seed=seed, nodes=nodes, clock=clock, start=START)
        poller = Poller([sim], clock=clock)
        ops = Ops(
            {sim.name: sim},
            lambda: poller.snapshot,
            AuditLog(tmp_path / "audit.jsonl"),
            actor=Actor("tester", role),
            read_only=read_only,
            after_action=poller.poke,
        )
        app = AiosApp(poller, ops, Settings(), live=False, clock=clock)
        app.fake_clock = clock  # type: ignore[attr-defined]
        return app

    return make
