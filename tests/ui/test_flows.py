"""The console's action flows that the registry and the write-ahead audit brought: a launch that does not fit
says why and offers what would (or queueing it), a running drain stops on ``x``, an action a killed console
left half done is reported at start, every action is in the palette and help, ``:`` completes with tab."""

from __future__ import annotations

import io
import json
import socket
from typing import Any

from rich.console import Console

from aios_tui.domain import JobState
from aios_tui.ops import all_actions
from aios_tui.ui.app import AiosApp
from aios_tui.ui.screens.actions import ActionLogScreen
from aios_tui.ui.screens.help import HelpScreen
from aios_tui.ui.screens.main import MainScreen
from aios_tui.ui.screens.plan import PlanScreen
from tests.ui.conftest import MakeApp, screen_text


async def _settle(app: AiosApp, pilot: Any) -> None:
    await app.workers.wait_for_complete()
    await pilot.pause()


def notices(app: AiosApp) -> str:
    """Every notification the console raised, title and text, one per line."""
    return "\n".join(f"{n.title}: {n.message}" for n in app._notifications)


def rendered(renderable: Any) -> str:
    console = Console(width=300, record=True, file=io.StringIO())
    console.print(renderable)
    return " ".join(console.export_text().split())


async def test_a_launch_that_does_not_fit_says_why_and_can_be_queued(make_app: MakeApp) -> None:
    app = make_app()
    async with app.run_test(size=(140, 45)) as pilot:
        await _settle(app, pilot)
        await pilot.press("3", "n")
        await pilot.pause()
        assert isinstance(app.screen, PlanScreen)
        await pilot.press("tab", "tab", "ctrl+u", "6", "tab", "tab", *"h100")  # 6×8 H100: no room now
        await pilot.pause()
        plan = app.screen.plan
        assert plan is not None and not plan.ok
        await pilot.press("enter")
        await pilot.pause()
        text = screen_text(app)
        assert "Cannot launch: needs 6×8 H100 in one zone" in text  # said, not a silent bell
        assert "What would work instead" in text
        labels = [a.label for a in plan.alternatives]
        assert labels[-1] == "queue it: it starts, whole, when it fits"
        await pilot.press(*["down"] * (len(labels) - 1), "enter")
        await pilot.pause()
        assert app.screen.values["queue"] == "y"
        queued = app.screen.plan
        assert queued is not None and queued.ok and queued.title.endswith(", queued")
        await pilot.press("enter")
        await _settle(app, pilot)
        assert isinstance(app.screen, MainScreen)
        job = app.fleet.job_by_key[queued.target]  # type: ignore[union-attr]
        assert job.state is JobState.QUEUED and job.workers == 6


async def test_x_stops_a_running_drain_after_its_current_step(make_app: MakeApp) -> None:
    app = make_app()
    async with app.run_test(size=(140, 45)) as pilot:
        await _settle(app, pilot)
        node = "l4-b-0001"  # three replicas behind one PodDisruptionBudget: the drain waits on it
        assert app.main.table("nodes").select_key(node)
        await pilot.press("D", "end", "ctrl+u", "y", "tab", "ctrl+u", "y")
        await pilot.pause()
        plan = app.screen.plan  # type: ignore[attr-defined]
        assert plan is not None and plan.ok, plan
        await pilot.press("enter", *node, "enter")  # production pods: the node's name typed
        for _ in range(100):
            await pilot.pause()
            if any("waiting for PodDisruptionBudget" in m for m in app.progress_messages):
                break
        assert app.running, "the drain should be waiting on the PodDisruptionBudget"
        assert "x stops it after this step" in screen_text(app)
        assert "x Stop action" in screen_text(app).splitlines()[-1]
        await pilot.press("x")
        await _settle(app, pilot)
        assert not app.running
        [record] = app.ops.audit.records()
        assert record.outcome == "cancelled", record.end.message if record.end else None
        assert record.end is not None and "cancelled by tester after" in record.end.message
        assert f"cordon {node}" in record.done
        assert app.fleet.node_by_name[node].cordoned  # type: ignore[union-attr]


async def test_an_action_a_killed_console_left_is_reported_at_start(make_app: MakeApp) -> None:
    app = make_app()
    intent = {
        "ts": "2026-11-18T10:58:00.000+00:00",
        "user": "bob",
        "host": socket.gethostname(),
        "role": "admin",
        "action": "cordon",
        "target": "a, b",
        "source": "sim",
        "title": "Cordon 2 nodes (a, b)",
        "outcome": "started",
        "message": "",
        "params": {},
        "warnings": [],
        "id": "0123456789abcdef",
        "phase": "intent",
        "pid": 2**22 + 11,  # gone
        "steps": ["cordon a", "cordon b"],
    }
    step = {**intent, "phase": "step", "outcome": "ok", "step": "cordon a", "pid": 0, "steps": []}
    app.ops.audit.path.parent.mkdir(parents=True, exist_ok=True)
    app.ops.audit.path.write_text(json.dumps(intent) + "\n" + json.dumps(step) + "\n")
    app.ops.audit.path.chmod(0o600)
    async with app.run_test(size=(120, 40)) as pilot:
        await _settle(app, pilot)
        said = "Cordon 2 nodes (a, b): interrupted at 2026-11-18 10:58 UTC, 1 of 2 steps done (cordon a)"
        assert said in app.progress_messages
        assert f"Interrupted action: {said}" in notices(app)
        await pilot.press("a")
        await pilot.pause()
        assert isinstance(app.screen, ActionLogScreen)
        text = screen_text(app)
        assert "interrupted" in text and "Cordon 2 nodes (a, b)" in text


async def test_every_action_is_in_the_palette_and_the_help(make_app: MakeApp) -> None:
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await _settle(app, pilot)
        app.main.table("nodes").select_key("h100-b-0007")  # a cordoned node, so that uncordon applies
        titles = [c.title for c in app.get_system_commands(app.screen)]
        for action in all_actions():
            assert any(t.startswith(f"{action.label} ") or t == action.label for t in titles), action.name
        await pilot.press("question_mark")
        await pilot.pause()
        assert isinstance(app.screen, HelpScreen)
        help_text = rendered(app.screen._content())
        for action in all_actions():
            assert f":{action.name}" in help_text, action.name


async def test_colon_completes_commands_and_names_with_tab(make_app: MakeApp) -> None:
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await _settle(app, pilot)
        prompt = app.main.query_one("#prompt")
        await pilot.press("colon", *"scale-p", "tab")
        assert prompt.value == "scale-pool"  # type: ignore[attr-defined]
        await pilot.press("space", *"h100-b", "tab")
        assert prompt.value == "scale-pool h100-b"  # type: ignore[attr-defined]
        await pilot.press("space", "+", "2", "enter")
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, PlanScreen) and screen.plan is not None
        assert screen.plan.params["desired"] == app.fleet.pools_by_name["h100-b"].desired_capacity + 2  # type: ignore[union-attr]


async def test_sort_and_theme_without_an_argument_say_what_they_expect(make_app: MakeApp) -> None:
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await _settle(app, pilot)
        await pilot.press("colon", *"sort", "enter")
        await pilot.pause()
        assert ":sort COLUMN: sort Nodes by one of name" in notices(app)
        await pilot.press("colon", *"theme", "enter")
        await pilot.pause()
        assert ":theme NAME: one of" in notices(app) and "unknown command" not in notices(app)
