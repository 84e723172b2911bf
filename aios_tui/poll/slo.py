"""Since when each endpoint has been past its objectives, followed across merged snapshots.

A breach is a state with a duration ("BREACH 12m"), not a single reading, so the poller remembers the first
snapshot in which an endpoint was past its p99 or error-rate objective, and logs an ``SLOBreach`` event when
one starts and ``SLORecovered`` when it ends. A breach ends once the endpoint has met its objectives for
:data:`RECOVER_HOLD` seconds (as an alert resolves): an endpoint whose p99 wobbles around its objective
would otherwise log a breach and a recovery every few polls (the embedded fleet's embed-bge-search did,
three events in 70 s). It is forgotten at once when the endpoint can no longer be judged (no reading, no
objective, no longer reported): unknown is not recovered. Times are the poller's clock.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from types import MappingProxyType

from aios_tui.alloc.slo import breached
from aios_tui.domain import Endpoint, Event, fmt_age, is_na
from aios_tui.poll.events import SEEN_BY

__all__ = ["RECOVER_HOLD", "SloTracker"]

RECOVER_HOLD = 60.0
"""Seconds an endpoint in breach must meet its objectives before the breach ends."""


def _said(ep: Endpoint) -> str:
    parts = []
    if not is_na(ep.p99_ms) and not is_na(ep.p99_slo_ms):
        parts.append(f"p99 {float(ep.p99_ms):.0f} ms (objective {float(ep.p99_slo_ms):g} ms)")
    if not is_na(ep.error_rate) and not is_na(ep.error_slo):
        parts.append(f"errors {float(ep.error_rate):.2%} (objective {float(ep.error_slo):.2%})")
    return ", ".join(parts)


class SloTracker:
    """Feed it every merged endpoint tuple with its timestamp; it answers endpoint key → since when, and
    keeps the events it saw start or end until :meth:`take_events`. A tuple seen last time costs nothing
    (unless a breach is waiting out its hold)."""

    def __init__(self) -> None:
        self._endpoints: Sequence[Endpoint] | None = None
        self._since: dict[str, float] = {}
        self._ok_since: dict[str, float] = {}
        """Endpoints in breach that meet their objectives now: since when."""
        self._view: Mapping[str, float] = MappingProxyType({})
        self._events: list[Event] = []

    def update(self, endpoints: Sequence[Endpoint], now: float) -> Mapping[str, float]:
        if endpoints is self._endpoints and not self._ok_since:  # a hold ends with time alone
            return self._view
        self._endpoints = endpoints
        before = self._since
        since: dict[str, float] = {}
        ok_since: dict[str, float] = {}
        for ep in endpoints:
            verdict = breached(ep)
            was = before.get(ep.key)
            if verdict:
                since[ep.key] = now if was is None else was
                if was is None:
                    said = f"past its objective: {_said(ep)}"
                    self._events.append(Event(now, "endpoint", ep.key, "SLOBreach", said, True, 1, SEEN_BY))
            elif was is not None and verdict is False:
                ok = self._ok_since.get(ep.key, now)
                if now - ok < RECOVER_HOLD:
                    since[ep.key], ok_since[ep.key] = was, ok
                    continue
                said = f"meets its objectives again after {fmt_age(ok - was)} in breach: {_said(ep)}"
                self._events.append(Event(now, "endpoint", ep.key, "SLORecovered", said, False, 1, SEEN_BY))
        self._ok_since = ok_since
        if since != before:
            self._view = MappingProxyType(since)
        self._since = since
        return self._view

    def take_events(self) -> list[Event]:
        """The events seen since the last call, oldest first."""
        out, self._events = self._events, []
        return out
