"""What every part of :class:`~aios_tui.sources.sim.SimSource` shares: its state, and the methods one
part calls on another (declared here for the type checker, defined in their own modules).
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING

from aios_tui.domain import Node, Pod
from aios_tui.sources.sim.events import EventQueue
from aios_tui.sources.sim.telemetry import Telemetry
from aios_tui.sources.sim.world import Fleet, SimEndpoint, SimJob

__all__ = ["SimCore"]


class SimCore:
    """The state of the simulation; :class:`~aios_tui.sources.sim.SimSource` sets it."""

    name: str
    _start: float
    _t: float
    """The simulated time the fleet has reached."""
    _lock: threading.Lock
    _clock: Callable[[], float]
    _fleet: Fleet | None
    _events: EventQueue
    _cap_dirty: bool
    """Capacity or demand changed: the scheduler runs before the fleet is read again."""
    _finished: deque[tuple[str, SimJob]]
    _tel: Telemetry
    _nodes_tuple: tuple[Node, ...]

    @property
    def _f(self) -> Fleet:
        assert self._fleet is not None
        return self._fleet

    if TYPE_CHECKING:

        def _ensure(self) -> Fleet: ...

        def _advance(self, now: float) -> None: ...

        def _take_start(self) -> None: ...

        def _build_nodes(self, fleet: Fleet) -> tuple[Node, ...]: ...

        def _schedule(self, t: float) -> None: ...

        def _reconcile(self, ep: SimEndpoint) -> None: ...

        def _restart(self, job: SimJob, t: float) -> None: ...

        def _recreate_plain(self, pod: Pod, t: float) -> None: ...

        def _note(
            self, t: float, kind: str, key: str, reason: str, message: str, warning: bool = False
        ) -> None: ...

        def _noted_replicas(self, ep: SimEndpoint, t: float, old: int) -> None: ...
