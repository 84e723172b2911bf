"""Placement with CPU, memory and shares of a GPU: checked against fragmentation.py's independent measure."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aios_tui.alloc.fragmentation import NodeFree, TargetWorkload, Task, allocate, node_fragmentation
from aios_tui.alloc.placement import Capacity, GangRequest, Placement, Refusal
from aios_tui.domain import FleetSnapshot, Node
from tests.alloc.test_placement import node as placement_node

GIB = 2**30
WORKLOAD = TargetWorkload(
    (
        (Task(4000, 0, 1, 500), 0.3),
        (Task(8000, 0, 1, 1000), 0.3),
        (Task(32000, 0, 4, 1000), 0.2),
        (Task(64000, 0, 8, 1000), 0.2),
    )
)


def node(
    name: str,
    *,
    model: str = "A10",
    zone: str = "z1",
    rack: str = "",
    gpus: int = 8,
    used: int = 0,
    shared_milli: int = 0,
    cpu: int = 96_000,
    cpu_used: int = 0,
    mem: int = 512 * GIB,
    mem_used: int = 0,
    sharing: str = "mps",
) -> Node:
    """A node of ``test_placement.node`` with CPU, memory and shared GPUs."""
    return dataclasses.replace(
        placement_node(name, model=model, zone=zone, rack=rack, alloc=gpus, used=used),
        cpu_allocatable=cpu,
        cpu_requested=cpu_used,
        memory_allocatable=mem,
        memory_requested=mem_used,
        gpu_sharing=sharing,
        gpu_milli_requested=shared_milli,
    )


def capacity(*nodes: Node) -> Capacity:
    return Capacity.from_snapshot(FleetSnapshot(timestamp=0.0, nodes=nodes), workload=WORKLOAD)


# ---- a reference written from fragmentation.py, not from the engine ---------------------------------------


def reference_states(nodes: tuple[Node, ...]) -> dict[str, tuple[NodeFree, int]]:
    """node → (its room as fragmentation.py sees it, free bytes of memory); shares packed on few GPUs."""
    out = {}
    for n in nodes:
        whole = n.gpus_allocatable - n.gpus_requested - n.gpus_shared
        rest = n.gpus_shared * 1000 - n.gpu_milli_requested
        shareable = n.gpu_sharing in ("mps", "time-slicing")
        gpus = (1000,) * whole + ((rest,) if rest and shareable else ())
        out[n.name] = (
            NodeFree(n.cpu_allocatable - n.cpu_requested, 0, gpus, n.gpu_model),
            n.memory_free or 0,
        )
    return out


def reference_options(
    state: NodeFree, mem: int, req: GangRequest, shareable: bool
) -> list[tuple[float, NodeFree, tuple[int, ...]]]:
    """Every place one worker could go on a node: (fragmentation increase in GPUs, room after, GPUs)."""
    if state.cpu_milli < req.cpu or mem < req.memory or (req.models and state.model not in req.models):
        return []
    task = Task(req.cpu, 0, req.gpus_per_worker, (req.gpu_milli or 1000) if req.gpus_per_worker else 0)
    if req.gpu_milli:
        if not shareable:
            return []
        choices: list[tuple[int, ...]] = [(i,) for i, g in enumerate(state.gpus) if g >= req.gpu_milli]
    elif req.gpus_per_worker:
        whole = [i for i, g in enumerate(state.gpus) if g == 1000]
        choices = [tuple(whole[: req.gpus_per_worker])] if len(whole) >= req.gpus_per_worker else []
    else:
        choices = [()]
    before = node_fragmentation(state, WORKLOAD)
    out = []
    for gpus in choices:
        after = allocate(state, task, gpus)
        out.append(((node_fragmentation(after, WORKLOAD) - before) / 1000, after, gpus))
    return out


@st.composite
def fleets(draw: st.DrawFn) -> tuple[Node, ...]:
    out = []
    for i in range(draw(st.integers(1, 12))):
        gpus = draw(st.sampled_from((2, 4, 8)))
        used = draw(st.integers(0, gpus))
        shared = draw(st.integers(0, (gpus - used) * 1000)) if draw(st.booleans()) else 0
        cpu = draw(st.sampled_from((16_000, 64_000, 96_000)))
        mem = draw(st.sampled_from((64, 256))) * GIB
        out.append(
            node(
                f"n{i:02d}",
                model=draw(st.sampled_from(("A10", "T4"))),
                zone=draw(st.sampled_from(("z1", "z2"))),
                gpus=gpus,
                used=used,
                shared_milli=shared,
                cpu=cpu,
                cpu_used=draw(st.integers(0, cpu)),
                mem=mem,
                mem_used=draw(st.integers(0, mem // GIB)) * GIB,
                sharing=draw(st.sampled_from(("mps", "mps", "time-slicing", ""))),
            )
        )
    return tuple(out)


requests = st.builds(
    GangRequest,
    workers=st.just(1),
    gpus_per_worker=st.sampled_from((0, 1, 1, 2, 4, 8)),
    gpu_model=st.sampled_from(("", "A10", "T4", "A10|T4")),
    cpu=st.sampled_from((1000, 4000, 8000, 32000)),
    memory=st.sampled_from((0, 4 * GIB, 64 * GIB, 200 * GIB)),
).flatmap(
    lambda r: st.sampled_from((0, 0, 250, 500, 900)).map(
        lambda m: (
            GangRequest(1, r.gpus_per_worker, r.gpu_model, cpu=r.cpu, memory=r.memory, gpu_milli=m)
            if m and r.gpus_per_worker == 1
            else r
        )
    )
)


@settings(max_examples=150, deadline=None)
@given(nodes=fleets(), reqs=st.lists(requests, min_size=1, max_size=10))
def test_each_worker_goes_where_fragmentation_grows_least_and_nothing_is_overcommitted(
    nodes: tuple[Node, ...], reqs: list[GangRequest]
) -> None:
    cap = capacity(*nodes)
    ref = reference_states(nodes)
    shareable = {n.name for n in nodes if n.gpu_sharing in ("mps", "time-slicing")}
    for req in reqs:
        options = {
            name: reference_options(state, mem, req, name in shareable) for name, (state, mem) in ref.items()
        }
        least = min((cost for opts in options.values() for cost, _, _ in opts), default=None)
        got = cap.place(req)
        if least is None:
            assert isinstance(got, Refusal), (req, got)
            continue
        assert isinstance(got, Placement), (req, got.reason)
        (name,) = got.nodes
        mine = options[name]
        assert mine, f"{name} cannot hold {req.describe()}"
        if req.gpu_milli:  # the share named is one of the node's GPUs with that much free
            (share,) = got.shares
            fitting = [c for c in mine if ref[name][0].gpus[c[2][0]] == share]
        else:
            fitting = mine
        assert fitting, (name, got.shares)
        cost, after, _ = min(fitting, key=lambda c: c[0])
        assert cost == pytest.approx(least, abs=1e-9), f"{name} costs {cost}, the least is {least}"
        cap.commit(got)
        ref[name] = (after, ref[name][1] - req.memory)
        assert sorted(g for g in ref[name][0].gpus if g) == sorted(
            (1000,) * cap.free(name) + cap._parts.get(name, ())
        )


def test_cpu_and_memory_keep_a_worker_off_a_node_with_free_gpus() -> None:
    cap = capacity(
        node("busy", cpu=96_000, cpu_used=95_000),
        node("full-mem", mem=64 * GIB, mem_used=60 * GIB),
        node("roomy", used=4),
    )
    got = cap.place(GangRequest(1, 2, cpu=8000, memory=16 * GIB))
    assert isinstance(got, Placement) and got.nodes == ("roomy",)
    refused = cap.place(GangRequest(1, 8, cpu=8000, memory=16 * GIB))
    assert isinstance(refused, Refusal)
    assert refused.reason == (
        "needs 1×8 GPUs + 8 CPU, 16 GiB in one zone; 2 nodes with the GPU room, 1 with the CPU and memory, "
        "0 with both"
    )


def test_shares_pack_onto_a_partly_taken_gpu_and_only_where_gpus_are_shared() -> None:
    cap = capacity(node("whole", sharing=""), node("shared", used=6, shared_milli=1500))
    first = cap.place(GangRequest(1, 1, cpu=1000, gpu_milli=400))
    assert isinstance(first, Placement)
    assert first.nodes == ("shared",) and first.shares == (500,)  # the half-free GPU, not a fresh one
    cap.commit(first)
    assert cap._parts["shared"] == (100,) and cap.free("shared") == 0
    second = cap.place(GangRequest(1, 1, cpu=1000, gpu_milli=400))
    assert isinstance(second, Refusal), "the plain node takes no share; the shared one has 100 milli left"
    assert second.reason == (
        "needs 1×0.4 GPUs + 1 CPU in one zone; 0 nodes with the GPU room, 2 with the CPU, 0 with both"
    )
    mig = capacity(node("mig", sharing="mig"))
    assert isinstance(mig.place(GangRequest(1, 1, cpu=1000, gpu_milli=400)), Refusal)
    assert isinstance(mig.place(GangRequest(1, 1, cpu=1000)), Placement)


def test_commit_refuses_a_stale_placement_and_takes_nothing() -> None:
    cap = capacity(node("a", gpus=2, cpu=16_000))
    p = cap.place(GangRequest(1, 1, cpu=12_000))
    assert isinstance(p, Placement)
    copy = cap.copy()
    copy.commit(p)
    with pytest.raises(ValueError, match="no longer has room"):
        copy.commit(p)
    assert copy.free("a") == 1 and cap.free("a") == 2 and copy._cpu["a"] == 4000 and cap._cpu["a"] == 16_000


def test_model_alternatives_and_cpu_only_workers() -> None:
    cap = capacity(node("v", model="V100"), node("t", model="T4", used=7))
    got = cap.place(GangRequest(1, 1, "A10|T4", cpu=1000))
    assert isinstance(got, Placement) and got.nodes == ("t",)
    refused = cap.place(GangRequest(1, 1, "A10|L4", cpu=1000))
    assert isinstance(refused, Refusal) and refused.reason.startswith("no node in the fleet has A10|L4 GPUs")
    cpu_only = cap.place(GangRequest(1, 0, cpu=2000, memory=GIB))
    assert isinstance(cpu_only, Placement)
    assert GangRequest(1, 0, cpu=2000, memory=GIB).describe() == "1 worker of 2 CPU, 1 GiB"
    assert GangRequest(2, 1, "T4", cpu=500, gpu_milli=250).describe() == "2×0.25 T4 + 0.5 CPU"


def test_a_multi_resource_gang_stays_in_one_zone_and_on_few_nodes() -> None:
    cap = capacity(
        node("a1", zone="z1", used=6),
        node("a2", zone="z1", used=6),
        node("b1", zone="z2", used=4),
        node("b2", zone="z2", used=4),
    )
    got = cap.place(GangRequest(2, 2, cpu=4000))
    assert isinstance(got, Placement)
    assert {cap._where[n][1] for n in got.nodes} == {"z1"} or len(set(got.nodes)) == 1
    refused = cap.place(GangRequest(3, 4, cpu=4000))  # z2 holds 2 of 3 and z1 none: zones never mix
    assert isinstance(refused, Refusal) and "holds 2 of the 3 workers" in refused.reason


def test_a_flexible_request_leaves_a_scarce_model_to_the_requests_pinned_to_it() -> None:
    nodes = (node("t4", model="T4", gpus=2, used=1), node("g2", model="G2", gpus=8))
    snapshot = FleetSnapshot(timestamp=0.0, nodes=nodes)
    flexible = GangRequest(1, 1, cpu=1000)
    anyone = TargetWorkload(((Task(1000, 0, 1, 1000), 0.5), (Task(1000, 0, 4, 1000), 0.5)))
    pinned = TargetWorkload(((Task(1000, 0, 1, 1000, frozenset({"T4"})), 0.5), (Task(1000, 0, 4, 1000), 0.5)))
    alone = Capacity.from_snapshot(snapshot, workload=anyone).place(flexible)
    assert isinstance(alone, Placement) and alone.nodes == ("t4",), "fragmentation alone takes the T4"
    cap = Capacity.from_snapshot(snapshot, workload=pinned)
    # T4: 0.5 of the 2.5 GPUs a task asks on average is pinned to it (0.2), on a fifth of the GPUs (0.2).
    assert cap._scarcity() == pytest.approx({"T4": 1.0})
    got = cap.place(flexible)
    assert isinstance(got, Placement) and got.nodes == ("g2",)
    t4_only = cap.place(GangRequest(1, 1, "T4", cpu=1000))
    assert isinstance(t4_only, Placement) and t4_only.nodes == ("t4",)
