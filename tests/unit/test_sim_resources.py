"""The embedded fleet's CPU and memory: allocatable as the EKS AMI reserves it, requests sized to fit, and
each node's requests the sum of its pods' through an hour of events and actions."""

from __future__ import annotations

from collections import Counter

from aios_tui.sources.base import LaunchSpec, SourceData
from tests.unit.test_sim import CANARY, make

GIB = 1 << 30
MIB = 1 << 20


def _check(data: SourceData) -> None:
    """Every node's requests are its pods' and fit in what it can give them; no pod sits on a node gone."""
    cpu: Counter[str] = Counter()
    memory: Counter[str] = Counter()
    for p in data.pods:
        if p.node:
            cpu[p.node] += p.cpu
            memory[p.node] += p.memory
    for n in data.nodes:
        assert n.cpu_allocatable > 0 and n.memory_allocatable > 0
        assert (n.cpu_requested, n.memory_requested) == (cpu[n.name], memory[n.name]), n.name
        assert n.cpu_requested <= n.cpu_allocatable, f"{n.name}: {n.cpu_requested}m of {n.cpu_allocatable}m"
        assert n.memory_requested <= n.memory_allocatable, n.name
    assert set(cpu) <= {n.name for n in data.nodes}


def test_allocatable_is_what_the_eks_ami_reserves() -> None:
    data = make(8)[0].fetch_now()
    by_type = {n.instance_type: n for n in data.nodes}
    # 192 cores less 60 + 10 + 2 × 5 + 188 × 2.5 milli-CPU; 255 MiB + 11 MiB × 100 pods + 100 MiB eviction
    assert by_type["p5.48xlarge"].cpu_allocatable == 191_450
    assert by_type["p5.48xlarge"].memory_allocatable == 2048 * GIB - 1455 * MIB
    assert by_type["m7i.8xlarge"].cpu_allocatable == 31_850
    assert by_type["m7i.8xlarge"].memory_allocatable == 128 * GIB - (255 + 11 * 234 + 100) * MIB


def test_gpu_pods_ask_in_proportion_to_their_gpus_and_node_agents_little() -> None:
    data = make(200)[0].fetch_now()
    per_gpu: dict[str, set[tuple[int, int]]] = {}
    model = {n.name: n.gpu_model for n in data.nodes}
    for p in data.pods:
        if p.gpus and p.node:
            per_gpu.setdefault(model[p.node], set()).add((p.cpu // p.gpus, p.memory // p.gpus))
    # 90 % of a p5.48xlarge over its 8 GPUs, in whole cores and GiB; L4 pods sized for the 4-GPU g6.12xlarge
    assert per_gpu["H100"] == {(21_000, 230 * GIB)}
    assert per_gpu["L4"] == {(10_000, 42 * GIB)}
    agents = {(p.cpu, p.memory) for p in data.pods if p.owner_kind == "DaemonSet"}
    assert agents == {(100, 128 * MIB)}
    full = [n for n in data.nodes if n.instance_type == "p5.48xlarge" and n.gpus_requested == 8]
    assert full and all(0.85 < n.cpu_requested / n.cpu_allocatable < 0.95 for n in full)
    _check(data)


async def test_requests_stay_the_sum_of_the_pods_and_within_allocatable_through_an_hour() -> None:
    src, clock = make(200)
    data = src.fetch_now()
    _check(data)
    pools = {p.name: p for p in data.pools}
    service = next(p for p in data.pods if p.owner_kind == "ReplicaSet" and not p.gpus and p.node)
    agent = next(p for p in data.pods if p.owner_kind == "DaemonSet")
    rank = next(p for p in data.pods if p.owner_kind == "Job" and p.node)
    steps = [
        lambda: src.evict_pod(service.namespace, service.name),
        lambda: src.evict_pod(agent.namespace, agent.name),
        lambda: src.scale_endpoint(*CANARY, 8),
        lambda: src.evict_pod(rank.namespace, rank.name),
        # Two CPU pools' nodes go: their services move to the third's nodes while they have room.
        lambda: src.scale_pool("cpu-b", 0),
        lambda: src.scale_pool("cpu-c", 0),
        lambda: src.launch_job(LaunchSpec("research", "res-check", "trainer:1", 2, 8)),
        lambda: src.scale_pool("l4-a", pools["l4-a"].nodes + 1),
        lambda: src.set_cordon(data.nodes[0].name, True),
        lambda: src.scale_endpoint(*CANARY, 1),
        lambda: src.scale_pool("h100-a", pools["h100-a"].nodes - 2),
    ]
    for step in steps:
        await step()
        clock.t += 300.0
        _check(src.fetch_now())
    clock.t += 3600.0 - 300.0 * len(steps)
    data = src.fetch_now()
    _check(data)
    waiting = [p for p in data.pods if p.owner_kind == "ReplicaSet" and not p.gpus and not p.node]
    assert waiting, "services no CPU node had room for stay Pending, counted nowhere"
    assert not {n.name for n in data.nodes if n.pool in ("cpu-b", "cpu-c")}
