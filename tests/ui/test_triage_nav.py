"""On-call navigation as a k9s user drives it (issue 13): ``:pods``, drill-down endpoint → pod → node → GPU
and back along the breadcrumbs, ``:events``, a pod's log with ``/``, an object as YAML, ctrl+c while an action
runs, a Grafana link, copying a name. Pilot on the embedded fleet, asserting on what the screen shows."""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path
from typing import Any

import pytest
from rich.console import Group
from rich.style import Style
from rich.text import Text
from textual.widgets import Log

from aios_tui.config import GrafanaSettings, KubernetesSettings, Settings
from aios_tui.domain import Event, Pod
from aios_tui.ops import Actor, AuditLog, Ops, Role
from aios_tui.poll import Poller
from aios_tui.sources.kubernetes import KubernetesSource, api_client_factory
from aios_tui.ui.app import AiosApp
from aios_tui.ui.harness import FakeClock
from aios_tui.ui.screens import triage
from aios_tui.ui.screens.detail import DetailScreen
from aios_tui.ui.screens.main import MainScreen
from aios_tui.ui.screens.triage import EventsScreen, LogScreen, PodsScreen, QuitScreen, TextScreen
from tests.k8s.apiserver import FakeApiServer, fixture_scene
from tests.ui.conftest import MakeApp, screen_text


async def _settle(app: AiosApp, pilot: Any) -> None:
    await app.workers.wait_for_complete()
    await pilot.pause()


async def test_pods_view_lists_pods_and_enter_opens_one(make_app: MakeApp) -> None:
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await _settle(app, pilot)
        await pilot.press("colon", *"pods", "enter")
        await _settle(app, pilot)
        assert isinstance(app.screen, PodsScreen)
        text = screen_text(app)
        for title in ("NAMESPACE/NAME", "OWNER", "NODE", "GPUs", "PHASE", "RESTARTS", "AGE"):
            assert title in text
        assert app.fleet is not None
        assert f"Pods: {len(app.fleet.pods):,}" in text
        await pilot.press("R")  # most restarts first, like every sortable column
        await pilot.pause()
        most = max(p.restarts for p in app.fleet.pods)
        assert most > 0 and app.screen.table.rows[0].restarts == most
        await pilot.press("slash", *"crashloop", "enter")
        await pilot.pause()
        crashing = [p for p in app.fleet.pods if p.reason == "CrashLoopBackOff"]
        assert crashing and len(app.screen.table.rows) == len(crashing)
        assert "CrashLoopBackOff" in screen_text(app)
        app.screen.table.set_filter("llama-3-70b-chat")
        await pilot.pause()
        pod = app.screen.table.cursor_object
        assert isinstance(pod, Pod) and pod.owner == "ml-prod/llama-3-70b-chat"
        await pilot.press("enter")
        await _settle(app, pilot)
        assert isinstance(app.screen, DetailScreen)
        assert (app.screen.kind, app.screen.key) == ("pod", pod.key)
        assert f"Pods › pod {pod.name}" in screen_text(app)
        app.run_command(":po")  # k9s' short name, from a detail screen too
        await pilot.pause()
        assert isinstance(app.screen, PodsScreen)


