"""Snapshot tests: the console drawn at 80×24 and 160×50 from a fixed seed and a frozen clock.

Update after an intended change with ``pytest tests/ui/test_snapshots.py --snapshot-update`` and look at the
report before committing.
"""

from __future__ import annotations

from typing import Any

from tests.ui.conftest import MakeApp


async def _loaded(pilot: Any) -> None:
    await pilot.app.workers.wait_for_complete()
    await pilot.pause()


def test_main_80x24(snap_compare: Any, make_app: MakeApp) -> None:
    assert snap_compare(make_app(), terminal_size=(80, 24), run_before=_loaded)


def test_main_160x50(snap_compare: Any, make_app: MakeApp) -> None:
    assert snap_compare(make_app(), terminal_size=(160, 50), run_before=_loaded)


def test_endpoints_tab_80x24(snap_compare: Any, make_app: MakeApp) -> None:
    async def run_before(pilot: Any) -> None:
        await _loaded(pilot)
        await pilot.press("4")

    assert snap_compare(make_app(), terminal_size=(80, 24), run_before=run_before)


def test_node_detail_80x24(snap_compare: Any, make_app: MakeApp) -> None:
    async def run_before(pilot: Any) -> None:
        await _loaded(pilot)
        await pilot.press("enter")
        await pilot.pause()

    assert snap_compare(make_app(), terminal_size=(80, 24), run_before=run_before)


def test_scale_plan_80x24(snap_compare: Any, make_app: MakeApp) -> None:
    async def run_before(pilot: Any) -> None:
        await _loaded(pilot)
        await pilot.press("4", "s", "end", "ctrl+u", "9")
        await pilot.pause()

    assert snap_compare(make_app(), terminal_size=(80, 24), run_before=run_before)


def test_idle_gpus_80x24(snap_compare: Any, make_app: MakeApp) -> None:
    async def run_before(pilot: Any) -> None:
        await _loaded(pilot)
        await pilot.press("i")
        await pilot.pause()

    assert snap_compare(make_app(), terminal_size=(80, 24), run_before=run_before)


def test_nodes_to_cordon_80x24(snap_compare: Any, make_app: MakeApp) -> None:
    async def run_before(pilot: Any) -> None:
        await _loaded(pilot)
        await pilot.press("h")
        await pilot.pause()

    assert snap_compare(make_app(), terminal_size=(80, 24), run_before=run_before)


def test_pools_80x24(snap_compare: Any, make_app: MakeApp) -> None:
    async def run_before(pilot: Any) -> None:
        await _loaded(pilot)
        await pilot.press("p")
        await pilot.pause()

    assert snap_compare(make_app(), terminal_size=(80, 24), run_before=run_before)


def test_free_capacity_80x24(snap_compare: Any, make_app: MakeApp) -> None:
    async def run_before(pilot: Any) -> None:
        await _loaded(pilot)
        await pilot.press("f")
        await pilot.pause()

    assert snap_compare(make_app(), terminal_size=(80, 24), run_before=run_before)
