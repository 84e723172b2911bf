"""The telemetry views through the console: allocated-but-idle GPUs (``i``) and nodes to cordon (``h``),
driven with Pilot on the embedded fleet, asserting on what the screen shows."""

from __future__ import annotations

import pytest

from aios_tui.domain import Health, fmt_money
from aios_tui.domain.health import Need
from aios_tui.ops import Role, get, suggest_cordons
from aios_tui.render.views import gpu_owner
from aios_tui.ui.app import AiosApp
from aios_tui.ui.screens.detail import DetailScreen
from aios_tui.ui.screens.main import MainScreen
from aios_tui.ui.screens.plan import PlanScreen
from aios_tui.ui.screens.views import CordonScreen, IdleScreen
from tests.ui.conftest import MakeApp, screen_text


async def _settle(app: AiosApp, pilot: object) -> None:
    await app.workers.wait_for_complete()
    await pilot.pause()  # type: ignore[attr-defined]


async def _tick(app: AiosApp, pilot: object, seconds: float) -> None:
    app.fake_clock.advance(seconds)  # type: ignore[attr-defined]
    await pilot.press("ctrl+r")  # type: ignore[attr-defined]
    await _settle(app, pilot)


def _rows(screen: IdleScreen | CordonScreen) -> list[str]:
    return [screen.table.row_text(i) for i in range(len(screen.table.rows))]


async def test_idle_view_lists_idle_gpus_agrees_with_the_header_and_sorts(make_app: MakeApp) -> None:
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await _settle(app, pilot)
        snap = app.fleet
        assert snap is not None and snap.idle_window == 600.0
        idle = snap.idle_gpus
        assert idle, "the embedded fleet starts with idle GPUs (hung jobs, an over-provisioned endpoint)"
        money = fmt_money(snap.totals.idle_cost_per_hour)
        assert f"{len(idle)} idle {money}" in screen_text(app).splitlines()[1]

        await pilot.press("i", "o")  # o: one row per GPU (the view opens on the roll-up by owner)
        await pilot.pause()
        assert isinstance(app.screen, IdleScreen)
        text = screen_text(app)
        assert f"{len(idle)} allocated GPUs under 5% for ≥ 10m: {money}" in text
        assert f"{len(idle)} idle {money}" in text.splitlines()[1]  # the header says the same
        assert "OWNER" in text and "IDLE FOR↑" in text
        rows = _rows(app.screen)
        assert len(rows) == len(idle)
        # Longest idle first: the over-provisioned endpoint (hours) before the hung job (minutes).
        assert "llama-3-8b-canary" in rows[0] and "h" in rows[0].split()[-2]
        owners = {g.node for g in idle}
        assert {r.split()[0] for r in rows} == owners
        exact = sum(float(snap.gpu_price(g)) for g in idle)
        assert exact == pytest.approx(float(snap.totals.idle_cost_per_hour))
        shown = sum(float(r.split()[-1]) for r in rows)  # each row rounded to the cent
        assert shown == pytest.approx(exact, abs=0.005 * len(rows))

        await pilot.press("C")  # most expensive first
        await pilot.pause()
        prices = [float(r.split()[-1]) for r in _rows(app.screen)]
        assert prices == sorted(prices, reverse=True) and prices[0] > prices[-1]
        assert "$/H↓" in screen_text(app)
        await pilot.press("C")  # again: reversed
        await pilot.pause()
        assert [float(r.split()[-1]) for r in _rows(app.screen)] == sorted(prices)

        await pilot.press("slash", *"canary", "enter")
        await pilot.pause()
        assert all("canary" in r for r in _rows(app.screen))
        assert "(shown: " in screen_text(app)

        await pilot.press("escape", "escape")  # clear the filter, then back
        await pilot.pause()
        assert isinstance(app.screen, MainScreen)


async def test_idle_gpu_enter_opens_its_detail(make_app: MakeApp) -> None:
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await _settle(app, pilot)
        app.run_command(":idle")
        await pilot.pause()
        assert isinstance(app.screen, IdleScreen)
        await pilot.press("o")
        gpu = app.screen.table.cursor_object
        await pilot.press("enter")
        await pilot.pause()
        assert gpu.uuid in screen_text(app)