async def test_drill_endpoint_to_pod_to_node_to_gpu_and_back(make_app: MakeApp) -> None:
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await _settle(app, pilot)
        snap = app.fleet
        assert snap is not None
        await pilot.press("4")
        assert app.main.table("endpoints").select_key("ml-prod/llama-3-70b-chat")
        await pilot.press("enter")
        await _settle(app, pilot)
        assert isinstance(app.screen, DetailScreen)
        assert "Endpoints › ml-prod/llama-3-70b-chat" in screen_text(app)
        replica = sorted(snap.pods_by_owner["ml-prod/llama-3-70b-chat"], key=lambda p: p.name)[0]
        assert f"pod {replica.name}" in screen_text(app)
        await pilot.press("enter")  # the first replica
        await _settle(app, pilot)
        assert (app.screen.kind, app.screen.key) == ("pod", replica.key)
        assert f"Endpoints › ml-prod/llama-3-70b-chat › pod {replica.name}" in screen_text(app)
        await pilot.press("enter")  # its node, first in a pod's related list
        await _settle(app, pilot)
        assert (app.screen.kind, app.screen.key) == ("node", replica.node)
        gpus = [g for g in snap.gpus_by_node[replica.node] if g.pod == replica.key]
        assert gpus
        screen = app.screen
        assert isinstance(screen, DetailScreen)
        index = next(i for i, r in enumerate(screen.related) if r.kind == "gpu" and r.key == gpus[0].uuid)
        for _ in range(index):
            await pilot.press("down")
        await pilot.press("enter")
        await _settle(app, pilot)
        assert (app.screen.kind, app.screen.key) == ("gpu", gpus[0].uuid)
        crumbs = (
            f"Endpoints › ml-prod/llama-3-70b-chat › pod {replica.name} › node {replica.node} › "
            f"gpu {replica.node}/gpu{gpus[0].index}"
        )
        assert crumbs in screen_text(app)
        assert f"pod {replica.name}" in screen_text(app)  # GPU → its pod and owner
        assert "endpoint ml-prod/llama-3-70b-chat" in screen_text(app)
        for kind in ("node", "pod", "endpoint"):
            await pilot.press("escape")
            await pilot.pause()
            assert isinstance(app.screen, DetailScreen)
            assert app.screen.kind == kind
        await pilot.press("escape")
        await pilot.pause()
        assert isinstance(app.screen, MainScreen)


async def test_job_detail_lists_its_ranks_in_rank_order(make_app: MakeApp) -> None:
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await _settle(app, pilot)
        assert app.fleet is not None
        # The ranks in any order from the source: the related list puts them in rank order.
        app.fleet = dataclasses.replace(app.fleet, pods=tuple(reversed(app.fleet.pods)))
        await pilot.pause()
        app.open_detail("job", "team-nlp/codegen-sft-0001", ("Jobs",))
        await _settle(app, pilot)
        assert isinstance(app.screen, DetailScreen)
        ranks = [r.label.plain.split()[1] for r in app.screen.related]
        assert ranks == [str(i) for i in range(len(ranks))] and len(ranks) == 3
        assert "rank 0  pod codegen-sft-0001-0-" in screen_text(app)
        await pilot.press("down", "l")  # the log of the highlighted rank; o moves among the ranks
        await _settle(app, pilot)
        assert isinstance(app.screen, LogScreen)
        assert app.screen.pod.rank == 1 and [p.rank for p in app.screen.pods] == [0, 1, 2]


def _event(t: float, reason: str, *, warning: bool, key: str = "h100-a-0001") -> Event:
    return Event(time=t, kind="node", key=key, reason=reason, message=f"{reason} seen", warning=warning)


async def test_events_view_warnings_first_with_times_and_the_last_15_minutes(make_app: MakeApp) -> None:
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await _settle(app, pilot)
        now = app.clock()
        snap = app.fleet
        assert snap is not None
        events = (
            _event(now - 60, "Ready", warning=False),
            _event(now - 120, "NotReady", warning=True),
            _event(now - 3600, "XID 79", warning=True, key="h100-a-0002"),
        )
        app.fleet = dataclasses.replace(snap, events=events)
        await pilot.press("colon", *"events", "enter")
        await _settle(app, pilot)
        assert isinstance(app.screen, EventsScreen)
        rows = [app.screen.table.row_text(i) for i in range(len(app.screen.table.rows))]
        assert [r.split()[:3] for r in rows] == [
            ["2m", "Warning", "node"],
            ["1h", "Warning", "node"],
            ["60s", "Normal", "node"],
        ]
        assert "XID 79" in rows[1]
        await pilot.press("w")
        await pilot.pause()
        assert len(app.screen.table.rows) == 2
        await pilot.press("w", "m")
        await pilot.pause()
        assert [e.reason for e in app.screen.table.rows] == ["NotReady", "Ready"]
        assert "last 15m" in screen_text(app)
        await pilot.press("slash", *"0002", "enter")
        await pilot.pause()
        assert len(app.screen.table.rows) == 0
        await pilot.press("escape", "escape")
        await pilot.pause()
        assert isinstance(app.screen, MainScreen)
        app.run_command(":events 2h")
        await _settle(app, pilot)
        assert isinstance(app.screen, EventsScreen)
        assert len(app.screen.table.rows) == 3 and app.screen.since_s == 7200


