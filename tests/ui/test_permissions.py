"""Keys RBAC denies, in the console, against the Kubernetes source and `FakeApiServer` (a real HTTP peer).

A key the access reviews denied stays in the footer, dimmed, and its press says why without opening a plan;
while the reviews have not answered, the key is offered and its press waits for them — acting on nothing
unknown and refusing nothing wrongly.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
from textual.screen import Screen

from aios_tui.config import KubernetesSettings, Settings
from aios_tui.ops import Actor, AuditLog, Ops, Role
from aios_tui.poll import Poller
from aios_tui.sources.kubernetes import KubernetesSource, api_client_factory
from aios_tui.ui.app import AiosApp
from aios_tui.ui.harness import FakeClock
from aios_tui.ui.screens.help import HelpScreen, action_rows
from aios_tui.ui.screens.main import MainScreen
from aios_tui.ui.screens.plan import PlanScreen
from tests.k8s.apiserver import FakeApiServer, fixture_scene
from tests.ui.conftest import screen_text

DENIED = "you may not cordon nodes in k8s:test: RBAC denies patch on nodes"


@pytest.fixture
def server() -> Iterator[FakeApiServer]:
    with FakeApiServer(fixture_scene(), bookmark_interval=0.1) as s:
        yield s


def _app(server: FakeApiServer, tmp_path: Path, clock: FakeClock) -> tuple[AiosApp, KubernetesSource]:
    kubeconfig = server.write_kubeconfig(tmp_path / "kubeconfig")
    source = KubernetesSource(
        name="k8s:test",
        api_client_factory=api_client_factory(str(kubeconfig), "test"),
        settings=KubernetesSettings(enabled=True, kubeconfig=kubeconfig, timeout=5.0),
        context="test",
    )
    poller = Poller([source], clock=clock)
    ops = Ops(
        {source.name: source},
        lambda: poller.snapshot,
        AuditLog(tmp_path / "audit.jsonl"),
        actor=Actor("tester", Role.OPERATOR),
    )
    return AiosApp(poller, ops, Settings(), live=False, clock=clock), source


async def _settle(app: AiosApp, pilot: object) -> None:
    await app.workers.wait_for_complete()
    await pilot.pause()  # type: ignore[attr-defined]


def _screen(app: AiosApp) -> Screen[object]:
    return app.screen  # not narrowed by an isinstance assertion before


def _messages(app: AiosApp) -> list[str]:
    return [f"{n.title}: {n.message}" for n in app._notifications]


async def test_a_key_rbac_denies_is_dimmed_and_says_why(
    server: FakeApiServer, tmp_path: Path, pinned_clock: FakeClock
) -> None:
    server.as_viewer()
    app, source = _app(server, tmp_path, pinned_clock)
    async with app.run_test(size=(120, 40)) as pilot:
        await _settle(app, pilot)
        assert app.fleet is not None and app.fleet.nodes  # the nodes its pods name
        busy = next(n for n in app.fleet.nodes if n.gpus_requested)
        table = app.main.table("nodes")
        assert table.select_key(busy.name)
        assert f" {busy.gpus_requested}/? " in f" {table.row_text(table.cursor_row)} "  # capacity unknown
        await asyncio.to_thread(source.permission, "cordon", None, wait=5.0)  # the review answered
        for e in app.fleet.endpoints:  # and those of the endpoint actions the palette would offer (a loaded
            for action in ("redeploy", "scale"):  # machine answers them after the first refresh)
                await asyncio.to_thread(source.permission, action, e.key, wait=5.0)
        await pilot.press("ctrl+r")
        await _settle(app, pilot)
        active = app.screen.active_bindings["c"]
        assert not active.enabled  # dimmed, not hidden
        assert "Cordon" in screen_text(app).splitlines()[-1]
        await pilot.press("c")
        await _settle(app, pilot)
        assert isinstance(app.screen, MainScreen)  # no plan was opened
        assert f"Cordon not allowed: {DENIED}" in _messages(app)
        assert [(r.first.action, r.outcome, r.first.message) for r in app.ops.audit.records()] == [
            ("cordon", "refused", DENIED)
        ]
        assert [c.title for c in app._action_commands(_screen(app))] == []  # the palette offers none of them
        await pilot.press("question_mark")
        await pilot.pause()
        assert isinstance(app.screen, HelpScreen)
        rows = dict(action_rows(app.can_act, app.ops.check))
        assert rows["c"].endswith(f"— not allowed: {DENIED}")
    await asyncio.to_thread(source.close_now)


async def test_a_key_pressed_before_the_reviews_answer_says_checking(
    server: FakeApiServer, tmp_path: Path, pinned_clock: FakeClock
) -> None:
    server.as_viewer()
    server.delay_reviews(3.0)  # longer than a key press waits
    app, source = _app(server, tmp_path, pinned_clock)
    async with app.run_test(size=(120, 40)) as pilot:
        await _settle(app, pilot)
        assert app.screen.active_bindings["c"].enabled  # not known yet: offered
        await pilot.press("c")
        await _settle(app, pilot)
        assert isinstance(app.screen, MainScreen)
        said = _messages(app)
        assert len(said) == 1 and said[0].startswith("Cordon: not yet: checking permissions… (k8s:test ")
        assert app.ops.audit.records() == []  # nothing refused, nothing done
        server.delay_reviews(0)
        await asyncio.to_thread(source.permission, "cordon", None, wait=5.0)
        await pilot.press("c")
        await _settle(app, pilot)
        assert f"Cordon not allowed: {DENIED}" in _messages(app)
    await asyncio.to_thread(source.close_now)


async def test_a_key_allowed_once_the_review_answers_opens_its_plan(
    server: FakeApiServer, tmp_path: Path, pinned_clock: FakeClock
) -> None:
    server.delay_reviews(0.2)  # within the wait of a key press: an allowed key is never refused wrongly
    node = "ip-10-0-3-31.ec2.internal"  # a drain of it asks about evictions in capture and ml-prod
    app, source = _app(server, tmp_path, pinned_clock)
    async with app.run_test(size=(120, 40)) as pilot:
        await _settle(app, pilot)
        table = app.main.table("nodes")
        assert table.select_key(node)
        assert not source.permission_known("drain", node)  # asked only now, answered 0.2 s apart
        await pilot.press("D")
        await _settle(app, pilot)
        assert isinstance(app.screen, PlanScreen), _messages(app)
        assert f"Drain {node}" in screen_text(app)
        assert source.permission_known("drain", node)
        offered = [c.title for c in app._action_commands(_screen(app))]
        assert any(t.startswith("Cordon ") for t in offered) and any(t.startswith("Scale ") for t in offered)
    await asyncio.to_thread(source.close_now)
