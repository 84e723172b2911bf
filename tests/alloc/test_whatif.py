"""Capacity what-if and the "why pending" sentence."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from aios_tui.alloc.placement import Capacity, GangRequest, Placement, Refusal
from aios_tui.alloc.whatif import WhatIf, capacity_whatif, why_pending
from aios_tui.domain import NA, FleetSnapshot, Job, Node, NodePool
from tests.alloc.test_placement import node


def pool(name: str, zone: str, *, model: str = "H100", gpus: int = 8, price: float = 98.32) -> NodePool:
    return NodePool(
        name=name,
        source="t",
        instance_type=f"{model.lower()}.{gpus}x",
        gpu_model=model,
        gpus_per_node=gpus,
        price_per_hour=price,
        zones=(zone,),
    )


def snap(nodes: tuple[Node, ...], pools: tuple[NodePool, ...], jobs: tuple[Job, ...] = ()) -> FleetSnapshot:
    return FleetSnapshot(timestamp=0.0, nodes=nodes, pools=pools, jobs=jobs)


def test_smallest_node_count_wins_over_price() -> None:
    # zone a already has 3 free 8-GPU nodes: one more node fits 4×8 there; zone b would need 4
    nodes = tuple(node(f"a{i}", zone="a") for i in range(3))
    pools = (pool("h100-b", "b", price=10.0), pool("h100-a", "a"))
    w = capacity_whatif(snap(nodes, pools), GangRequest(4, 8, "H100"))
    assert w == WhatIf(GangRequest(4, 8, "H100"), "h100-a", "h100.8x", "a", 1, 98.32)
    assert w.describe() == "+1 × h100.8x in pool h100-a (a), $98.32/h"


def test_cheaper_pool_on_equal_node_count() -> None:
    pools = (pool("dear", "a", price=120.0), pool("cheap", "a", price=90.0), pool("a100", "a", model="A100"))
    w = capacity_whatif(snap((), pools), GangRequest(2, 8, "H100"))
    assert w is not None and (w.pool, w.nodes, w.price_per_hour) == ("cheap", 2, 180.0)
    # any model: the A100 pool is cheaper still
    w = capacity_whatif(
        snap((), (*pools[:2], pool("a100", "a", model="A100", price=40.0))), GangRequest(2, 8)
    )
    assert w is not None and (w.pool, w.price_per_hour) == ("a100", 80.0)


def test_small_nodes_need_more_of_them() -> None:
    pools = (
        pool("l4", "a", model="L4", gpus=4, price=4.6),
        pool("l4x8", "a", model="L4", gpus=8, price=13.35),
    )
    w = capacity_whatif(snap((), pools), GangRequest(2, 4, "L4"))
    # 1 × l4x8 (two 4-GPU workers) beats 2 × l4 on node count, although dearer
    assert w is not None and (w.pool, w.nodes) == ("l4x8", 1)
    w = capacity_whatif(snap((), pools), GangRequest(1, 8, "L4"))
    assert w is not None and w.pool == "l4x8"  # a 4-GPU node cannot hold an 8-GPU worker


def test_none_when_no_pool_has_the_model_or_zone_or_it_fits() -> None:
    pools = (pool("h100-a", "a"),)
    assert capacity_whatif(snap((), pools), GangRequest(1, 8, "B200")) is None
    assert capacity_whatif(snap((), pools), GangRequest(1, 8, "H100", zone="b")) is None
    assert capacity_whatif(snap((), pools), GangRequest(100, 8, "H100"), max_nodes=64) is None
    assert capacity_whatif(snap((node("x", zone="a"),), pools), GangRequest(1, 8, "H100")) is None


def test_unpriced_pool() -> None:
    w = capacity_whatif(snap((), (NodePool("p", "t", "big", "H100", 8, zones=("a",)),)), GangRequest(1, 8))
    assert w is not None and w.price_per_hour is NA
    assert w.describe() == "+1 × big in pool p (a)"


@settings(max_examples=100, deadline=None)
@given(
    used=st.lists(st.integers(0, 8), max_size=8),
    workers=st.integers(1, 12),
    g=st.sampled_from((1, 2, 4, 8)),
    per_node=st.sampled_from((4, 8)),
)
def test_whatif_is_minimal_and_sufficient(used: list[int], workers: int, g: int, per_node: int) -> None:
    nodes = tuple(node(f"n{i}", zone="a", used=u) for i, u in enumerate(used))
    s = snap(nodes, (pool("p", "a", gpus=per_node),))
    req = GangRequest(workers, g, "H100")
    w = capacity_whatif(s, req)
    if isinstance(Capacity.from_snapshot(s).place(req), Placement) or g > per_node:
        assert w is None
        return
    assert w is not None

    def fits_with(extra: int) -> bool:
        cap = Capacity.from_snapshot(s)
        cap.add_nodes(node(f"new{i}", zone="a", alloc=per_node) for i in range(extra))
        return isinstance(cap.place(req), Placement)

    assert fits_with(w.nodes)
    assert not fits_with(w.nodes - 1)


def job(workers: int, g: int, model: str = "H100", zone: str = "") -> Job:
    return Job(
        namespace="ml",
        name="train",
        source="t",
        workers=workers,
        gpus_per_worker=g,
        gpu_model=model,
        zone=zone,
    )


def test_why_pending_sentence() -> None:
    nodes = tuple(node(f"b{i}", zone="us-east-1b") for i in range(3))
    s = snap(nodes, (pool("h100-b", "us-east-1b"), pool("h100-c", "us-east-1c")))
    assert why_pending(s, job(4, 8)) == (
        "needs 4×8 H100 in one zone; the best zone (us-east-1b) has room for 3 of the 4 workers "
        "(3 nodes with 8+ free GPUs); +1 × h100.8x in pool h100-b (us-east-1b) would fit it, $98.32/h"
    )
    assert (
        why_pending(s, job(2, 8)) == "2×8 H100 fits now (zone us-east-1b); it waits for its turn in the queue"
    )
    assert why_pending(s, job(1, 8, "B200")) == (
        "no node in the fleet has B200 GPUs (the fleet has H100); no node pool offers B200 GPUs"
    )
    assert why_pending(s, job(100, 8)).endswith("; no node pool offers 800 H100 GPUs in one zone")


def test_why_pending_is_cached_per_snapshot() -> None:
    nodes = (node("a", zone="z"),)
    s1 = snap(nodes, (pool("p", "z"),))
    first = why_pending(s1, job(2, 8))
    assert first.endswith("+1 × h100.8x in pool p (z) would fit it, $98.32/h")
    assert why_pending(s1, job(2, 8)) is first
    # a new snapshot (one node more) gets a fresh answer
    s2 = snap((*nodes, node("b", zone="z")), (pool("p", "z"),))
    assert why_pending(s2, job(2, 8)).startswith("2×8 H100 fits now")
    assert isinstance(Capacity.from_snapshot(s1).place(GangRequest(2, 8)), Refusal)
