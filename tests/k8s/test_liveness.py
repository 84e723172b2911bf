"""A hung API server is shown stale within about one fetch, and fresh at the first fetch after it answers;
a big first list streams in and fails only when it stops making progress (issue 12, items 1 and 2).

Against the protocol-level test server's fault modes: ``hang`` (connections accepted, nothing answered,
open watches silent), ``stall_lists`` (some pages, then nothing) and ``slow_lists`` (each page late).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import urllib3

from aios_tui import cli
from aios_tui.config import KubernetesSettings
from aios_tui.domain import PodPhase, SourceState
from aios_tui.poll import Poller
from aios_tui.sources.base import SourceData, SourceError
from aios_tui.sources.kubernetes import KubernetesSource, api_client_factory, informer
from tests.k8s.apiserver import FakeApiServer, generate_fleet

TIMEOUT = 2.0
"""Seconds: short for a test, long enough for a loaded machine to answer the small lists within it."""


def make_source(kubeconfig: Path, *, timeout: float = TIMEOUT, interval: float = 2.0) -> KubernetesSource:
    return KubernetesSource(
        name="k8s:test",
        api_client_factory=api_client_factory(str(kubeconfig), "test"),
        settings=KubernetesSettings(enabled=True, kubeconfig=kubeconfig, timeout=timeout, interval=interval),
        context="test",
        retry_base=0.05,
        retry_max=0.2,
        watch_seconds=30.0,
    )


@pytest.fixture
def fleet(tmp_path: Path) -> Iterator[tuple[FakeApiServer, Path]]:
    """4 nodes and 1,200 pods: three list pages of pods, one of nodes."""
    with FakeApiServer(generate_fleet(4, 1200), bookmark_interval=0.1) as server:
        yield server, server.write_kubeconfig(tmp_path / "kubeconfig")


def listed(src: KubernetesSource) -> SourceData:
    """The first complete data (on a loaded machine even the small lists may outlast one fetch)."""
    deadline = time.monotonic() + 10.0
    while (data := src.fetch_now()).problems:
        assert time.monotonic() < deadline, data.problems
    return data


def pod_keys(data: SourceData) -> list[str]:
    return sorted(p.key for p in data.pods)


def server_keys(server: FakeApiServer) -> list[str]:
    return sorted(f"{p['metadata']['namespace']}/{p['metadata']['name']}" for p in server.list("pods"))


def test_a_hung_server_is_stale_within_one_fetch_and_fresh_at_the_next(
    fleet: tuple[FakeApiServer, Path], caplog: pytest.LogCaptureFixture
) -> None:
    server, kubeconfig = fleet
    src = make_source(kubeconfig)
    clock = [1000.0]
    poller = Poller([src], clock=lambda: clock[0])
    try:
        listed(src)
        snap = asyncio.run(poller.refresh())
        assert snap.sources[0].state is SourceState.OK and len(snap.nodes) == 4

        server.hang()
        # What changes during the outage, and must show up once it is over: one pod gone, one changed.
        gone, changed = server.list("pods")[:2]
        server.delete("pods", gone["metadata"]["namespace"], gone["metadata"]["name"])
        changed["status"] = {**changed["status"], "phase": "Succeeded"}
        server.apply(changed)
        clock[0] = 1005.0
        caplog.set_level(logging.WARNING, logger="aios_tui")
        t0 = time.monotonic()
        snap = asyncio.run(poller.refresh())
        took = time.monotonic() - t0
        health = snap.sources[0]
        assert health.state is SourceState.STALE, health
        assert "no answer from the API server within 1.8s (GET /readyz): hung or cut off" in health.error
        assert health.last_ok == 1000.0  # the age counts from the last good data
        assert 1.5 < took < TIMEOUT  # the probe's own bound, under the poller's
        assert len(snap.nodes) == 4  # the last good data stays
        warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
        assert len(warnings) == 1 and "hung or cut off" in warnings[0]

        server.resume()
        clock[0] = 1010.0
        snap = asyncio.run(poller.refresh())
        assert snap.sources[0].state is SourceState.OK and snap.sources[0].last_ok == 1010.0
        # The watches resumed from where they were: the outage's changes, once each, no ghost.
        deadline = time.monotonic() + 5.0
        while True:
            data = src.fetch_now()
            phases = {p.key: p.phase for p in data.pods}
            key = f"{changed['metadata']['namespace']}/{changed['metadata']['name']}"
            if phases.get(key) is PodPhase.SUCCEEDED and pod_keys(data) == server_keys(server):
                break
            assert time.monotonic() < deadline, "the outage's changes never showed up"
            time.sleep(0.05)
        assert len(data.pods) == 1199 and src.relists == 0
    finally:
        server.resume()
        asyncio.run(poller.stop())


def test_a_hung_server_fails_each_fetch_until_it_answers(fleet: tuple[FakeApiServer, Path]) -> None:
    server, kubeconfig = fleet
    src = make_source(kubeconfig)
    try:
        assert len(listed(src).pods) == 1200
        server.hang()
        for _ in range(2):
            t0 = time.monotonic()
            with pytest.raises(SourceError, match="hung or cut off"):
                src.fetch_now()
            assert time.monotonic() - t0 < TIMEOUT
        server.resume()
        assert len(src.fetch_now().pods) == 1200
    finally:
        server.resume()
        src.close_now()


def test_a_watch_cut_to_resume_may_fail_in_any_way_and_still_resumes(
    fleet: tuple[FakeApiServer, Path], monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Once a hung server answers again, the source closes its open watches to resume them. Closed under
    the thread reading it, http.client can fail with anything: in CI it read a chunk's length, then its body
    from a file already set to None (AttributeError), and the source said "failed unexpectedly" at the next
    fetch. Here every watch cut that way fails like that, every time."""
    cut: set[int] = set()
    raised: list[int] = []
    real_shutdown, real_lines = informer._shutdown, informer._lines

    def shutdown(resp: Any) -> None:
        cut.add(id(resp))
        real_shutdown(resp)

    def lines(resp: Any, limit: int) -> Iterator[bytes]:
        try:
            yield from real_lines(resp, limit)
        except (urllib3.exceptions.HTTPError, OSError):
            if id(resp) not in cut:
                raise
        if id(resp) in cut:
            raised.append(id(resp))
            raise AttributeError("'NoneType' object has no attribute 'read'")  # http.client's, in the race

    monkeypatch.setattr(informer, "_shutdown", shutdown)
    monkeypatch.setattr(informer, "_lines", lines)
    server, kubeconfig = fleet
    src = make_source(kubeconfig)
    try:
        listed(src)
        server.hang()
        with pytest.raises(SourceError, match="hung or cut off"):
            src.fetch_now()
        server.resume()
        caplog.set_level(logging.DEBUG, logger="aios_tui")
        src.fetch_now()  # answers again: the open watches are cut
        deadline = time.monotonic() + 5.0
        while len(raised) < len(cut):
            assert time.monotonic() < deadline, "the cut watches never ended"
            time.sleep(0.05)
        assert cut, "no watch was cut"
        for _ in range(3):
            data = src.fetch_now()  # raised "pods: … failed unexpectedly" before
            assert not data.problems and len(data.pods) == 1200
            time.sleep(0.1)
        assert "cut to resume" in caplog.text
        assert not [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
        assert src.relists == 0
    finally:
        server.resume()
        src.close_now()


def test_a_first_list_streams_in_while_it_makes_progress(fleet: tuple[FakeApiServer, Path]) -> None:
    server, kubeconfig = fleet
    server.slow_lists("pods", 1.2)  # three pages: 3.6 s, past the 2 s timeout, each page within it
    src = make_source(kubeconfig)
    try:
        seen: list[tuple[int, int, tuple[str, ...]]] = []
        deadline = time.monotonic() + 10.0
        while True:
            data = src.fetch_now()  # never raises: the list keeps coming
            seen.append((len(data.nodes), len(data.pods), data.problems))
            if not data.problems:
                break
            assert time.monotonic() < deadline
        said = {
            0: "still listing pods: nothing yet",
            500: "still listing pods: 500 so far of about 1,200",
            1000: "still listing pods: 1,000 so far of about 1,200",
        }
        # Under load the small lists (jobs, events …) may still be coming in the first fetches: those say
        # so too. Once only pods are missing, the nodes are all shown and the pods count up page by page.
        pods_only = [s for s in seen if s[2] and all(p.startswith("still listing pods") for p in s[2])]
        assert len(pods_only) >= 2, seen
        assert all(s[0] == 4 and s[2] == (said[s[1]],) for s in pods_only), seen
        assert seen[-1][:2] == (4, 1200)
    finally:
        src.close_now()


def test_a_list_that_stalls_fails_after_the_timeout_and_resumes(fleet: tuple[FakeApiServer, Path]) -> None:
    server, kubeconfig = fleet
    server.stall_lists("pods", 1)  # one page, then nothing
    src = make_source(kubeconfig)
    try:
        deadline = time.monotonic() + 5.0
        while (data := src.fetch_now()).problems != ("still listing pods: 500 so far of about 1,200",):
            assert time.monotonic() < deadline, data.problems  # the other kinds come in meanwhile
        assert (len(data.nodes), len(data.pods)) == (4, 500)
        deadline = time.monotonic() + 5.0
        while True:
            try:
                src.fetch_now()
            except SourceError as exc:
                assert "pods: GET /api/v1/pods: no answer from the API server within 2s" in str(exc)
                break
            assert time.monotonic() < deadline, "a stalled list never failed"
            time.sleep(0.1)
        server.resume()
        deadline = time.monotonic() + 5.0
        while True:
            try:
                data = src.fetch_now()
                if not data.problems:
                    break
            except SourceError:
                pass
            assert time.monotonic() < deadline, "the list never finished after the server came back"
            time.sleep(0.1)
        assert pod_keys(data) == server_keys(server)
    finally:
        server.resume()
        src.close_now()


def _config(tmp_path: Path, kubeconfig: Path, timeout: float = TIMEOUT) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(
        f'[sim]\nenabled = false\n[kubernetes]\nenabled = true\nkubeconfig = "{kubeconfig}"\n'
        f"timeout = {timeout}\ninterval = 0.5\n"
    )
    return path


def test_snapshot_waits_for_a_first_list_that_makes_progress(
    fleet: tuple[FakeApiServer, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    server, kubeconfig = fleet
    server.slow_lists("pods", 1.2)
    assert cli.main(["--config", str(_config(tmp_path, kubeconfig)), "snapshot", "--json"]) == 0
    out, err = capsys.readouterr()
    doc = json.loads(out)
    assert err == "" and len(doc["nodes"]) == 4
    assert [(s["name"], s["state"]) for s in doc["sources"]] == [("k8s:test", "ok")]


def test_snapshot_says_partial_and_fails_when_the_list_stalls(
    fleet: tuple[FakeApiServer, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    server, kubeconfig = fleet
    server.stall_lists("pods", 1)
    try:
        code = cli.main(["--config", str(_config(tmp_path, kubeconfig)), "snapshot", "--wait", "3"])
    finally:
        server.resume()
    _, err = capsys.readouterr()
    assert code == cli.EXIT_PARTIAL
    assert err.startswith("aios-tui: source k8s:test failed: ")
    assert "pods: GET /api/v1/pods: no answer from the API server within 2s" in err


def test_snapshot_fails_when_its_only_source_is_forbidden(
    fleet: tuple[FakeApiServer, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    server, kubeconfig = fleet
    server.deny("list", "pods")
    code = cli.main(["--config", str(_config(tmp_path, kubeconfig)), "snapshot"])
    _, err = capsys.readouterr()
    assert code == cli.EXIT_NO_DATA
    assert err.startswith("aios-tui: source k8s:test failed: ") and "forbidden" in err


def test_snapshot_that_stops_waiting_says_partial(
    fleet: tuple[FakeApiServer, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    server, kubeconfig = fleet
    server.slow_lists("pods", 1.2)
    code = cli.main(["--config", str(_config(tmp_path, kubeconfig)), "snapshot", "--json", "--wait", "0"])
    out, err = capsys.readouterr()
    assert code == cli.EXIT_PARTIAL
    assert len(json.loads(out)["nodes"]) == 4  # what came is printed
    assert err.startswith("aios-tui: source k8s:test is partial: still listing pods: ")
