"""A console on the embedded fleet with a frozen clock: the same seed and clock draw the same screen."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from aios_tui.domain import clock
from aios_tui.ui.app import AiosApp
from aios_tui.ui.harness import FakeClock, sim_app


def screen_text(app: AiosApp) -> str:
    """What the terminal shows now, as plain text, one line per row."""
    return "\n".join(strip.text for strip in app.screen._compositor.render_strips())


MakeApp = Callable[..., AiosApp]


@pytest.fixture(autouse=True)
def pinned_clock() -> Iterator[FakeClock]:
    """The wall clock of every UI test (audit lines, job names, the header): the harness's, standing still."""
    frozen = FakeClock()
    with clock.use(frozen):
        yield frozen


@pytest.fixture
def make_app(tmp_path: Path, pinned_clock: FakeClock) -> MakeApp:
    def make(**kwargs: Any) -> AiosApp:
        kwargs.setdefault("clock", pinned_clock)
        app, fake = sim_app(tmp_path / "audit.jsonl", **kwargs)
        app.fake_clock = fake  # type: ignore[attr-defined]
        return app

    return make
