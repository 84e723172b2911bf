"""Every unit test reads the same date and hour: the embedded fleet's traffic follows the hour of the day, so
a test that took the wall clock would plan a different drain at 19:55 than at 11:06."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from aios_tui.domain import clock
from aios_tui.ui.harness import START


@pytest.fixture(autouse=True)
def pinned_clock() -> Iterator[clock.FrozenClock]:
    """The wall clock every unit test sees: 2026-11-18 11:06:40 UTC, standing still unless advanced."""
    frozen = clock.FrozenClock(START)
    with clock.use(frozen):
        yield frozen
