"""One wall clock: nothing in the package reads the date or the time of day but through
``domain/clock.py``, so that a test that pins it controls every reading (the suite passes at any date and
hour)."""

from __future__ import annotations

import re
from pathlib import Path

from aios_tui.domain import clock

PACKAGE = Path(__file__).resolve().parents[2] / "aios_tui"
WALL_READS = re.compile(
    r"time\.time\b|time\.time_ns\b|datetime\.now\(|datetime\.utcnow\(|date\.today\(|"
    r"time\.(gmtime|localtime|ctime|asctime)\(\)|time\.strftime\([^,()]*\)"
)


def test_nothing_reads_the_wall_clock_but_the_clock_module() -> None:
    offenders = [
        f"{path.relative_to(PACKAGE.parent)}:{n}: {line.strip()}"
        for path in sorted(PACKAGE.rglob("*.py"))
        if path.name != "clock.py"
        for n, line in enumerate(path.read_text().splitlines(), start=1)
        if WALL_READS.search(line)
    ]
    assert offenders == []


def test_a_pinned_clock_is_what_now_reads_until_released() -> None:
    frozen = clock.FrozenClock(1_000.0)
    before = clock.now()
    with clock.use(frozen):
        assert clock.now() == 1_000.0
        frozen.advance(2.5)
        assert clock.now_utc().timestamp() == 1_002.5
        with clock.use(lambda: 7.0):
            assert clock.now() == 7.0
        assert clock.now() == 1_002.5
    # The unit tests pin it too (tests/unit/conftest.py): back to that one, not to the system's.
    assert clock.now() == before
