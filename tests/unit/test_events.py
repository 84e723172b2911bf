"""What changed between two snapshots (``poll.events.changes``), found by comparing only the objects a
source rebuilt, whether or not the fleet's GPUs come in the same order; and the snapshot's indexes of the few
nodes a verdict or a drain asks about."""

from __future__ import annotations

from dataclasses import replace

from aios_tui.domain import FleetSnapshot, Gpu, Node, Pod
from aios_tui.poll.events import changes


def gpus(node: str, n: int) -> tuple[Gpu, ...]:
    return tuple(Gpu(node, i, f"GPU-{node}-{i}", "H100", util=50.0) for i in range(n))


def node(name: str) -> Node:
    return Node(name, "sim", "h100-a", "us-east-1a", "p5.48xlarge", "H100", 8, 8, 0)


def test_nothing_on_the_first_snapshot_and_nothing_when_no_object_changed() -> None:
    snap = FleetSnapshot(0.0, nodes=(node("a"),), gpus=gpus("a", 8))
    assert changes(None, snap, 10.0) == []
    assert changes(snap, replace(snap, timestamp=2.0), 10.0) == []


def test_a_new_xid_and_ecc_are_found_in_place_and_after_the_gpus_moved() -> None:
    before = FleetSnapshot(0.0, nodes=(node("a"), node("b")), gpus=gpus("a", 8) + gpus("b", 8))
    a = list(before.gpus[:8])
    a[3] = replace(a[3], xid=79, xid_at=5.0)
    b = list(before.gpus[8:])
    b[1] = replace(b[1], ecc_uncorrected=2)
    b[2] = replace(b[2], util=60.0)  # a new reading, nothing to tell
    same_order = replace(before, gpus=(*a, *b))
    found = [(e.key, e.reason, e.time) for e in changes(before, same_order, 10.0)]
    assert found == [("GPU-a-3", "XID 79", 5.0), ("GPU-b-1", "ECC", 10.0)]
    # A node joined in front: the GPUs no longer line up by position, and the same events are found.
    joined = replace(before, nodes=(node("c"), *before.nodes), gpus=(*gpus("c", 4), *a, *b))
    assert [(e.key, e.reason) for e in changes(before, joined, 10.0)] == [
        ("GPU-a-3", "XID 79"),
        ("GPU-b-1", "ECC"),
    ]
    # Same count, different order (two nodes swapped): compared by uuid where positions disagree.
    swapped = replace(before, gpus=(*b, *a))
    assert [(e.key, e.reason) for e in changes(before, swapped, 10.0)] == [
        ("GPU-b-1", "ECC"),
        ("GPU-a-3", "XID 79"),
    ]


def test_nodes_not_ready_and_cordoned_by_whom() -> None:
    before = FleetSnapshot(0.0, nodes=(node("a"), node("b")))
    after = replace(
        before, nodes=(replace(node("a"), ready=False), replace(node("b"), cordoned=True, cordoned_by="ann"))
    )
    found = [(e.key, e.reason, e.message) for e in changes(before, after, 10.0)]
    assert found == [
        ("a", "NotReady", "the node stopped reporting Ready"),
        ("b", "Cordoned", "cordoned by ann"),
    ]


def test_gpus_by_node_keeps_a_nodes_gpus_that_come_in_two_runs() -> None:
    a, b = gpus("a", 2), gpus("b", 1)
    snap = FleetSnapshot(0.0, gpus=(a[0], b[0], a[1]))
    assert snap.gpus_by_node == {"a": a, "b": b}


def test_pods_on_a_few_nodes_agree_with_the_whole_index_and_follow_the_pods() -> None:
    pods = tuple(Pod("ns", f"p{i}", f"n{i % 5}") for i in range(40))
    snap = FleetSnapshot(0.0, pods=pods)
    asked = snap.pods_on(["n1", "n3", "gone"])
    assert asked == {"n1": snap.pods_by_node["n1"], "n3": snap.pods_by_node["n3"], "gone": ()}
    assert FleetSnapshot(0.0, pods=pods).pods_on(["n1"]) == {"n1": pods[1::5]}  # before any index
    moved = (*pods[:-1], replace(pods[-1], node="n1"))  # the sim's scheduler moved a pod: a new tuple
    assert FleetSnapshot(0.0, pods=moved).pods_on(["n1"])["n1"] == (*pods[1::5], moved[-1])
