"""Two clusters in one fleet view: the same namespace/name in both stays two objects, and an action on one
reaches only its own API server."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from aios_tui.config import KubernetesSettings
from aios_tui.ops import Actor, AuditLog, Ops, Role
from aios_tui.poll import Poller
from aios_tui.sources.kubernetes import sources_from_settings
from tests.k8s.apiserver import FakeApiServer, fixture_scene, other_cluster

H100 = "ip-10-0-1-11.ec2.internal"


@pytest.fixture
def two_clusters(tmp_path: Path) -> Iterator[tuple[FakeApiServer, FakeApiServer, Path]]:
    with FakeApiServer(fixture_scene()) as us, FakeApiServer(other_cluster(fixture_scene())) as eu:
        path = tmp_path / "kubeconfig"
        us.write_kubeconfig(path, context="prod-us")
        eu.write_kubeconfig(path, context="prod-eu")
        yield us, eu, path


async def test_same_names_in_two_clusters_stay_apart_and_actions_reach_the_right_one(
    two_clusters: tuple[FakeApiServer, FakeApiServer, Path], tmp_path: Path
) -> None:
    us, eu, path = two_clusters
    settings = KubernetesSettings(enabled=True, kubeconfig=path, contexts=("prod-us", "prod-eu"), timeout=5.0)
    sources = sources_from_settings(settings, env={})
    poller = Poller(sources)
    try:
        snap = await poller.refresh()
        keys = {e.key for e in snap.endpoints}
        assert {"prod-us/ml-prod/llm-serve", "prod-eu/ml-prod/llm-serve"} <= keys
        assert {f"prod-us/{H100}", f"prod-eu/{H100}"} <= set(snap.node_by_name)
        one = len(fixture_scene_nodes())
        assert len(snap.nodes) == 2 * one
        # References stay consistent inside each cluster: GPUs and pods name their own cluster's node.
        assert all(g.node in snap.node_by_name for g in snap.gpus)
        assert all(p.node in snap.node_by_name for p in snap.pods if p.node)
        assert all(p.owner.startswith(p.namespace.split("/")[0] + "/") for p in snap.pods if p.owner)

        ops = Ops(
            {s.name: s for s in sources},
            lambda: poller.snapshot,
            AuditLog(tmp_path / "audit.jsonl"),
            actor=Actor("t", Role.ADMIN),
        )
        result = await ops.execute(ops.plan("cordon", nodes=[f"prod-eu/{H100}"]))
        assert result.ok, result.message
        assert eu.get("nodes", "", H100)["spec"].get("unschedulable") is True  # type: ignore[index]
        assert not (us.get("nodes", "", H100) or {}).get("spec", {}).get("unschedulable")
        plan = ops.plan("scale", endpoint="prod-us/ml-prod/llm-serve", replicas=4)
        result = await ops.execute(plan, confirmation="llm-serve")
        assert result.ok, result.message
        assert us.get("deployments", "ml-prod", "llm-serve")["spec"]["replicas"] == 4  # type: ignore[index]
        assert eu.get("deployments", "ml-prod", "llm-serve")["spec"]["replicas"] == 3  # type: ignore[index]
    finally:
        await poller.stop()


def fixture_scene_nodes() -> list[dict[str, object]]:
    return [o for o in fixture_scene() if o.get("kind") == "Node"]


def test_one_context_keeps_plain_names(tmp_path: Path) -> None:
    with FakeApiServer(fixture_scene()) as server:
        path = server.write_kubeconfig(tmp_path / "kubeconfig", context="only")
        settings = KubernetesSettings(enabled=True, kubeconfig=path, timeout=5.0)
        (source,) = sources_from_settings(settings, env={})
        try:
            data = source.fetch_now()
            assert H100 in {n.name for n in data.nodes}
            assert "ml-prod/llm-serve" in {e.key for e in data.endpoints}
        finally:
            source.close_now()