async def test_a_new_replica_of_an_idle_endpoint_counts_once_idle_for_the_window(make_app: MakeApp) -> None:
    """The embedded fleet knows its own idle GPUs; a replica added now is followed by the poller instead,
    and joins the idle view only after ``idle_window`` (600 s) under 5 %."""
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await _settle(app, pilot)
        snap = app.fleet
        assert snap is not None
        owners = {gpu_owner(snap, g) for g in snap.idle_gpus}
        endpoint = next(k for k in owners if k in snap.endpoint_by_key)
        replicas = snap.endpoint_by_key[endpoint].replicas_desired
        before = len(snap.idle_gpus)
        app.start_action("scale", [endpoint], {"replicas": str(replicas + 1)})
        await pilot.pause()
        assert isinstance(app.screen, PlanScreen)
        await pilot.press("enter")
        await _settle(app, pilot)
        await pilot.press("i", "o")
        await pilot.pause()
        assert isinstance(app.screen, IdleScreen)
        for _ in range(3):  # the new replica starts and becomes ready
            await _tick(app, pilot, 20.0)
        snap = app.fleet
        assert snap is not None
        followed = [g for g in snap.gpus if g.uuid in snap.gpu_low_since]
        assert followed and all(gpu_owner(snap, g) == endpoint for g in followed)
        assert len(snap.idle_gpus) == before
        assert f"{before} allocated GPUs under 5%" in screen_text(app)
        await _tick(app, pilot, 600.0)
        snap = app.fleet
        assert snap is not None
        assert len(snap.idle_gpus) == before + len(followed)
        assert f"{before + len(followed)} allocated GPUs under 5%" in screen_text(app)
        assert {g.uuid for g in followed} <= {r.uuid for r in app.screen.table.rows}


async def test_health_view_shows_the_xid_node_with_its_verdict_and_cordons_it(make_app: MakeApp) -> None:
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await _settle(app, pilot)
        snap = app.fleet
        assert snap is not None
        suggestions = suggest_cordons(snap)
        assert len(suggestions) >= 2 and suggestions[0].severity is Health.FAIL
        assert f"{len(suggestions)} to cordon" in screen_text(app).splitlines()[1]
        [bad] = [g for g in snap.gpus if g.xid == 79]
        worst = snap.verdicts[bad.node]
        assert worst.need is Need.REBOOT and not worst.cordoned

        await pilot.press("h")
        await pilot.pause()
        assert isinstance(app.screen, CordonScreen)
        text = screen_text(app)
        assert f"{len(snap.verdicts)} nodes need attention: 1 reboot, 1 reset, 1 drain" in text
        assert "VERDICT" in text and "WHAT IT HITS" in text and "CORDONED BY" in text
        rows = _rows(app.screen)
        assert len(rows) == len(snap.verdicts)
        # Worst first, the verdict in a word (NO_COLOR still tells), the XID with its time and the remedy.
        assert rows[0].split()[:2] == [worst.node, "reboot"]
        assert f"gpu{bad.index} XID 79 fallen off the bus, 12m ago → reboot node" in rows[0]
        [quarantined] = [r for r in rows if "NVSentinel" in r]
        assert quarantined.split()[1] == "reset" and "row remap pending → reset GPU" in quarantined
        assert any("NVLink errors" in r and r.split()[1] == "watch" for r in rows)

        await pilot.press("N")  # sort by node name
        await pilot.pause()
        names = [r.split()[0] for r in _rows(app.screen)]
        assert names == sorted(names)
        assert app.screen.table.select_key(worst.node)

        # Enter opens the node's detail; esc comes back.
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, DetailScreen)
        assert "XID 79" in screen_text(app)
        await pilot.press("escape")
        await pilot.pause()
        assert isinstance(app.screen, CordonScreen)

        # The drain action's key opens the drain plan from here, as from Nodes.
        drain_key = get("drain").key
        assert drain_key is not None
        await pilot.press(drain_key)
        await pilot.pause()
        assert isinstance(app.screen, PlanScreen)
        assert f"Drain {worst.node}" in screen_text(app)
        await pilot.press("escape")
        await pilot.pause()
        assert isinstance(app.screen, CordonScreen)

        await pilot.press("c")
        await pilot.pause()
        assert isinstance(app.screen, PlanScreen)
        assert f"Cordon {worst.node}" in screen_text(app)
        await pilot.press("enter")
        await _settle(app, pilot)
        assert app.fleet.node_by_name[worst.node].cordoned  # type: ignore[union-attr]
        assert app.ops.audit.read()[-1].action == "cordon"
        assert app.ops.audit.read()[-1].target == worst.node
        assert isinstance(app.screen, CordonScreen)
        # Still a verdict (its GPU is still off the bus), now cordoned by us; no longer to cordon.
        [row] = [r for r in _rows(app.screen) if r.startswith(worst.node)]
        assert row.split()[1] == "reboot" and row.rstrip().endswith("aios-tui")
        assert f"{len(suggestions) - 1} to cordon" in screen_text(app).splitlines()[1]


async def test_read_only_refuses_the_suggested_cordon(make_app: MakeApp) -> None:
    for kwargs in ({"read_only": True}, {"role": Role.VIEWER}):
        app = make_app(**kwargs)
        async with app.run_test(size=(80, 24)) as pilot:
            await _settle(app, pilot)
            app.run_command("health")
            await pilot.pause()
            assert isinstance(app.screen, CordonScreen)
            assert "c Cordon" not in screen_text(app)
            node = app.screen.table.cursor_key
            await pilot.press("c")
            await pilot.pause()
            assert isinstance(app.screen, CordonScreen)
            assert not app.fleet.node_by_name[node].cordoned  # type: ignore[union-attr,index]