async def test_events_view_shows_audited_actions(make_app: MakeApp) -> None:
    app = make_app()
    async with app.run_test(size=(140, 45)) as pilot:
        await _settle(app, pilot)
        node = app.main.table("nodes").cursor_key
        assert node is not None
        await pilot.press("c")
        await _settle(app, pilot)
        await pilot.press("enter")
        await _settle(app, pilot)
        await pilot.press("v")
        await _settle(app, pilot)
        assert isinstance(app.screen, EventsScreen)
        actions = [e for e in app.screen.table.rows if e.kind == "action"]
        assert [(a.key, a.reason) for a in actions] == [(node, "cordon")]
        assert "tester: Cordon" in actions[0].message and "ok" in actions[0].message


async def test_y_shows_yaml_or_says_why_not_and_d_describes(make_app: MakeApp) -> None:
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await _settle(app, pilot)
        node = app.main.table("nodes").cursor_key
        await pilot.press("y")
        await _settle(app, pilot)
        assert isinstance(app.screen, TextScreen)
        text = screen_text(app)
        assert f"YAML node {node}" in text
        assert "kind: Node" in app.screen.text and f"name: {node}" in app.screen.text
        await pilot.press("escape", "d")
        await _settle(app, pilot)
        assert isinstance(app.screen, TextScreen)
        text = screen_text(app)
        assert f"Describe node {node}" in text and f"Name:           {node}" in text and "Events:" in text
        await pilot.press("escape", "2", "y")  # a GPU has no YAML of its own: said in words, screen open
        await _settle(app, pilot)
        assert isinstance(app.screen, TextScreen)
        assert "could not read it: no YAML for a gpu: only for node, pod, job, endpoint" in screen_text(app)


async def test_l_shows_a_pod_log_and_slash_filters_it(make_app: MakeApp) -> None:
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await _settle(app, pilot)
        await pilot.press("4")
        assert app.main.table("endpoints").select_key("ml-prod/llama-3-70b-chat")
        await pilot.press("l")
        await _settle(app, pilot)
        screen = app.screen
        assert isinstance(screen, LogScreen)
        assert screen.pod.owner == "ml-prod/llama-3-70b-chat"
        assert "Logs ml-prod/llama-3-70b-chat-" in screen_text(app)
        assert "pod 1 of 3 (o: next)" in screen_text(app)  # the endpoint's first replica; o picks another
        first = screen.pod
        await pilot.press("o")
        await _settle(app, pilot)
        assert "pod 2 of 3 (o: next)" in screen_text(app) and screen.pod != first
        await pilot.press("o", "o")
        await _settle(app, pilot)
        assert screen.pod == first
        assert screen.error == "" and len(screen.lines) > 3
        word = screen.lines[-1].split()[-1]
        await pilot.press("slash", *word)
        await pilot.pause()
        shown = _log_lines(screen)
        assert shown and all(word.lower() in line.lower() for line in shown)
        assert len(shown) <= len(screen.lines)


async def test_ctrl_c_quits_and_asks_first_when_an_action_runs(make_app: MakeApp) -> None:
    app = make_app()
    async with app.run_test(size=(140, 45)) as pilot:
        await _settle(app, pilot)
        node = "l4-b-0001"  # three replicas behind one PodDisruptionBudget: the drain waits on it
        assert app.main.table("nodes").select_key(node)
        await pilot.press("D", "end", "ctrl+u", "y", "tab", "ctrl+u", "y")
        await pilot.pause()
        await pilot.press("enter", *node, "enter")
        for _ in range(100):
            await pilot.pause()
            if any("waiting for PodDisruptionBudget" in m for m in app.progress_messages):
                break
        assert app.running
        await pilot.press("ctrl+c")
        await pilot.pause()
        assert isinstance(app.screen, QuitScreen)
        assert f"An action is running: Drain {node}" in screen_text(app)
        await pilot.press("n")
        await pilot.pause()
        assert isinstance(app.screen, MainScreen) and app.is_running and app.running
        await pilot.press("x")  # stop it; then ctrl+c quits at once
        await _settle(app, pilot)
        assert not app.running
        await pilot.press("ctrl+c")
        await pilot.pause()
        assert not isinstance(app.screen, QuitScreen)
    assert app.return_code == 0


