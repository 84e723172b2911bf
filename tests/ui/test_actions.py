"""Every action flow through the console: plan on screen, confirmation, execution on the embedded fleet,
the result on the next tick, and the audit entry."""

from __future__ import annotations

from pathlib import Path

import pytest

from aios_tui.domain import JobState
from aios_tui.ops import Actor, AuditLog, Ops, PermissionDenied, Role
from aios_tui.poll import Poller
from aios_tui.sources.sim import SimSource
from aios_tui.ui.app import AiosApp
from aios_tui.ui.harness import START, FakeClock
from aios_tui.ui.screens.main import MainScreen
from aios_tui.ui.screens.plan import PlanScreen
from tests.ui.conftest import MakeApp, screen_text


async def _settle(app: AiosApp, pilot: object) -> None:
    await app.workers.wait_for_complete()
    await pilot.pause()  # type: ignore[attr-defined]


async def _tick(app: AiosApp, pilot: object, seconds: float) -> None:
    app.fake_clock.advance(seconds)  # type: ignore[attr-defined]
    await pilot.press("ctrl+r")  # type: ignore[attr-defined]
    await _settle(app, pilot)


def _footer(app: AiosApp) -> str:
    return screen_text(app).splitlines()[-1]


async def test_cordon_then_uncordon(make_app: MakeApp) -> None:
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await _settle(app, pilot)
        node = next(n for n in app.fleet.nodes if n.schedulable and n.gpus_total)  # type: ignore[union-attr]
        table = app.main.table("nodes")
        assert table.select_key(node.name)
        await pilot.press("c")
        await pilot.pause()
        assert isinstance(app.screen, PlanScreen) and f"Cordon {node.name}" in screen_text(app)
        await pilot.press("enter")
        await _settle(app, pilot)
        assert app.fleet.node_by_name[node.name].cordoned  # type: ignore[union-attr]
        assert "Cordoned" in table.row_text(table.cursor_row)
        await pilot.press("c")  # again: it is cordoned already, and the plan says which key undoes it
        await pilot.pause()
        assert "already cordoned: did you mean uncordon (u)?" in screen_text(app)
        await pilot.press("escape", "u")
        await pilot.pause()
        assert f"Uncordon {node.name}" in screen_text(app)
        await pilot.press("enter")
        await _settle(app, pilot)
        assert not app.fleet.node_by_name[node.name].cordoned  # type: ignore[union-attr]
        records = app.ops.audit.records()
        assert [(r.first.action, r.outcome) for r in records] == [("cordon", "ok"), ("uncordon", "ok")]


async def test_drain_a_training_node_needs_emptydir_consent_and_moves_the_gang(make_app: MakeApp) -> None:
    app = make_app()
    async with app.run_test(size=(140, 45)) as pilot:
        await _settle(app, pilot)
        snap = app.fleet
        assert snap is not None
        job = next(j for j in snap.jobs if j.state is JobState.RUNNING and j.workers <= 2)
        node = job.placement[0]
        await pilot.press("1")
        app.main.table("nodes").select_key(node)
        await pilot.press("D")
        await pilot.pause()
        text = screen_text(app)
        assert f"Drain {node}" in text and "emptyDir" in text and job.key[:20] in text
        await pilot.press("enter")  # blocked: emptyDir data needs consent
        await pilot.pause()
        assert isinstance(app.screen, PlanScreen)
        await pilot.press("end", "ctrl+u", "y")
        await pilot.pause()
        assert app.screen.plan is not None and app.screen.plan.ok
        await pilot.press("enter")
        await _settle(app, pilot)
        assert isinstance(app.screen, MainScreen)
        await _tick(app, pilot, 120)
        after = app.fleet
        assert after is not None and after.node_by_name[node].cordoned
        left = after.pods_by_node.get(node, ())
        assert all(p.owner_kind == "DaemonSet" for p in left), [
            p.key for p in left if p.owner_kind != "DaemonSet"
        ]
        restarted = after.job_by_key[job.key]
        assert node not in restarted.placement
        entry = app.ops.audit.read()[-1]
        assert entry.action == "drain" and entry.outcome == "ok"
        steps = list(app.progress_messages)
        assert f"cordoned {node}" in steps and any("evict" in m for m in steps)
        assert "▶" not in screen_text(app)  # the progress line goes away when the drain is done


async def test_draining_several_nodes_needs_their_count_typed(make_app: MakeApp) -> None:
    app = make_app(role=Role.ADMIN)
    async with app.run_test(size=(140, 45)) as pilot:
        await _settle(app, pilot)
        cpu = [n.name for n in app.fleet.nodes if not n.gpus_total and n.schedulable][:2]  # type: ignore[union-attr]
        assert len(cpu) == 2
        table = app.main.table("nodes")
        for name in cpu:
            table.select_key(name)
            await pilot.press("space")
        assert "2 marked" in screen_text(app)
        await pilot.press("D")
        await pilot.pause()
        assert "emptyDir" in screen_text(app)  # CPU pods with scratch space: blocked until allowed
        await pilot.press("end", "ctrl+u", "y", "enter")
        await pilot.pause()
        assert "type" in screen_text(app).lower() and "2 nodes" in screen_text(app)
        await pilot.press(*"2 nodes", "enter")
        await _settle(app, pilot)
        assert all(app.fleet.node_by_name[n].cordoned for n in cpu)  # type: ignore[union-attr]
        assert not table.marked


