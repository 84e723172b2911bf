"""Scaling a node pool over a snapshot: the queued jobs it unblocks, the $/h change, the limits, the nodes
that go on a scale-down."""

from __future__ import annotations

import math

from aios_tui.alloc.pools import assess_pool_scale, pending_for_pool
from aios_tui.domain import NA, FleetSnapshot, Job, JobState, Node, NodePool, Pod


def _node(name: str, used: int, pool: str = "p5-a", model: str = "H100") -> Node:
    return Node(
        name=name,
        source="fake",
        pool=pool,
        zone="z1",
        instance_type="p5.48xlarge",
        gpu_model=model,
        gpus_total=8,
        gpus_allocatable=8,
        gpus_requested=used,
        price_per_hour=98.32,
    )


P5 = NodePool("p5-a", "fake", "p5.48xlarge", "H100", 8, 98.32, nodes=2, min_size=1, max_size=6, zones=("z1",))
A100 = NodePool("a100-a", "fake", "p4de.24xlarge", "A100", 8, 40.97, nodes=0, max_size=4, zones=("z1",))
QUEUED = Job("ml", "big", "fake", workers=2, gpus_per_worker=8, gpu_model="H100", state=JobState.QUEUED)


def _snap(*pools: NodePool, price: float | None = None) -> FleetSnapshot:
    nodes = (_node("p5-a-0001", 8), _node("p5-a-0002", 2))
    pods = (Pod("ml", "busy-0", "p5-a-0001", gpus=8), Pod("ml", "small-0", "p5-a-0002", gpus=2))
    return FleetSnapshot(0.0, nodes=nodes, pods=pods, jobs=(QUEUED,), pools=pools or (P5,))


def test_growing_the_p5_pool_by_two_unblocks_the_queued_2x8_h100_job() -> None:
    snap = _snap()
    a = assess_pool_scale(snap, P5, 4)
    assert [j.key for j in a.unblocked] == ["ml/big"]
    assert a.added_zones == ("z1", "z1") and not a.blockers
    assert math.isclose(float(a.cost_delta_per_hour), 2 * 98.32)
    one = assess_pool_scale(snap, P5, 3)  # one new node and 6 free GPUs: still not 2 workers of 8
    assert one.unblocked == () and one.still_queued == 1
    assert pending_for_pool(snap, P5) == 1


def test_a_pool_of_another_gpu_model_unblocks_nothing() -> None:
    snap = _snap(P5, A100)
    a = assess_pool_scale(snap, A100, 3)
    assert a.unblocked == () and a.still_queued == 0 and not a.blockers
    assert pending_for_pool(snap, A100) == 0


def test_limits_and_no_change_are_refused() -> None:
    snap = _snap()
    assert "outside the pool's limits 1–6" in assess_pool_scale(snap, P5, 7).blockers[0]
    assert "outside the pool's limits 1–6" in assess_pool_scale(snap, P5, 0).blockers[0]
    assert "already has desired capacity 2" in assess_pool_scale(snap, P5, 2).blockers[0]


def test_unknown_price_gives_na_cost() -> None:
    pool = NodePool("p5-a", "fake", "p5.48xlarge", "H100", 8, NA, nodes=2, max_size=6, zones=("z1",))
    assert math.isnan(float(assess_pool_scale(_snap(pool), pool, 4).cost_delta_per_hour))


def test_scale_down_removes_the_emptiest_and_names_what_runs_there() -> None:
    a = assess_pool_scale(_snap(), P5, 1)
    assert [n.name for n in a.removed] == ["p5-a-0002"]
    assert [p.key for p in a.at_risk] == ["ml/small-0"] and a.gpus_at_risk == 2
    assert math.isclose(float(a.cost_delta_per_hour), -98.32)
