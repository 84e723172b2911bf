"""Suite-wide: run every test at another wall clock when ``WALL_CLOCK_FOR_TESTS`` says so.

No test may depend on the date or the hour (the ones that need a time pin ``aios_tui.domain.clock``).
``scripts/test.sh`` proves it by running the console's and the CLI's tests again with the wall clock moved
(``WALL_CLOCK_FOR_TESTS=2027-02-28T23:59:30+00:00``): time-machine moves ``time.time``, ``datetime.now`` and
the rest for this process, and leaves the monotonic clock that timers and timeouts use alone. (libfaketime,
which does the same from outside, slows every thread hand-off of asyncio's ``to_thread`` ~200-fold here and
breaks ``subprocess``: the suite timed out under it.)
"""

from __future__ import annotations

import os
from datetime import datetime

import pytest

_WHEN = pytest.StashKey[str]()
_TRAVEL = pytest.StashKey[object]()


def pytest_configure(config: pytest.Config) -> None:
    when = os.environ.get("WALL_CLOCK_FOR_TESTS", "").strip()
    if not when:
        return
    import time_machine

    traveller = time_machine.travel(datetime.fromisoformat(when), tick=True)
    traveller.start()
    config.stash[_TRAVEL] = traveller  # held for the whole session
    config.stash[_WHEN] = when


def pytest_report_header(config: pytest.Config) -> str | None:
    when = config.stash.get(_WHEN, None)
    return f"wall clock moved to {when} (WALL_CLOCK_FOR_TESTS)" if when else None
