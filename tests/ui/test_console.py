"""Drive the console with Pilot and check what the screen shows."""

from __future__ import annotations

import gc
from pathlib import Path

import pytest
from textual.app import ComposeResult
from textual.widgets._footer import FooterKey

from aios_tui.domain import NA, JobState
from aios_tui.ops import Actor, AuditLog, Ops, PermissionDenied, Role
from aios_tui.poll import Poller
from aios_tui.sources.base import SourceData
from aios_tui.sources.sim import SimSource
from aios_tui.ui.app import YOUNG_COLLECTION, AiosApp
from aios_tui.ui.harness import START, FakeClock
from aios_tui.ui.screens.detail import DetailScreen
from aios_tui.ui.screens.main import MainScreen
from aios_tui.ui.screens.plan import PlanScreen
from aios_tui.ui.widgets.footer import Footer
from tests.ui.conftest import MakeApp, screen_text


async def _settle(app: AiosApp, pilot: object) -> None:
    await app.workers.wait_for_complete()
    await pilot.pause()  # type: ignore[attr-defined]


async def test_opens_on_the_fleet_with_header_and_four_panes(make_app: MakeApp) -> None:
    app = make_app()
    async with app.run_test(size=(160, 50)) as pilot:
        await _settle(app, pilot)
        text = screen_text(app)
        snap = app.fleet
        assert snap is not None
        assert "aios-tui" in text and "● sim" in text
        assert f"Nodes {snap.totals.nodes_ready}/{snap.totals.nodes}" in text
        for title in ("1 Nodes 40", "2 GPUs", "3 Jobs", "4 Endpoints"):
            assert title in text
        assert snap.nodes[0].name in text and snap.endpoints[0].name in text
        queued = next(j for j in snap.jobs if j.state is JobState.QUEUED)
        assert "Queued #1" in text and queued.name in text  # the namespace is cut first, never the name


