"""Node verdicts (healthy, watch, drain, reset, reboot, RMA) from GPU and node readings, after NVIDIA's XID
catalog and the driver's recovery action; computed once per snapshot."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aios_tui.domain import FATAL_XIDS, XID_TEXT, Condition, FleetSnapshot, Gpu, Job, Node, Pod, Throttle
from aios_tui.domain.health import NVLINK_DRAIN_AT, Need, gpu_findings, gpu_need, to_cordon, verdict_for
from aios_tui.domain.xid import CATALOG_DATE, XID_TABLE, XidAction, xid_info


def node(name: str = "n1", **kw: object) -> Node:
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


def gpu(index: int = 0, node_name: str = "n1", **kw: object) -> Gpu:
    return Gpu(node=node_name, index=index, uuid=f"GPU-{node_name}-{index}", model="H100", util=50.0, **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("readings", "need"),
    [
        ({}, Need.HEALTHY),
        ({"xid": 13}, Need.WATCH),  # an application fault: restart the app, the GPU is fine
        ({"xid": 43}, Need.WATCH),  # the catalog's IGNORE
        ({"xid": 94}, Need.WATCH),  # contained: restart the app, reset when convenient
        ({"xid": 48}, Need.RESET),
        ({"xid": 95}, Need.RESET),
        ({"xid": 119}, Need.RESET),
        ({"xid": 145}, Need.RESET),  # NVLink5 workflow, first step
        ({"xid": 79}, Need.REBOOT),
        ({"xid": 999}, Need.WATCH),  # not in the table: a look, not a drain on a guess
        ({"ecc_uncorrected": 2}, Need.RESET),
        ({"remap_pending": True}, Need.RESET),
        ({"remap_failed": True}, Need.RMA),
        ({"remap_failed": True, "remap_pending": True}, Need.RMA),
        ({"nvlink_errors": 1}, Need.WATCH),
        ({"nvlink_errors": NVLINK_DRAIN_AT - 1}, Need.WATCH),
        ({"nvlink_errors": NVLINK_DRAIN_AT}, Need.DRAIN),
        ({"throttle": Throttle.HW_THERMAL}, Need.WATCH),
        ({"throttle": Throttle.HW_POWER_BRAKE}, Need.WATCH),
        ({"throttle": Throttle.SW_POWER_CAP}, Need.HEALTHY),  # a busy GPU at its power limit
        ({"temp": 88.0}, Need.WATCH),
        ({"lost_since": 100.0}, Need.WATCH),
        ({"recovery_action": "none"}, Need.HEALTHY),
        ({"recovery_action": "drain_p2p"}, Need.DRAIN),
        ({"recovery_action": "reset"}, Need.RESET),
        ({"recovery_action": "drain_and_reset"}, Need.RESET),
        ({"recovery_action": "reboot"}, Need.REBOOT),
        # The driver's recovery action wins over the XID and ECC readings: it knows what was handled.
        ({"xid": 79, "recovery_action": "none"}, Need.WATCH),
        ({"xid": 48, "ecc_uncorrected": 1, "recovery_action": "reboot"}, Need.REBOOT),
        ({"xid": 13, "recovery_action": "reset"}, Need.RESET),
        # ... but not over the row remapper's state.
        ({"remap_failed": True, "recovery_action": "none"}, Need.RMA),
    ],
)
def test_each_reading_maps_to_its_verdict(readings: dict[str, Any], need: Need) -> None:
    g = gpu(**readings)
    assert gpu_need(g) is need
    snap = FleetSnapshot(timestamp=1000.0, nodes=(node(),), gpus=(g,))
    assert verdict_for(snap, "n1").need is need
    if need:
        assert snap.verdicts["n1"].need is need
    else:
        assert "n1" not in snap.verdicts  # only nodes that are not healthy


def test_the_node_itself() -> None:
    down = node("down", ready=False)
    pressed = node("pressed", conditions=(Condition("Ready", "True"), Condition("MemoryPressure", "True")))
    gone = node("gone", lost_since=500.0)
    snap = FleetSnapshot(
        timestamp=1000.0,
        nodes=(down, pressed, gone, node("fine")),
        gpus=(gpu(0, "gone", lost_since=500.0), gpu(1, "gone", lost_since=500.0)),
    )
    v = snap.verdicts
    assert list(v) == ["down", "gone", "pressed"]  # worst first, then by name
    assert v["down"].need is Need.DRAIN and v["down"].findings[0].what == "NotReady"
    assert v["pressed"].need is Need.WATCH and v["pressed"].why(1000.0) == "MemoryPressure"
    # A lost node's GPUs are lost with it: one finding, not one per GPU.
    assert v["gone"].why(1000.0) == "not reported, 8m ago"
    assert to_cordon(snap) == ()  # nothing a cordon helps with


def test_why_says_when_and_what_to_do() -> None:
    g = gpu(3, xid=79, xid_at=1000.0 - 720.0, throttle=Throttle.HW_SLOWDOWN)
    snap = FleetSnapshot(timestamp=1000.0, nodes=(node(),), gpus=(g, gpu(5, remap_pending=True)))
    v = snap.verdicts["n1"]
    assert v.need is Need.REBOOT and v.word == "reboot" and v.gpus == (3, 5)
    assert v.why(1000.0) == (
        "gpu3 XID 79 fallen off the bus, 12m ago → reboot node; gpu5 row remap pending → reset GPU; "
        "gpu3 throttling (HW slowdown)"
    )


def test_what_a_verdict_hits() -> None:
    pods = (
        Pod("ml", "train-0", "n1", gpus=8, owner="ml/train", owner_kind="Job"),
        Pod("kube-system", "dcgm-x", "n1", owner="kube-system/dcgm", owner_kind="DaemonSet"),
    )
    gpus = (
        gpu(0, xid=48, pod="ml/train-0"),
        gpu(1, pod="ml/debug"),  # a bare pod holding a GPU
    )
    job = Job("ml", "train", "t", workers=1, gpus_per_worker=8)
    snap = FleetSnapshot(timestamp=1000.0, nodes=(node(),), gpus=gpus, pods=pods, jobs=(job,))
    v = snap.verdicts["n1"]
    assert (v.jobs, v.endpoints, v.pods) == (("ml/train",), (), ("ml/debug",))
    assert v.hits == ("job ml/train", "pod ml/debug")


def test_verdicts_are_computed_once_per_snapshot() -> None:
    snap = FleetSnapshot(timestamp=0.0, nodes=(node(),), gpus=(gpu(xid=79),))
    assert snap.verdicts is snap.verdicts
    assert dataclasses.replace(snap).verdicts is not snap.verdicts  # a new snapshot: computed afresh


def test_cordoned_nodes_keep_their_verdict_and_who_cordoned() -> None:
    n = node(cordoned=True, cordoned_by="NVSentinel")
    snap = FleetSnapshot(timestamp=0.0, nodes=(n,), gpus=(gpu(remap_pending=True, recovery_action="reset"),))
    v = snap.verdicts["n1"]
    assert (v.need, v.cordoned, v.cordoned_by) == (Need.RESET, True, "NVSentinel")
    # The remap already says "reset": the recovery action adds nothing to repeat.
    assert v.why(0.0) == "gpu0 row remap pending → reset GPU"
    assert to_cordon(snap) == ()


_READINGS = st.fixed_dictionaries(
    {},
    optional={
        "xid": st.sampled_from([0, 13, 31, 43, 48, 63, 64, 74, 79, 92, 94, 95, 119, 140, 150, 777]),
        "ecc_uncorrected": st.integers(0, 3),
        "remap_pending": st.booleans(),
        "remap_failed": st.booleans(),
        "nvlink_errors": st.integers(0, 2 * NVLINK_DRAIN_AT),
        "recovery_action": st.sampled_from(["", "none", "reset", "reboot", "drain_p2p", "drain_and_reset"]),
        "throttle": st.sampled_from([Throttle.NONE, Throttle.SW_POWER_CAP, Throttle.HW_THERMAL]),
        "temp": st.sampled_from([40.0, 90.0]),
    },
)


@given(st.lists(_READINGS, min_size=1, max_size=8), st.booleans())
def test_a_nodes_verdict_is_the_worst_of_its_gpus_needs(readings: list[dict[str, Any]], ready: bool) -> None:
    gpus = tuple(gpu(i, **r) for i, r in enumerate(readings))
    snap = FleetSnapshot(timestamp=0.0, nodes=(node(ready=ready),), gpus=gpus)
    worst = max(gpu_need(g) for g in gpus)
    expected = max(worst, Need.HEALTHY if ready else Need.DRAIN)
    assert verdict_for(snap, "n1").need is expected
    got = snap.verdicts.get("n1")
    assert (got.need if got else Need.HEALTHY) is expected
    for g in gpus:  # every finding names its GPU
        assert all(f.gpu == g.index for f in gpu_findings(g))


def test_the_xid_table() -> None:
    wanted = {
        13,
        31,
        32,
        43,
        45,
        48,
        61,
        62,
        63,
        64,
        68,
        69,
        74,
        79,
        92,
        94,
        95,
        109,
        119,
        120,
        121,
        140,
        143,
    }
    wanted |= set(range(144, 151))
    assert wanted <= set(XID_TABLE)
    assert all(row.meaning and row.investigate and row.mnemonic for row in XID_TABLE.values())
    assert xid_info(79).action is XidAction.REBOOT_NODE and xid_info(79).meaning == "fallen off the bus"
    assert xid_info(13).action is XidAction.RESTART_APP
    assert xid_info(95).action is XidAction.RESET_GPU
    unknown = xid_info(999)
    assert not unknown.known and CATALOG_DATE.isoformat() in unknown.meaning
    # The names other modules import stay, derived from the table.
    assert XID_TEXT[79] == "fallen off the bus"
    assert {48, 64, 74, 79, 95, 119, 120} <= FATAL_XIDS and not {13, 43, 63, 92, 94} & FATAL_XIDS
