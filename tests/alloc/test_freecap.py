"""Free capacity per zone, rack and pool: by hand, and against the placement engine on random fleets."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given, settings

from aios_tui.alloc.freecap import SLOT_SIZES, free_capacity
from aios_tui.alloc.placement import DEFAULT_SIZES, Capacity, GangRequest, Placement, place_gang
from aios_tui.domain import FleetSnapshot, Gpu, Job, JobState, Node
from tests.alloc.test_placement import fleet, node, nodes_st

SCOPES = ("zone", "rack", "pool")


def job(name: str, model: str, workers: int, per_worker: int) -> Job:
    return Job(
        namespace="t",
        name=name,
        source="t",
        workers=workers,
        gpus_per_worker=per_worker,
        gpu_model=model,
        state=JobState.RUNNING,
    )


def test_a_zone_by_hand() -> None:
    snap = FleetSnapshot(
        timestamp=0.0,
        nodes=(
            node("a", rack="r1"),  # 8 free: a whole node
            node("b", rack="r1", used=5),  # 3 free
            node("c", rack="r2", used=8),  # full
            node("d", rack="r2", cordoned=True),  # blocked: its 8 free GPUs are not free capacity
            node("e", model="A100", alloc=4, used=0),  # another model, no rack
        ),
        jobs=(job("big", "H100", 4, 8), job("small", "A100", 3, 1)),
    )
    rows, totals = free_capacity(snap)
    by_key = {r.key: r for r in rows}
    zone = by_key["zone:z1:H100"]
    assert (zone.nodes, zone.gpus, zone.free, zone.whole, zone.blocked) == (3, 24, 11, 1, 1)
    assert zone.slots == (11, 5, 2, 1)  # 8 + 3 one-GPU slots, 4 + 1 two-GPU, 2 + 0 four-GPU, 1 eight
    # H100 is asked for in 8-GPU workers only: node b's 3 free GPUs are unusable, node a's 8 are not.
    assert zone.unusable == pytest.approx(3.0)
    assert zone.unusable_share == pytest.approx(3 / 11)
    assert by_key["rack:r1:H100"].free == 11 and by_key["rack:r2:H100"].free == 0
    assert by_key["rack:r2:H100"].blocked == 1 and by_key["rack:r2:H100"].nodes == 1
    a100 = by_key["zone:z1:A100"]  # asked for one GPU at a time: nothing unusable
    assert (a100.free, a100.whole, a100.slots, a100.unusable) == (4, 1, (4, 2, 1, 0), 0.0)
    assert "rack::A100" not in " ".join(by_key)  # no rack label, no rack row
    assert by_key["pool:h100-pool:H100"].free == 11
    assert [r.scope for r in rows] == sorted((r.scope for r in rows), key=("zone", "rack", "pool").index)
    assert (totals.free, totals.whole, totals.blocked) == (15, 2, 1)
    assert totals.slots == (15, 7, 3, 1)
    assert totals.unusable == pytest.approx(3.0)
    assert dict(totals.sizes["H100"]) == {8: 1.0} and dict(totals.sizes["A100"]) == {1: 1.0}


def test_a_failed_gpu_blocks_its_node_and_a_model_nobody_asks_for_takes_the_fleets_mix() -> None:
    xid = Gpu(node="b", index=0, uuid="GPU-b0", model="H100", xid=79)
    snap = FleetSnapshot(
        timestamp=0.0,
        nodes=(node("a", used=6), node("b"), node("c", model="A100", used=7)),
        gpus=(xid,),
        jobs=(job("big", "H100", 2, 4),),
    )
    rows, totals = free_capacity(snap)
    by_key = {r.key: r for r in rows}
    assert by_key["zone:z1:H100"].blocked == 1 and by_key["zone:z1:H100"].free == 2
    assert dict(totals.sizes["A100"]) == {4: 1.0}  # the fleet's mix: only H100 is asked for
    assert by_key["zone:z1:A100"].unusable == pytest.approx(1.0)


def test_no_demand_measures_against_the_default_mix() -> None:
    rows, totals = free_capacity(fleet(node("a", used=5)))
    assert dict(totals.sizes["H100"]) == dict(DEFAULT_SIZES)
    assert rows[0].unusable == pytest.approx(3 * sum(p for s, p in DEFAULT_SIZES.items() if s > 3))


@settings(max_examples=150, deadline=None)
@given(nodes=nodes_st())
def test_slots_and_unusable_agree_with_the_placement_engine(nodes: tuple[Node, ...]) -> None:
    """The engine's own capacity index, built from the same snapshot, is the reference: the free GPUs and
    N-GPU slots of each zone, the fleet's fragmentation (one mix for every model here), and whether a
    worker of N GPUs can be placed in a zone at all."""
    snap = fleet(*nodes)
    rows, totals = free_capacity(snap)
    cap = Capacity.from_snapshot(snap)
    assert totals.free == sum(cap.nodes.values())
    assert totals.unusable == pytest.approx(cap.fragmented_gpus())
    for r in rows:
        if r.scope != "zone":
            continue
        for size, slots in zip(SLOT_SIZES, r.slots, strict=True):
            assert slots == cap.zone_capacity(r.gpu_model, r.name, size)
            placed = place_gang(snap, GangRequest(1, size, r.gpu_model, r.name))
            assert isinstance(placed, Placement) == (slots > 0)
    usable = [n for n in snap.nodes if n.name in cap.nodes]
    for model in {n.gpu_model for n in usable}:
        free = sum(n.gpus_free for n in usable if n.gpu_model == model)
        racked = sum(n.gpus_free for n in usable if n.gpu_model == model and n.rack)
        by_scope = {s: sum(r.free for r in rows if r.scope == s and r.gpu_model == model) for s in SCOPES}
        assert by_scope == {"zone": free, "rack": racked, "pool": free}


def test_gpus_partly_taken_by_shares_are_not_free_slots() -> None:
    shared = dataclasses.replace(
        node("s", used=2), gpu_sharing="time-slicing", gpu_replicas=4, gpu_milli_requested=1250
    )
    _, totals = free_capacity(FleetSnapshot(timestamp=0.0, nodes=(shared,)))
    # 8 GPUs, 2 held whole, 1.25 GPUs of replicas packed on 2 GPUs: 4 whole GPUs are free
    assert (totals.free, totals.whole, totals.slots) == (4, 0, (4, 2, 1, 0))
