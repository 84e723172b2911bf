"""A least-privilege user: the built-in ``view`` ClusterRole, which may not list nodes nor change anything.

Against `FakeApiServer.as_viewer()` (403s and SelfSubjectAccessReviews as a real kube-apiserver v1.36 answers
them, fixtures ssar-denied-viewer and error-403-viewer-scale): the console shows what the user can see, says
what it cannot in words, refuses what RBAC denies before anything is sent, and never acts on a permission
not known yet.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from aios_tui import cli
from aios_tui.config import KubernetesSettings
from aios_tui.domain import SourceState
from aios_tui.ops import Actor, AuditLog, Ops, Role
from aios_tui.ops.core import describe
from aios_tui.poll import Poller
from aios_tui.sources.base import SourceError
from aios_tui.sources.kubernetes import KubernetesSource, api_client_factory
from tests.k8s.apiserver import VIEWER, FakeApiServer
from tests.k8s.test_source import H100, L4, make_source

NODES_DENIED = (
    f"cannot list nodes: forbidden (RBAC: user {VIEWER} may not list nodes at cluster scope); "
    "the nodes shown are those its pods run on, their capacity unknown"
)


@pytest.fixture
def viewer(apiserver: FakeApiServer) -> FakeApiServer:
    apiserver.as_viewer()
    return apiserver


@pytest.fixture
def source(viewer: FakeApiServer, kubeconfig: Path) -> Iterator[KubernetesSource]:
    src = make_source(kubeconfig)
    yield src
    src.close_now()


def test_a_viewer_sees_pods_jobs_endpoints_and_the_nodes_its_pods_name(source: KubernetesSource) -> None:
    data = source.fetch_now()
    assert data.problems == (NODES_DENIED,)
    assert data.pods and data.jobs and data.endpoints
    named = {p.node for p in data.pods if p.node}
    assert {n.name for n in data.nodes} == named
    assert {L4, H100} <= named
    # What its pods request is known; its capacity is not: nothing free to plan on, no GPU made up.
    h100 = next(n for n in data.nodes if n.name == H100)
    busy = [p for p in data.pods if p.node == H100 and p.phase.value in ("Pending", "Running")]
    assert h100.gpus_requested == sum(p.gpus for p in busy) > 0
    assert (h100.gpus_total, h100.gpus_allocatable, h100.gpus_free) == (0, 0, 0)
    assert data.gpus == ()


def test_the_poller_shows_a_viewer_partial_not_failed(viewer: FakeApiServer, kubeconfig: Path) -> None:
    src = make_source(kubeconfig)

    async def run() -> None:
        poller = Poller([src])
        try:
            snap = await poller.refresh()
        finally:
            await poller.stop()
        health = snap.sources[0]
        assert health.state is SourceState.PARTIAL
        assert health.error == NODES_DENIED
        assert snap.nodes and snap.jobs and snap.endpoints

    asyncio.run(run())


def test_listing_nodes_again_once_allowed_clears_the_sentence(kubeconfig: Path) -> None:
    with FakeApiServer([], bookmark_interval=0.1) as server:
        server.deny("list", "nodes")
        path = server.write_kubeconfig(kubeconfig.parent / "other")
        src = KubernetesSource(
            name="k8s:test",
            api_client_factory=api_client_factory(str(path), "test"),
            settings=KubernetesSettings(enabled=True, kubeconfig=path, timeout=3.0),
            context="test",
            permission_refresh_s=0.2,  # a kind it may not list is tried again after this long
        )
        try:
            assert src.fetch_now().problems[0].startswith("cannot list nodes: forbidden (RBAC: user ")
            server.allow("list", "nodes")
            deadline = time.monotonic() + 5.0
            while src.fetch_now().problems:
                assert time.monotonic() < deadline, "the denial stayed after nodes could be listed"
                time.sleep(0.05)
        finally:
            src.close_now()


def test_access_reviews_answer_as_words_and_a_blocking_caller_waits_for_them(
    source: KubernetesSource,
) -> None:
    data = source.fetch_now()
    endpoint = data.endpoints[0]
    # No event loop on this thread: permission() waits for the review rather than guessing.
    assert source.permission("cordon") == "you may not cordon nodes in k8s:test: RBAC denies patch on nodes"
    assert source.permission("scale", endpoint.key) == (
        f"you may not scale {endpoint.key} in k8s:test: "
        f"RBAC denies patch on deployments/scale in {endpoint.namespace}"
    )
    assert source.permission("launch") == (
        "you may not launch jobs in k8s:test: RBAC denies create on jobs cluster-wide"
    )
    assert source.permission_known("cordon")


def test_on_an_event_loop_an_unknown_permission_says_checking(
    viewer: FakeApiServer, kubeconfig: Path
) -> None:
    viewer.delay_reviews(1.0)  # the access reviews take a while (lists do not)
    src = make_source(kubeconfig)
    try:
        src.fetch_now()

        async def ask() -> tuple[str | None, bool]:
            return src.permission("uncordon"), src.permission_known("uncordon")

        said, known = asyncio.run(ask())
        assert not known
        assert said is not None and said.startswith("checking permissions… (k8s:test has not answered ")
        viewer.delay_reviews(0)
        assert src.permission("uncordon", wait=5.0) == (
            "you may not uncordon nodes in k8s:test: RBAC denies patch on nodes"
        )
    finally:
        src.close_now()


def test_a_403_reads_as_words_never_a_class_name(source: KubernetesSource) -> None:
    data = source.fetch_now()
    endpoint = next(e for e in data.endpoints if e.namespace == "ml-prod")
    with pytest.raises(SourceError) as caught:
        asyncio.run(source.scale_endpoint(endpoint.namespace, endpoint.name, 5))
    said = f"forbidden: RBAC: user {VIEWER} may not patch deployments/scale in namespace {endpoint.namespace}"
    assert str(caught.value) == said
    assert describe(caught.value) == said
    with pytest.raises(SourceError) as cordon:
        asyncio.run(source.set_cordon(H100, True))
    assert describe(cordon.value) == f"forbidden: RBAC: user {VIEWER} may not patch nodes at cluster scope"


def _ops(source: KubernetesSource, tmp_path: Path) -> Ops:
    data = source.fetch_now()
    poller = Poller([source])
    asyncio.run(poller.refresh())
    assert data.nodes
    return Ops(
        {source.name: source},
        lambda: poller.snapshot,
        AuditLog(tmp_path / "audit.jsonl"),
        actor=Actor("ada", Role.ADMIN),
    )


def test_plans_name_the_rbac_blocker(source: KubernetesSource, tmp_path: Path) -> None:
    ops = _ops(source, tmp_path)
    plan = ops.plan("cordon", nodes=[H100])
    assert plan.blockers == ("you may not cordon nodes in k8s:test: RBAC denies patch on nodes",)
    endpoint = ops.snapshot().endpoints[0]
    plan = ops.plan("scale", endpoint=endpoint.key, replicas="+1")
    assert plan.blockers[0].startswith(f"you may not scale {endpoint.key} in k8s:test: RBAC denies patch")


def _config(tmp_path: Path, kubeconfig: Path) -> Path:
    config = tmp_path / "config.toml"
    config.write_text(
        f'user = "ada"\nrole = "admin"\naudit_path = "{tmp_path / "audit.jsonl"}"\n'
        f'[kubernetes]\nenabled = true\nkubeconfig = "{kubeconfig}"\ntimeout = 5\n'
    )
    return config


def test_headless_plan_names_the_permission_blocker_and_exits_blocked(
    viewer: FakeApiServer, kubeconfig: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = _config(tmp_path, kubeconfig)
    assert cli.main(["--config", str(config), "plan", "cordon", H100]) == cli.EXIT_CANNOT
    err = capsys.readouterr().err
    assert f"cannot cordon {H100}: you may not cordon nodes in k8s:test: RBAC denies patch on nodes" in err


def test_headless_act_refuses_before_anything_is_sent(
    viewer: FakeApiServer, kubeconfig: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = _config(tmp_path, kubeconfig)
    assert cli.main(["--config", str(config), "act", "cordon", H100, "--yes"]) == cli.EXIT_CANNOT
    assert "you may not cordon nodes in k8s:test: RBAC denies patch on nodes" in capsys.readouterr().err
    assert not [r for r in viewer.requests if r[0] == "PATCH"]


def test_every_kind_it_may_not_list_has_its_sentence_and_the_rest_is_shown(
    apiserver: FakeApiServer, kubeconfig: Path
) -> None:
    apiserver.deny("list", "events")
    apiserver.deny("list", "horizontalpodautoscalers")
    src = make_source(kubeconfig)
    try:
        data = src.fetch_now()
        user = "system:serviceaccount:default:tester"
        assert data.problems == (
            f"cannot list horizontalpodautoscalers: forbidden (RBAC: user {user} may not list "
            "horizontalpodautoscalers at cluster scope)",
            f"cannot list events: forbidden (RBAC: user {user} may not list events at cluster scope)",
        )
        assert data.nodes and data.gpus and data.endpoints and data.jobs
        assert all(e.hpa is None for e in data.endpoints)  # what it cannot see is not made up
    finally:
        src.close_now()


def test_a_drain_asks_for_evictions_in_the_namespaces_of_its_pods(
    apiserver: FakeApiServer, kubeconfig: Path, tmp_path: Path
) -> None:
    apiserver.deny("create", "pods", "eviction", "ml-prod")  # a Role, not a ClusterRole, said no there
    src = make_source(kubeconfig)
    try:
        ops = _ops(src, tmp_path)
        assert ops.check("drain", ["ip-10-0-3-31.ec2.internal"]) == (
            "you may not drain nodes in k8s:test: RBAC denies create on pods/eviction in ml-prod"
        )
        # Its only ml-prod pod is a DaemonSet's, which a drain leaves: nothing denied there.
        assert ops.check("drain", ["gpu-node-1"]) is None
    finally:
        src.close_now()