async def test_the_footer_follows_the_focused_pane_and_is_composed_once_at_start(
    make_app: MakeApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    composed: list[tuple[str, ...]] = []
    compose = Footer.compose

    def counted(self: Footer) -> ComposeResult:
        keys = list(compose(self))
        composed.append(tuple(k.description for k in keys if isinstance(k, FooterKey)))
        yield from keys

    monkeypatch.setattr(Footer, "compose", counted)
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await _settle(app, pilot)
        await pilot.pause()
        # Textual's own footer made its keys five times here, each restyled twice.
        assert [c for c in composed if c] == [composed[-1]] and "Cordon" in composed[-1]
        footer = screen_text(app).splitlines()[-1]
        assert "Cordon" in footer and "Scale" not in footer
        await pilot.press("4")
        await pilot.pause()
        footer = screen_text(app).splitlines()[-1]
        assert "Scale" in footer and "Cordon" not in footer
        await pilot.press("1")
        await pilot.pause()
        assert "Cordon" in screen_text(app).splitlines()[-1]


async def test_filter_narrows_the_pane_and_escape_clears(make_app: MakeApp) -> None:
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await _settle(app, pilot)
        snap = app.fleet
        assert snap is not None
        cordoned = next(n for n in snap.nodes if n.cordoned)
        await pilot.press("slash", *"cordoned", "enter")
        table = app.main.table("nodes")
        assert table.row_count == 1
        text = screen_text(app)
        assert cordoned.name in text and "/cordoned" in text
        assert [n.name for n in table.rows] == [cordoned.name]
        await pilot.press("escape")
        assert table.row_count == len(snap.nodes)


async def test_enter_opens_detail_with_sparklines_and_escape_returns(make_app: MakeApp) -> None:
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await _settle(app, pilot)
        first = app.main.table("nodes").cursor_object
        await pilot.press("down", "enter")
        await pilot.pause()
        assert isinstance(app.screen, DetailScreen)
        text = screen_text(app)
        second = app.fleet.nodes[1]  # type: ignore[union-attr]
        assert f"Node {second.name}" in text and "Mean util" in text and second.instance_type in text
        assert any(ch in text for ch in "▁▂▃▄▅▆▇█")
        assert "Scale" not in text.splitlines()[-1]  # only endpoints scale
        await pilot.press("escape")
        assert isinstance(app.screen, MainScreen)
        assert app.main.table("nodes").cursor_key == second.name != first.name  # type: ignore[union-attr]


async def test_cursor_stays_on_its_row_across_updates(make_app: MakeApp) -> None:
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await _settle(app, pilot)
        await pilot.press("2")
        table = app.main.table("gpus")
        await pilot.press("U")  # sort by utilisation: rows move between ticks
        for _ in range(5):
            await pilot.press("down")
        key = table.cursor_key
        app.fake_clock.advance(30)  # type: ignore[attr-defined]
        await pilot.press("ctrl+r")
        await _settle(app, pilot)
        assert table.cursor_key == key
        assert table.kind.key(table.cursor_object) == key


async def test_command_mode_switches_panes(make_app: MakeApp) -> None:
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await _settle(app, pilot)
        await pilot.press("colon", *"jobs", "enter")
        await pilot.pause()
        assert app.main.active == "jobs"
        assert "STATE" in screen_text(app) and "WHERE / WHY" in screen_text(app)
        await pilot.press("colon", *"ep", "enter")
        assert app.main.active == "endpoints"
        await pilot.press("colon", *"bogus", "enter")
        await pilot.pause()
        assert app.main.active == "endpoints"


async def test_scale_plan_confirm_and_see_new_replicas(make_app: MakeApp) -> None:
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await _settle(app, pilot)
        snap = app.fleet
        assert snap is not None
        target = next(e for e in snap.endpoints if e.hpa is None and "prod" not in e.namespace)
        new = target.replicas_desired + 1
        await pilot.press("4")
        assert app.main.table().select_key(target.key)
        await pilot.press("s")
        await pilot.pause()
        assert isinstance(app.screen, PlanScreen)
        await pilot.press("end", "ctrl+u", *str(new))  # replace the prefilled count
        await pilot.pause()
        text = screen_text(app)
        assert f"{target.replicas_desired} → {new}" in text and "$" in text
        await pilot.press("enter")
        await _settle(app, pilot)
        assert isinstance(app.screen, MainScreen)
        after = app.fleet.endpoint_by_key[target.key]  # type: ignore[union-attr]
        assert after.replicas_desired == new and after.replicas_ready < new
        app.fake_clock.advance(120)  # type: ignore[attr-defined]
        await pilot.press("ctrl+r")
        await _settle(app, pilot)
        assert f"{new}/{new}" in app.main.table().row_text(app.main.table().cursor_row)
        entries = app.ops.audit.read()
        assert entries[-1].action == "scale" and entries[-1].outcome == "ok"
        assert entries[-1].target == target.key and entries[-1].user == "tester"
        await pilot.press("a")  # the action log shows it too
        await pilot.pause()
        log = screen_text(app)
        assert "Action log" in log and f"{target.replicas_desired} to {new} replicas" in log and " ok " in log


async def test_scale_in_production_needs_the_typed_name(make_app: MakeApp) -> None:
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await _settle(app, pilot)
        target = next(e for e in app.fleet.endpoints if "prod" in e.namespace)  # type: ignore[union-attr]
        await pilot.press("4")
        app.main.table().select_key(target.key)
        await pilot.press("s", "end", "ctrl+u", *str(target.replicas_desired + 1), "enter")
        await pilot.pause()
        assert "type" in screen_text(app).lower() and target.name in screen_text(app)
        await pilot.press(*"wrong", "enter")
        await pilot.pause()
        assert isinstance(app.screen, PlanScreen) and "does not match" in screen_text(app)
        await pilot.press("end", "ctrl+u", *target.name, "enter")
        await _settle(app, pilot)
        assert app.fleet.endpoint_by_key[target.key].replicas_desired == target.replicas_desired + 1  # type: ignore[union-attr]


async def test_read_only_hides_and_refuses_scale(make_app: MakeApp) -> None:
    app = make_app(read_only=True)
    async with app.run_test(size=(120, 40)) as pilot:
        await _settle(app, pilot)
        await pilot.press("4")
        await pilot.pause()
        text = screen_text(app)
        assert "READ-ONLY" in text and "Scale" not in text.splitlines()[-1]
        before = app.fleet.endpoints[0]  # type: ignore[union-attr]
        await pilot.press("s")
        await pilot.pause()
        assert isinstance(app.screen, MainScreen)
        # Hiding the key is not the protection: the backend refuses too.
        plan = app.ops.plan("scale", endpoint=before.key, replicas=before.replicas_desired + 1)
        assert not plan.ok and "read-only" in plan.blockers[0]
        with pytest.raises(PermissionDenied):
            await app.ops.execute(plan, confirmation=before.name)
        await pilot.press("ctrl+r")
        await _settle(app, pilot)
        assert app.fleet.endpoint_by_key[before.key].replicas_desired == before.replicas_desired  # type: ignore[union-attr]
        assert app.ops.audit.read()[-1].outcome == "refused"


async def test_viewer_role_gets_no_scale_key(make_app: MakeApp) -> None:
    app = make_app(role=Role.VIEWER)
    async with app.run_test(size=(120, 40)) as pilot:
        await _settle(app, pilot)
        await pilot.press("4", "s")
        await pilot.pause()
        assert not isinstance(app.screen, PlanScreen)
        assert "s Scale" not in screen_text(app)


async def test_small_terminal_gets_a_message_and_80x24_gets_tabs(make_app: MakeApp) -> None:
    app = make_app()
    async with app.run_test(size=(70, 20)) as pilot:
        await _settle(app, pilot)
        text = screen_text(app)
        assert "at least 80×24" in text and "70×20" in text
        await pilot.resize_terminal(80, 24)
        await pilot.pause()
        text = screen_text(app)
        assert "at least" not in text
        assert "1 Nodes 40" in text and "2 GPUs" in text and "NAME" in text


class _FlakySource:
    """A second backend that answers once, then fails like an unreachable server."""

    kind = "test"
    interval = 1.0
    timeout = 1.0

    def __init__(self) -> None:
        self.name = "dcgm"
        self.calls = 0

    async def fetch(self) -> SourceData:
        self.calls += 1
        if self.calls > 1:
            raise ConnectionRefusedError("connect to 127.0.0.1:9400 failed, token=s3cr3t")
        return SourceData(context="lab")

    async def close(self) -> None:
        return None


async def test_failing_source_shows_stale_and_the_console_keeps_running(tmp_path: Path) -> None:
    clock = FakeClock()
    sim = SimSource(seed=7, nodes=40, clock=clock, start=START)
    flaky = _FlakySource()
    poller = Poller([sim, flaky], clock=clock)
    ops = Ops({sim.name: sim}, lambda: poller.snapshot, AuditLog(tmp_path / "audit.jsonl"), actor=Actor("t"))
    app = AiosApp(poller, ops, live=False, clock=clock)
    async with app.run_test(size=(120, 40)) as pilot:
        await _settle(app, pilot)
        assert "● dcgm" in screen_text(app) and "stale" not in screen_text(app)
        clock.advance(45)
        await pilot.press("ctrl+r")
        await _settle(app, pilot)
        text = screen_text(app)
        assert "dcgm stale 45s" in text
        assert "s3cr3t" not in str(app.fleet.sources) and "s3cr3t" not in text  # type: ignore[union-attr]
        assert app.fleet.nodes and app.main.table("nodes").row_count == 40  # type: ignore[union-attr]
        await pilot.press("2")
        assert app.main.active == "gpus"


async def test_sort_puts_the_hottest_gpu_first_and_filter_finds_faults(make_app: MakeApp) -> None:
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await _settle(app, pilot)
        snap = app.fleet
        assert snap is not None
        hottest = max((g for g in snap.gpus if g.temp is not NA), key=lambda g: float(g.temp))
        await pilot.press("2", "T")
        table = app.main.table("gpus")
        assert table.rows[0].uuid == hottest.uuid and "TEMP↓" in screen_text(app)
        await pilot.press("T")  # again: coolest first
        assert table.rows[0].uuid != hottest.uuid
        await pilot.press("slash", *"xid 79", "enter")
        faulty = [g for g in snap.gpus if g.xid == 79]
        assert faulty and [g.uuid for g in table.rows] == [g.uuid for g in faulty]
        await pilot.press("z")  # zoom: the pane gets the whole width, HEALTH included
        await pilot.pause()
        assert "XID 79" in screen_text(app)


async def test_tabs_update_only_the_pane_on_screen(make_app: MakeApp) -> None:
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await _settle(app, pilot)
        gpus = app.main.table("gpus")
        nodes = app.main.table("nodes")
        await pilot.press("2", "1")  # the GPUs pane has been on screen once, and is hidden again
        await pilot.pause()
        assert nodes.shown and not gpus.shown
        app.fake_clock.advance(30)  # type: ignore[attr-defined]
        await pilot.press("ctrl+r")
        await _settle(app, pilot)
        assert gpus._stale and not nodes._stale  # the hidden pane only remembers the snapshot
        await pilot.press("2")
        await pilot.pause()
        assert gpus.shown and not gpus._stale and gpus.row_count == len(app.fleet.gpus)  # type: ignore[union-attr]
        assert app.fleet.gpus[0].node in screen_text(app)  # type: ignore[union-attr]


async def test_the_sources_view_explains_each_failure_and_the_ages_tick_without_new_data(
    tmp_path: Path,
) -> None:
    clock = FakeClock()
    sim = SimSource(seed=7, nodes=40, clock=clock, start=START)
    flaky = _FlakySource()
    poller = Poller([sim, flaky], clock=clock)
    ops = Ops({sim.name: sim}, lambda: poller.snapshot, AuditLog(tmp_path / "audit.jsonl"), actor=Actor("t"))
    app = AiosApp(poller, ops, live=False, clock=clock)
    async with app.run_test(size=(120, 40)) as pilot:
        await _settle(app, pilot)
        clock.advance(45)
        await pilot.press("ctrl+r")
        await _settle(app, pilot)
        await pilot.press("e")
        await pilot.pause()
        text = screen_text(app)
        assert "2 sources: 1 ok, 1 stale" in text
        dcgm = next(line for line in text.splitlines() if line.lstrip().startswith("dcgm"))
        assert "stale 45s" in dcgm and "45s ago" in dcgm
        assert "connection refused (connect to" in dcgm
        await pilot.press("down")  # the cursor on dcgm: its whole error below the table
        await pilot.pause()
        text = screen_text(app)
        assert "dcgm: connection refused (connect to 127.0.0.1:9400 failed, token=***)" in text, text
        assert "s3cr3t" not in text
        # Nothing new comes (a hung source): the clock moves, and the ages with it.
        clock.advance(30)
        app._tick()
        await pilot.pause()
        dcgm = next(line for line in screen_text(app).splitlines() if line.lstrip().startswith("dcgm"))
        assert "stale 75s" in dcgm and "75s ago" in dcgm
        header = screen_text(app).splitlines()[0]
        assert "dcgm stale 75s" in header
        await pilot.press("escape")
        await pilot.click("#header")  # the header's source marks lead to the same view
        await pilot.pause()
        assert "2 sources: 1 ok, 1 stale" in screen_text(app)


async def test_the_cyclic_collector_is_back_on_once_the_first_snapshot_is_in(make_app: MakeApp) -> None:
    """``aios-tui`` starts with the collector off (``cli.run_console``: startup's full collections cost
    ~0.3 s of the first frame with data at 5,000 nodes); the first snapshot turns it back on, its objects
    frozen out of its scans. Left off, every reference cycle the console drops afterwards would leak."""
    app = make_app()
    threshold = gc.get_threshold()
    gc.set_threshold(700, 10, 10)  # Python's default (an app run before this test set its own)
    gc.disable()
    try:
        async with app.run_test(size=(120, 40)) as pilot:
            await app.workers.wait_for_complete()
            await pilot.pause()
            assert app.fleet is not None
            assert gc.isenabled()
            assert gc.get_threshold() == (YOUNG_COLLECTION, 10, 10)
    finally:
        gc.set_threshold(*threshold)
        gc.enable()
