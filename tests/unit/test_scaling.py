"""The HPA formula and the scale assessment: fit on free GPUs, cost, HPA ownership, scale to zero."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aios_tui.alloc.scaling import MAX_REPLICAS, assess_scale, gpu_hour_price, hpa_desired
from aios_tui.domain import (
    NA,
    Endpoint,
    FleetSnapshot,
    Health,
    Hpa,
    Metric,
    Node,
    Pod,
    PodPhase,
    Taint,
    is_na,
)


def h100(name: str, *, free: int, total: int = 8, price: Metric = 98.32, **kw: object) -> Node:
    return Node(
        name=name,
        source="sim",
        pool="h100",
        zone="z1",
        instance_type="p5.48xlarge",
        gpu_model="H100",
        gpus_total=total,
        gpus_allocatable=total,
        gpus_requested=total - free,
        price_per_hour=price,
        **kw,  # type: ignore[arg-type]
    )


def serve(replicas: int = 3, gpr: int = 4, model: str = "H100", **kw: object) -> Endpoint:
    return Endpoint(
        namespace="ml-prod",
        name="llm-serve",
        source="sim",
        replicas_desired=replicas,
        replicas_ready=replicas,
        gpus_per_replica=gpr,
        gpu_model=model,
        **kw,  # type: ignore[arg-type]
    )


def fleet(*nodes: Node, pods: tuple[Pod, ...] = ()) -> FleetSnapshot:
    return FleetSnapshot(timestamp=0.0, nodes=nodes, pods=pods)


# --- hpa_desired ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("current", "metric", "target", "expected"),
    [
        (3, 90.0, 60.0, 5),  # ceil(3 × 1.5) = ceil(4.5)
        (4, 30.0, 60.0, 2),  # ceil(4 × 0.5)
        (6, 65.0, 60.0, 6),  # ratio 1.083: inside the 0.1 tolerance band
        (6, 54.5, 60.0, 6),  # ratio 0.908: inside
        (6, 67.0, 60.0, 7),  # ratio 1.117: outside → ceil(6.7)
        (2, 1000.0, 60.0, 8),  # clamped to max
        (5, 1.0, 60.0, 2),  # clamped to min
        (0, 500.0, 60.0, 0),  # zero replicas: the HPA leaves it alone
        (3, NA, 60.0, 3),  # no metric: unchanged
        (3, math.nan, 60.0, 3),
        (3, 90.0, 0.0, 3),  # invalid target: unchanged
        (12, NA, 60.0, 8),  # above max: back into range whatever the metric
        (1, NA, 60.0, 2),  # below min
    ],
)
def test_hpa_desired(current: int, metric: Metric, target: float, expected: int) -> None:
    assert hpa_desired(current, metric, target, min_replicas=2, max_replicas=8) == expected


def test_hpa_tolerance_is_a_parameter() -> None:
    assert hpa_desired(10, 65.0, 60.0, tolerance=0.05, min_replicas=1, max_replicas=100) == 11
    assert hpa_desired(10, 65.0, 60.0, tolerance=0.0, min_replicas=1, max_replicas=100) == 11
    assert hpa_desired(10, 60.0, 60.0, tolerance=0.0, min_replicas=1, max_replicas=100) == 10


# --- assess_scale: fit ------------------------------------------------------------------------------


def test_new_replicas_fit_on_free_slots() -> None:
    snap = fleet(h100("a", free=8), h100("b", free=5), h100("c", free=3))
    a = assess_scale(snap, serve(3), 5)
    assert (a.current, a.new, a.added) == (3, 5, 2)
    assert a.free_slots == 3  # 8//4 + 5//4 + 3//4
    assert a.fits and a.shortfall == 0
    assert a.gpus_delta == 8
    assert a.blockers == ()
    assert not any("Pending" in w for w in a.warnings)


def test_replicas_that_do_not_fit_are_a_warning_not_a_blocker() -> None:
    snap = fleet(h100("a", free=4), h100("b", free=2))
    a = assess_scale(snap, serve(3), 6)
    assert a.free_slots == 1
    assert not a.fits
    assert a.shortfall == 2
    assert a.blockers == ()
    assert (
        "2 of 3 new replicas will stay Pending: only 1 free slot of 4×H100 on schedulable nodes."
        in a.warnings
    )


def test_cordoned_notready_tainted_failed_and_other_model_nodes_are_not_counted() -> None:
    snap = fleet(
        h100("ok", free=4),
        h100("cordoned", free=8, cordoned=True),
        h100("notready", free=8, ready=False),
        h100("tainted", free=8, taints=(Taint("maintenance", "true", "NoSchedule"),)),
        h100("prefer", free=4, taints=(Taint("spot", "true", "PreferNoSchedule"),)),
        h100("failed", free=8, health=Health.FAIL),
        Node(
            name="a100",
            source="sim",
            pool="a100",
            zone="z1",
            instance_type="p4d",
            gpu_model="A100",
            gpus_total=8,
            gpus_allocatable=8,
        ),
    )
    a = assess_scale(snap, serve(1), 4)
    assert a.free_slots == 2  # "ok" and "prefer" only
    assert a.shortfall == 1


def test_existing_pending_replicas_are_mentioned() -> None:
    pods = (
        Pod(
            namespace="ml-prod", name="llm-serve-1", owner="ml-prod/llm-serve", phase=PodPhase.PENDING, gpus=4
        ),
        Pod(
            namespace="ml-prod",
            name="llm-serve-0",
            owner="ml-prod/llm-serve",
            node="a",
            phase=PodPhase.RUNNING,
        ),
    )
    a = assess_scale(fleet(h100("a", free=8), pods=pods), serve(2), 3)
    assert "1 existing replica is already Pending and will compete for the same free GPUs." in a.warnings


# --- assess_scale: cost -----------------------------------------------------------------------------


def test_cost_delta_is_capacity_cost_with_a_sign() -> None:
    snap = fleet(h100("a", free=8, price=80.0), h100("b", free=8, price=96.0))
    per_gpu = (80.0 / 8 + 96.0 / 8) / 2
    assert gpu_hour_price(snap, "H100") == pytest.approx(per_gpu)
    up = assess_scale(snap, serve(3), 5)
    assert up.cost_delta_per_hour == pytest.approx(2 * 4 * per_gpu)
    down = assess_scale(snap, serve(3), 1)
    assert down.cost_delta_per_hour == pytest.approx(-2 * 4 * per_gpu)
    assert down.gpus_delta == -8
    assert down.fits and down.added == 0


def test_cost_is_na_without_prices() -> None:
    snap = fleet(h100("a", free=8, price=NA))
    assert is_na(gpu_hour_price(snap, "H100"))
    assert is_na(assess_scale(snap, serve(3), 5).cost_delta_per_hour)


# --- assess_scale: blockers and warnings ------------------------------------------------------------


@pytest.mark.parametrize(
    ("replicas", "blocker"),
    [
        (-1, "Replicas must be 0 or more, not -1."),
        (MAX_REPLICAS + 1, "1,001 replicas is above the hard cap of 1,000: is it a typo?"),
        (3, "ml-prod/llm-serve is already at 3 replicas."),
    ],
)
def test_blockers(replicas: int, blocker: str) -> None:
    a = assess_scale(fleet(h100("a", free=8)), serve(3), replicas)
    assert a.blockers == (blocker,)


def test_scale_to_zero_warns_that_nothing_will_serve() -> None:
    a = assess_scale(fleet(h100("a", free=0)), serve(3), 0)
    assert a.blockers == ()
    assert "Scaling to 0 stops every replica: ml-prod/llm-serve will serve no traffic." in a.warnings


def test_scale_down_says_how_load_per_replica_changes() -> None:
    a = assess_scale(fleet(), serve(4, qps=100.0), 2)
    assert (
        "Each remaining replica will take about 50.0 qps instead of 25.0 (at the current 100.0 qps)."
        in a.warnings
    )


def test_hpa_owner_will_set_the_replicas_back() -> None:
    hpa = Hpa(name="llm-hpa", min_replicas=2, max_replicas=8, metric="gpu_util", target=60.0, current=90.0)
    a = assess_scale(fleet(h100("a", free=8)), serve(3, hpa=hpa), 7)
    assert a.hpa_owned
    assert a.hpa_recommendation == 5  # ceil(3 × 90/60)
    assert (
        "HPA llm-hpa owns this endpoint (min 2, max 8): it will set the replicas back to 5 within about 15 s "
        "unless you change the HPA." in a.warnings
    )


def test_hpa_outside_its_range_and_without_a_metric() -> None:
    hpa = Hpa(name="llm-hpa", min_replicas=2, max_replicas=8, metric="gpu_util", target=60.0)
    a = assess_scale(fleet(h100("a", free=8), h100("b", free=8), h100("c", free=8)), serve(3, hpa=hpa), 10)
    assert a.hpa_recommendation is None
    assert "10 is above the HPA's maximum of 8." in a.warnings
    assert any(
        w.startswith("HPA llm-hpa owns this endpoint (min 2, max 8): it may set the replicas back")
        for w in a.warnings
    )
    assert "below" not in " ".join(assess_scale(fleet(), serve(3, hpa=hpa), 2).warnings)
    assert "1 is below the HPA's minimum of 2." in assess_scale(fleet(), serve(3, hpa=hpa), 1).warnings


def test_hpa_agreeing_and_scale_to_zero_pausing_it() -> None:
    hpa = Hpa(name="h", min_replicas=1, max_replicas=8, metric="qps", target=10.0, current=15.0)
    agree = assess_scale(fleet(h100("a", free=8)), serve(2, hpa=hpa), 3)
    assert agree.hpa_recommendation == 3
    assert not any("set the replicas back" in w for w in agree.warnings)
    zero = assess_scale(fleet(), serve(2, hpa=hpa), 0)
    assert zero.hpa_recommendation == 0
    assert any("at 0 replicas Kubernetes stops autoscaling it" in w for w in zero.warnings)


def test_endpoint_without_hpa() -> None:
    a = assess_scale(fleet(h100("a", free=8)), serve(1), 2)
    assert not a.hpa_owned and a.hpa_recommendation is None
    assert not any("HPA" in w for w in a.warnings)


# --- property ---------------------------------------------------------------------------------------


@st.composite
def nodes(draw: st.DrawFn) -> Node:
    total = draw(st.sampled_from([0, 1, 2, 4, 8]))
    return Node(
        name=f"n{draw(st.integers(0, 10**6))}",
        source="sim",
        pool="p",
        zone="z",
        instance_type="t",
        gpu_model=draw(st.sampled_from(["H100", "A100"])),
        gpus_total=total,
        gpus_allocatable=total,
        gpus_requested=draw(st.integers(0, total + 2)),
        ready=draw(st.booleans()),
        cordoned=draw(st.booleans()),
        taints=draw(st.sampled_from([(), (Taint("t", "", "NoSchedule"),), (Taint("t", "", "NoExecute"),)])),
        health=draw(st.sampled_from(list(Health))),
    )


@given(
    fleet_nodes=st.lists(nodes(), max_size=12),
    current=st.integers(0, 20),
    new=st.integers(0, 40),
    gpr=st.integers(1, 8),
    model=st.sampled_from(["H100", "A100"]),
)
def test_free_slots_count_only_schedulable_nodes_and_fit_matches_them(
    fleet_nodes: list[Node], current: int, new: int, gpr: int, model: str
) -> None:
    snap = FleetSnapshot(timestamp=0.0, nodes=tuple(fleet_nodes))
    a = assess_scale(snap, serve(current, gpr=gpr, model=model), new)
    expected = sum(n.gpus_free // gpr for n in fleet_nodes if n.schedulable and n.gpu_model == model)
    assert a.free_slots == expected
    # Making every unschedulable node fully free changes nothing: they never count.
    freed = tuple(n if n.schedulable else replace(n, gpus_requested=0) for n in fleet_nodes)
    assert (
        assess_scale(
            FleetSnapshot(timestamp=0.0, nodes=freed), serve(current, gpr=gpr, model=model), new
        ).free_slots
        == expected
    )
    assert a.fits == (max(0, new - current) <= a.free_slots)
    assert a.shortfall == max(0, new - current - a.free_slots)
    assert a.gpus_delta == (new - current) * gpr
