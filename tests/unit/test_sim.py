"""The embedded simulated fleet: determinism, invariants, the named faults, traffic, and every action."""

from __future__ import annotations

import math
from collections import Counter
from pathlib import Path

import pytest

from aios_tui.alloc.drain import plan_drain
from aios_tui.alloc.placement import Capacity, GangRequest, Placement, place_gang
from aios_tui.config import ConfigError, load_settings
from aios_tui.domain import NA, FleetSnapshot, Health, JobState, PodPhase, Throttle, is_na
from aios_tui.sources.base import (
    EvictionBlocked,
    HistoryProvider,
    JobLauncher,
    LaunchSpec,
    NodeMaintainer,
    Restartable,
    Scalable,
    Source,
    SourceData,
    SourceError,
)
from aios_tui.sources.clouds import list_price as price_per_hour
from aios_tui.sources.clouds.aws.prices import CATALOGUE
from aios_tui.sources.sim import PDB_VIOLATION, SimSource

DAY0 = 1_699_920_000.0  # 2023-11-14 00:00 UTC
PEAK = DAY0 + 15 * 3600.0
TROUGH = DAY0 + 3 * 3600.0
CANARY = ("ml-staging", "llama-3-8b-canary")  # L4 endpoint without an HPA, so only actions change it


class FakeClock:
    def __init__(self, t: float) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def make(nodes: int = 200, seed: int = 0, at: float = PEAK) -> tuple[SimSource, FakeClock]:
    clock = FakeClock(at)
    return SimSource(seed=seed, nodes=nodes, clock=clock), clock


def snap(data: SourceData, at: float = 0.0) -> FleetSnapshot:
    return FleetSnapshot(
        timestamp=at,
        nodes=data.nodes,
        gpus=data.gpus,
        pods=data.pods,
        jobs=data.jobs,
        endpoints=data.endpoints,
        pools=data.pools,
        pdbs=data.pdbs,
    )


@pytest.fixture(scope="module")
def fleet200() -> SourceData:
    return make(200)[0].fetch_now()


# --- contract ---------------------------------------------------------------------------------------------


def test_implements_source_and_capabilities() -> None:
    src, _ = make(8)
    for proto in (Source, Scalable, Restartable, NodeMaintainer, JobLauncher):
        assert isinstance(src, proto), proto.__name__
    # The poller keeps what each fetch returned (the history it lived); the fleet tells only the time before.
    assert not isinstance(src, HistoryProvider)
    assert src.kind == "sim"
    assert (src.name, src.interval, src.timeout) == ("sim", 2.0, 5.0)


@pytest.mark.parametrize("nodes", [0, 5001, -3, True, 2.5])
def test_rejects_bad_sizes(nodes: object) -> None:
    with pytest.raises(ValueError, match="nodes must be"):
        SimSource(nodes=nodes)  # type: ignore[arg-type]


async def test_async_fetch_matches_sync() -> None:
    a, _ = make(50)
    b, _ = make(50)
    assert await a.fetch() == b.fetch_now()
    await a.close()


def test_price_table() -> None:
    assert price_per_hour("p5.48xlarge") == 98.32
    assert price_per_hour("g6.12xlarge") == 4.60
    assert price_per_hour("no-such.type") is NA
    assert CATALOGUE.types["p4de.24xlarge"].gpus == 8
    assert CATALOGUE.types["m7i.8xlarge"].gpu_model == ""


# --- determinism ------------------------------------------------------------------------------------------


def test_same_seed_and_clock_give_the_same_fleet() -> None:
    a, ca = make(120, seed=7)
    b, cb = make(120, seed=7)
    assert a.fetch_now() == b.fetch_now()
    for _ in range(5):
        ca.t += 7.0
        cb.t += 7.0
        assert a.fetch_now() == b.fetch_now()


def test_different_seeds_differ() -> None:
    a = make(120, seed=1)[0].fetch_now()
    b = make(120, seed=2)[0].fetch_now()
    assert [g.uuid for g in a.gpus] != [g.uuid for g in b.gpus]
    assert a.jobs != b.jobs


def test_readings_move_with_time() -> None:
    src, clock = make(60)
    before = src.fetch_now()
    clock.t += 30.0
    after = src.fetch_now()
    assert [g.util for g in before.gpus] != [g.util for g in after.gpus]
    assert [e.qps for e in before.endpoints] != [e.qps for e in after.endpoints]


# --- telemetry period ------------------------------------------------------------------------------------


