"""Allocated-but-idle GPUs: the poller's tracker on a fake clock, the snapshot's idle set and totals, and the
health rules (which throttle reasons are a problem)."""

from __future__ import annotations

import asyncio
import dataclasses

import pytest

from aios_tui.domain import NA, FleetSnapshot, Gpu, Health, Metric, Node, Throttle
from aios_tui.poll import Poller
from aios_tui.sources.base import SourceData
from tests.unit.test_poll import FakeSource

WINDOW = 600.0


class Clock:
    def __init__(self, t: float = 1_000_000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def node(name: str = "n1", price: Metric = 80.0, gpus: int = 8) -> Node:
    return Node(
        name=name,
        source="fake",
        pool="p",
        zone="z",
        instance_type="p5.48xlarge",
        gpu_model="H100",
        gpus_total=gpus,
        gpus_allocatable=gpus,
        price_per_hour=price,
    )


def gpu(index: int, util: Metric, pod: str = "ns/pod-0", node_name: str = "n1", **kw: object) -> Gpu:
    return Gpu(
        node=node_name, index=index, uuid=f"GPU-{node_name}-{index}", model="H100", util=util, pod=pod, **kw
    )  # type: ignore[arg-type]


class Fleet:
    """A poller over one fake source whose GPUs the test sets before each refresh."""

    def __init__(self, window: float = WINDOW) -> None:
        self.clock = Clock()
        self.source = FakeSource("fake")
        self.poller = Poller([self.source], clock=self.clock, idle_window=window)

    def tick(self, seconds: float, *gpus: Gpu) -> FleetSnapshot:
        self.clock.t += seconds
        self.source.data = SourceData(nodes=(node(),), gpus=tuple(gpus))
        return asyncio.run(self.poller.refresh())


def idle_indices(snap: FleetSnapshot) -> list[int]:
    return [g.index for g in snap.idle_gpus]


def test_low_for_less_than_the_window_is_not_idle_then_is_at_the_window() -> None:
    f = Fleet()
    snap = f.tick(0, gpu(0, 2.0), gpu(1, 90.0))
    assert idle_indices(snap) == [] and snap.totals.gpus_idle_allocated == 0
    assert snap.gpu_low_since == {"GPU-n1-0": f.clock.t}
    snap = f.tick(WINDOW - 1, gpu(0, 3.0), gpu(1, 90.0))
    assert idle_indices(snap) == []
    snap = f.tick(1, gpu(0, 1.0), gpu(1, 90.0))
    assert idle_indices(snap) == [0]
    assert snap.totals.gpus_idle_allocated == 1
    assert snap.totals.idle_cost_per_hour == pytest.approx(10.0)  # $80/h over 8 GPUs
    assert snap.low_since(snap.idle_gpus[0]) == f.clock.t - WINDOW


def test_going_back_to_5_percent_resets() -> None:
    f = Fleet()
    f.tick(0, gpu(0, 2.0))
    f.tick(WINDOW / 2, gpu(0, 5.0))  # 5 % is not under 5 %
    snap = f.tick(WINDOW / 2, gpu(0, 1.0))
    assert idle_indices(snap) == []
    assert snap.gpu_low_since["GPU-n1-0"] == f.clock.t
    snap = f.tick(WINDOW, gpu(0, 1.0))
    assert idle_indices(snap) == [0]


def test_a_lost_reading_resets() -> None:
    f = Fleet()
    f.tick(0, gpu(0, 2.0))
    f.tick(WINDOW / 2, gpu(0, NA))
    assert idle_indices(f.tick(WINDOW / 2, gpu(0, 2.0))) == []


def test_freed_or_given_to_another_pod_resets() -> None:
    f = Fleet()
    f.tick(0, gpu(0, 2.0), gpu(1, 2.0))
    snap = f.tick(WINDOW / 2, gpu(0, 0.0, pod=""), gpu(1, 2.0, pod="ns/other"))
    assert snap.gpu_low_since == {"GPU-n1-1": f.clock.t}
    snap = f.tick(WINDOW / 2, gpu(0, 2.0), gpu(1, 2.0, pod="ns/other"))
    assert idle_indices(snap) == []  # neither has been low *for its pod* for the window
    snap = f.tick(WINDOW / 2, gpu(0, 2.0), gpu(1, 2.0, pod="ns/other"))
    assert idle_indices(snap) == [1]


def test_a_free_gpu_is_never_idle() -> None:
    f = Fleet(window=0)
    assert idle_indices(f.tick(0, gpu(0, 0.0, pod=""))) == []


def test_the_source_knows_better_than_the_tracker() -> None:
    f = Fleet()
    snap = f.tick(0, gpu(0, 2.0, low_since=f.clock.t - 2 * WINDOW), gpu(1, 2.0))
    assert idle_indices(snap) == [0]
    assert "GPU-n1-0" not in snap.gpu_low_since  # not tracked: its source said
    assert snap.low_since(snap.idle_gpus[0]) == f.clock.t - 2 * WINDOW


def test_window_zero_counts_at_once() -> None:
    f = Fleet(window=0)
    assert idle_indices(f.tick(0, gpu(0, 4.9), gpu(1, 50.0))) == [0]


def test_the_tracker_does_not_rebuild_gpus() -> None:
    f = Fleet()
    g = gpu(0, 2.0)
    snap = f.tick(0, g)
    assert snap.gpus[0] is g


def test_totals_count_idle_cost_from_the_idle_set_and_agree_with_it() -> None:
    now = 10_000.0
    nodes = (node("a", price=80.0), node("b", price=NA), node("c", price=40.0, gpus=4))
    gpus = (
        gpu(0, 1.0, node_name="a", low_since=now - 700),  # idle: $10/h
        gpu(1, 1.0, node_name="a", low_since=now - 100),  # low, not for long enough
        gpu(2, 80.0, node_name="a", low_since=now - 700),  # busy now
        gpu(0, 1.0, node_name="b", low_since=now - 700),  # idle, unpriced
        gpu(0, 0.0, node_name="c", low_since=now - 9000),  # idle: $10/h
        gpu(1, 0.0, node_name="c", pod=""),  # free
    )
    snap = FleetSnapshot(timestamp=now, nodes=nodes, gpus=gpus, idle_window=600.0)
    t = snap.totals
    assert [(g.node, g.index) for g in snap.idle_gpus] == [("a", 0), ("b", 0), ("c", 0)]
    assert t.gpus_idle_allocated == 3
    assert t.idle_cost_per_hour == pytest.approx(20.0)
    assert t.gpus_used == 5
    assert t.avg_util == pytest.approx((1 + 1 + 80 + 1 + 0 + 0) / 6)
    priced = [snap.gpu_price(g) for g in snap.idle_gpus]
    assert priced[1] is NA
    assert sum(p for p in priced if p is not NA) == pytest.approx(t.idle_cost_per_hour)  # type: ignore[misc]


def test_a_snapshot_built_by_hand_counts_idle_at_once() -> None:
    snap = FleetSnapshot(timestamp=0.0, nodes=(node(),), gpus=(gpu(0, 1.0),))
    assert snap.idle_window == 0 and snap.totals.gpus_idle_allocated == 1


# --- health -------------------------------------------------------------------------------------------


def test_the_sw_power_cap_under_load_is_normal() -> None:
    # A real H200 at 607 W of 700 W: SW_POWER_CAP with SM at 1,740 MHz.
    g = Gpu("n1", 0, "GPU-0", "NVIDIA H200", util=100.0, power=607.0, power_limit=700.0, sm_clock=1740.0,
            temp=62.0, throttle=Throttle.SW_POWER_CAP)  # fmt: skip
    assert g.health is Health.OK and g.problems == ()
    snap = FleetSnapshot(timestamp=0.0, nodes=(node(),), gpus=(g,))
    assert snap.totals.unhealthy_gpus == 0 and snap.sick_gpus == () and snap.health_of("n1") is Health.OK


@pytest.mark.parametrize(
    ("bits", "text"),
    [
        (Throttle.HW_SLOWDOWN, "HW slowdown"),
        (Throttle.HW_POWER_BRAKE, "power brake"),
        (Throttle.SW_THERMAL, "SW thermal"),
        (Throttle.HW_THERMAL | Throttle.SW_POWER_CAP, "HW thermal"),
    ],
)
def test_thermal_slowdown_and_power_brake_are_problems(bits: Throttle, text: str) -> None:
    g = gpu(0, 90.0, throttle=bits)
    assert g.health is Health.WARN
    assert g.problems == (f"throttling ({text})",)
    snap = FleetSnapshot(timestamp=0.0, nodes=(node(),), gpus=(g,))
    assert snap.totals.unhealthy_gpus == 1
    assert snap.health_of("n1") is Health.WARN


def test_node_health_is_the_worst_of_the_node_and_its_gpus() -> None:
    gpus = (gpu(0, 50.0, xid=79), gpu(1, 50.0, node_name="n2", temp=90.0), gpu(0, 50.0, node_name="n3"))
    nodes = (node("n1"), node("n2"), dataclasses.replace(node("n3"), health=Health.WARN), node("n4"))
    snap = FleetSnapshot(timestamp=0.0, nodes=nodes, gpus=gpus)
    assert dict(snap.node_health) == {"n1": Health.FAIL, "n2": Health.WARN, "n3": Health.WARN}
    assert snap.health_of("n4") is Health.OK
    assert snap.failed_nodes == {"n1"}
    assert snap.totals.unhealthy_gpus == 1  # hot but not throttling is WARN, not counted as unhealthy


def test_an_unpriced_fleet_counts_idle_gpus_without_a_cost() -> None:
    snap = FleetSnapshot(timestamp=0.0, nodes=(node(price=NA),), gpus=(gpu(0, 1.0),))
    assert snap.totals.gpus_idle_allocated == 1 and snap.totals.idle_cost_per_hour is NA


def test_blocks_of_the_same_gpus_are_not_looked_through_again_and_answer_the_same() -> None:
    # 1,300 GPUs (three blocks), a few re-read per step: the tracker fed the source's tuples (most GPUs the
    # same objects) answers as one fed copies of every GPU at every step (nothing to reuse).
    import random

    from aios_tui.poll.idle import IdleTracker

    rng = random.Random(4)

    def reading(i: int) -> Gpu:
        return Gpu(f"n{i // 8}", i % 8, f"GPU-{i}", "H100", util=rng.choice([1.0, 3.0, 50.0, NA]),
                   pod=rng.choice(["", f"ns/p{i}", f"ns/q{i}"]),
                   low_since=rng.choice([NA, NA, NA, 5.0]))  # fmt: skip

    gpus = [reading(i) for i in range(1300)]
    shared, copied = IdleTracker(), IdleTracker()
    for step in range(8):
        now = 100.0 * step
        if step:
            for i in rng.sample(range(1300), 40 if step % 3 else 0):  # some steps change nothing
                gpus[i] = reading(i)
        got = shared.update(tuple(gpus), now)
        want = copied.update(tuple(dataclasses.replace(g) for g in gpus), now)
        assert dict(got) == dict(want)
        assert list(got) == list(want)  # in fleet order
    assert len(got) > 50 and len(set(got.values())) > 2  # GPUs low since different times
