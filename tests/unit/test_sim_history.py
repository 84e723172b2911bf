"""The embedded fleet's history is the history it lived: after the breaching endpoint is scaled up, its p99
chart still shows the incident before the fix; the time before the console opened is a warm-up drawn from
the fleet as it stood then, and a GPU given to other work since has no made-up past."""

from __future__ import annotations

import math

import pytest

from aios_tui.poll import Poller
from aios_tui.sources.sim import SimSource
from aios_tui.ui.harness import START, FakeClock

KEY = "ml-prod/ranking-dlrm-feed"


async def test_the_incident_stays_in_the_chart_after_the_fix() -> None:
    clock = FakeClock()
    sim = SimSource(seed=7, nodes=40, clock=clock, start=START)
    poller = Poller([sim], clock=clock, history_points=60, history_window=120.0)
    snap = await poller.refresh()
    before = snap.endpoint_by_key[KEY]
    assert float(before.p99_ms) > 10 * float(before.p99_slo_ms)  # 470 ms against 32 ms
    for _ in range(9):
        clock.advance(2)
        await poller.refresh()
    await sim.scale_endpoint("ml-prod", "ranking-dlrm-feed", 12)
    for _ in range(20):
        clock.advance(2)
        snap = await poller.refresh()
    after = snap.endpoint_by_key[KEY]
    assert after.replicas_ready == 12 and float(after.p99_ms) < float(after.p99_slo_ms)

    p99 = poller.history("endpoint", KEY, "p99_ms")
    assert len(p99) == 60 and p99.step == 2.0  # type: ignore[attr-defined]
    warm, lived = p99[:30], p99[30:]
    # The warm-up before the first fetch: the incident as it stood when the console opened.
    assert all(v > 10 * 32 for v in warm)
    # The ten fetches before the fix, as they were shown; then the fix, down under the objective.
    assert all(v > 10 * 32 for v in lived[:10])
    assert all(v < 32 for v in lived[-6:])  # replicas become ready one by one
    assert lived[-1] == pytest.approx(float(after.p99_ms), rel=1e-6)  # stored as float32
    ready = poller.history("endpoint", KEY, "replicas_ready")
    assert ready[:40] == [5.0] * 40 and ready[-1] == 12.0


async def test_a_gpu_given_other_work_has_no_made_up_past() -> None:
    clock = FakeClock()
    sim = SimSource(seed=7, nodes=40, clock=clock, start=START)
    poller = Poller([sim], clock=clock, history_points=20, history_window=40.0)
    snap = await poller.refresh()
    free = {g.uuid for g in snap.gpus if not g.pod and g.model.startswith("NVIDIA L4")}
    busy = next(g for g in snap.gpus if g.pod and not math.isnan(float(g.util)))
    assert len(poller.history("gpu", busy.uuid, "util")) == 20
    assert not any(math.isnan(v) for v in poller.history("gpu", busy.uuid, "util"))
    await sim.scale_endpoint("ml-prod", "ranking-dlrm-feed", 12)
    clock.advance(2)
    snap = await poller.refresh()
    taken = next(g for g in snap.gpus if g.uuid in free and g.pod.startswith("ml-prod/ranking-dlrm-feed"))
    util = poller.history("gpu", taken.uuid, "util")
    assert len(util) == 20 and all(math.isnan(v) for v in util[:18])  # before the console: not known
    assert util[-2] == 0.0  # free at the first fetch, as it was shown


async def test_a_replica_gpu_keeps_its_saturated_past_after_the_scale_up() -> None:
    """A GPU that still serves the same endpoint is drawn before the console opened with the replicas of
    then (saturated), not with today's twelve."""
    clock = FakeClock()
    sim = SimSource(seed=7, nodes=40, clock=clock, start=START)
    poller = Poller([sim], clock=clock, history_points=40, history_window=80.0)
    snap = await poller.refresh()
    gpu = next(g for g in snap.gpus if g.pod.startswith(KEY))
    await sim.scale_endpoint("ml-prod", "ranking-dlrm-feed", 12)
    for _ in range(30):
        clock.advance(2)
        await poller.refresh()
    util = poller.history("gpu", gpu.uuid, "util")
    assert len(util) == 40
    assert all(v >= 94 for v in util[:10])  # the warm-up: 5 replicas for 12 replicas' traffic
    assert all(v < 60 for v in util[-5:])  # now: the load spread over twelve


async def test_a_chart_reaches_back_fifteen_minutes_whatever_the_refresh() -> None:
    """120 points over the default 15 minutes: fetches every 2 s fold into 7.5 s points (the newest always
    the latest reading), so the incident fixed ten minutes ago is still on the chart."""
    clock = FakeClock()
    sim = SimSource(seed=7, nodes=40, clock=clock, start=START, interval=2.0)
    poller = Poller([sim], clock=clock)
    await poller.refresh()
    for _ in range(60):  # two minutes of the incident
        clock.advance(2)
        await poller.refresh()
    await sim.scale_endpoint("ml-prod", "ranking-dlrm-feed", 12)
    for _ in range(300):  # ten minutes after the fix
        clock.advance(2)
        snap = await poller.refresh()
    p99 = poller.history("endpoint", KEY, "p99_ms")
    assert len(p99) == 120 and p99.step == 7.5  # type: ignore[attr-defined]
    assert p99[-1] == pytest.approx(float(snap.endpoint_by_key[KEY].p99_ms), rel=1e-6)
    # 722 s since the first fetch: 97 points; the first 16 (two minutes) of them the breach, as shown then.
    lived = p99[-97:]
    assert all(v > 10 * 32 for v in lived[:16])
    assert all(v < 32 for v in p99[-70:])  # the ten minutes after the fix (80 points), replicas ready