def test_period_zero_rereads_every_gpu_at_every_fetch() -> None:
    clock = FakeClock(PEAK)
    src = SimSource(seed=3, nodes=200, clock=clock, telemetry_period=0)  # 1,500 GPUs: > 512
    last = src.fetch_now().gpus
    for _ in range(3):
        clock.t += 2.0
        gpus = src.fetch_now().gpus
        fleet, tel = src._f, src._tel
        assert list(gpus) == [tel.read_gpu(fleet, i, clock.t) for i in range(len(gpus))]
        # A reading equal to the last keeps its object (identity: unchanged); the down node's GPUs do.
        kept = [new is old for new, old in zip(gpus, last, strict=True)]
        assert kept == [new == old for new, old in zip(gpus, last, strict=True)]
        assert 0 < sum(kept) < len(gpus) // 10
        last = gpus


def test_default_period_rereads_a_staggered_slice_and_keeps_the_rest() -> None:
    src, clock = make(1500)
    src.fetch_now()
    fleet, tel = src._f, src._tel
    n = len(fleet.gpus)
    k = math.ceil(n * 2.0 / 30.0)  # dcgm-exporter's 30 s
    assert tel.per_fetch(n) == k and k > 512
    before, first = list(tel.objs), tel.cursor
    t = clock.t + 2.0
    out = tel.refresh_gpus(fleet, t)  # nothing dirtied by an action: the slice alone
    due = sorted({(first + j) % n for j in range(k)})
    fresh = [tel.read_gpu(fleet, i, t) for i in due]
    assert [out[i] for i in due] == fresh
    changed = [i for i, gpu in zip(due, fresh, strict=True) if gpu != before[i]]
    assert [i for i in range(n) if out[i] is not before[i]] == changed
    assert len(changed) > k * 9 // 10
    assert tel.cursor == (first + k) % n


def test_every_gpu_is_reread_within_the_period() -> None:
    clock = FakeClock(PEAK)
    src = SimSource(seed=0, nodes=200, clock=clock, interval=2.0, telemetry_period=30.0)
    first = src.fetch_now().gpus
    n = len(first)
    assert src._tel.per_fetch(n) == 512  # a small fleet: at least 512 a fetch, not ceil(n / 15)
    fresh: set[int] = set()
    last = first
    for _ in range(math.ceil(n / 512)):
        clock.t += 2.0
        gpus = src.fetch_now().gpus
        now = [src._tel.read_gpu(src._f, i, clock.t) for i in range(n)]
        # Re-read now: as read at this time (an unchanged reading keeps its object); the others are not.
        fresh.update(i for i in range(n) if gpus[i] == now[i])
        assert sum(gpus[i] is not last[i] for i in range(n)) <= 512 + 16  # + those actions touched
        last = gpus
    assert len(fresh) == n


def test_gpus_reread_per_fetch_follow_the_period_and_interval() -> None:
    tel = SimSource(nodes=8, clock=FakeClock(PEAK))._tel  # 30 s, a fetch every 2 s
    assert [tel.per_fetch(n) for n in (64, 600, 37_588, 50_000)] == [64, 512, 2506, 3334]
    tel = SimSource(nodes=8, clock=FakeClock(PEAK), interval=5.0, telemetry_period=60.0)._tel
    assert [tel.per_fetch(n) for n in (64, 37_588)] == [64, 3133]
    assert SimSource(nodes=8, clock=FakeClock(PEAK), telemetry_period=0)._tel.per_fetch(37_588) == 37_588


