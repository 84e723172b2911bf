"""The HPA formula and the scale assessment: fit on free GPUs, cost, HPA ownership, scale to zero."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import pytest
from hypothesis import Phase, event, find, given, settings
from hypothesis import strategies as st

from aios_tui.alloc.scaling import MAX_REPLICAS, assess_scale, describe_cost, gpu_hour_price, hpa_desired
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
        (8, 30.0, 60.0, 4),  # at max: the metric still counts
        (2, 90.0, 60.0, 3),  # at min: the metric still counts
        (4, 1.0, 0.5, 8),  # a target under 1 is a target
        (4, 90.0, -60.0, 4),  # a negative target is not
        (-1, 90.0, 60.0, 0),
    ],
)
def test_hpa_desired(current: int, metric: Metric, target: float, expected: int) -> None:
    assert hpa_desired(current, metric, target, min_replicas=2, max_replicas=8) == expected


def test_hpa_tolerance_is_a_parameter() -> None:
    assert hpa_desired(10, 65.0, 60.0, tolerance=0.05, min_replicas=1, max_replicas=100) == 11
    assert hpa_desired(10, 65.0, 60.0, tolerance=0.0, min_replicas=1, max_replicas=100) == 11
    assert hpa_desired(10, 60.0, 60.0, tolerance=0.0, min_replicas=1, max_replicas=100) == 10
    # Exactly on the edge of the band (binary-exact ratios): still inside, both ways.
    assert hpa_desired(4, 90.0, 60.0, tolerance=0.5, min_replicas=1, max_replicas=100) == 4
    assert hpa_desired(4, 30.0, 60.0, tolerance=0.5, min_replicas=1, max_replicas=100) == 4
    assert hpa_desired(8, 67.5, 60.0, tolerance=0.125, min_replicas=1, max_replicas=100) == 8
    assert hpa_desired(8, 67.6, 60.0, tolerance=0.125, min_replicas=1, max_replicas=100) == 10


# --- assess_scale: fit ------------------------------------------------------------------------------


def test_new_replicas_fit_on_free_slots() -> None:
    snap = fleet(h100("a", free=8), h100("b", free=5), h100("c", free=3))
    a = assess_scale(snap, serve(3), 5)
    assert (a.endpoint_key, a.gpus_per_replica, a.gpu_model) == ("ml-prod/llm-serve", 4, "H100")
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


# --- edges the mutants found -----------------------------------------------------------------------------


def pending(name: str, *, node: str = "", phase: PodPhase = PodPhase.PENDING) -> Pod:
    return Pod(namespace="ml-prod", name=name, owner="ml-prod/llm-serve", node=node, phase=phase, gpus=4)


def test_gpu_hour_price_counts_only_nodes_with_gpus_and_a_price() -> None:
    snap = fleet(
        h100("one", free=1, total=1, price=4.0),
        h100("eight", free=8, total=8, price=80.0),
        h100("unpriced", free=8, price=NA),
        # Reports GPUs it can allocate but none in total: no price per GPU to take from it.
        replace(h100("none", free=0, total=0, price=50.0), gpus_allocatable=4),
    )
    assert gpu_hour_price(snap, "H100") == 7.0  # (4/1 + 80/8) / 2
    assert is_na(gpu_hour_price(snap, "A100"))


def test_one_gpu_replicas_on_one_gpu_nodes() -> None:
    snap = fleet(h100("a", free=1, total=1, price=4.0), h100("b", free=1, total=1, price=4.0))
    a = assess_scale(snap, serve(1, gpr=1), 3)
    assert (a.free_slots, a.fits, a.shortfall, a.gpus_delta) == (2, True, 0, 2)
    assert a.cost_delta_per_hour == 8.0
    one = assess_scale(snap, serve(1, gpr=1), 2)
    assert (one.gpus_delta, one.cost_delta_per_hour) == (1, 4.0)
    down = assess_scale(snap, serve(3, gpr=1), 2)
    assert (down.gpus_delta, down.cost_delta_per_hour) == (-1, -4.0)


def test_a_node_reporting_no_gpus_in_total_is_no_free_slot() -> None:
    snap = fleet(replace(h100("none", free=0, total=0), gpus_allocatable=8))
    a = assess_scale(snap, serve(1), 2)
    assert (a.free_slots, a.fits, a.shortfall) == (0, False, 1)


def test_an_endpoint_without_a_gpu_model_takes_any_model() -> None:
    a100 = replace(h100("x", free=8), gpu_model="A100")
    a = assess_scale(fleet(h100("a", free=4), a100), serve(1, model=""), 5)
    assert (a.free_slots, a.fits, a.shortfall) == (3, False, 1)
    assert a.warnings == (
        "1 of 4 new replicas will stay Pending: only 3 free slots of 4×GPU on schedulable nodes.",
    )


def test_an_endpoint_without_gpus_always_fits_and_costs_nothing() -> None:
    pods = (pending("llm-serve-9"),)
    a = assess_scale(fleet(h100("a", free=8, price=NA), pods=pods), serve(2, gpr=0), 5)
    assert (a.free_slots, a.fits, a.shortfall, a.gpus_delta) == (0, True, 0, 0)
    assert a.cost_delta_per_hour == 0.0
    assert a.warnings == ()


def test_no_change_costs_nothing_even_without_a_price() -> None:
    a = assess_scale(fleet(h100("a", free=8, price=NA)), serve(3), 3)
    assert a.cost_delta_per_hour == 0.0
    assert a.warnings == ()


def test_pending_replicas_count_only_when_replicas_are_added() -> None:
    pods = (
        pending("llm-serve-3"),
        pending("llm-serve-4"),
        pending("llm-serve-5", node="a"),  # bound, pulling its image: it has its GPUs
        pending("llm-serve-6", node="a", phase=PodPhase.RUNNING),
    )
    snap = fleet(h100("a", free=8), pods=pods)
    up = assess_scale(snap, serve(3), 4)
    assert up.warnings == (
        "2 existing replicas are already Pending and will compete for the same free GPUs.",
    )
    one = assess_scale(fleet(h100("a", free=8), pods=pods[:1]), serve(3, gpr=1), 4)
    assert one.warnings == ("1 existing replica is already Pending and will compete for the same free GPUs.",)
    assert assess_scale(snap, serve(3), 2).warnings == ()
    assert assess_scale(snap, serve(3), 3).warnings == ()


def test_the_cap_itself_is_allowed() -> None:
    assert assess_scale(fleet(), serve(3, gpr=0), MAX_REPLICAS).blockers == ()
    assert assess_scale(fleet(), serve(3, gpr=0), 0).blockers == ()


def test_scale_to_zero_from_one_warns_and_from_zero_is_only_a_blocker() -> None:
    one = assess_scale(fleet(), serve(1), 0)
    assert one.warnings == ("Scaling to 0 stops every replica: ml-prod/llm-serve will serve no traffic.",)
    zero = assess_scale(fleet(), serve(0), 0)
    assert zero.blockers == ("ml-prod/llm-serve is already at 0 replicas.",)
    assert zero.warnings == ()


@pytest.mark.parametrize(
    ("current", "new", "qps", "warning"),
    [
        (
            4,
            1,
            100.0,
            "Each remaining replica will take about 100.0 qps instead of 25.0 (at the current 100.0 qps).",
        ),
        (
            4,
            2,
            0.5,
            "Each remaining replica will take about 0.2 qps instead of 0.1 (at the current 0.5 qps).",
        ),
        (4, 2, 0.0, None),  # no traffic: nothing to redistribute
        (4, 2, NA, None),
        (4, 4, 100.0, None),  # no change (a blocker)
        (2, 4, 100.0, None),  # scaling up
    ],
)
def test_load_per_replica_only_when_scaling_down_with_traffic(
    current: int, new: int, qps: Metric, warning: str | None
) -> None:
    a = assess_scale(fleet(h100("a", free=8)), serve(current, qps=qps), new)
    assert a.warnings == ((warning,) if warning else ())


def hpa(**kw: object) -> Hpa:
    base: dict[str, object] = {
        "name": "llm-hpa",
        "min_replicas": 2,
        "max_replicas": 8,
        "metric": "gpu_util",
        "target": 60.0,
    }
    return Hpa(**{**base, **kw})  # type: ignore[arg-type]


OWNER = "HPA llm-hpa owns this endpoint (min 2, max 8)"


def test_an_endpoint_scaled_up_from_zero_resumes_its_hpa_in_range() -> None:
    # At 0 the HPA was paused: its last reading (here 90 %) says nothing about the new count.
    paused = hpa(current=90.0)
    up = assess_scale(fleet(h100("a", free=8), h100("b", free=8)), serve(0, hpa=paused), 3)
    assert up.hpa_recommendation == 3
    assert up.warnings == (
        f"{OWNER} and also wants 3 replicas: it keeps this count only while the load stays as it is.",
    )
    over = assess_scale(fleet(h100("a", free=8), h100("b", free=8)), serve(0, hpa=paused, gpr=1), 10)
    assert over.hpa_recommendation == 8
    assert over.warnings == (
        "10 is above the HPA's maximum of 8.",
        f"{OWNER}: it will set the replicas back to 8 within about 15 s unless you change the HPA.",
    )
    under = assess_scale(fleet(h100("a", free=8)), serve(0, hpa=paused), 1)
    assert under.hpa_recommendation == 2
    assert under.warnings == (
        "1 is below the HPA's minimum of 2.",
        f"{OWNER}: it will set the replicas back to 2 within about 15 s unless you change the HPA.",
    )


def test_an_hpa_at_one_replica_reads_its_metric() -> None:
    a = assess_scale(fleet(h100("a", free=8)), serve(1, hpa=hpa(min_replicas=1, current=120.0)), 3)
    assert a.hpa_recommendation == 2  # ceil(1 × 120/60)


def test_at_the_hpa_maximum_is_not_above_it() -> None:
    a = assess_scale(fleet(h100("a", free=8)), serve(3, gpr=1, hpa=hpa(current=60.0)), 8)
    assert a.hpa_recommendation == 3
    assert a.warnings == (
        f"{OWNER}: it will set the replicas back to 3 within about 15 s unless you change the HPA.",
    )


def test_an_hpa_agreeing_with_one_replica() -> None:
    a = assess_scale(fleet(h100("a", free=8)), serve(2, hpa=hpa(min_replicas=1, current=30.0)), 1)
    assert a.hpa_recommendation == 1
    assert a.warnings[-1] == (
        "HPA llm-hpa owns this endpoint (min 1, max 8) and also wants 1 replica: it keeps this count only "
        "while the load stays as it is."
    )


def test_a_negative_count_is_only_a_blocker_even_with_an_hpa() -> None:
    a = assess_scale(fleet(h100("a", free=8)), serve(3, hpa=hpa(current=90.0)), -1)
    assert a.blockers == ("Replicas must be 0 or more, not -1.",)
    assert (a.hpa_owned, a.hpa_recommendation, a.warnings) == (True, None, ())


@pytest.mark.parametrize(
    ("delta", "text"),
    [
        (NA, "N/A"),
        (98.32, "+$98.32/h"),
        (0.5, "+$0.50/h"),
        (0.01, "+$0.01/h"),
        (0.001, "$0.00/h"),  # no cent to add: no sign
        (0.0, "$0.00/h"),
        (-0.001, "$0.00/h"),
        (-0.5, "-$0.50/h"),
        (-49.16, "-$49.16/h"),
        (12_400.0, "+$12.4k/h"),
    ],
)
def test_describe_cost(delta: Metric, text: str) -> None:
    assert describe_cost(delta) == text


# --- property ---------------------------------------------------------------------------------------

PRICE_PER_GPU = 2.0


@st.composite
def nodes(draw: st.DrawFn) -> Node:
    """Half of them usable (schedulable, with GPUs): the nodes the free-slot count is about."""
    usable = draw(st.booleans())
    total = draw(st.sampled_from([8, 4, 2, 1] if usable else [0, 1, 2, 4, 8]))
    return Node(
        name=f"n{draw(st.integers(0, 10**6))}",
        source="sim",
        pool="p",
        zone="z",
        instance_type="t",
        gpu_model=draw(st.sampled_from(["H100", "A100"])),
        gpus_total=total,
        gpus_allocatable=total,
        # A usable node's free GPUs run from none to all; others may even be over-requested.
        gpus_requested=draw(st.integers(0, total) if usable else st.integers(0, total + 2)),
        ready=usable or draw(st.booleans()),
        cordoned=not usable and draw(st.booleans()),
        taints=draw(
            st.sampled_from(
                [(), (Taint("t", "", "PreferNoSchedule"),)]
                if usable
                else [(), (Taint("t", "", "NoSchedule"),), (Taint("t", "", "NoExecute"),)]
            )
        ),
        health=draw(st.sampled_from([Health.OK, Health.WARN] if usable else list(Health))),
        price_per_hour=PRICE_PER_GPU * total if total else NA,
    )


def free_slots(fleet_nodes: list[Node], gpr: int, model: str) -> int:
    """The oracle: replicas of ``gpr`` GPUs of ``model`` ("" any) the schedulable nodes have room for."""
    if gpr == 0:
        return 0
    return sum(
        n.gpus_free // gpr
        for n in fleet_nodes
        if n.schedulable and n.gpus_total > 0 and model in ("", n.gpu_model)
    )


hpas = st.none() | st.builds(
    Hpa,
    name=st.just("h"),
    min_replicas=st.integers(1, 4),
    max_replicas=st.integers(4, 12),
    metric=st.just("gpu_util"),
    target=st.sampled_from([50.0, 60.0]),
    current=st.sampled_from([20.0, 60.0, 150.0, NA]),
)

cases = st.fixed_dictionaries(
    {
        "fleet_nodes": st.lists(nodes(), max_size=8),
        "current": st.integers(0, 10),
        "new": st.integers(0, 30),
        # Sizes that divide the nodes' GPU counts, one that does not (3), and none at all (0).
        "gpr": st.sampled_from([1, 2, 4, 3, 8, 0]),
        "model": st.sampled_from(["", "H100", "A100"]),
        "hpa": hpas,
    }
)

#: What the property must see, each reached by the generator (:func:`test_the_generators_reach`).
REACHES: dict[str, Callable[[dict[str, Any]], bool]] = {
    "one GPU per replica and a free slot": lambda c: (
        c["gpr"] == 1 and free_slots(c["fleet_nodes"], 1, c["model"]) > 0
    ),
    "more GPUs per replica and a free slot": lambda c: (
        c["gpr"] > 1 and free_slots(c["fleet_nodes"], c["gpr"], c["model"]) > 0
    ),
    "new replicas that do not all fit": lambda c: (
        c["gpr"] > 0 and 0 < free_slots(c["fleet_nodes"], c["gpr"], c["model"]) < c["new"] - c["current"]
    ),
    "no GPUs per replica": lambda c: c["gpr"] == 0 and c["new"] > c["current"],
    "scaled up from zero replicas": lambda c: c["current"] == 0 and c["new"] > 0,
    "scaled down to zero": lambda c: c["current"] > 0 and c["new"] == 0,
    "scaled up from zero under an HPA with a reading": lambda c: (
        c["current"] == 0 and c["new"] > 0 and c["hpa"] is not None and not is_na(c["hpa"].current)
    ),
    "a full usable node": lambda c: any(
        n.schedulable and n.gpus_total and not n.gpus_free for n in c["fleet_nodes"]
    ),
    "an unschedulable node with free GPUs": lambda c: any(
        not n.schedulable and n.gpus_free for n in c["fleet_nodes"]
    ),
}


@pytest.mark.parametrize("case", list(REACHES))
def test_the_generators_reach(case: str) -> None:
    # Found within the first examples, not shrunk (finding it is the point, not the smallest one).
    find(cases, REACHES[case], settings=settings(database=None, max_examples=1000, phases=[Phase.generate]))


@given(case=cases)
def test_free_slots_count_only_schedulable_nodes_and_fit_matches_them(case: dict[str, Any]) -> None:
    fleet_nodes, current, new, gpr, model = (
        case[k] for k in ("fleet_nodes", "current", "new", "gpr", "model")
    )
    for name, reached in REACHES.items():
        if reached(case):
            event(name)
    snap = FleetSnapshot(timestamp=0.0, nodes=tuple(fleet_nodes))
    a = assess_scale(snap, serve(current, gpr=gpr, model=model), new)
    expected = free_slots(fleet_nodes, gpr, model)
    assert a.free_slots == expected
    # Making every unschedulable node fully free changes nothing: they never count.
    freed = tuple(n if n.schedulable else replace(n, gpus_requested=0) for n in fleet_nodes)
    assert (
        assess_scale(
            FleetSnapshot(timestamp=0.0, nodes=freed), serve(current, gpr=gpr, model=model), new
        ).free_slots
        == expected
    )
    added = max(0, new - current)
    assert a.added == added
    assert a.fits == (gpr == 0 or added <= expected)
    assert a.shortfall == (0 if gpr == 0 else max(0, added - expected))
    assert a.gpus_delta == (new - current) * gpr
    priced = any(n.gpus_total and n.gpu_model == model for n in fleet_nodes)
    if a.gpus_delta == 0:
        assert a.cost_delta_per_hour == 0.0
    elif priced:
        assert a.cost_delta_per_hour == pytest.approx(a.gpus_delta * PRICE_PER_GPU)
    else:
        assert is_na(a.cost_delta_per_hour)
    assert a.blockers == (
        ("ml-prod/llm-serve is already at " + _replicas(new) + ".",) if new == current else ()
    )


def _replicas(n: int) -> str:
    return f"{n} replica" if n == 1 else f"{n} replicas"


@given(case=cases)
def test_the_hpa_recommendation(case: dict[str, Any]) -> None:
    current, new, hpa_ = case["current"], case["new"], case["hpa"]
    snap = FleetSnapshot(timestamp=0.0, nodes=tuple(case["fleet_nodes"]))
    a = assess_scale(snap, serve(current, gpr=case["gpr"], hpa=hpa_), new)
    assert a.hpa_owned == (hpa_ is not None)
    if hpa_ is None:
        assert a.hpa_recommendation is None
        return
    lo, hi = hpa_.min_replicas, hpa_.max_replicas
    if new == 0:
        expected: int | None = 0
    elif current == 0:
        expected = min(max(new, lo), hi)  # resumed with no reading: the count, kept in range
    elif is_na(hpa_.current):
        expected = None
    else:
        expected = hpa_desired(current, hpa_.current, hpa_.target, min_replicas=lo, max_replicas=hi)
    assert a.hpa_recommendation == expected
    above = f"{new} is above the HPA's maximum of {hi}."
    below = f"{new} is below the HPA's minimum of {lo}."
    assert (above in a.warnings) == (new > hi)
    assert (below in a.warnings) == (0 < new < lo)
