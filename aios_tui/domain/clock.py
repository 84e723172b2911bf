"""The program's one wall clock: every reading of the date or the time of day goes through :func:`now`.

The embedded fleet's traffic follows the hour of the day, audit lines and job names carry the date, the header
shows the time: all of it reads :func:`now`, so that a test pins one place (:func:`use`) and draws the same
screen, plans the same drain and names the same job at any date and hour. Durations, timeouts and sleeps are
not readings of the date: they use the monotonic clock (``time.monotonic``, the event loop's ``time()``).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

__all__ = ["Clock", "FrozenClock", "now", "now_utc", "use"]

Clock = Callable[[], float]
"""Seconds since the epoch, as ``time.time``."""

_in_use: list[Clock] = [time.time]
"""The clock :func:`now` reads: the last one pushed by :func:`use`."""


def now() -> float:
    """Seconds since the epoch, from the clock in use (the system's unless a test pinned another)."""
    return _in_use[-1]()


def now_utc() -> datetime:
    """:func:`now` as an aware UTC datetime."""
    return datetime.fromtimestamp(now(), UTC)


@contextmanager
def use(clock: Clock) -> Iterator[Clock]:
    """Read ``clock`` instead of the system's within the ``with`` block (tests, scripted screenshots)."""
    _in_use.append(clock)
    try:
        yield clock
    finally:
        _in_use.remove(clock)


class FrozenClock:
    """A clock that stands still until :meth:`advance` moves it: the same readings every run."""

    def __init__(self, t: float) -> None:
        self.t = float(t)

    def __call__(self) -> float:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += seconds
