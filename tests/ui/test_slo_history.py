"""On-call, the embedded fleet: the endpoint furthest past its objective comes first and says so in words
(NO_COLOR turns every alarm grey), and its p99 chart still shows the incident after it was fixed."""

from __future__ import annotations

import pytest

from aios_tui.ui.app import AiosApp
from tests.ui.conftest import MakeApp, screen_text


async def _settle(app: AiosApp, pilot: object) -> None:
    await app.workers.wait_for_complete()
    await pilot.pause()  # type: ignore[attr-defined]


async def test_the_breaching_endpoint_comes_first_in_words(
    make_app: MakeApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NO_COLOR", "1")
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await _settle(app, pilot)
        app.fake_clock.advance(180)  # type: ignore[attr-defined]
        await pilot.press("ctrl+r")
        await _settle(app, pilot)
        await pilot.press("4")
        await pilot.pause()
        lines = screen_text(app).splitlines()
        header = next(i for i, line in enumerate(lines) if "P99/SLO" in line)
        assert "SLO" in lines[header].split("P99/SLO")[1]
        first = lines[header + 1]
        assert "ranking-dlrm-fe" in first, first
        assert "/32" in first and "BREACH 3m" in first, first
        assert any(" ok " in line for line in lines[header + 2 :])


async def test_p99_breach_to_scale_in_few_keys_and_the_chart_keeps_the_incident(make_app: MakeApp) -> None:
    """The on-call story: first screen → the endpoints → scale the one on top → its chart after the fix."""
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await _settle(app, pilot)
        # Seven keys from the first screen to the plan for the breaching endpoint (it is on top), then the
        # typed confirmation every production endpoint asks for.
        for key in ("4", "s", "end", "ctrl+u", "1", "2", "enter", *"ranking-dlrm-feed", "enter"):
            await pilot.press(key)
            await pilot.pause()
        await _settle(app, pilot)
        snap = app.fleet
        assert snap is not None
        ep = snap.endpoint_by_key["ml-prod/ranking-dlrm-feed"]
        assert ep.replicas_desired == 12
        for _ in range(30):  # replicas start one by one, 2 s a poll
            app.fake_clock.advance(2)  # type: ignore[attr-defined]
            await pilot.press("ctrl+r")
            await _settle(app, pilot)
        await pilot.press("enter")  # the endpoint's detail, still the first row
        await pilot.pause()
        text = screen_text(app)
        assert "ml-prod/ranking-dlrm-feed" in text
        p99 = next(line for line in text.splitlines() if line.lstrip().startswith("p99") and " min " in line)
        low, high = (float(x.strip().removesuffix("ms")) for x in p99.split("min ")[1].split(" max "))
        assert low < 32 < 400 < high, p99  # fixed now, and the incident still in the chart
