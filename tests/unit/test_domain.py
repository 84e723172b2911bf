"""The domain contract: NA semantics, GPU health, node schedulability, snapshot indices and totals."""

from __future__ import annotations

import dataclasses
import math
import operator
import pickle

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aios_tui.domain import (
    NA,
    FleetSnapshot,
    Gpu,
    Health,
    Job,
    JobState,
    NaType,
    Node,
    Pod,
    Taint,
    Throttle,
    fmt,
    fmt_age,
    fmt_mib,
    fmt_money,
    fmt_pct,
    is_na,
    model,
    num,
)

# --- NA ---------------------------------------------------------------------------------------------------


def test_na_is_a_singleton_that_survives_pickling() -> None:
    assert NaType() is NA
    assert pickle.loads(pickle.dumps(NA)) is NA


@pytest.mark.parametrize(
    "expr",
    [
        lambda: NA + 1,
        lambda: 1 + NA,
        lambda: NA - 2.5,
        lambda: 3 - NA,
        lambda: NA * 4,
        lambda: 4 * NA,
        lambda: NA / 2,
        lambda: 2 / NA,
        lambda: NA // 2,
        lambda: NA % 2,
        lambda: NA**2,
        lambda: -NA,
        lambda: abs(NA),
    ],
)
def test_na_arithmetic_gives_na_and_never_raises(expr: object) -> None:
    assert expr() is NA  # type: ignore[operator]


def test_na_comparisons_are_false_both_ways() -> None:
    for other in (0, 1.5, -1, NA):
        for compare in (operator.lt, operator.le, operator.gt, operator.ge):
            assert compare(NA, other) is False
            assert compare(other, NA) is False  # the reflected comparison falls back to NA's own
    assert not NA
    assert NA == NA
    assert NA != 0
    assert math.isnan(float(NA))


def test_na_formats_as_na_with_any_spec() -> None:
    assert str(NA) == "N/A"
    assert repr(NA) == "NA"
    assert f"{NA:.1f}" == "N/A"
    assert f"{NA:>8}" == "N/A"


def test_is_na_and_num() -> None:
    assert is_na(NA) and is_na(None) and is_na(float("nan"))
    assert not is_na(0) and not is_na(0.0)
    assert num(NA) == 0.0
    assert num(NA, default=-1.0) == -1.0
    assert num(42) == 42.0


def test_formatters() -> None:
    assert fmt(NA) == "N/A"
    assert fmt(None) == "N/A"
    assert fmt(float("nan")) == "N/A"
    assert fmt(3.14159, ".2f", " W") == "3.14 W"
    assert fmt_pct(97.4) == "97%"
    assert fmt_pct(NA) == "N/A"
    assert fmt_mib(812) == "812MiB"
    assert fmt_mib(21.4 * 1024) == "21.4GiB"
    assert fmt_mib(143_771) == "140GiB"
    assert fmt_mib(NA) == "N/A"
    assert fmt_money(98.321) == "$98.32/h"
    assert fmt_money(12_400) == "$12.4k/h"
    assert fmt_money(-3) == "-$3.00/h"
    assert fmt_money(NA) == "N/A"
    assert fmt_money(math.inf) == fmt_money(-math.inf) == "N/A"  # not "$infk/h"
    assert fmt_age(42) == "42s"
    assert fmt_age(7 * 60 + 5) == "7m"
    assert fmt_age(3 * 3600 + 12 * 60) == "3h12m"
    assert fmt_age(5 * 86400) == "5d"
    assert fmt_age(-10) == "0s"
    assert fmt_age(NA) == "N/A"


# --- GPU health ---------------------------------------------------------------------------------------------


def gpu(**kw: object) -> Gpu:
    base: dict[str, object] = {"node": "n1", "index": 0, "uuid": "GPU-0", "model": "H100"}
    base.update(kw)
    return Gpu(**base)  # type: ignore[arg-type]


def test_healthy_gpu_with_no_readings() -> None:
    g = gpu()
    assert g.health is Health.OK
    assert g.problems == ()
    assert g.mem_pct is NA


def test_xid_79_fails() -> None:
    g = gpu(xid=79)
    assert g.health is Health.FAIL
    assert g.problems == ("XID 79 (fallen off the bus)",)


def test_non_fatal_xid_warns() -> None:
    assert gpu(xid=13).health is Health.WARN


def test_uncorrectable_ecc_fails() -> None:
    g = gpu(ecc_uncorrected=2)
    assert g.health is Health.FAIL
    assert "2 uncorrectable ECC" in g.problems


def test_thermal_throttle_warns() -> None:
    g = gpu(throttle=Throttle.HW_THERMAL, temp=70.0)
    assert g.health is Health.WARN
    assert g.problems == ("throttling (HW thermal)",)


def test_power_cap_alone_is_not_a_problem() -> None:
    assert gpu(throttle=Throttle.SW_POWER_CAP).health is Health.OK


def test_hot_gpu_warns() -> None:
    g = gpu(temp=91.0)
    assert g.health is Health.WARN
    assert g.problems == ("hot (91°C)",)
    assert gpu(temp=86.0).health is Health.OK