def test_bad_telemetry_period_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"telemetry_period must be 0 or more seconds, got -1\.0"):
        SimSource(telemetry_period=-1.0)
    path = tmp_path / "config.toml"
    path.write_text("[sim]\ntelemetry_period = -5\n", encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_settings(path, env={})
    assert str(info.value) == f"{path}: [sim] telemetry_period: expected a number from 0 to 3600, got -5"
    path.write_text("[sim]\ntelemetry_period = 0\n", encoding="utf-8")
    assert load_settings(path, env={}).sim.telemetry_period == 0.0


# --- invariants -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("nodes", [8, 200])
def test_allocation_is_consistent(nodes: int) -> None:
    src, clock = make(nodes)
    for _ in range(3):
        data = src.fetch_now()
        pods = {p.key: p for p in data.pods}
        assert len(pods) == len(data.pods), "pod keys are unique"
        held = Counter(g.node for g in data.gpus if g.pod)
        by_pod = Counter(g.pod for g in data.gpus if g.pod)
        for g in data.gpus:
            if g.pod:
                assert g.pod in pods, f"{g.uuid} held by a pod that does not exist"
                assert pods[g.pod].node == g.node
        for p in pods.values():
            if p.gpus and p.node:
                assert by_pod[p.key] == p.gpus, f"{p.key} asks {p.gpus} GPUs, holds {by_pod[p.key]}"
        for n in data.nodes:
            assert n.gpus_requested == held[n.name]
            assert n.gpus_requested <= n.gpus_allocatable <= n.gpus_total
            gpus = [g for g in data.gpus if g.node == n.name]
            assert len(gpus) == n.gpus_total
            worst = max((g.health for g in gpus), default=Health.OK)
            assert n.health >= worst
        clock.t += 45.0


def test_fleet_shape(fleet200: SourceData) -> None:
    nodes = fleet200.nodes
    assert {n.zone for n in nodes} == {"us-east-1a", "us-east-1b", "us-east-1c"}
    assert {n.gpu_model for n in nodes} == {"H100", "H200", "A100", "L4", ""}
    assert max(len(n.name) for n in nodes) <= 24
    racks = Counter(n.rack for n in nodes)
    assert max(racks.values()) <= 16 and all(racks)
    for n in nodes:
        assert n.labels["topology.kubernetes.io/zone"] == n.zone
        assert n.labels["node.kubernetes.io/instance-type"] == n.instance_type
        assert n.price_per_hour == price_per_hour(n.instance_type)
        assert n.provider_id.startswith(f"aws:///{n.zone}/i-0")
        assert n.cluster == "sim"
    ds = [p for p in fleet200.pods if p.owner == "gpu-operator/nvidia-dcgm-exporter"]
    assert len(ds) == sum(1 for n in nodes if n.gpus_total)
    workers = [p for p in fleet200.pods if p.owner_kind == "Job"]
    assert workers and all(p.empty_dir and p.rank >= 0 and p.gpus == 8 for p in workers)
    replicas = [p for p in fleet200.pods if p.owner_kind == "ReplicaSet" and p.gpus]
    assert {p.owner for p in replicas} == {e.key for e in fleet200.endpoints}


def test_jobs_and_queue(fleet200: SourceData) -> None:
    states = Counter(j.state for j in fleet200.jobs)
    assert states[JobState.RUNNING] >= 10
    assert states[JobState.SUCCEEDED] >= 1
    running = [j for j in fleet200.jobs if j.state is JobState.RUNNING]
    for j in running:
        assert len(j.placement) == j.workers and 0 < float(j.progress) < 1
        assert len({fleet200.nodes[0].zone for _ in j.placement}) == 1
    queued = sorted((j for j in fleet200.jobs if j.state is JobState.QUEUED), key=lambda j: j.queue_position)
    assert queued, "a job waits for capacity"
    assert [j.queue_position for j in queued] == list(range(1, len(queued) + 1))
    assert [(-j.priority, j.submitted_at) for j in queued] == sorted(
        (-j.priority, j.submitted_at) for j in queued
    )
    for j in queued:
        assert j.pending_reason.startswith(f"needs {j.workers}×8 {j.gpu_model} in one zone")
        assert j.placement == () and is_na(j.progress)
    failed = [j for j in fleet200.jobs if j.state is JobState.FAILED]
    assert failed and "exited 137 (OOMKilled)" in failed[0].pending_reason


@pytest.mark.parametrize("nodes", [8, 200])
def test_named_faults_present(nodes: int) -> None:
    data = make(nodes)[0].fetch_now()
    not_ready = [n for n in data.nodes if not n.ready]
    assert len(not_ready) == 1
    bad = not_ready[0]
    assert bad.conditions[0].reason == "KubeletNotReady" and bad.health is Health.FAIL
    assert all(is_na(g.util) and is_na(g.temp) for g in data.gpus if g.node == bad.name)
    assert len([n for n in data.nodes if n.cordoned]) == 1
    xid = [g for g in data.gpus if g.xid == 79]
    assert len(xid) == 1
    xid_node = next(n for n in data.nodes if n.name == xid[0].node)
    assert xid_node.health is Health.FAIL and not xid_node.schedulable
    hot = [g for g in data.gpus if g.throttle.is_thermal]
    assert len(hot) == 1
    assert 88 <= float(hot[0].temp) <= 92 and float(hot[0].sm_clock) < float(hot[0].sm_clock_max)
    assert next(n for n in data.nodes if n.name == hot[0].node).health is Health.WARN
    assert snap(data).totals.gpus_idle_allocated > 0


def test_busy_gpus_look_like_the_real_h200(fleet200: SourceData) -> None:
    capped = [g for g in fleet200.gpus if g.throttle & Throttle.SW_POWER_CAP and g.model == "NVIDIA H200"]
    assert capped, "training H200s run into the power cap"
    for g in capped:
        assert g.power_limit == 700 and 680 <= float(g.power) <= 700
        assert 1400 <= float(g.sm_clock) <= 1600 and float(g.util) >= 85
        assert g.mem_total == 143771
    idle = [
        g
        for g in fleet200.gpus
        if not g.pod and g.throttle == Throttle.GPU_IDLE and g.model.startswith("NVIDIA H")
    ]
    assert idle and all(60 <= float(g.power) <= 120 and float(g.sm_clock) == 345 for g in idle)
    training = [
        g for g in fleet200.gpus if g.pod and g.model == "NVIDIA H100 80GB HBM3" and float(g.util) >= 85
    ]
    assert training and all(0.59 <= float(g.mem_pct) / 100 <= 0.96 for g in training)


# --- serving ----------------------------------------------------------------------------------------------


def test_traffic_follows_the_day() -> None:
    peak = make(200, at=PEAK)[0].fetch_now()
    trough = make(200, at=TROUGH)[0].fetch_now()
    assert sum(float(e.qps) for e in peak.endpoints) > 2 * sum(float(e.qps) for e in trough.endpoints)


def test_hpa_reports_its_metric(fleet200: SourceData) -> None:
    with_hpa = [e for e in fleet200.endpoints if e.hpa is not None]
    assert with_hpa
    for e in with_hpa:
        assert e.hpa is not None and e.hpa.min_replicas <= e.replicas_desired <= e.hpa.max_replicas
        assert math.isclose(float(e.hpa.current), float(e.qps) / e.replicas_ready)


async def test_latency_rises_when_replicas_are_short() -> None:
    src, _ = make(200)
    ep = next(
        e
        for e in src.fetch_now().endpoints
        if e.hpa is None and e.replicas_ready >= 3 and e.gpu_model == "A100"
    )
    before = ep
    await src.scale_endpoint(ep.namespace, ep.name, 1)
    after = next(e for e in src.fetch_now().endpoints if e.key == ep.key)
    assert after.replicas_ready == 1
    assert float(after.p99_ms) > 1.5 * float(before.p99_ms)
    assert float(after.p50_ms) > float(before.p50_ms)
    assert float(after.error_rate) >= float(before.error_rate)


# --- actions ----------------------------------------------------------------------------------------------


def endpoint(data: SourceData, ns: str, name: str):  # type: ignore[no-untyped-def]
    return next(e for e in data.endpoints if e.namespace == ns and e.name == name)


def replicas(data: SourceData, ns: str, name: str) -> list:  # type: ignore[type-arg]
    return [p for p in data.pods if p.owner == f"{ns}/{name}"]


async def test_scale_up_pending_then_ready() -> None:
    src, clock = make(200)
    ep = endpoint(src.fetch_now(), *CANARY)
    await src.scale_endpoint(*CANARY, ep.replicas_desired + 2)
    data = src.fetch_now()
    now = endpoint(data, *CANARY)
    assert now.replicas_desired == ep.replicas_desired + 2 and now.replicas_ready == ep.replicas_ready
    pending = [p for p in replicas(data, *CANARY) if p.phase is PodPhase.PENDING]
    assert len(pending) == 2 and all(p.node for p in pending), "placed, starting"
    clock.t += 5.0
    assert endpoint(src.fetch_now(), *CANARY).replicas_ready == ep.replicas_ready, "not ready before 10 s"
    clock.t += 30.0
    data = src.fetch_now()
    assert endpoint(data, *CANARY).replicas_ready == ep.replicas_desired + 2
    assert all(p.phase is PodPhase.RUNNING and p.ready for p in replicas(data, *CANARY))


async def test_scale_beyond_capacity_stays_pending() -> None:
    src, clock = make(200)
    free_l4 = sum(n.gpus_free for n in src.fetch_now().nodes if n.gpu_model == "L4" and n.schedulable)
    await src.scale_endpoint(*CANARY, 3 + free_l4 + 5)
    clock.t += 120.0
    data = src.fetch_now()
    unplaced = [p for p in replicas(data, *CANARY) if not p.node]
    assert len(unplaced) >= 5 and all(p.phase is PodPhase.PENDING for p in unplaced)
    assert all(n.gpus_free == 0 for n in data.nodes if n.gpu_model == "L4" and n.schedulable)


async def test_scale_down_frees_gpus_at_once() -> None:
    src, _ = make(200)
    data = src.fetch_now()
    used = sum(n.gpus_requested for n in data.nodes)
    ep = endpoint(data, *CANARY)
    await src.scale_endpoint(*CANARY, 0)
    data = src.fetch_now()
    assert endpoint(data, *CANARY).replicas_ready == 0 and not replicas(data, *CANARY)
    assert sum(n.gpus_requested for n in data.nodes) == used - ep.gpus
    assert endpoint(data, *CANARY).error_rate == 1.0 and is_na(endpoint(data, *CANARY).p99_ms)


async def test_cordon_keeps_new_pods_off_the_node() -> None:
    src, clock = make(200)
    l4 = [n.name for n in src.fetch_now().nodes if n.gpu_model == "L4" and n.schedulable]
    for name in l4:
        await src.set_cordon(name, True)
    data = src.fetch_now()
    assert all(n.cordoned and not n.schedulable for n in data.nodes if n.name in l4)
    assert all(
        t.key == "node.kubernetes.io/unschedulable" for n in data.nodes if n.name in l4 for t in n.taints
    )
    ep = endpoint(data, *CANARY)
    await src.scale_endpoint(*CANARY, ep.replicas_desired + 1)
    clock.t += 60.0
    assert len([p for p in replicas(src.fetch_now(), *CANARY) if not p.node]) == 1
    room = next(n.name for n in data.nodes if n.name in l4 and n.gpus_free)
    await src.set_cordon(room, False)
    clock.t += 60.0
    data = src.fetch_now()
    assert all(p.node and p.ready for p in replicas(data, *CANARY))


async def test_evict_replica_is_recreated_elsewhere() -> None:
    src, clock = make(200)
    victim = replicas(src.fetch_now(), *CANARY)[0]
    await src.set_cordon(victim.node, True)
    await src.evict_pod(victim.namespace, victim.name)
    data = src.fetch_now()
    pods = replicas(data, *CANARY)
    assert victim.key not in {p.key for p in pods}
    fresh = [p for p in pods if p.phase is PodPhase.PENDING]
    assert len(fresh) == 1 and fresh[0].node and fresh[0].node != victim.node
    clock.t += 31.0
    assert all(p.ready for p in replicas(src.fetch_now(), *CANARY))


def job_of(data: SourceData, key: str):  # type: ignore[no-untyped-def]
    return next(j for j in data.jobs if j.key == key)


async def test_evict_training_rank_restarts_the_whole_gang() -> None:
    src, clock = make(200)
    data = src.fetch_now()
    job = next(
        j for j in data.jobs if j.state is JobState.RUNNING and j.workers >= 2 and j.gpu_model == "H100"
    )
    old = {p.key for p in data.pods if p.owner == job.key}
    victim = next(p for p in data.pods if p.owner == job.key and p.rank == 1)
    await src.set_cordon(victim.node, True)
    await src.evict_pod(victim.namespace, victim.name)
    data = src.fetch_now()
    now = job_of(data, job.key)
    assert now.state is JobState.STARTING, "queued, then placed again at once"
    pods = [p for p in data.pods if p.owner == job.key]
    assert not {p.key for p in pods} & old, "every rank was replaced, not only the evicted one"
    assert sorted(p.rank for p in pods) == list(range(job.workers))
    assert victim.node not in now.placement and len(now.placement) == job.workers
    assert float(now.progress) < float(job.progress), "the work since the last checkpoint is lost"
    clock.t += 61.0
    assert job_of(src.fetch_now(), job.key).state is JobState.RUNNING


async def test_restarted_gang_queues_until_there_is_room() -> None:
    src, clock = make(200)
    data = src.fetch_now()
    job = next(j for j in data.jobs if j.state is JobState.RUNNING and j.gpu_model == "A100")
    a100 = [n.name for n in data.nodes if n.gpu_model == "A100" and n.schedulable]
    for name in a100:
        await src.set_cordon(name, True)
    rank = next(p for p in data.pods if p.owner == job.key)
    await src.evict_pod(rank.namespace, rank.name)
    data = src.fetch_now()
    queued = job_of(data, job.key)
    assert queued.state is JobState.QUEUED and queued.placement == () and queued.queue_position >= 1
    assert queued.pending_reason.startswith("no schedulable node has A100 GPUs (")
    assert not [p for p in data.pods if p.owner == job.key]
    assert not [g for g in data.gpus if g.pod.startswith(f"{job.key}-")], "its GPUs are free"
    for name in a100:
        await src.set_cordon(name, False)
    clock.t += 61.0
    running = job_of(src.fetch_now(), job.key)
    assert running.state is JobState.RUNNING and len(running.placement) == job.workers


async def test_pdbs_guard_production_endpoints() -> None:
    src, _ = make(200)
    data = src.fetch_now()
    pdbs = {p.owner: p for p in data.pdbs}
    assert pdbs and set(pdbs) == {e.key for e in data.endpoints if "prod" in e.namespace}
    for e in data.endpoints:
        pdb = pdbs.get(e.key)
        if pdb is None:
            continue
        assert (pdb.namespace, pdb.name, pdb.source) == (e.namespace, e.name, "sim")
        assert pdb.min_available == pdb.desired_healthy == max(1, e.replicas_desired - 1)
        assert pdb.current_healthy == e.replicas_ready
        assert pdb.disruptions_allowed == max(0, e.replicas_ready - pdb.min_available)


async def test_eviction_refused_by_the_budget_as_kubernetes_words_it() -> None:
    src, clock = make(200)
    data = src.fetch_now()
    ep = next(e for e in data.endpoints if e.key == "ml-prod/embed-bge-search")
    assert ep.hpa is not None and ep.replicas_ready == ep.replicas_desired >= 3
    first, second = replicas(data, ep.namespace, ep.name)[:2]
    await src.evict_pod(first.namespace, first.name)
    data = src.fetch_now()
    assert next(p for p in data.pdbs if p.owner == ep.key).disruptions_allowed == 0
    with pytest.raises(EvictionBlocked) as refused:
        await src.evict_pod(second.namespace, second.name)
    assert (
        str(refused.value)
        == PDB_VIOLATION
        == "Cannot evict pod as it would violate the pod's disruption budget."
    )
    assert refused.value.pdb == ep.key
    assert second.key in {p.key for p in src.fetch_now().pods}, "a refused eviction changes nothing"
    pending = next(p for p in replicas(data, ep.namespace, ep.name) if not p.ready)
    await src.evict_pod(pending.namespace, pending.name)  # a pod that is not ready costs the budget nothing
    clock.t += 31.0
    src.fetch_now()
    await src.evict_pod(second.namespace, second.name)  # the replacement is ready: headroom again
    assert second.key not in {p.key for p in src.fetch_now().pods}


async def test_launch_lands_exactly_where_planned() -> None:
    src, clock = make(200)
    snapshot = snap(src.fetch_now(), clock.t)
    plan = place_gang(snapshot, GangRequest(3, 8, "L4", name="research/planned"))
    assert isinstance(plan, Placement) and len(set(plan.nodes)) == 3
    spec = LaunchSpec("research", "planned", "img", 3, 8, "L4", placement=plan.nodes)
    await src.launch_job(spec)
    job = job_of(src.fetch_now(), "research/planned")
    assert job.state is JobState.STARTING and job.placement == plan.nodes
    taken = {n.name: n.gpus_free for n in src.fetch_now().nodes if n.name in plan.nodes}
    assert all(taken[n] == snapshot.node_by_name[n].gpus_free - 8 * plan.nodes.count(n) for n in taken)


async def test_engine_sees_the_fleet_as_a_snapshot_of_it_does() -> None:
    src, clock = make(200)
    snapshot = snap(src.fetch_now(), clock.t)
    sim_view = src._capacity()
    assert sim_view.sizes == Capacity.from_snapshot(snapshot).sizes
    assert dict(sim_view.nodes) == dict(Capacity.from_snapshot(snapshot).nodes)


async def test_executing_a_drain_plan_moves_everything_where_planned() -> None:
    src, clock = make(200)
    data = src.fetch_now()
    snapshot = snap(data, clock.t)
    serving = [
        n.name
        for n in data.nodes
        if n.schedulable
        and any(p.gpus and p.owner_kind == "ReplicaSet" for p in snapshot.pods_by_node.get(n.name, ()))
    ]

    def candidates():  # type: ignore[no-untyped-def]
        """A running gang and a serving node whose drain blocks nothing and re-places the gang."""
        for job in data.jobs:
            if job.state is JobState.RUNNING:
                for name in serving:
                    nodes = [job.placement[0], name]
                    plan = plan_drain(snapshot, nodes, allow_empty_dir=True, allow_unmanaged=True)
                    if not plan.blocked and all(isinstance(g.replacement, Placement) for g in plan.gangs):
                        yield job, nodes, plan

    job, nodes, plan = next(candidates())
    (gang,) = plan.gangs
    assert gang.job == job.key and isinstance(gang.replacement, Placement)
    moved = [m for m in plan.evict if m.to and m.owner_kind == "ReplicaSet"]
    assert moved, "the plan moves serving replicas"

    for name in nodes:
        await src.set_cordon(name, True)
    for m in plan.evict:
        ns, name = m.pod.split("/")
        await src.evict_pod(ns, name)

    after = src.fetch_now()
    before = {p.key for p in data.pods}
    for owner in {m.owner for m in moved}:
        fresh = Counter(p.node for p in after.pods if p.owner == owner and p.key not in before)
        assert fresh == Counter(m.to for m in moved if m.owner == owner), owner
    assert job_of(after, job.key).placement == gang.replacement.nodes
    clock.t += 61.0
    after = src.fetch_now()
    for name in nodes:
        assert {p.owner_kind for p in after.pods if p.node == name} == {"DaemonSet"}
        assert next(n for n in after.nodes if n.name == name).gpus_requested == 0
    assert job_of(after, job.key).state is JobState.RUNNING
    for owner in {m.owner for m in moved}:
        ep = next(e for e in after.endpoints if e.key == owner)
        assert ep.replicas_ready == ep.replicas_desired


async def test_evict_daemonset_pod_comes_back_on_its_node() -> None:
    src, clock = make(20)
    pod = next(p for p in src.fetch_now().pods if p.owner_kind == "DaemonSet" and p.ready)
    await src.evict_pod(pod.namespace, pod.name)
    clock.t += 10.0
    back = [p for p in src.fetch_now().pods if p.owner == pod.owner and p.node == pod.node]
    assert len(back) == 1 and back[0].name != pod.name and back[0].ready


async def test_redeploy_rolls_one_replica_at_a_time() -> None:
    src, clock = make(200)
    data = src.fetch_now()
    ep = endpoint(data, *CANARY)
    old = {p.name for p in replicas(data, *CANARY)}
    await src.redeploy_endpoint(*CANARY, image="vllm/vllm-openai:v0.6.4")
    data = src.fetch_now()
    now = endpoint(data, *CANARY)
    assert now.image == "vllm/vllm-openai:v0.6.4"
    assert now.replicas_ready == ep.replicas_desired - 1
    assert len([p for p in replicas(data, *CANARY) if p.name not in old]) == 1
    for _ in range(ep.replicas_desired * 2):
        clock.t += 31.0
        data = src.fetch_now()
    assert not {p.name for p in replicas(data, *CANARY)} & old
    assert endpoint(data, *CANARY).replicas_ready == ep.replicas_desired


async def test_launch_job_starts_when_it_fits() -> None:
    src, clock = make(200)
    spec = LaunchSpec("research", "my-run", "nvcr.io/nvidia/pytorch:24.07-py3", 1, 8, "H100")
    await src.launch_job(spec)
    data = src.fetch_now()
    job = next(j for j in data.jobs if j.key == "research/my-run")
    assert job.state is JobState.STARTING and len(job.placement) == 1
    clock.t += 61.0
    data = src.fetch_now()
    job = next(j for j in data.jobs if j.key == "research/my-run")
    assert job.state is JobState.RUNNING
    gpus = [g for g in data.gpus if g.pod.startswith("research/my-run-")]
    assert len(gpus) == 8 and all(float(g.util) >= 85 for g in gpus)


async def test_launch_job_too_big_queues_with_a_reason() -> None:
    src, _ = make(200)
    await src.launch_job(LaunchSpec("research", "huge", "img", 16, 8, "H100", priority=5000))
    job = next(j for j in src.fetch_now().jobs if j.key == "research/huge")
    assert job.state is JobState.QUEUED and job.queue_position == 1
    assert job.pending_reason.startswith("needs 16×8 H100 in one zone; the best zone (us-east-1")


async def test_launch_job_honours_placement() -> None:
    src, _ = make(200)
    data = src.fetch_now()
    busy = next(n for n in data.nodes if n.gpu_model == "H100" and n.schedulable and n.gpus_free == 0)
    free = next(n for n in data.nodes if n.gpu_model == "H100" and n.schedulable and n.gpus_free == 8)
    await src.launch_job(LaunchSpec("research", "pinned-busy", "img", 1, 8, "H100", placement=(busy.name,)))
    await src.launch_job(LaunchSpec("research", "pinned-free", "img", 1, 8, "H100", placement=(free.name,)))
    jobs = {j.name: j for j in src.fetch_now().jobs}
    assert jobs["pinned-busy"].state is JobState.QUEUED
    assert jobs["pinned-busy"].pending_reason == f"planned node {busy.name} has 0 of the 8 GPUs it needs free"
    assert jobs["pinned-free"].placement == (free.name,)


async def test_running_job_finishes_and_frees_its_gpus() -> None:
    src, clock = make(200)
    before = {j.key: j for j in src.fetch_now().jobs}
    clock.t += 1800.0
    data = src.fetch_now()
    done = [j for j in data.jobs if j.state is JobState.SUCCEEDED and before[j.key].state is JobState.RUNNING]
    assert done, "the job that was about to finish did"
    for j in done:
        assert j.progress == 1.0 and j.finished_at > before[j.key].started_at
        assert not [p for p in data.pods if p.owner == j.key]
        assert not [g for g in data.gpus if g.pod.startswith(f"{j.key}-")]


async def test_unknown_targets_and_bad_arguments() -> None:
    src, _ = make(20)
    with pytest.raises(SourceError, match="endpoint ml-prod/x not found"):
        await src.scale_endpoint("ml-prod", "x", 2)
    with pytest.raises(SourceError, match="endpoint ml-prod/x not found"):
        await src.redeploy_endpoint("ml-prod", "x")
    with pytest.raises(SourceError, match="node nope not found"):
        await src.set_cordon("nope", True)
    with pytest.raises(SourceError, match="pod a/b not found"):
        await src.evict_pod("a", "b")
    with pytest.raises(ValueError, match="replicas"):
        await src.scale_endpoint(*CANARY, -1)
    with pytest.raises(ValueError, match="at least 1 worker"):
        await src.launch_job(LaunchSpec("research", "zero", "img", 0, 8))
    with pytest.raises(ValueError, match="placement names 2 nodes for 1 workers"):
        await src.launch_job(LaunchSpec("research", "two", "img", 1, 8, placement=("a", "b")))
    with pytest.raises(ValueError, match="GPUs in this fleet; it has H100"):
        await src.launch_job(LaunchSpec("research", "tpu", "img", 1, 8, "TPUv5"))
    with pytest.raises(SourceError, match="node ghost not found"):
        await src.launch_job(LaunchSpec("research", "ghost", "img", 1, 8, "H100", placement=("ghost",)))
    await src.launch_job(LaunchSpec("research", "twice", "img", 1, 8, "H100"))
    with pytest.raises(SourceError, match="already exists"):
        await src.launch_job(LaunchSpec("research", "twice", "img", 1, 8, "H100"))


# --- history ----------------------------------------------------------------------------------------------


def test_warmup_tells_the_time_before_the_first_fetch(fleet200: SourceData) -> None:
    src, _ = make(200)
    data = src.fetch_now()
    busy = next(g for g in data.gpus if g.pod and float(g.util) >= 85)
    util = src.warmup("gpu", busy.uuid, "util", 60, 2.0)
    assert len(util) == 60 and all(85 <= u <= 99 for u in util)
    assert len(set(util)) > 3, "it wobbles step to step"
    node = src.warmup("node", busy.node, "util", 30, 10.0)
    assert len(node) == 30 and not any(math.isnan(x) for x in node)
    dead = next(n for n in data.nodes if not n.ready)
    assert all(math.isnan(x) for x in src.warmup("node", dead.name, "util", 5, 1.0))
    ep = data.endpoints[0]
    day = src.warmup("endpoint", ep.key, "qps", 24, 3600.0)
    assert max(day) > 1.8 * min(day)
    assert src.warmup("endpoint", ep.key, "replicas_ready", 3, 1.0) == [ep.replicas_ready] * 3
    assert all(math.isnan(x) for x in src.warmup("gpu", "GPU-unknown", "temp", 4, 1.0))
    with pytest.raises(ValueError, match="unknown GPU metric"):
        src.warmup("gpu", busy.uuid, "fan", 4, 1.0)


async def test_warmup_draws_the_fleet_as_laid_out_even_when_asked_after_it_changed() -> None:
    # What the warm-up is drawn from is taken after the first fetch (off the first frame with data), but
    # always from the fleet as it stood then: an action or an event before the first question changes nothing.
    eager, _ = make(200)
    eager.fetch_now()
    lazy, clock = make(200)
    data = lazy.fetch_now()
    ep = next(e for e in data.endpoints if e.replicas_ready >= 2)
    pods = {p.key for p in data.pods if p.owner == ep.key and p.ready}
    gpus = [g for g in data.gpus if g.pod in pods]
    other = next(g for g in data.gpus if g.pod and g.pod not in pods and float(g.util) >= 85)
    ready = eager.warmup("endpoint", ep.key, "replicas_ready", 2, 1.0)
    before = [eager.warmup("gpu", g.uuid, "util", 8, 2.0) for g in (*gpus, other)]
    assert not any(math.isnan(x) for x in before[0])
    await lazy.scale_endpoint(ep.namespace, ep.name, 0)  # its GPUs run nothing now
    clock.t += 600.0
    lazy.fetch_now()
    assert lazy.warmup("endpoint", ep.key, "replicas_ready", 2, 1.0) == ready
    for g in gpus:  # work changed since the start: no made-up past
        assert all(math.isnan(x) for x in lazy.warmup("gpu", g.uuid, "util", 8, 2.0))
    assert lazy.warmup("gpu", other.uuid, "util", 8, 2.0) == before[-1]


# --- sizes ------------------------------------------------------------------------------------------------


def test_one_node_fleet_works() -> None:
    src, clock = make(1)
    data = src.fetch_now()
    assert len(data.nodes) == 1 and len(data.gpus) == 8
    clock.t += 3600.0
    assert len(src.fetch_now().nodes) == 1


def test_five_thousand_nodes() -> None:
    data = make(5000)[0].fetch_now()
    assert len(data.nodes) == 5000
    assert len(data.gpus) >= 36_000
    assert len(data.pods) >= 100_000
    assert len(data.endpoints) >= 200
    assert max(len(n.name) for n in data.nodes) <= 24
