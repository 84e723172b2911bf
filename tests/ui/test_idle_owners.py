"""Idle cost → owner → scale down: the idle view opens on the workloads that hold idle GPUs, dearest first;
enter opens the owner, ``s`` the endpoint's scale plan, ``o`` switches to one row per GPU and back."""

from __future__ import annotations

import pytest

from aios_tui.domain import fmt_money
from aios_tui.render.views import IdleOwner, gpu_owner
from aios_tui.ui.app import AiosApp
from aios_tui.ui.screens.detail import DetailScreen
from aios_tui.ui.screens.plan import PlanScreen
from aios_tui.ui.screens.views import IdleScreen
from tests.ui.conftest import MakeApp, screen_text


async def _settle(app: AiosApp, pilot: object) -> None:
    await app.workers.wait_for_complete()
    await pilot.pause()  # type: ignore[attr-defined]


def _current(app: AiosApp) -> object:
    """The screen on top (a function, so that a check after a push is not narrowed away)."""
    return app.screen


async def test_idle_cost_by_owner_then_scale_the_endpoint_down(make_app: MakeApp) -> None:
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await _settle(app, pilot)
        snap = app.fleet
        assert snap is not None
        by_owner: dict[str, list[float]] = {}
        for g in snap.idle_gpus:
            by_owner.setdefault(gpu_owner(snap, g), []).append(float(snap.gpu_price(g)))
        assert len(by_owner) >= 2, "the embedded fleet has an over-provisioned endpoint and hung jobs"
        dearest = max(by_owner, key=lambda k: sum(by_owner[k]))

        await pilot.press("i")
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, IdleScreen)
        rows = list(screen.table.rows)
        assert all(isinstance(r, IdleOwner) for r in rows)
        assert rows[0].key == dearest
        costs = [r.cost_per_hour for r in rows]
        assert costs == sorted(costs, reverse=True)
        assert {r.key: r.gpus for r in rows} == {k: len(v) for k, v in by_owner.items()}
        assert sum(costs) == pytest.approx(float(snap.totals.idle_cost_per_hour))
        text = screen_text(app)
        assert f"in {len(rows)} workloads" in text and fmt_money(snap.totals.idle_cost_per_hour) in text
        assert "NAMESPACE" in text and "$/H↑" in text and "IDLE FOR" in text  # sorted on $/h
        first = screen.table.row_text(0)
        assert dearest.split("/")[1][:12] in first and f"{sum(by_owner[dearest]):,.2f}" in first

        # One row per GPU and back, the filter kept.
        await pilot.press("o")
        await pilot.pause()
        assert screen.table is screen.per_gpu and len(screen.table.rows) == len(snap.idle_gpus)
        await pilot.press("o")
        await pilot.pause()
        assert screen.table is screen.owners

        # Enter opens the owner: the endpoint (or job) itself, not one of its GPUs.
        endpoint = next(r for r in rows if r.kind == "endpoint")
        assert screen.table.select_key(endpoint.key)
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, DetailScreen)
        assert endpoint.key in screen_text(app)
        await pilot.press("escape")
        await pilot.pause()
        assert _current(app) is screen

        # s: the scale plan for that endpoint; on a job row there is nothing to scale.
        await pilot.press("s")
        await pilot.pause()
        assert isinstance(app.screen, PlanScreen)
        assert endpoint.key in screen_text(app)
        await pilot.press("escape")
        await pilot.pause()
        job = next((r for r in rows if r.kind == "job"), None)
        if job is not None:
            assert screen.table.select_key(job.key)
            assert screen.targets_for("scale") == ()
            await pilot.press("s")
            await pilot.pause()
            assert _current(app) is screen  # no plan: it says why instead
            said = f"{job.key} is a job: only an endpoint scales (enter opens it)"
            assert said in [n.message for n in app._notifications]
