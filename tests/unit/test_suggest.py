"""Suggestions from the GPU telemetry: which nodes to cordon, why, how bad; and where they show headless."""

from __future__ import annotations

import dataclasses

from aios_tui.alloc.placement import Capacity, GangRequest, Refusal, place_gang
from aios_tui.domain import FleetSnapshot, Gpu, Health, Node, Throttle
from aios_tui.domain.health import Need
from aios_tui.ops import suggest_cordons
from aios_tui.render.jsonout import snapshot_to_json


def node(name: str, **kw: object) -> Node:
    base: dict[str, object] = {
        "name": name,
        "source": "t",
        "pool": "p",
        "zone": "z",
        "instance_type": "p5.48xlarge",
        "gpu_model": "H100",
        "gpus_total": 8,
        "gpus_allocatable": 8,
    }
    base.update(kw)
    return Node(**base)  # type: ignore[arg-type]


def gpu(node_name: str, index: int, **kw: object) -> Gpu:
    return Gpu(node=node_name, index=index, uuid=f"GPU-{node_name}-{index}", model="H100", util=50.0, **kw)  # type: ignore[arg-type]


def fleet() -> FleetSnapshot:
    nodes = (
        node("ok-1"),
        node("xid-1"),
        node("ecc-1"),
        node("hot-1"),
        node("brake-1"),
        node("capped-1"),
        node("xid13-1"),
        node("done-1", cordoned=True),
    )
    gpus = (
        gpu("ok-1", 0),
        gpu("xid-1", 3, xid=79),
        gpu("xid-1", 5, throttle=Throttle.HW_SLOWDOWN),
        gpu("ecc-1", 0, ecc_uncorrected=2),
        gpu("hot-1", 1, throttle=Throttle.SW_THERMAL | Throttle.HW_THERMAL, temp=90.0),
        gpu("brake-1", 2, throttle=Throttle.HW_POWER_BRAKE),
        gpu("capped-1", 0, throttle=Throttle.SW_POWER_CAP, power=690.0, power_limit=700.0),
        gpu("xid13-1", 0, xid=13),
        gpu("done-1", 0, xid=79),
    )
    return FleetSnapshot(timestamp=0.0, nodes=nodes, gpus=gpus)


def test_nodes_to_cordon_worst_first_with_reasons() -> None:
    got = {s.node: s for s in suggest_cordons(fleet())}
    # Worst verdict first: XID 79 asks for a reboot, uncorrectable ECC for a reset, the rest for a watch.
    assert [s.node for s in suggest_cordons(fleet())] == [
        "xid-1",
        "ecc-1",
        "brake-1",
        "hot-1",
        "xid13-1",
    ]
    assert got["xid-1"].severity is Health.FAIL and got["xid-1"].need is Need.REBOOT
    assert got["xid-1"].reasons == (
        "gpu3 XID 79 fallen off the bus → reboot node",
        "gpu5 throttling (HW slowdown)",
    )
    assert got["xid-1"].gpus == (3, 5)
    assert got["ecc-1"].reason == "gpu0 2 uncorrectable ECC errors → reset GPU"
    assert got["ecc-1"].need is Need.RESET
    assert got["brake-1"].severity is Health.WARN and got["brake-1"].reason == "gpu2 throttling (power brake)"
    assert got["hot-1"].reason == "gpu1 throttling (SW thermal, HW thermal)"
    assert got["xid13-1"].severity is Health.WARN
    assert got["xid13-1"].reason == "gpu0 XID 13 graphics engine exception → restart the app"
    assert "capped-1" not in got  # the SW power cap under load is normal
    assert "done-1" not in got  # already cordoned
    assert all(s.action == "cordon" for s in got.values())


def test_suggestions_are_the_snapshots_verdicts() -> None:
    snap = fleet()
    verdicts = snap.verdicts
    assert snap.verdicts is verdicts  # computed once per snapshot
    assert [s.node for s in suggest_cordons(snap)] == [v.node for v in verdicts.values() if not v.cordoned]
    assert verdicts["done-1"].need is Need.REBOOT and verdicts["done-1"].cordoned


def test_a_healthy_fleet_suggests_nothing() -> None:
    snap = FleetSnapshot(timestamp=0.0, nodes=(node("a"),), gpus=(gpu("a", 0),))
    assert suggest_cordons(snap) == ()


def test_snapshot_json_carries_the_suggestions_and_idle_gpus() -> None:
    snap = fleet()
    snap = dataclasses.replace(
        snap,
        nodes=(*snap.nodes, node("idle-1", price_per_hour=80.0)),
        gpus=(*snap.gpus, dataclasses.replace(gpu("idle-1", 0, pod="ns/p"), util=1.0, low_since=-900.0)),
        idle_window=600.0,
    )
    doc = snapshot_to_json(snap)
    assert doc["suggestions"][1] == {
        "action": "cordon",
        "node": "ecc-1",
        "severity": "FAIL",
        "verdict": "reset",
        "reasons": ["gpu0 2 uncorrectable ECC errors → reset GPU"],
    }
    assert [v["node"] for v in doc["verdicts"]] == ["done-1", "xid-1", "ecc-1", "brake-1", "hot-1", "xid13-1"]
    assert doc["verdicts"][0] == {
        "node": "done-1",
        "verdict": "reboot",
        "why": ["gpu0 XID 79 fallen off the bus → reboot node"],
        "jobs": [],
        "endpoints": [],
        "pods": [],
        "cordoned": True,
        "cordoned_by": "",
    }
    assert len(doc["suggestions"]) == 5
    assert doc["idle_window"] == 600.0
    assert doc["idle_gpus"] == [
        {
            "uuid": "GPU-idle-1-0",
            "node": "idle-1",
            "index": 0,
            "pod": "ns/p",
            "util": 1.0,
            "low_since": -900.0,
            "price_per_hour": 10.0,
        }
    ]
    assert doc["gpus"][-1]["low_since"] == -900.0


def test_placement_keeps_off_a_node_whose_gpu_failed() -> None:
    # The node itself says it is healthy; its GPU 3 fell off the bus.
    snap = FleetSnapshot(
        timestamp=0.0,
        nodes=(node("bad"), node("good", gpus_allocatable=8)),
        gpus=(gpu("bad", 3, xid=79),),
    )
    cap = Capacity.from_snapshot(snap)
    assert cap.free("bad") == 0 and cap.free("good") == 8
    placed = place_gang(snap, GangRequest(workers=2, gpus_per_worker=8, gpu_model="H100"))
    assert isinstance(placed, Refusal) and "1 unhealthy" in placed.reason
