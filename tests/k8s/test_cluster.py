"""Opt-in: the Kubernetes source against the real cluster in ``$KUBECONFIG`` (a kind or k3s cluster, say).

Run with ``KUBECONFIG=~/.kube/config pytest -m cluster tests/k8s/test_cluster.py``; skipped when no
KUBECONFIG is set. The action scenarios change nothing for good: a node is cordoned and uncordoned again
(only when it was schedulable), and evictions are server-side dry runs.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Iterator

import pytest

from aios_tui.config import KubernetesSettings
from aios_tui.sources._k8s_convert import convert_warning_event
from aios_tui.sources.base import EvictionBlocked, SourceError
from aios_tui.sources.kubernetes import KubernetesSource, sources_from_settings
from aios_tui.sources.kubernetes.logs import LINE_LIMIT

pytestmark = [
    pytest.mark.cluster,
    pytest.mark.skipif(not os.environ.get("KUBECONFIG"), reason="no $KUBECONFIG: no cluster to run against"),
]


@pytest.fixture
def source() -> Iterator[KubernetesSource]:
    (src,) = sources_from_settings(KubernetesSettings(enabled=True, timeout=20.0))
    yield src
    src.close_now()


def test_reads_the_cluster(source: KubernetesSource) -> None:
    data = source.fetch_now()
    assert data.nodes, "a cluster has at least one node"
    assert all(n.source == source.name and n.name for n in data.nodes)
    assert data.pods, "a cluster runs at least its system pods"
    nodes = {n.name for n in data.nodes}
    assert all(p.node in nodes for p in data.pods if p.node)
    # Every GPU a node offers is one Gpu, and each holder is a pod on that node.
    assert len(data.gpus) == sum(n.gpus_allocatable for n in data.nodes)
    by_key = {p.key: p for p in data.pods}
    assert all(by_key[g.pod].node == g.node for g in data.gpus if g.pod in by_key)


def test_access_reviews_answer(source: KubernetesSource) -> None:
    source.fetch_now()
    deadline = time.monotonic() + 30.0
    while not source.permission_known("cordon"):
        assert time.monotonic() < deadline, "no access review answered"
        time.sleep(0.2)
    reason = source.permission("cordon")
    assert reason is None or reason.startswith(f"you may not cordon nodes in {source.name}: RBAC denies ")


def test_cordon_and_uncordon_a_node(source: KubernetesSource) -> None:
    data = source.fetch_now()
    node = next((n for n in data.nodes if not n.cordoned), None)
    if node is None or source.permission("cordon") is not None:
        pytest.skip("no schedulable node, or not allowed to cordon")
    try:
        asyncio.run(source.set_cordon(node.name, True))
        deadline = time.monotonic() + 30.0
        while not next(n for n in source.fetch_now().nodes if n.name == node.name).cordoned:
            assert time.monotonic() < deadline, "the cordon never showed up"
            time.sleep(0.2)
    finally:
        asyncio.run(source.set_cordon(node.name, False))
    deadline = time.monotonic() + 30.0
    while next(n for n in source.fetch_now().nodes if n.name == node.name).cordoned:
        assert time.monotonic() < deadline, "the uncordon never showed up"
        time.sleep(0.2)


def test_eviction_dry_run_changes_nothing(source: KubernetesSource) -> None:
    data = source.fetch_now()
    pod = next((p for p in data.pods if p.owner_kind == "ReplicaSet" and p.node), None)
    if pod is None:
        pytest.skip("no Deployment pod to ask about")
    try:
        asyncio.run(source.evict_pod_dry_run(pod.namespace, pod.name))
    except EvictionBlocked as exc:  # a PodDisruptionBudget said no: an answer too
        assert str(exc)
    except SourceError as exc:
        assert str(exc).startswith("forbidden: "), str(exc)
    time.sleep(1.0)
    assert pod.key in {p.key for p in source.fetch_now().pods}


def test_reads_the_log_of_a_system_pod(source: KubernetesSource) -> None:
    data = source.fetch_now()
    pod = next(
        (p for p in data.pods if p.namespace == "kube-system" and p.phase.value == "Running" and p.node), None
    )
    if pod is None:
        pytest.skip("no running kube-system pod (other than static ones) to read")
    try:
        lines = asyncio.run(source.read_log(pod.namespace, pod.name, container=pod.containers[0], tail=10))
    except SourceError as exc:
        assert str(exc).startswith("forbidden: you may not read logs of pods in kube-system ("), exc
        return
    assert len(lines) <= 10 and all(isinstance(line, str) and "\x1b" not in line for line in lines)
    assert all(len(line) <= LINE_LIMIT for line in lines)
    text = asyncio.run(source.read_object("pod", pod.key))
    assert text.startswith("apiVersion: v1\nkind: Pod\n") or text.startswith("kind: Pod\n")
    assert f"  name: {pod.name}\n" in text and "managedFields" not in text


def test_warning_events_convert(source: KubernetesSource) -> None:
    data = source.fetch_now()
    assert all(e.warning and e.source == source.name and e.kind and e.key and e.time > 0 for e in data.events)
    assert [e.time for e in data.events] == sorted((e.time for e in data.events), reverse=True)
    # Every Warning event the server lists converts (or is counted as malformed): none is lost silently.
    page = source._call("GET", "/api/v1/events", query=[("fieldSelector", "type=Warning"), ("limit", "500")])
    raw = page.get("items") or []
    converted = [convert_warning_event(e, source=source.name) for e in raw]
    assert all(c is not None and c.event.reason for c in converted)