async def test_grafana_link_in_node_detail(make_app: MakeApp) -> None:
    settings = Settings(grafana=GrafanaSettings(url="https://grafana.example.com/"))
    app = make_app(settings=settings)
    async with app.run_test(size=(120, 60)) as pilot:
        await _settle(app, pilot)
        node = app.main.table("nodes").cursor_key
        await pilot.press("enter")
        await _settle(app, pilot)
        url = f"https://grafana.example.com/d/node-exporter?var-node={node}"
        assert f"Grafana  {url}" in screen_text(app)
        screen = app.screen
        assert isinstance(screen, DetailScreen)
        body = screen.body()
        assert isinstance(body, Group)
        links = [
            span.style.link
            for part in body.renderables
            if isinstance(part, Text)
            for span in part.spans
            if isinstance(span.style, Style)
        ]
        assert links == [url]  # an OSC 8 hyperlink as well as the plain URL


async def test_no_grafana_link_without_a_url(make_app: MakeApp) -> None:
    app = make_app()
    async with app.run_test(size=(120, 60)) as pilot:
        await _settle(app, pilot)
        await pilot.press("enter")
        await _settle(app, pilot)
        assert "Grafana" not in screen_text(app)


async def test_copy_key_copies_the_name_under_the_cursor(make_app: MakeApp) -> None:
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await _settle(app, pilot)
        node = app.main.table("nodes").cursor_key
        assert node
        await pilot.press("Y")
        await pilot.pause()
        assert app.clipboard == node
        assert f"copied {node}" in [n.message for n in app._notifications]


SERVE = "ml-prod/llm-serve-c7b59b455-fwlz8"
"""A running pod of the captured Kubernetes scene, with one container (vllm)."""


async def test_l_reads_a_kubernetes_pod_log_filters_previous_and_follows(
    tmp_path: Path, pinned_clock: FakeClock
) -> None:
    with FakeApiServer(fixture_scene(), bookmark_interval=0.1) as server:
        server.set_log(SERVE, [f"INFO request {i} ok" for i in range(20)] + ["ERROR CUDA out of memory"])
        server.set_log(SERVE, ["before the restart: Killed"], previous=True)
        app, source = _k8s_app(server, tmp_path, pinned_clock)
        try:
            async with app.run_test(size=(120, 40)) as pilot:
                await _settle(app, pilot)
                app.run_command(":pods")
                await pilot.pause()
                assert isinstance(app.screen, PodsScreen)
                assert app.screen.table.select_key(SERVE)
                await pilot.press("l")
                await _settle(app, pilot)
                screen = app.screen
                assert isinstance(screen, LogScreen)
                assert screen.error == ""
                assert list(screen.lines)[-2:] == ["INFO request 19 ok", "ERROR CUDA out of memory"]
                assert "ERROR CUDA out of memory" in screen_text(app)
                await pilot.press("slash", *"error")
                await pilot.pause()
                assert _log_lines(screen) == ["ERROR CUDA out of memory"]
                await pilot.press("enter", "p")
                await _settle(app, pilot)
                assert list(screen.lines) == ["before the restart: Killed"]
                assert "previous run" in screen_text(app)
                await pilot.press("p", "f")  # back to the current run, following
                await pilot.pause()
                for _ in range(100):
                    if len(screen.lines) == 21:
                        break
                    await asyncio.sleep(0.02)
                server.append_log(SERVE, ["ERROR second failure"])
                for _ in range(200):
                    if screen.lines and screen.lines[-1] == "ERROR second failure":
                        break
                    await asyncio.sleep(0.02)
                assert screen.lines[-1] == "ERROR second failure"
                assert _log_lines(screen) == ["ERROR CUDA out of memory", "ERROR second failure"]
                await pilot.press("f")  # stop following
                await pilot.pause()
                assert "tail" in screen_text(app).splitlines()[0]
        finally:
            source.close_now()


