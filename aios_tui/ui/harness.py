"""A console on the embedded fleet with a clock that only moves when told to.

Tests, the screenshot script and the benchmarks build the app here, so that the same seed and clock draw the
same screen everywhere.
"""

from __future__ import annotations

from pathlib import Path

from aios_tui.config import Settings
from aios_tui.domain.clock import FrozenClock
from aios_tui.ops import Actor, AuditLog, Ops, Role
from aios_tui.poll import Poller
from aios_tui.sources.sim import SimSource
from aios_tui.ui.app import AiosApp

START = 1_795_000_000.0
"""2026-11-18 11:06:40 UTC: late morning, traffic climbing."""


class FakeClock(FrozenClock):
    """A :class:`FrozenClock` that starts at :data:`START`."""

    def __init__(self, t: float = START) -> None:
        super().__init__(t)


def sim_app(
    audit_path: Path,
    *,
    nodes: int = 40,
    seed: int = 7,
    read_only: bool = False,
    role: Role = Role.OPERATOR,
    clock: FakeClock | None = None,
    settings: Settings | None = None,
) -> tuple[AiosApp, FakeClock]:
    """An app on a ``nodes``-node embedded fleet, not polling on its own (``ctrl+r`` or ``refresh()``)."""
    clock = clock or FakeClock()
    sim = SimSource(seed=seed, nodes=nodes, clock=clock, start=START)
    settings = settings or Settings()
    poller = Poller([sim], clock=clock, idle_window=settings.idle_window)
    ops = Ops(
        {sim.name: sim},
        lambda: poller.snapshot,
        AuditLog(audit_path),
        actor=Actor("tester", role),
        read_only=read_only,
        after_action=poller.poke,
    )
    return AiosApp(poller, ops, settings, live=False, clock=clock), clock
