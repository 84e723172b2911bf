"""The Kubernetes source end to end: the real client over HTTP against `FakeApiServer`.

Lists, watches, 410 re-lists, dropped watches, refused connections, expired credentials and slow answers,
each observed the way the console sees it: through ``fetch()`` and the poller.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import logging
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from aios_tui import cli
from aios_tui.config import AwsSettings, ConfigError, KubernetesSettings, Settings, SimSettings
from aios_tui.domain import JobState, SourceState
from aios_tui.poll import Poller
from aios_tui.sources import build_sources
from aios_tui.sources.base import SourceData, SourceError
from aios_tui.sources.kubernetes import KubernetesSource, api_client_factory, sources_from_settings
from tests.k8s.apiserver import FakeApiServer, fixture_scene, generate_fleet

TOKEN = "s3cr3t-t0ken-do-not-leak"
L4 = "ip-10-0-3-31.ec2.internal"
H100 = "ip-10-0-1-11.ec2.internal"


def make_source(kubeconfig: Path, *, timeout: float = 3.0, **settings: Any) -> KubernetesSource:
    return KubernetesSource(
        name="k8s:test",
        api_client_factory=api_client_factory(str(kubeconfig), "test"),
        settings=KubernetesSettings(enabled=True, kubeconfig=kubeconfig, timeout=timeout, **settings),
        context="test",
        retry_base=0.05,
        retry_max=0.2,
        watch_seconds=30.0,
    )


@pytest.fixture
def source(kubeconfig: Path) -> Iterator[KubernetesSource]:
    src = make_source(kubeconfig)
    yield src
    src.close_now()


def wait_for(src: KubernetesSource, check: Callable[[SourceData], bool], timeout: float = 5.0) -> SourceData:
    """Fetch until ``check`` holds (a watch event arrives in a few milliseconds, not at once)."""
    deadline = time.monotonic() + timeout
    while True:
        data = src.fetch_now()
        if check(data):
            return data
        if time.monotonic() > deadline:
            raise AssertionError("the change never showed up in a fetch")
        time.sleep(0.02)


def wait_error(src: KubernetesSource, needle: str, timeout: float = 5.0) -> str:
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        try:
            src.fetch_now()
        except SourceError as exc:
            last = str(exc)
            if needle in last:
                return last
        time.sleep(0.02)
    raise AssertionError(f"no error with {needle!r}; last: {last!r}")


def lists(server: FakeApiServer, resource: str) -> int:
    """Lists (not watches) of ``resource`` the server answered."""
    return sum(
        1
        for method, path in server.requests
        if method == "GET" and path.split("?")[0].endswith("/" + resource) and "watch=" not in path
    )


def watches(server: FakeApiServer, resource: str) -> int:
    return sum(
        1 for _, path in server.requests if path.split("?")[0].endswith("/" + resource) and "watch=1" in path
    )


# --- reading -------------------------------------------------------------------------------------------


def test_first_full_view(source: KubernetesSource, apiserver: FakeApiServer) -> None:
    data = source.fetch_now()
    assert data.context == f"test ({apiserver.url})"
    nodes = {n.name: n for n in data.nodes}
    assert len(nodes) == 7 and len(data.pods) == 39
    assert (nodes[H100].gpu_model, nodes[H100].gpus_allocatable, nodes[H100].gpus_requested) == ("H100", 8, 8)
    assert nodes[L4].gpus_requested == 4  # capture's three llm-serve replicas and ml-prod's one
    assert nodes["gpu-node-3"].gpus_requested == 4  # bound Pending pods hold their GPUs too
    assert {n.source for n in data.nodes} == {"k8s:test"}
    # One Gpu per allocatable GPU, handed to the requesting pods in order.
    l4 = [g for g in data.gpus if g.node == L4]
    assert [g.index for g in l4] == [0, 1, 2, 3] and all(g.pod and g.model == "L4" for g in l4)
    assert len({g.uuid for g in data.gpus}) == len(data.gpus) == sum(n.gpus_allocatable for n in data.nodes)
    (endpoint,) = data.endpoints
    assert (endpoint.key, endpoint.replicas_desired, endpoint.replicas_ready) == ("ml-prod/llm-serve", 3, 1)
    assert endpoint.hpa is not None and (endpoint.hpa.min_replicas, endpoint.hpa.max_replicas) == (2, 8)
    (job,) = data.jobs
    assert (job.key, job.state, job.workers, job.gpus_per_worker) == (
        "ml-prod/train-llama-70b",
        JobState.QUEUED,
        4,
        8,
    )
    assert "Insufficient nvidia.com/gpu" in job.pending_reason
    (pdb,) = data.pdbs
    assert (pdb.key, pdb.owner, pdb.disruptions_allowed) == ("ml-prod/llm-serve", "ml-prod/llm-serve", 0)
    events = [p for m, p in apiserver.requests if p.startswith("/api/v1/events")]
    assert events and all("fieldSelector=type%3DWarning" in p for p in events)
    serve = next(p for p in data.pods if p.name == "llm-serve-c7b59b455-fwlz8")
    assert (serve.owner_kind, serve.owner) == ("ReplicaSet", "ml-prod/llm-serve")
    resources = {"nodes", "pods", "deployments", "statefulsets", "replicasets", "jobs", "events"}
    listed = [
        path
        for method, path in apiserver.requests
        if method == "GET" and "watch=" not in path and path.split("?")[0].rsplit("/", 1)[-1] in resources
    ]
    assert len(listed) == len(resources) and all("limit=500" in path for path in listed)


def test_lists_are_paginated(tmp_path: Path) -> None:
    with FakeApiServer(generate_fleet(4, 1200), bookmark_interval=0.1) as server:
        src = make_source(server.write_kubeconfig(tmp_path / "kubeconfig"))
        try:
            data = src.fetch_now()
            assert len(data.pods) == len(server.list("Pod")) > 1000
            assert lists(server, "pods") == 3  # 500 + 500 + the rest
            assert (
                sum(1 for _, p in server.requests if p.split("?")[0] == "/api/v1/pods" and "continue=" in p)
                == 2
            )
        finally:
            src.close_now()


def test_a_watch_event_shows_up_in_the_next_fetch(source: KubernetesSource, apiserver: FakeApiServer) -> None:
    source.fetch_now()
    node_lists = lists(apiserver, "nodes")
    node = apiserver.get("Node", "", H100)
    assert node is not None
    node["spec"]["unschedulable"] = True
    apiserver.apply(node)
    data = wait_for(source, lambda d: next(n for n in d.nodes if n.name == H100).cordoned)
    assert not next(n for n in data.nodes if n.name == L4).cordoned
    apiserver.delete("Pod", "ml-prod", "debug-shell")
    wait_for(source, lambda d: all(p.name != "debug-shell" for p in d.pods))
    assert lists(apiserver, "nodes") == node_lists  # watched, never listed again


def test_unchanged_objects_are_reused(source: KubernetesSource, apiserver: FakeApiServer) -> None:
    first = source.fetch_now()
    assert source.fetch_now() is first  # nothing new: the same data
    node = apiserver.get("Node", "", H100)
    assert node is not None
    node["spec"]["unschedulable"] = True
    apiserver.apply(node)
    second = wait_for(source, lambda d: d is not first)
    before = {n.name: n for n in first.nodes}
    after = {n.name: n for n in second.nodes}
    assert after[H100] is not before[H100]
    assert all(after[name] is before[name] for name in after if name != H100)
    assert all(a is b for a, b in zip(second.endpoints, first.endpoints, strict=True))


def test_gone_resource_version_lists_again(tmp_path: Path) -> None:
    # Bookmarks rare, so the nodes watch stays at an old version while pods change.
    with FakeApiServer(fixture_scene(), bookmark_interval=60.0) as server:
        src = make_source(server.write_kubeconfig(tmp_path / "kubeconfig"))
        try:
            src.fetch_now()
            pod = server.get("Pod", "ml-prod", "debug-shell")
            assert pod is not None
            pod["metadata"]["labels"] = {"touched": "yes"}
            server.apply(pod)
            server.compact()  # the nodes watch's version is now too old
            node = server.get("Node", "", L4)
            assert node is not None
            node["spec"]["unschedulable"] = True
            node_lists = lists(server, "nodes")
            server.drop_watches()
            server.apply(node)
            wait_for(src, lambda d: next(n for n in d.nodes if n.name == L4).cordoned)
            assert src.relists >= 1
            assert lists(server, "nodes") == node_lists + 1
        finally:
            src.close_now()


def test_a_dropped_watch_reconnects_where_it_was(source: KubernetesSource, apiserver: FakeApiServer) -> None:
    source.fetch_now()
    before = watches(apiserver, "pods")
    pod_lists = lists(apiserver, "pods")
    apiserver.drop_watches()
    pod = copy.deepcopy(apiserver.get("Pod", "ml-prod", "debug-shell"))
    assert pod is not None
    pod["metadata"]["name"] = "debug-shell-2"
    pod["metadata"].pop("resourceVersion", None)
    pod["metadata"].pop("uid", None)
    apiserver.apply(pod)
    wait_for(source, lambda d: any(p.name == "debug-shell-2" for p in d.pods))
    assert watches(apiserver, "pods") > before
    assert lists(apiserver, "pods") == pod_lists and source.relists == 0


async def test_a_refused_connection_marks_the_source_stale(tmp_path: Path) -> None:
    server = FakeApiServer(fixture_scene(), bookmark_interval=0.1).start()
    src = make_source(server.write_kubeconfig(tmp_path / "kubeconfig"))
    poller = Poller([src])
    try:
        snap = await poller.refresh()
        assert snap.sources[0].state is SourceState.OK and len(snap.nodes) == 7
        server.stop()
        deadline = time.monotonic() + 5.0
        while True:
            snap = await poller.refresh()
            health = snap.sources[0]
            if "refused" in health.error or time.monotonic() > deadline:
                break
        assert health.state is SourceState.STALE
        assert f"cannot reach {server.url}" in health.error and "refused" in health.error
        assert len(snap.nodes) == 7  # the last good data stays
    finally:
        await poller.stop()
        server.stop()


def test_expired_credentials_say_so(source: KubernetesSource, apiserver: FakeApiServer) -> None:
    source.fetch_now()
    apiserver.expire_token()
    apiserver.drop_watches()
    message = wait_error(source, "401")
    assert "credentials expired or invalid (401 Unauthorized)" in message


def test_a_wrong_token_fails_the_first_fetch(apiserver: FakeApiServer, tmp_path: Path) -> None:
    src = make_source(apiserver.write_kubeconfig(tmp_path / "bad", token="wrong-token"))
    try:
        with pytest.raises(SourceError, match=r"credentials expired or invalid \(401 Unauthorized\)"):
            src.fetch_now()
    finally:
        src.close_now()


def test_slow_answers_time_out(apiserver: FakeApiServer, kubeconfig: Path) -> None:
    apiserver.delay(1.5)
    src = make_source(kubeconfig, timeout=0.5)
    try:
        t0 = time.monotonic()
        with pytest.raises(SourceError):
            src.fetch_now()
        assert time.monotonic() - t0 < 1.4  # the fetch gives up on its own timeout
        assert "no answer from the API server within 0.5s" in wait_error(src, "no answer")
    finally:
        apiserver.delay(0)
        src.close_now()


def test_a_kind_it_may_not_list_is_left_out(apiserver: FakeApiServer, kubeconfig: Path) -> None:
    apiserver.deny("list", "events")
    src = make_source(kubeconfig)
    try:
        data = src.fetch_now()
        assert len(data.nodes) == 7 and data.jobs  # the rest is shown
        # Without FailedScheduling events the pods' own PodScheduled condition still says why.
        assert "Insufficient" in data.jobs[0].pending_reason
    finally:
        src.close_now()


def test_no_token_in_errors_or_logs(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    messages = []
    with FakeApiServer(fixture_scene(), token=TOKEN, bookmark_interval=0.1) as server:
        kubeconfig = server.write_kubeconfig(tmp_path / "kubeconfig")
        src = make_source(kubeconfig)
        try:
            src.fetch_now()
            server.expire_token()
            server.drop_watches()
            messages.append(wait_error(src, "401"))
        finally:
            src.close_now()
        bad = make_source(server.write_kubeconfig(tmp_path / "bad", token=TOKEN + "-old"))
        try:
            with pytest.raises(SourceError) as info:
                bad.fetch_now()
            messages.append(str(info.value))
        finally:
            bad.close_now()
    assert messages and all(TOKEN not in m for m in messages)
    assert TOKEN not in caplog.text


def test_one_source_per_context(apiserver: FakeApiServer, tmp_path: Path) -> None:
    path = apiserver.write_kubeconfig(tmp_path / "kubeconfig", context="prod")
    apiserver.write_kubeconfig(path, context="staging")
    settings = KubernetesSettings(enabled=True, kubeconfig=path, read_only_contexts=("prod",))
    current = sources_from_settings(settings, env={})
    assert [s.name for s in current] == ["k8s:prod"]  # the current context
    both = sources_from_settings(
        KubernetesSettings(enabled=True, contexts=("prod", "staging")), env={"KUBECONFIG": str(path)}
    )
    assert [(s.name, s.read_only) for s in both] == [("k8s:prod", False), ("k8s:staging", False)]
    assert [s.read_only for s in sources_from_settings(settings, env={})] == [True]
    with pytest.raises(SourceError, match="has no context nope"):
        sources_from_settings(KubernetesSettings(enabled=True, kubeconfig=path, contexts=("nope",)), env={})
    for src in (*current, *both):
        src.close_now()


# --- configuration and the command line -------------------------------------------------------------------


def test_build_sources_runs_kubernetes_then_aws(kubeconfig: Path) -> None:
    k8s = KubernetesSettings(enabled=True, kubeconfig=kubeconfig)
    sources = build_sources(Settings(kubernetes=k8s))
    assert [(s.name, s.kind) for s in sources] == [("k8s:test", "kubernetes")]
    with_sim = build_sources(Settings(kubernetes=k8s, sim=SimSettings(enabled=True, nodes=3)))
    assert [s.kind for s in with_sim] == ["kubernetes", "sim"]
    with_aws = build_sources(Settings(kubernetes=k8s, aws=AwsSettings(enabled=True, profiles=())))
    assert [(s.name, s.kind) for s in with_aws] == [("k8s:test", "kubernetes"), ("aws", "aws")]
    with pytest.raises(ConfigError, match=r"\[kubernetes\]: kubeconfig .* has no context nope"):
        build_sources(Settings(kubernetes=dataclasses.replace(k8s, contexts=("nope",))))
    for src in (*sources, *with_sim, *with_aws):
        if isinstance(src, KubernetesSource):
            src.close_now()


def test_context_flag(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text("")
    argv = ["--config", str(config), "--context", "a,b", "snapshot", "--context", "c"]
    settings = cli.settings_from_args(cli.build_parser().parse_args(argv))
    assert settings.kubernetes.enabled and settings.kubernetes.contexts == ("a", "b", "c")
    assert not cli.settings_from_args(
        cli.build_parser().parse_args(["--config", str(config)])
    ).kubernetes.enabled


def test_snapshot_command_against_the_cluster(
    apiserver: FakeApiServer, kubeconfig: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "config.toml"
    config.write_text(f'[kubernetes]\nenabled = true\nkubeconfig = "{kubeconfig}"\n')
    assert cli.main(["--config", str(config), "snapshot", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert len(doc["nodes"]) == 7 and {n["source"] for n in doc["nodes"]} == {"k8s:test"}
    assert [e["name"] for e in doc["endpoints"]] == ["llm-serve"]