async def test_a_log_the_cluster_refuses_is_said_in_words_and_the_screen_stays(
    tmp_path: Path, pinned_clock: FakeClock
) -> None:
    with FakeApiServer(fixture_scene(), bookmark_interval=0.1) as server:
        server.set_log(SERVE, ["INFO serving"])
        app, source = _k8s_app(server, tmp_path, pinned_clock)
        try:
            async with app.run_test(size=(120, 40)) as pilot:
                await _settle(app, pilot)
                app.run_command(":pods")
                await pilot.pause()
                assert isinstance(app.screen, PodsScreen) and app.screen.table.select_key(SERVE)
                await pilot.press("l", "p")  # its container never restarted: no previous run
                await _settle(app, pilot)
                screen = app.screen
                assert isinstance(screen, LogScreen)
                expected = (
                    f"could not read the log of {SERVE}: no previous run of container vllm in pod {SERVE}: "
                    "it has not restarted"
                )
                assert screen.error == expected
                assert "no previous run of container vllm" in screen_text(app)
                await pilot.press("p")  # back to the current run: the error goes, the lines come
                await _settle(app, pilot)
                assert screen.error == "" and list(screen.lines) == ["INFO serving"]
        finally:
            source.close_now()


async def test_y_shows_a_kubernetes_pod_as_yaml(tmp_path: Path, pinned_clock: FakeClock) -> None:
    with FakeApiServer(fixture_scene(), bookmark_interval=0.1) as server:
        app, source = _k8s_app(server, tmp_path, pinned_clock)
        try:
            async with app.run_test(size=(120, 40)) as pilot:
                await _settle(app, pilot)
                app.run_command(":pods")
                await pilot.pause()
                assert isinstance(app.screen, PodsScreen)
                assert app.screen.table.select_key(SERVE)
                await pilot.press("y")
                await _settle(app, pilot)
                assert isinstance(app.screen, TextScreen)
                text = app.screen.text
                assert f"YAML pod {SERVE}" in screen_text(app)
                assert "kind: Pod" in text and "name: llm-serve-c7b59b455-fwlz8" in text
                assert "managedFields" not in text
        finally:
            source.close_now()


def _log_lines(screen: LogScreen) -> list[str]:
    return [str(line) for line in screen.query_one(Log).lines]


def _k8s_app(server: FakeApiServer, tmp_path: Path, clock: FakeClock) -> tuple[AiosApp, KubernetesSource]:
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


async def test_ctx_lists_the_sources_and_the_watched_context(make_app: MakeApp) -> None:
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await _settle(app, pilot)
        app.run_command(":ctx")
        await pilot.pause()
        [note] = [n for n in app._notifications if n.title == "Contexts"]
        assert app.fleet is not None
        lines = note.message.splitlines()
        assert lines[0] == f"watching {app.fleet.context or 'the embedded fleet'}"
        assert [line.split()[-1] for line in lines[1:]] == [str(s.state) for s in app.fleet.sources]
        assert any(" sim (sim): " in line for line in lines[1:])


async def test_detail_shows_the_objects_own_events(make_app: MakeApp) -> None:
    app = make_app()
    async with app.run_test(size=(120, 60)) as pilot:
        await _settle(app, pilot)
        snap = app.fleet
        assert snap is not None
        now = app.clock()
        node = snap.nodes[0].name
        gpu = snap.gpus_by_node[node][0]
        events = (
            Event(
                time=now - 30,
                kind="gpu",
                key=gpu.uuid,
                reason="XID 79",
                message="fell off the bus",
                warning=True,
            ),
            Event(time=now - 90, kind="node", key=node, reason="Cordoned", message="by tester"),
            Event(time=now - 10, kind="node", key="other-node", reason="NotReady", warning=True),
        )
        app.fleet = dataclasses.replace(snap, events=events)
        await pilot.pause()
        app.open_detail("node", node, ("Nodes",))
        await _settle(app, pilot)
        await pilot.press("pagedown", "pagedown")
        await pilot.pause()
        text = screen_text(app)
        assert "30s  Warning  XID 79    fell off the bus" in text
        assert "90s  Normal   Cordoned  by tester" in text
        assert "other-node" not in text


async def test_a_log_screen_keeps_at_most_max_log_lines(
    make_app: MakeApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(triage, "MAX_LOG_LINES", 7)  # the sim's tail is 500 lines: the oldest are dropped
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await _settle(app, pilot)
        await pilot.press("4")
        assert app.main.table("endpoints").select_key("ml-prod/llama-3-70b-chat")
        await pilot.press("l")
        await _settle(app, pilot)
        screen = app.screen
        assert isinstance(screen, LogScreen)
        assert len(screen.lines) == 7 and len(_log_lines(screen)) == 7
        assert _log_lines(screen) == list(screen.lines)
