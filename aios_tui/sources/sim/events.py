"""The embedded fleet's clock: what is due to happen, in time order.

Time moves in events (a pod becomes ready, a job finishes, a job is submitted, the HPA evaluates, a launched
node joins) processed in time order, so a fake clock drives everything in tests. Events due at the same time
are applied in the order they were scheduled (a sequence number breaks the tie, never the kind or the key).
:class:`~aios_tui.sources.sim.source.SimSource` applies them as its clock reaches them.
"""

from __future__ import annotations

import heapq
from enum import IntEnum

__all__ = ["EventKind", "EventQueue"]


class EventKind(IntEnum):
    """What happens when an event is due; ``key`` says to what."""

    READY = 0
    """Pod ``key`` becomes ready."""
    FINISH = 1
    """Job ``key`` may have run its course."""
    SUBMIT = 2
    """A new job asks for ``key`` GPUs (a model)."""
    HPA = 3
    """The HorizontalPodAutoscalers evaluate (``key`` empty)."""
    NODE_UP = 4
    """A node launched into pool ``key`` joins."""


class EventQueue:
    """A heap of (time, sequence, kind, key): the next due event first, ties in scheduling order."""

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, EventKind, str]] = []
        self._seq = 0

    def push(self, when: float, kind: EventKind, key: str) -> None:
        self._seq += 1
        heapq.heappush(self._heap, (when, self._seq, kind, key))

    def pop_due(self, now: float) -> tuple[float, EventKind, str] | None:
        """The earliest event at or before ``now``, taken off the queue; None when none is due."""
        heap = self._heap
        if not heap or heap[0][0] > now:
            return None
        when, _, kind, key = heapq.heappop(heap)
        return when, kind, key