def test_worst_health_wins() -> None:
    assert max(Health.OK, Health.FAIL, Health.WARN) is Health.FAIL
    assert gpu(xid=79, temp=95.0).health is Health.FAIL


def test_mem_pct() -> None:
    assert gpu(mem_used=40.0, mem_total=80.0).mem_pct == 50.0
    assert gpu(mem_used=40.0, mem_total=0.0).mem_pct is NA


# --- nodes --------------------------------------------------------------------------------------------------


def node(name: str = "n1", **kw: object) -> Node:
    base: dict[str, object] = {
        "name": name,
        "source": "test",
        "pool": "p",
        "zone": "z",
        "instance_type": "p5.48xlarge",
        "gpu_model": "H100",
        "gpus_total": 8,
        "gpus_allocatable": 8,
    }
    base.update(kw)
    return Node(**base)  # type: ignore[arg-type]


def test_schedulable() -> None:
    assert node().schedulable
    assert not node(ready=False).schedulable
    assert not node(cordoned=True).schedulable
    assert not node(health=Health.FAIL).schedulable
    assert node(health=Health.WARN).schedulable
    assert not node(taints=(Taint("gpu", "broken", "NoSchedule"),)).schedulable
    assert not node(taints=(Taint("gpu", effect="NoExecute"),)).schedulable
    assert node(taints=(Taint("gpu", effect="PreferNoSchedule"),)).schedulable


def test_node_free_gpus_and_status() -> None:
    assert node(gpus_requested=3).gpus_free == 5
    assert node(gpus_allocatable=7, gpus_requested=8).gpus_free == 0
    assert node(ready=False, cordoned=True).status == "NotReady,SchedulingDisabled"
    assert str(Taint("k", "v", "NoSchedule")) == "k=v:NoSchedule"
    assert str(Taint("k")) == "k:NoSchedule"


# --- snapshot ----------------------------------------------------------------------------------------------


def fleet() -> FleetSnapshot:
    """Two priced nodes of 2 GPUs ($8/h and $4/h) and one unpriced, cordoned node."""
    nodes = (
        node("a", gpus_total=2, gpus_allocatable=2, gpus_requested=2, price_per_hour=8.0),
        node("b", gpus_total=2, gpus_allocatable=2, gpus_requested=1, price_per_hour=4.0),
        node("c", gpus_total=2, gpus_allocatable=2, cordoned=True, ready=False),
    )
    gpus = (
        gpu(node="a", index=0, uuid="a0", util=90.0, pod="ml/train-0"),
        gpu(node="a", index=1, uuid="a1", util=2.0, pod="ml/train-0"),  # idle-allocated: $4/h
        gpu(node="b", index=0, uuid="b0", util=NA, pod="ml/serve-0"),  # unknown util: not idle
        gpu(node="b", index=1, uuid="b1", util=10.0, xid=79),
        gpu(node="c", index=0, uuid="c0"),
        gpu(node="c", index=1, uuid="c1", util=0.0, pod="ml/serve-1"),  # idle-allocated, unpriced node
    )
    pods = (
        Pod("ml", "train-0", node="a", gpus=2, owner="ml/train"),
        Pod("ml", "serve-0", node="b", gpus=1, owner="ml/serve"),
        Pod("ml", "serve-1", node="c", gpus=1, owner="ml/serve"),
        Pod("ml", "pending", gpus=1),
    )
    jobs = (
        Job("ml", "train", "test", workers=1, gpus_per_worker=2, state=JobState.RUNNING),
        Job("ml", "big", "test", workers=4, gpus_per_worker=8, state=JobState.QUEUED, queue_position=1),
        Job("ml", "old", "test", workers=1, gpus_per_worker=1, state=JobState.SUCCEEDED),
    )
    return FleetSnapshot(timestamp=1000.0, nodes=nodes, gpus=gpus, pods=pods, jobs=jobs)


def test_indices() -> None:
    snap = fleet()
    assert snap.node_by_name["b"].gpus_requested == 1
    assert [g.uuid for g in snap.gpus_by_node["a"]] == ["a0", "a1"]
    assert snap.gpu_by_uuid["b1"].xid == 79
    assert snap.job_by_key["ml/big"].gpus == 32
    assert [p.name for p in snap.pods_by_owner["ml/serve"]] == ["serve-0", "serve-1"]
    assert set(snap.pods_by_node) == {"a", "b", "c"}  # the pending pod has no node
    assert "" not in snap.pods_by_owner


def test_totals() -> None:
    t = fleet().totals
    assert (t.nodes, t.nodes_ready, t.gpus) == (3, 2, 6)
    assert t.gpus_used == 4
    assert t.gpus_free == 1  # only b is schedulable; c is cordoned
    assert t.gpus_idle_allocated == 2  # a1 and c1; b0 (util NA) is not counted as idle
    assert t.idle_cost_per_hour == pytest.approx(4.0)  # a1 at $8/2; c is unpriced
    assert t.cost_per_hour == pytest.approx(12.0)
    assert t.avg_util == pytest.approx((90 + 2 + 10 + 0) / 4)  # NA readings are left out
    assert (t.jobs_running, t.jobs_queued) == (1, 1)
    assert t.unhealthy_gpus == 1