async def test_pools_view_scales_a_pool_through_the_plan_screen(make_app: MakeApp) -> None:
    from aios_tui.ui.screens.views import PoolsScreen

    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await _settle(app, pilot)
        snap = app.fleet
        assert snap is not None
        [job] = [j for j in snap.jobs if j.state.value == "Queued"]
        await pilot.press("p")
        await pilot.pause()
        assert isinstance(app.screen, PoolsScreen)
        text = screen_text(app)
        assert f"{len(snap.pools)} node pools" in text and "QUEUED" in text and "MIN–MAX" in text
        pool = snap.pools_by_name["h100-a"]
        assert f"{pool.nodes}/{pool.nodes}" in text
        app.screen.table.set_filter("h100-a")
        await pilot.pause()
        await pilot.press("s")
        await pilot.pause()
        assert isinstance(app.screen, PlanScreen)
        await pilot.press("end", "ctrl+u", *str(pool.max_size))
        await _settle(app, pilot)
        text = screen_text(app)
        assert f"Scale node pool h100-a from {pool.nodes} to {pool.max_size} nodes" in text
        assert job.key in text and "Unblocks" in text
        assert f"+{fmt_money((pool.max_size - pool.nodes) * float(pool.price_per_hour))}" in text
        await pilot.press("enter")
        await _settle(app, pilot)
        assert isinstance(app.screen, PoolsScreen)
        assert f"{pool.nodes}/{pool.max_size}" in screen_text(app)  # launching: nodes / desired
        await _tick(app, pilot, 61)
        assert f"{pool.max_size}/{pool.max_size}" in screen_text(app)


async def test_pools_view_hides_scale_when_read_only(make_app: MakeApp) -> None:
    app = make_app(read_only=True)
    async with app.run_test(size=(80, 24)) as pilot:
        await _settle(app, pilot)
        await pilot.press("p", "s")
        await pilot.pause()
        assert not isinstance(app.screen, PlanScreen)


async def test_capacity_view_shows_where_the_free_gpus_are_and_opens_a_racks_nodes(make_app: MakeApp) -> None:
    """``f``: free GPUs per zone, rack and pool, counted here from the nodes themselves; enter on a rack
    shows its nodes in the Nodes pane; ``F`` sorts the most free first."""
    from aios_tui.ui.screens.views import CapacityScreen

    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await _settle(app, pilot)
        snap = app.fleet
        assert snap is not None
        usable = [
            n
            for n in snap.nodes
            if n.gpus_allocatable and n.schedulable and n.name not in snap.failed_nodes and not n.lost_since
        ]
        free = sum(max(0, n.gpus_allocatable - n.gpus_requested) for n in usable)
        whole = sum(1 for n in usable if n.gpus_requested == 0)
        eights = sum(max(0, n.gpus_allocatable - n.gpus_requested) // 8 for n in usable)
        blocked = sum(1 for n in snap.nodes if n.gpus_allocatable and n not in usable and not n.lost_since)
        await pilot.press("f")
        await pilot.pause()
        assert isinstance(app.screen, CapacityScreen)
        text = screen_text(app)
        assert f"Free {free:,}/{len(snap.gpus):,} GPUs · {whole} whole node{'s' * (whole != 1)} · " in text
        assert f"8×{eights}" in text and f"{blocked} GPU node{'s' * (blocked != 1)} blocked" in text
        assert "UNUSABLE" in text and "8GPU" in text
        # A rack with room: its row, then its nodes.
        rack = next(n.rack for n in usable if n.rack and n.gpus_requested == 0)
        model = next(n.gpu_model for n in usable if n.rack == rack)
        rack_free = sum(max(0, n.gpus_allocatable - n.gpus_requested) for n in usable if n.rack == rack)
        screen = app.screen
        screen.table.set_filter(f"rack {rack}")
        await pilot.pause()
        [row] = [screen.table.row_text(i) for i in range(len(screen.table.rows))]
        assert row.split()[:3] == ["rack", rack, model] and f"{rack_free}/" in row
        await pilot.press("enter")
        await _settle(app, pilot)
        assert isinstance(app.screen, MainScreen) and app.screen.active == "nodes"
        nodes = app.screen.table().rows
        assert nodes and {n.rack for n in nodes} == {rack}
        assert len(nodes) == sum(1 for n in snap.nodes if n.rack == rack)
        await pilot.press("f")
        await pilot.pause()
        app.screen.table.set_filter("")
        await pilot.press("F")
        await pilot.pause()
        top = app.screen.table.rows[0]
        assert top.free == max(r.free for r in app.screen.table.rows)
        await pilot.press("escape")
        await pilot.pause()
        assert isinstance(app.screen, MainScreen)
