"""Input ownership: keys sent in one burst (a paste into a terminal without bracketed paste, typing ahead
during an SSH stall, ``tmux send-keys``) reach only what the keys before them opened, and a confirmation is
never given by a key typed before its plan was on screen.

Pilot's ``press`` waits for the app to go idle between keys, which hides exactly this race; :func:`burst`
hands every key to the app at once, as a terminal does.
"""

from __future__ import annotations

import asyncio
from typing import Any

from textual import events
from textual.keys import _character_to_key

from aios_tui.ui.app import AiosApp
from aios_tui.ui.screens.main import MainScreen
from aios_tui.ui.screens.plan import PlanScreen
from aios_tui.ui.screens.views import PoolsScreen
from tests.ui.conftest import MakeApp, screen_text

ENTER = "\r"


async def _settle(app: AiosApp, pilot: Any) -> None:
    await app.workers.wait_for_complete()
    await pilot.pause()


def burst(app: AiosApp, text: str) -> None:
    """Every key of ``text`` handed to the app in one go, as a terminal reads a paste or typed-ahead keys."""
    for ch in text:
        if ch == ENTER:
            event = events.Key("enter", "\r")
        elif ch == "\x1b":
            event = events.Key("escape", "\x1b")
        else:
            event = events.Key(_character_to_key(ch), ch)
        app.post_message(event)


async def until_quiet(app: AiosApp, pilot: Any) -> None:
    """Wait until the burst is handled: no key held, nothing settling."""
    for _ in range(200):
        await pilot.pause()
        if app.keys.holding == 0 and not app.keys._busy:
            break
        await asyncio.sleep(0.01)
    await _settle(app, pilot)


async def _on_a_node(app: AiosApp, pilot: Any) -> str:
    await _settle(app, pilot)
    node = next(n for n in app.fleet.nodes if n.schedulable and n.gpus_total and not n.cordoned)  # type: ignore[union-attr]
    assert app.main.table("nodes").select_key(node.name)
    return node.name


async def test_a_command_typed_in_one_burst_goes_to_the_prompt_not_the_pane(make_app: MakeApp) -> None:
    """``:scale ml-prod/llama-3-70b-chat 3⏎`` in one burst used to cordon the node under the cursor (the
    ``c`` of "scale") and confirm that plan with the final Enter."""
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        node = await _on_a_node(app, pilot)
        burst(app, f":scale ml-prod/llama-3-70b-chat 3{ENTER}")
        await until_quiet(app, pilot)
        screen = app.screen
        assert isinstance(screen, PlanScreen), screen_text(app)
        assert screen.values["replicas"] == "3"
        assert screen.plan is not None and screen.plan.action == "scale"
        assert "Scale ml-prod/llama-3-70b-chat from" in screen_text(app)
        assert not app.fleet.node_by_name[node].cordoned  # type: ignore[union-attr]
        assert app.ops.audit.read() == []  # nothing ran, nothing was refused


async def test_a_filter_typed_in_one_burst_stays_in_the_filter(make_app: MakeApp) -> None:
    """``/h100`` in one burst used to open the cordon plan of the node under the cursor."""
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        node = await _on_a_node(app, pilot)
        burst(app, "/h100")
        await until_quiet(app, pilot)
        assert isinstance(app.screen, MainScreen)
        assert app.main.table().filter_text == "h100"
        assert app.main.query_one("#prompt").value == "h100"  # type: ignore[attr-defined]
        assert not app.fleet.node_by_name[node].cordoned  # type: ignore[union-attr]


async def test_a_pane_command_in_one_burst_does_not_open_a_view(make_app: MakeApp) -> None:
    """``:ep⏎`` in one burst used to open the node pools (its ``p``)."""
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await _settle(app, pilot)
        burst(app, f":ep{ENTER}")
        await until_quiet(app, pilot)
        assert not isinstance(app.screen, PoolsScreen)
        assert isinstance(app.screen, MainScreen) and app.main.active == "endpoints"


async def test_keys_after_a_command_go_to_what_it_opened(make_app: MakeApp) -> None:
    """After ``:ep⏎`` the next keys are the Endpoints pane's: ``s`` scales the endpoint under its cursor."""
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await _settle(app, pilot)
        burst(app, f":ep{ENTER}s")
        await until_quiet(app, pilot)
        screen = app.screen
        assert isinstance(screen, PlanScreen) and screen.plan is not None
        assert screen.plan.action == "scale"


async def test_an_enter_typed_before_the_plan_was_on_screen_does_not_confirm(make_app: MakeApp) -> None:
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await _settle(app, pilot)
        target = next(e for e in app.fleet.endpoints if e.hpa is None and "prod" not in e.namespace)  # type: ignore[union-attr]
        await pilot.press("4")
        assert app.main.table().select_key(target.key)
        new = target.replicas_desired + 1
        burst(app, f"s{new}{ENTER}")  # open, type the count (replacing the selected one), Enter: at once
        await until_quiet(app, pilot)
        screen = app.screen
        assert isinstance(screen, PlanScreen), "the Enter typed ahead confirmed a plan nobody saw"
        assert "Enter was typed before this plan was on screen" in screen_text(app)
        assert app.ops.audit.read() == []
        await pilot.press("enter")  # now the plan is on screen: this one confirms it
        await _settle(app, pilot)
        assert isinstance(app.screen, MainScreen)
        assert app.ops.audit.records()[-1].outcome == "ok"


async def test_a_cordon_and_its_enter_in_one_burst_change_nothing(make_app: MakeApp) -> None:
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        node = await _on_a_node(app, pilot)
        burst(app, f"c{ENTER}")
        await until_quiet(app, pilot)
        assert isinstance(app.screen, PlanScreen)
        assert not app.fleet.node_by_name[node].cordoned  # type: ignore[union-attr]
        assert app.ops.audit.read() == []


async def test_a_paste_goes_to_the_focused_input_only(make_app: MakeApp) -> None:
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        node = await _on_a_node(app, pilot)
        app.post_message(events.Paste("cd:q"))  # on a pane: not keystrokes, not an action
        await until_quiet(app, pilot)
        assert isinstance(app.screen, MainScreen) and app.is_running
        assert not app.fleet.node_by_name[node].cordoned  # type: ignore[union-attr]
        burst(app, ":")
        app.post_message(events.Paste("nodes h100"))  # right behind the ':' that opened the prompt
        await until_quiet(app, pilot)
        assert app.main.query_one("#prompt").value == "nodes h100"  # type: ignore[attr-defined]
