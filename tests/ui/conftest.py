"""A console on the embedded fleet with a frozen clock: the same seed and clock draw the same screen."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from aios_tui.ui.app import AiosApp
from aios_tui.ui.harness import sim_app


def screen_text(app: AiosApp) -> str:
    """What the terminal shows now, as plain text, one line per row."""
    return "\n".join(strip.text for strip in app.screen._compositor.render_strips())


MakeApp = Callable[..., AiosApp]


@pytest.fixture
def make_app(tmp_path: Path) -> MakeApp:
    def make(**kwargs: Any) -> AiosApp:
        app, clock = sim_app(tmp_path / "audit.jsonl", **kwargs)
        app.fake_clock = clock  # type: ignore[attr-defined]
        return app

    return make
