"""CPU, memory and shared GPUs through the real client and `FakeApiServer`: what a node offers and what
its pods take, read as the scheduler reads them (effective requests, terminated pods freed), on GPUs
offered whole, time-sliced (GPU feature discovery's replicas labels, the ``.shared`` rename) and as MIG
slices (mixed and single strategies), and kept right as pods and labels change."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from aios_tui.domain import MigSlice, Node, Pod
from aios_tui.sources.kubernetes import KubernetesSource
from tests.k8s.apiserver import FakeApiServer
from tests.k8s.test_source import make_source, wait_for

GIB = 2**30
_T0 = "2026-11-29T00:00:00Z"


def node(name: str, allocatable: dict[str, str], labels: dict[str, str] | None = None) -> dict[str, Any]:
    ready = [{"type": "Ready", "status": "True"}]
    status = {"capacity": allocatable, "allocatable": allocatable, "conditions": ready}
    meta = {"name": name, "labels": labels or {}, "creationTimestamp": _T0}
    return {"kind": "Node", "apiVersion": "v1", "metadata": meta, "spec": {}, "status": status}


def pod(
    name: str,
    on: str,
    requests: dict[str, str],
    phase: str = "Running",
    **spec: Any,
) -> dict[str, Any]:
    container = {"name": "main", "image": "registry.local/app:1", "resources": {"requests": requests}}
    return {
        "kind": "Pod",
        "apiVersion": "v1",
        "metadata": {"name": name, "namespace": "team", "creationTimestamp": _T0},
        "spec": {"nodeName": on, "containers": [container], **spec},
        "status": {"phase": phase},
    }


TIME_SLICED = {
    "nvidia.com/gpu.count": "8",
    "nvidia.com/gpu.replicas": "4",
    "nvidia.com/gpu.sharing-strategy": "time-slicing",
    "nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3-SHARED",
}


def scene() -> list[dict[str, Any]]:
    sidecar = {
        "name": "proxy",
        "image": "registry.local/proxy:1",
        "restartPolicy": "Always",
        "resources": {"requests": {"cpu": "250m", "memory": "128Mi"}},
    }
    return [
        node("cpu-node", {"cpu": "64", "memory": "256Gi", "pods": "110"}),
        pod("web", "cpu-node", {"cpu": "500m", "memory": "1Gi"}, initContainers=[sidecar]),
        pod("starting", "cpu-node", {"cpu": "2", "memory": "4Gi"}, phase="Pending"),
        pod("lost", "cpu-node", {"cpu": "1", "memory": "1Gi"}, phase="Unknown"),  # still holds them
        pod("done", "cpu-node", {"cpu": "8", "memory": "32Gi"}, phase="Succeeded"),  # freed
        pod("failed", "cpu-node", {"cpu": "8", "memory": "32Gi"}, phase="Failed"),  # freed
        pod("waiting", "", {"cpu": "16", "memory": "64Gi"}, phase="Pending"),  # not bound: holds nothing
        node("ts-node", {"cpu": "192", "memory": "2048Gi", "nvidia.com/gpu": "32"}, TIME_SLICED),
        pod("one-replica", "ts-node", {"nvidia.com/gpu": "1", "cpu": "4"}),
        pod("two-replicas", "ts-node", {"nvidia.com/gpu": "2", "cpu": "4"}),
        node(
            "mps-node",
            {"nvidia.com/gpu": "0", "nvidia.com/gpu.shared": "8"},  # renameByDefault, no gpu.count label
            {"nvidia.com/gpu.replicas": "2", "nvidia.com/gpu.sharing-strategy": "mps"},
        ),
        pod("mps-client", "mps-node", {"nvidia.com/gpu.shared": "1"}),
        node(
            "mig-node",  # mixed: 4 whole GPUs, 2 in seven 1g slices, 2 in two 3g slices
            {"nvidia.com/gpu": "4", "nvidia.com/mig-1g.10gb": "14", "nvidia.com/mig-3g.40gb": "4"},
            {"nvidia.com/mig.strategy": "mixed", "nvidia.com/gpu.count": "8"},
        ),
        pod("small", "mig-node", {"nvidia.com/mig-1g.10gb": "2"}),
        pod("medium", "mig-node", {"nvidia.com/mig-3g.40gb": "1"}),
        pod("whole", "mig-node", {"nvidia.com/gpu": "2"}),
        node(
            "mig-single",  # single: the GPU resource counts 1g.5gb slices (gpu.count counts them too)
            {"nvidia.com/gpu": "56"},
            {
                "nvidia.com/mig.strategy": "single",
                "nvidia.com/gpu.product": "NVIDIA-A100-SXM4-40GB-MIG-1g.5gb",
                "nvidia.com/gpu.count": "56",
            },
        ),
        pod("slices", "mig-single", {"nvidia.com/gpu": "3"}),
    ]


@pytest.fixture
def server() -> Iterator[FakeApiServer]:
    with FakeApiServer(scene(), bookmark_interval=0.1) as srv:
        yield srv


@pytest.fixture
def source(server: FakeApiServer, tmp_path: Path) -> Iterator[KubernetesSource]:
    src = make_source(server.write_kubeconfig(tmp_path / "kubeconfig"))
    yield src
    src.close_now()


def by_name(items: Any) -> dict[str, Any]:
    return {item.name: item for item in items}


def test_cpu_and_memory_are_what_holding_pods_request(source: KubernetesSource) -> None:
    data = source.fetch_now()
    cpu = by_name(data.nodes)["cpu-node"]
    assert (cpu.cpu_allocatable, cpu.memory_allocatable) == (64_000, 256 * GIB)
    # web 500m + its sidecar 250m, starting 2, lost 1; done, failed and the unbound pod hold nothing.
    assert cpu.cpu_requested == 750 + 2000 + 1000
    assert cpu.memory_requested == GIB + 128 * 2**20 + 4 * GIB + GIB
    assert (cpu.cpu_free, cpu.memory_free) == (64_000 - 3750, 256 * GIB - cpu.memory_requested)
    pods: dict[str, Pod] = by_name(data.pods)
    assert (pods["web"].cpu, pods["web"].memory) == (750, GIB + 128 * 2**20)
    assert pods["waiting"].cpu == 16_000 and pods["done"].cpu == 8000  # asked, though not held
    assert by_name(data.nodes)["ts-node"].cpu_requested == 8000


def test_a_time_sliced_node_counts_physical_gpus_and_replicas_as_shares(source: KubernetesSource) -> None:
    data = source.fetch_now()
    ts: Node = by_name(data.nodes)["ts-node"]
    assert (ts.gpu_sharing, ts.gpu_replicas, ts.gpu_model) == ("time-slicing", 4, "H100")
    assert (ts.gpus_total, ts.gpus_allocatable, ts.gpus_requested) == (8, 8, 0)
    assert ts.gpu_milli_requested == 750 and ts.gpus_free == 7  # three replicas are on one GPU or more
    pods: dict[str, Pod] = by_name(data.pods)
    assert [(pods[n].gpus, pods[n].gpu_milli) for n in ("one-replica", "two-replicas")] == [
        (0, 250),
        (0, 500),
    ]
    assert len([g for g in data.gpus if g.node == "ts-node"]) == 8 and not any(
        g.pod for g in data.gpus if g.node == "ts-node"
    )
    mps: Node = by_name(data.nodes)["mps-node"]
    assert (mps.gpu_sharing, mps.gpu_replicas, mps.gpus_allocatable) == ("mps", 2, 4)
    assert (pods["mps-client"].gpu_milli, mps.gpu_milli_requested, mps.gpus_free) == (500, 500, 3)


def test_mig_nodes_count_their_slices(source: KubernetesSource) -> None:
    data = source.fetch_now()
    nodes: dict[str, Node] = by_name(data.nodes)
    pods: dict[str, Pod] = by_name(data.pods)
    mig = nodes["mig-node"]
    assert (mig.gpu_sharing, mig.gpus_allocatable, mig.gpus_requested) == ("mig", 8, 2)
    assert mig.mig_slices == (MigSlice("1g.10gb", 14, 2, 142), MigSlice("3g.40gb", 4, 1, 428))
    # 14 × 1g and 4 × 3g partition 4 GPUs (1.99 + 1.71), used or not: 8 − 2 held whole − 4
    assert mig.gpu_milli_requested == 2 * 142 + 428 and mig.gpus_free == 8 - 2 - 4
    assert (pods["small"].gpu_profile, pods["small"].gpu_milli, pods["small"].gpus) == ("1g.10gb", 284, 0)
    assert (pods["whole"].gpus, pods["whole"].gpu_milli) == (2, 0)
    single = nodes["mig-single"]
    assert (single.gpu_sharing, single.gpus_total, single.gpus_allocatable) == ("mig", 8, 8)
    assert single.mig_slices == (MigSlice("1g.5gb", 56, 3, 142),)
    assert (pods["slices"].gpus, pods["slices"].gpu_milli, pods["slices"].gpu_profile) == (0, 426, "1g.5gb")
    assert single.gpus_free == 0  # every GPU is partitioned (single strategy): none to take whole


def test_changes_to_pods_and_labels_show_in_the_next_fetch(
    source: KubernetesSource, server: FakeApiServer
) -> None:
    first = source.fetch_now()
    lost = server.get("Pod", "team", "lost")
    assert lost is not None
    lost["status"]["reason"] = "NodeLost"  # the pod changes, not what it requests: the node is reused
    server.apply(lost)
    data = wait_for(source, lambda d: by_name(d.pods)["lost"].reason == "NodeLost")
    assert by_name(data.nodes)["cpu-node"] is by_name(first.nodes)["cpu-node"]
    web = server.get("Pod", "team", "web")
    assert web is not None
    web["status"]["phase"] = "Succeeded"
    server.apply(web)
    data = wait_for(source, lambda d: by_name(d.nodes)["cpu-node"].cpu_requested == 3000)
    assert by_name(data.nodes)["ts-node"] is by_name(first.nodes)["ts-node"]  # unchanged: reused
    ts = server.get("Node", "", "ts-node")
    assert ts is not None
    ts["metadata"]["labels"]["nvidia.com/gpu.replicas"] = "2"  # the device plugin reconfigured
    ts["status"]["allocatable"]["nvidia.com/gpu"] = ts["status"]["capacity"]["nvidia.com/gpu"] = "16"
    server.apply(ts)
    data = wait_for(source, lambda d: by_name(d.nodes)["ts-node"].gpu_replicas == 2)
    pods: dict[str, Pod] = by_name(data.pods)
    assert (pods["one-replica"].gpu_milli, pods["two-replicas"].gpu_milli) == (500, 1000)
    assert by_name(data.nodes)["ts-node"].gpu_milli_requested == 1500
    del ts["metadata"]["labels"]["nvidia.com/gpu.replicas"]  # sharing off: each device a whole GPU again
    ts["status"]["allocatable"]["nvidia.com/gpu"] = ts["status"]["capacity"]["nvidia.com/gpu"] = "8"
    server.apply(ts)
    data = wait_for(source, lambda d: not by_name(d.nodes)["ts-node"].gpu_sharing)
    pods = by_name(data.pods)
    assert (pods["two-replicas"].gpus, pods["two-replicas"].gpu_milli) == (2, 0)
    assert by_name(data.nodes)["ts-node"].gpus_requested == 3