async def test_redeploy_rolls_the_replicas(make_app: MakeApp) -> None:
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await _settle(app, pilot)
        ep = next(e for e in app.fleet.endpoints if "prod" not in e.namespace)  # type: ignore[union-attr]
        before = {p.key for p in app.fleet.pods_by_owner[ep.key]}  # type: ignore[union-attr]
        await pilot.press("4")
        app.main.table().select_key(ep.key)
        await pilot.press("r")
        await pilot.pause()
        assert f"Redeploy {ep.key}" in screen_text(app)
        await pilot.press("enter")
        await _settle(app, pilot)
        await _tick(app, pilot, 600)
        after = {p.key for p in app.fleet.pods_by_owner[ep.key]}  # type: ignore[union-attr]
        assert after and not (after & before)  # every replica replaced
        assert app.ops.audit.read()[-1].action == "redeploy"


async def test_launch_shows_the_placement_and_starts_the_gang(make_app: MakeApp) -> None:
    app = make_app(nodes=60)
    async with app.run_test(size=(140, 45)) as pilot:
        await _settle(app, pilot)
        await pilot.press("3", "n")
        await pilot.pause()
        assert isinstance(app.screen, PlanScreen)
        # The same defaults as `aios-tui plan launch`: one worker of 8 GPUs of any model, named after us.
        assert app.screen.values["job"] == "default/train-tester-20261118-110640"
        assert (app.screen.values["workers"], app.screen.values["gpus_per_worker"]) == ("1", "8")
        await pilot.press("tab", "tab", "tab", "tab", *"h100")  # the model as typed: matched to H100
        await pilot.pause()
        plan = app.screen.plan
        assert plan is not None, app.screen.error
        text = screen_text(app)
        assert "1×8 H100" in text
        if not plan.ok:  # the fleet may be full: the plan must say why and what would fix it
            assert plan.blockers and "would fit" in " ".join(plan.blockers)
            return
        await pilot.press("enter")
        await _settle(app, pilot)
        await _tick(app, pilot, 60)
        mine = [j for j in app.fleet.jobs if j.name.startswith("train-tester-")]  # type: ignore[union-attr]
        assert mine and mine[0].state in (JobState.RUNNING, JobState.STARTING)
        assert app.ops.audit.read()[-1].action == "launch"


async def test_read_only_offers_no_action_keys_and_refuses(make_app: MakeApp) -> None:
    app = make_app(read_only=True)
    async with app.run_test(size=(120, 40)) as pilot:
        await _settle(app, pilot)
        for pane, key, label in (
            ("1", "c", "Cordon"),
            ("1", "D", "Drain"),
            ("4", "r", "Redeploy"),
            ("3", "n", "Launch"),
        ):
            await pilot.press(pane)
            await pilot.pause()
            assert label not in _footer(app)
            await pilot.press(key)
            await pilot.pause()
            assert isinstance(app.screen, MainScreen)
        node = next(n for n in app.fleet.nodes if not n.cordoned)  # type: ignore[union-attr]
        plan = app.ops.plan("cordon", nodes=[node.name])
        assert not plan.ok and "read-only" in " ".join(plan.blockers)
        with pytest.raises(PermissionDenied):
            await app.ops.execute(plan)
        await _tick(app, pilot, 5)
        assert not app.fleet.node_by_name[node.name].cordoned  # type: ignore[union-attr]


class _RbacSim(SimSource):
    """The embedded fleet behind an RBAC that forbids scaling (as a SelfSubjectAccessReview would say)."""

    def permission(self, action: str, target: str | None = None) -> str | None:
        return "forbidden by RBAC: you cannot patch deployments/scale" if action == "scale" else None


async def test_an_action_the_backend_forbids_is_offered_and_explains_itself(tmp_path: Path) -> None:
    clock = FakeClock()
    sim = _RbacSim(seed=7, nodes=40, clock=clock, start=START)
    poller = Poller([sim], clock=clock)
    ops = Ops({sim.name: sim}, lambda: poller.snapshot, AuditLog(tmp_path / "a.jsonl"), actor=Actor("t"))
    app = AiosApp(poller, ops, live=False, clock=clock)
    async with app.run_test(size=(120, 40)) as pilot:
        await _settle(app, pilot)
        await pilot.press("4")
        await pilot.pause()
        assert "Scale" in _footer(app)  # not hidden: the reason is the backend's, and pressing tells it
        await pilot.press("s")
        await pilot.pause()
        assert isinstance(app.screen, MainScreen)
        assert any("forbidden by RBAC" in n.message for n in app._notifications)


async def test_at_80x24_a_drain_plan_scrolls_from_its_first_field_and_titles_once(make_app: MakeApp) -> None:
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await _settle(app, pilot)
        await pilot.press("D")
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, PlanScreen)
        focused = app.focused
        plan = screen.query_one("#plan-scroll")
        assert plan.max_scroll_y > 0 and plan.scroll_y == 0  # the pod table does not fit
        await pilot.press("pagedown")
        await pilot.pause()
        assert plan.scroll_y > 0 and app.focused is focused  # scrolled, still typing in the same field
        await pilot.press("pageup")
        await pilot.pause()
        assert plan.scroll_y == 0
        assert screen_text(app).count(f"Drain {app.main.table('nodes').cursor_key}") == 1