def test_totals_without_prices_or_readings_are_na() -> None:
    snap = FleetSnapshot(timestamp=0.0, nodes=(node(),), gpus=(gpu(),))
    t = snap.totals
    assert t.cost_per_hour is NA
    assert t.idle_cost_per_hour is NA
    assert t.avg_util is NA
    assert t.gpus_free == 8


def test_empty_snapshot() -> None:
    t = FleetSnapshot(timestamp=0.0).totals
    assert (t.nodes, t.gpus, t.gpus_used, t.gpus_free) == (0, 0, 0, 0)
    assert t.avg_util is NA


# --- the GPU scan, block by block -------------------------------------------------------------------------


def _blocks(snap: FleetSnapshot) -> tuple[object, ...]:
    """Scan ``snap``; the blocks its scan is made of."""
    assert snap._scan is not None
    return model._scan_seen[0][1]


def _scan_fresh(snap: FleetSnapshot) -> object:
    """The scan with nothing to reuse (a copy of the snapshot, the last GPUs forgotten)."""
    model._scan_seen.clear()
    return dataclasses.replace(snap)._scan


@settings(max_examples=60, deadline=None)
@given(
    n=st.integers(0, 3 * model._SCAN_BLOCK + 7),
    changed=st.lists(st.integers(0, 3 * model._SCAN_BLOCK + 6), max_size=12),
    dt=st.sampled_from([0.0, 30.0, 600.0]),
)
def test_a_scan_that_reuses_the_last_snapshots_blocks_finds_what_a_fresh_one_finds(
    n: int, changed: list[int], dt: float
) -> None:
    """GPUs in blocks: a block whose GPUs are the same objects as in the last snapshot is not scanned
    again, but whether an allocated GPU under 5 % is idle depends on the snapshot (its time, idle window,
    the poller's low-since): that is decided again every time."""

    def reading(i: int, salt: int) -> Gpu:
        kinds = (
            {"util": 2.0, "pod": f"ns/p{i}", "low_since": 900.0 - 10 * (i % 60)},  # under 5 %, long or not
            {"util": 91.0, "pod": f"ns/p{i}", "temp": 90.0},  # hot
            {"util": 40.0, "xid": 79},
            {"lost_since": 50.0, "util": 70.0},
            {"util": 1.0, "pod": f"ns/p{i}"},  # under 5 %, the poller's low-since
            {},  # no reading, free
        )
        # Seven GPUs a node: some nodes straddle two blocks.
        return gpu(node=f"n{i // 7}", index=i % 7, uuid=f"GPU-{i}", **kinds[(i + salt) % len(kinds)])

    nodes = tuple(node(f"n{k}", price_per_hour=16.0) for k in range(n // 7 + 1))
    low = {f"GPU-{i}": 950.0 for i in range(0, n, 3)}
    gpus = [reading(i, 0) for i in range(n)]
    before = FleetSnapshot(1000.0, nodes=nodes, gpus=tuple(gpus), idle_window=300.0)
    kept = _blocks(before)  # the blocks the next snapshot may reuse
    for i in changed:
        if i < n:
            gpus[i] = reading(i, 1)
    after = FleetSnapshot(1000.0 + dt, nodes=nodes, gpus=tuple(gpus), idle_window=300.0, gpu_low_since=low)
    blocks = _blocks(after)
    reused = after._scan
    touched = {i // model._SCAN_BLOCK for i in changed if i < n}
    assert len(blocks) == len(kept) == -(-n // model._SCAN_BLOCK)
    assert [b is k for b, k in zip(blocks, kept, strict=True)] == [i not in touched for i in range(len(kept))]
    assert reused == _scan_fresh(after)
    # The GPUs by node are joined from the blocks' runs, reused ones included: each node's GPUs in fleet
    # order, the nodes in order of first appearance, as grouping the GPUs one by one gives them.
    by_node: dict[str, list[Gpu]] = {}
    for g in gpus:
        by_node.setdefault(g.node, []).append(g)
    assert [(k, list(v)) for k, v in after.gpus_by_node.items()] == list(by_node.items())


def test_the_scan_reuses_a_block_only_for_the_same_objects() -> None:
    """An equal GPU that is another object is scanned again (identity, not equality); the same objects
    in another snapshot are not."""
    gpus = tuple(gpu(uuid=f"GPU-{i}", index=i % 8, node=f"n{i // 8}", util=50.0) for i in range(1100))
    model._scan_seen.clear()
    first = _blocks(FleetSnapshot(0.0, gpus=gpus))
    assert all(a is b for a, b in zip(first, _blocks(FleetSnapshot(2.0, gpus=gpus)), strict=True))
    copy = (*gpus[:600], dataclasses.replace(gpus[600]), *gpus[601:])
    again = _blocks(FleetSnapshot(4.0, gpus=copy))
    assert [a is b for a, b in zip(first, again, strict=True)] == [True, False, True]
