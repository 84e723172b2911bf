"""Drain planning: invariants over random fleets (hypothesis), each blocking reason, gangs and their cost."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable
from dataclasses import replace

import pytest
from hypothesis import Phase, event, find, given, settings
from hypothesis import strategies as st

from aios_tui.alloc.drain import BARE_POD, EMPTY_DIR, DrainPlan, PodMove, plan_drain
from aios_tui.alloc.placement import GangRequest, Placement, Refusal
from aios_tui.domain import Endpoint, FleetSnapshot, Job, JobState, Node, Pdb, Pod, PodPhase

NOW = 1_700_000_000.0


def node(
    name: str, *, zone: str = "z1", rack: str = "", model: str = "H100", gpus: int = 8, **kw: object
) -> Node:
    return Node(
        name=name,
        source="t",
        pool=name.rsplit("-", 1)[0],
        zone=zone,
        instance_type="p5.48xlarge" if gpus == 8 else "g6.12xlarge",
        gpu_model=model,
        gpus_total=gpus,
        gpus_allocatable=gpus,
        rack=rack,
        **kw,  # type: ignore[arg-type]
    )


class Fleet:
    """A hand-made snapshot whose nodes' requested GPUs always match the pods on them."""

    def __init__(self, *nodes: Node) -> None:
        self.nodes = list(nodes)
        self.pods: list[Pod] = []
        self.jobs: list[Job] = []
        self.endpoints: list[Endpoint] = []
        self.pdbs: list[Pdb] = []

    def pod(
        self, name: str, on: str, *, gpus: int = 0, kind: str = "ReplicaSet", owner: str = "", **kw: object
    ) -> Pod:
        ns = "ml"
        pod = Pod(
            ns,
            name,
            on,
            PodPhase.RUNNING,
            gpus=gpus,
            owner_kind=kind,
            owner=owner if owner or not kind else f"{ns}/{name.rsplit('-', 1)[0]}",
            ready=True,
            **kw,  # type: ignore[arg-type]
        )
        self.pods.append(pod)
        return pod

    def job(self, name: str, on: list[str], per_worker: int = 8, started: float = 3600.0) -> Job:
        job = Job(
            "ml",
            name,
            "t",
            workers=len(on),
            gpus_per_worker=per_worker,
            gpu_model="H100",
            state=JobState.RUNNING,
            placement=tuple(on),
            started_at=NOW - started,
        )
        self.jobs.append(job)
        for rank, n in enumerate(on):
            self.pod(f"{name}-{rank}", n, gpus=per_worker, kind="Job", owner=job.key, rank=rank)
        return job

    def endpoint(self, name: str, on: list[str], gpus: int = 1, model: str = "H100") -> Endpoint:
        ep = Endpoint(
            "ml",
            name,
            "t",
            replicas_desired=len(on),
            replicas_ready=len(on),
            gpus_per_replica=gpus,
            gpu_model=model,
        )
        self.endpoints.append(ep)
        for i, n in enumerate(on):
            self.pod(f"{name}-{i}", n, gpus=gpus, owner=ep.key)
        return ep

    def pdb(self, owner: str, allowed: int, healthy: int = 3, wanted: int = 3) -> Pdb:
        ns, name = owner.split("/")
        pdb = Pdb(ns, name, owner, min_available=wanted, current_healthy=healthy, desired_healthy=wanted,
                  disruptions_allowed=allowed)  # fmt: skip
        self.pdbs.append(pdb)
        return pdb

    def snapshot(self) -> FleetSnapshot:
        used = Counter[str]()
        for p in self.pods:
            used[p.node] += p.gpus
        nodes = tuple(replace(n, gpus_requested=used[n.name]) for n in self.nodes)
        return FleetSnapshot(
            NOW, nodes=nodes, pods=tuple(self.pods), jobs=tuple(self.jobs), endpoints=tuple(self.endpoints),
            pdbs=tuple(self.pdbs),
        )  # fmt: skip


def moves(plan: DrainPlan) -> dict[str, PodMove]:
    return {m.pod: m for m in (*plan.evict, *plan.blocked, *plan.skipped)}


# --- each rule, with its sentence ---------------------------------------------------------------------------


def test_daemonset_pods_are_skipped_and_other_cpu_pods_evicted_first() -> None:
    f = Fleet(node("h-1"), node("h-2"))
    f.pod("dcgm-exporter-a", "h-1", kind="DaemonSet", owner="gpu-operator/dcgm-exporter")
    f.endpoint("chat", ["h-1"], gpus=2)
    f.pod("web-a", "h-1")
    plan = plan_drain(f.snapshot(), ["h-1"])
    assert [m.pod for m in plan.skipped] == ["ml/dcgm-exporter-a"]
    assert [m.pod for m in plan.evict] == ["ml/web-a", "ml/chat-0"], "pods without GPUs first"
    assert plan.evict[0].to == "" and plan.evict[1].to == "h-2"
    assert plan.ok and not plan.blocked and not plan.gangs and plan.gpu_hours_at_risk == 0


def test_bare_pod_is_blocked_unless_allowed() -> None:
    f = Fleet(node("h-1"), node("h-2"))
    f.pod("debug-shell", "h-1", kind="")
    plan = plan_drain(f.snapshot(), ["h-1"])
    assert [(m.pod, m.blocked, m.retry) for m in plan.blocked] == [("ml/debug-shell", BARE_POD, False)]
    assert BARE_POD == "no controller: it would be deleted, not moved"
    assert not plan.ok
    allowed = plan_drain(f.snapshot(), ["h-1"], allow_unmanaged=True)
    assert [m.pod for m in allowed.evict] == ["ml/debug-shell"] and allowed.ok


def test_empty_dir_is_blocked_unless_allowed() -> None:
    f = Fleet(node("h-1"), node("h-2"))
    f.pod("airflow-worker-a", "h-1", empty_dir=True)
    plan = plan_drain(f.snapshot(), ["h-1"])
    assert [(m.blocked, m.retry) for m in plan.blocked] == [(EMPTY_DIR, False)]
    assert "emptyDir data (/dev/shm)" in EMPTY_DIR and not plan.ok
    assert plan_drain(f.snapshot(), ["h-1"], allow_empty_dir=True).ok


def test_pdb_without_headroom_blocks_with_retry_and_names_the_budget() -> None:
    f = Fleet(node("h-1"), node("h-2"), node("h-3"))
    ep = f.endpoint("chat", ["h-1", "h-1", "h-2"], gpus=2)
    f.pdb(ep.key, allowed=0, healthy=3, wanted=3)
    plan = plan_drain(f.snapshot(), ["h-1"])
    assert not plan.evict and len(plan.blocked) == 2
    for m in plan.blocked:
        assert m.retry and m.to == ""
        assert (
            m.blocked
            == "PodDisruptionBudget ml/chat allows no disruption now (3 healthy, 3 required); retried"
        )
    assert plan.ok, "a PDB only delays the drain"


def test_pdb_headroom_is_shared_by_the_pods_of_one_drain() -> None:
    f = Fleet(node("h-1"), node("h-2"), node("h-3"))
    ep = f.endpoint("chat", ["h-1", "h-2", "h-3"], gpus=2)
    f.pdb(ep.key, allowed=1)
    plan = plan_drain(f.snapshot(), ["h-1", "h-2"])
    assert [m.pod for m in plan.evict] == ["ml/chat-0"] and plan.evict[0].to == "h-3"
    assert [m.pod for m in plan.blocked] == ["ml/chat-1"]
    assert plan.blocked[0].blocked.startswith("PodDisruptionBudget ml/chat allows 1 disruption now, taken by")


def test_pod_not_ready_costs_the_budget_nothing() -> None:
    f = Fleet(node("h-1"), node("h-2"))
    ep = f.endpoint("chat", ["h-1"], gpus=2)
    f.pods[-1] = replace(f.pods[-1], ready=False, phase=PodPhase.PENDING)
    f.pdb(ep.key, allowed=0)
    plan = plan_drain(f.snapshot(), ["h-1"])
    assert [m.to for m in plan.evict] == ["h-2"] and not plan.blocked


def test_replica_without_capacity_is_blocked_with_the_refusal() -> None:
    f = Fleet(node("h-1"), node("h-2"), node("l4-1", model="L4", gpus=4))
    f.endpoint("chat", ["h-1"], gpus=4)
    f.job("full", ["h-2"])
    plan = plan_drain(f.snapshot(), ["h-1"])
    (m,) = plan.blocked
    assert m.pod == "ml/chat-0" and not m.retry and m.to == ""
    assert m.blocked.startswith("no capacity: needs 1×4 H100 in one zone")
    assert not plan.ok


def test_replicas_never_land_on_cordoned_nodes_nor_overcommit() -> None:
    f = Fleet(node("h-1"), node("h-2", cordoned=True), node("h-3"))
    f.endpoint("chat", ["h-1", "h-1", "h-1"], gpus=2)
    f.endpoint("big", ["h-3"], gpus=4)
    plan = plan_drain(f.snapshot(), ["h-1"])
    assert [m.to for m in plan.evict] == ["h-3", "h-3"], "4 free GPUs on h-3: two replicas of 2"
    assert [m.pod for m in plan.blocked] == ["ml/chat-2"]


def test_training_rank_restarts_the_whole_gang() -> None:
    f = Fleet(*(node(f"h-{i}", rack="r1") for i in range(1, 4)), node("h-5", zone="z2"))
    job = f.job("llama", ["h-1", "h-2"], started=7200.0)
    plan = plan_drain(f.snapshot(), ["h-1"], allow_empty_dir=True)
    (gang,) = plan.gangs
    assert (gang.job, gang.ranks_on_drained, gang.workers, gang.gpus) == (job.key, 1, 2, 16)
    assert isinstance(gang.replacement, Placement)
    assert sorted(gang.replacement.nodes) == ["h-2", "h-3"], "the surviving rank's GPUs are free again"
    assert gang.replacement.domain == "rack r1"
    (rank,) = plan.evict
    assert rank.pod == "ml/llama-0" and rank.to == gang.replacement.nodes[0]
    assert gang.gpu_hours_at_risk == pytest.approx(16 * 1800 / 3600), "capped at the checkpoint interval"
    assert plan.gpu_hours_at_risk == gang.gpu_hours_at_risk


def test_gpu_hours_at_risk_is_the_time_since_start_when_shorter() -> None:
    f = Fleet(node("h-1"), node("h-2"))
    f.job("young", ["h-1"], per_worker=4, started=900.0)
    f.job("old", ["h-1"], per_worker=4, started=86400.0)
    plan = plan_drain(f.snapshot(), ["h-1"], allow_empty_dir=True, checkpoint_s=3600.0)
    risk = {g.job: g.gpu_hours_at_risk for g in plan.gangs}
    assert risk == pytest.approx({"ml/young": 4 * 900 / 3600, "ml/old": 4 * 1.0})
    assert plan.gpu_hours_at_risk == pytest.approx(1.0 + 4.0)


def test_gang_that_cannot_be_replaced_queues_but_is_still_evicted() -> None:
    f = Fleet(node("h-1"), node("h-2"), node("h-3", zone="z2"))
    f.job("wide", ["h-1", "h-2"])
    f.job("other", ["h-3"])
    plan = plan_drain(f.snapshot(), ["h-1"], allow_empty_dir=True)
    (gang,) = plan.gangs
    assert isinstance(gang.replacement, Refusal)
    assert gang.replacement.reason.startswith("needs 2×8 H100 in one zone")
    assert [(m.pod, m.to) for m in plan.evict] == [("ml/wide-0", "")] and plan.ok


def test_emptydir_blocks_training_ranks_by_default() -> None:
    f = Fleet(node("h-1"), node("h-2"))
    f.job("llama", ["h-1"])
    f.pods[-1] = replace(f.pods[-1], empty_dir=True)
    plan = plan_drain(f.snapshot(), ["h-1"])
    assert [m.blocked for m in plan.blocked] == [EMPTY_DIR] and not plan.gangs and not plan.ok


def test_eviction_order_and_replicas_before_gangs_take_capacity() -> None:
    f = Fleet(node("h-1"), node("h-2"), node("h-3"))
    f.job("llama", ["h-1"], per_worker=4)
    f.endpoint("chat", ["h-1"], gpus=4)
    f.pod("web-a", "h-1")
    f.job("filler", ["h-2"])
    plan = plan_drain(f.snapshot(), ["h-1"], allow_empty_dir=True)
    assert [m.pod for m in plan.evict] == ["ml/web-a", "ml/chat-0", "ml/llama-0"]
    gang = plan.gangs[0].replacement
    assert isinstance(gang, Placement) and gang.nodes == ("h-3",)
    assert plan.evict[1].to == "h-3", "the replica was placed first, the gang fits beside it"


def test_completed_pods_go_without_placement_or_budget() -> None:
    f = Fleet(node("h-1"), node("h-2", cordoned=True))
    ep = f.endpoint("chat", ["h-1"], gpus=8)
    f.pods[-1] = replace(f.pods[-1], phase=PodPhase.SUCCEEDED)
    f.pdb(ep.key, allowed=0)
    plan = plan_drain(f.snapshot(), ["h-1"])
    assert [(m.pod, m.to) for m in plan.evict] == [("ml/chat-0", "")] and plan.ok


def test_unknown_nodes_are_named() -> None:
    f = Fleet(node("h-1"))
    with pytest.raises(ValueError, match="unknown nodes: nope, gone"):
        plan_drain(f.snapshot(), ["h-1", "nope", "gone"])
    with pytest.raises(ValueError, match=r"unknown node: nope$"):
        plan_drain(f.snapshot(), ["nope"])


def test_nodes_named_twice_are_drained_once() -> None:
    f = Fleet(node("h-1"), node("h-2"))
    f.pod("web-a", "h-1")
    plan = plan_drain(f.snapshot(), ["h-1", "h-1"])
    assert plan.nodes == ("h-1",) and len(plan.evict) == 1


# --- edges the mutants found -------------------------------------------------------------------------------


def test_moves_are_exact_and_only_a_budget_sets_retry() -> None:
    f = Fleet(node("h-1"), node("h-2"))
    f.pod("dcgm-exporter-a", "h-1", kind="DaemonSet", owner="gpu-operator/dcgm-exporter")
    f.endpoint("chat", ["h-1"], gpus=2)
    f.pod("web-a", "h-1")
    f.pod("debug-shell", "h-1", kind="")
    plan = plan_drain(f.snapshot(), ["h-1"])
    assert plan.skipped == (
        PodMove("ml/dcgm-exporter-a", "h-1", 0, "gpu-operator/dcgm-exporter", "DaemonSet"),
    )
    assert plan.evict == (
        PodMove("ml/web-a", "h-1", 0, "ml/web", "ReplicaSet"),
        PodMove("ml/chat-0", "h-1", 2, "ml/chat", "ReplicaSet", to="h-2"),
    )
    assert plan.blocked == (PodMove("ml/debug-shell", "h-1", 0, "", "", blocked=BARE_POD),)
    assert EMPTY_DIR == "holds emptyDir data (/dev/shm) that eviction deletes"


def test_gpu_less_pods_wait_for_their_budget_too() -> None:
    f = Fleet(node("h-1"), node("h-2"))
    for pod in ("web-a", "web-b", "web-c"):
        f.pod(pod, "h-1")
    f.pdb("ml/web", allowed=1)
    plan = plan_drain(f.snapshot(), ["h-1"])
    assert [m.pod for m in plan.evict] == ["ml/web-a"]
    taken = "PodDisruptionBudget ml/web allows 1 disruption now, taken by other pods of this drain; retried"
    assert plan.blocked == (
        PodMove("ml/web-b", "h-1", 0, "ml/web", "ReplicaSet", blocked=taken, retry=True),
        PodMove("ml/web-c", "h-1", 0, "ml/web", "ReplicaSet", blocked=taken, retry=True),
    )
    assert plan.ok


def test_a_budget_of_two_lets_two_pods_go() -> None:
    f = Fleet(node("h-1"), node("h-2"))
    ep = f.endpoint("chat", ["h-1", "h-1", "h-1"], gpus=2)
    f.pdb(ep.key, allowed=2)
    plan = plan_drain(f.snapshot(), ["h-1"])
    assert [(m.pod, m.to) for m in plan.evict] == [("ml/chat-0", "h-2"), ("ml/chat-1", "h-2")]
    (blocked,) = plan.blocked
    assert blocked.blocked == (
        "PodDisruptionBudget ml/chat allows 2 disruptions now, taken by other pods of this drain; retried"
    )
    assert blocked.retry and plan.ok


def test_pdb_blocked_training_ranks_are_retried_and_lose_nothing_yet() -> None:
    f = Fleet(node("h-1"), node("h-2"))
    job = f.job("llama", ["h-1", "h-1"], per_worker=4)
    f.pdb(job.key, allowed=0, healthy=2, wanted=2)
    plan = plan_drain(f.snapshot(), ["h-1"])
    none = "PodDisruptionBudget ml/llama allows no disruption now (2 healthy, 2 required); retried"
    assert plan.blocked == (
        PodMove("ml/llama-0", "h-1", 4, job.key, "Job", blocked=none, retry=True),
        PodMove("ml/llama-1", "h-1", 4, job.key, "Job", blocked=none, retry=True),
    )
    assert (plan.evict, plan.gangs, plan.gpu_hours_at_risk, plan.ok) == ((), (), 0.0, True)


def test_a_rank_the_budget_lets_go_still_restarts_its_gang() -> None:
    f = Fleet(node("h-1"), node("h-2"))
    job = f.job("llama", ["h-1", "h-1"], per_worker=4)
    f.pdb(job.key, allowed=1, healthy=2, wanted=1)
    plan = plan_drain(f.snapshot(), ["h-1"])
    (gang,) = plan.gangs
    assert (gang.job, gang.ranks_on_drained, gang.workers) == (job.key, 1, 2)
    assert isinstance(gang.replacement, Placement) and gang.replacement.nodes == ("h-2", "h-2")
    assert plan.evict == (PodMove("ml/llama-0", "h-1", 4, job.key, "Job", to="h-2"),)
    (blocked,) = plan.blocked
    assert (blocked.pod, blocked.retry) == ("ml/llama-1", True)


def test_a_node_without_pods_drains_to_an_empty_plan() -> None:
    f = Fleet(node("h-1"), node("h-2"))
    f.pod("web-a", "h-1")
    assert plan_drain(f.snapshot(), ["h-2"]) == DrainPlan(("h-2",), (), (), (), (), 0)


def test_the_replacement_gang_asks_for_the_jobs_shape_and_priority() -> None:
    f = Fleet(node("h-1"), node("h-2"), node("h-3"))
    job = f.job("llama", ["h-1", "h-2"], per_worker=4)
    f.jobs[-1] = replace(job, priority=7)
    (gang,) = plan_drain(f.snapshot(), ["h-1"]).gangs
    assert isinstance(gang.replacement, Placement)
    assert gang.replacement.request == GangRequest(2, 4, "H100", priority=7, name="ml/llama")


def test_a_job_missing_from_the_snapshot_moves_like_a_replica() -> None:
    f = Fleet(node("h-1"), node("h-2"))
    f.pod("ghost-0", "h-1", gpus=4, kind="Job", owner="ml/ghost")
    plan = plan_drain(f.snapshot(), ["h-1"])
    assert plan.evict == (PodMove("ml/ghost-0", "h-1", 4, "ml/ghost", "Job", to="h-2"),)
    assert plan.gangs == () and plan.gpu_hours_at_risk == 0


def test_a_replica_without_an_endpoint_keeps_its_nodes_model() -> None:
    f = Fleet(node("h-1"), node("h-2"), node("l4-1", model="L4", gpus=4))
    f.job("full", ["h-2"])
    f.pod("batch-a", "h-1", gpus=4)  # no endpoint "ml/batch": the H100 it runs on is what it needs
    plan = plan_drain(f.snapshot(), ["h-1"])
    (m,) = plan.blocked
    assert m.pod == "ml/batch-a" and m.blocked.startswith("no capacity: needs 1×4 H100")


def test_an_endpoints_model_wins_over_its_nodes() -> None:
    f = Fleet(node("h-1"), node("h-2"), node("l4-1", model="L4", gpus=4))
    f.endpoint("odd", ["h-1"], gpus=2, model="L4")  # declared L4, found on an H100
    f.endpoint("any", ["h-1"], gpus=2, model="")  # no model declared: the node's
    plan = plan_drain(f.snapshot(), ["h-1"])
    assert [(m.pod, m.to) for m in plan.evict] == [("ml/odd-0", "l4-1"), ("ml/any-0", "h-2")]


def test_ranks_outside_the_replacement_get_no_destination() -> None:
    f = Fleet(node("h-1"), node("h-2"))
    job = f.job("llama", ["h-1"], per_worker=2)
    f.pod("llama-extra", "h-1", gpus=2, kind="Job", owner=job.key, rank=1)  # past workers
    f.pod("llama-unknown", "h-1", gpus=2, kind="Job", owner=job.key)  # rank -1: not known
    plan = plan_drain(f.snapshot(), ["h-1"])
    (gang,) = plan.gangs
    assert isinstance(gang.replacement, Placement) and gang.replacement.nodes == ("h-2",)
    assert gang.ranks_on_drained == 3
    assert [(m.pod, m.to) for m in plan.evict] == [
        ("ml/llama-0", "h-2"),
        ("ml/llama-extra", ""),
        ("ml/llama-unknown", ""),
    ]


def test_finished_ranks_give_no_gpus_back_to_the_replacement() -> None:
    f = Fleet(node("h-1"), node("h-2"), node("h-3"))
    job = f.job("llama", ["h-1", "h-2"])
    f.job("other", ["h-3"])
    old = f.pod("llama-old", "h-3", gpus=8, kind="Job", owner=job.key, rank=1)
    f.pods[-1] = replace(old, phase=PodPhase.FAILED, ready=False)
    snap = f.snapshot()
    # A finished pod holds no GPU: h-3's 8 are the other job's.
    snap = replace(snap, nodes=tuple(replace(n, gpus_requested=8) for n in snap.nodes))
    plan = plan_drain(snap, ["h-1"])
    (gang,) = plan.gangs
    assert isinstance(gang.replacement, Refusal), "only h-2's 8 GPUs come back: no room for 2×8"
    assert [(m.pod, m.to) for m in plan.evict] == [("ml/llama-0", "")]


def at_risk(started_at: float, now: float, *, checkpoint_s: float = 1800.0) -> float:
    f = Fleet(node("h-1"), node("h-2"))
    job = f.job("llama", ["h-1"], per_worker=4)
    snap = f.snapshot()
    snap = replace(snap, timestamp=now, jobs=(replace(job, started_at=started_at),))
    (gang,) = plan_drain(snap, ["h-1"], checkpoint_s=checkpoint_s).gangs
    return gang.gpu_hours_at_risk


@pytest.mark.parametrize(
    ("started_at", "now", "hours"),
    [
        (0.0, 1000.0, 4 * 1800 / 3600),  # start unknown: a whole checkpoint interval
        (1.0, 1001.0, 4 * 1000 / 3600),
        (1000.0, 1000.0, 0.0),  # just started
        (1060.0, 1000.0, 0.0),  # starts in the future (clocks disagree): nothing, not negative
        (100.0, 1000.0, 4 * 900 / 3600),
    ],
)
def test_gpu_hours_at_risk_edges(started_at: float, now: float, hours: float) -> None:
    assert at_risk(started_at, now) == pytest.approx(hours)


# --- invariants over random fleets --------------------------------------------------------------------------


Case = tuple[FleetSnapshot, list[str], bool, bool]


@st.composite
def fleets(draw: st.DrawFn) -> Case:
    """Random nodes (some cordoned or NotReady), jobs, replicas, CPU, DaemonSet and bare pods, the pods of a
    Job the snapshot does not hold, and PDBs over jobs, replicas and CPU pods alike."""
    n = draw(st.integers(2, 10))
    nodes = [
        node(
            f"h-{i}",
            zone=draw(st.sampled_from(["z1", "z2"])),
            rack=draw(st.sampled_from(["", "r1", "r2"])),
            model=draw(st.sampled_from(["H100", "L4"])),
            cordoned=draw(st.booleans()) and draw(st.booleans()),
            ready=not (draw(st.booleans()) and draw(st.booleans()) and draw(st.booleans())),
        )
        for i in range(n)
    ]
    f = Fleet(*nodes)
    free = {nd.name: 8 for nd in nodes}
    for j in range(draw(st.integers(0, 4))):
        per = draw(st.sampled_from([2, 4, 8]))
        hosts = [nd.name for nd in nodes if nd.gpu_model == "H100" and free[nd.name] >= per]
        if not hosts:
            break
        ranks = draw(st.lists(st.sampled_from(hosts), min_size=1, max_size=3))
        room = Counter(ranks)
        if any(room[h] * per > free[h] for h in room):
            continue
        for h in ranks:
            free[h] -= per
        job = f.job(f"job{j}", ranks, per_worker=per, started=draw(st.floats(0.0, 10_000.0)))
        if draw(st.booleans()):
            f.pdb(job.key, allowed=draw(st.integers(0, 2)))
    for e in range(draw(st.integers(0, 4))):
        gpus = draw(st.sampled_from([1, 2, 4]))
        model = draw(st.sampled_from(["H100", "L4"]))
        hosts = [nd.name for nd in nodes if nd.gpu_model == model and free[nd.name] >= gpus]
        on: list[str] = []
        for h in draw(st.lists(st.sampled_from(hosts), max_size=4)) if hosts else []:
            if free[h] >= gpus:
                free[h] -= gpus
                on.append(h)
        if not on:
            continue
        ep = f.endpoint(f"ep{e}", on, gpus=gpus, model=model)
        if draw(st.booleans()):
            f.pdb(ep.key, allowed=draw(st.integers(0, 2)))
    for nd in nodes:
        f.pod(f"ds-{nd.name}", nd.name, kind="DaemonSet", owner="kube-system/kube-proxy")
    for k in range(draw(st.integers(0, 4))):
        f.pod(f"app{k % 2}-{k}", draw(st.sampled_from(nodes)).name, empty_dir=draw(st.booleans()))
    for k in range(2):
        if draw(st.booleans()):
            f.pdb(f"ml/app{k}", allowed=draw(st.integers(0, 1)))
    ghost = [nd.name for nd in nodes if free[nd.name] >= 2]
    if draw(st.booleans()) and ghost:  # a Job pod whose Job the snapshot does not hold
        f.pod("ghost-0", draw(st.sampled_from(ghost)), gpus=2, kind="Job", owner="ml/ghost")
    if draw(st.booleans()):
        f.pod("debug-x", draw(st.sampled_from(nodes)).name, kind="")
    drained = draw(st.lists(st.sampled_from([nd.name for nd in nodes]), min_size=1, max_size=n, unique=True))
    return f.snapshot(), drained, draw(st.booleans()), draw(st.booleans())


def plan_of(case: Case) -> DrainPlan:
    snapshot, drained, empty_dir, unmanaged = case
    return plan_drain(snapshot, drained, allow_empty_dir=empty_dir, allow_unmanaged=unmanaged)


def _retried(plan: DrainPlan, case: Case, what: str) -> bool:
    jobs = case[0].job_by_key
    for m in plan.blocked:
        if not m.retry:
            continue
        rank = m.owner_kind == "Job" and m.owner in jobs
        if what == ("rank" if rank else "replica" if m.gpus else "no GPU"):
            return True
    return False


#: What the invariants must see, each reached by :func:`fleets` (:func:`test_the_generator_reaches`).
REACHES: dict[str, Callable[[Case, DrainPlan], bool]] = {
    "a training rank blocked by its PDB": lambda c, p: _retried(p, c, "rank"),
    "a GPU replica blocked by its PDB": lambda c, p: _retried(p, c, "replica"),
    "a pod without GPUs blocked by its PDB": lambda c, p: _retried(p, c, "no GPU"),
    "a rank evicted under a PDB with room": lambda c, p: any(
        m.owner_kind == "Job" and m.owner in c[0].pdb_by_owner for m in p.evict
    ),
    "a Job pod whose Job is missing, evicted": lambda c, p: any(m.owner == "ml/ghost" for m in p.evict),
    "a gang placed again": lambda c, p: any(isinstance(g.replacement, Placement) for g in p.gangs),
    "a gang that would queue": lambda c, p: any(isinstance(g.replacement, Refusal) for g in p.gangs),
    "a replica with no capacity": lambda c, p: any(m.blocked.startswith("no capacity") for m in p.blocked),
    "a bare pod": lambda c, p: any(not m.owner_kind for m in (*p.evict, *p.blocked)),
}


@pytest.mark.parametrize("case", list(REACHES))
def test_the_generator_reaches(case: str) -> None:
    # Found within the first examples, not shrunk (finding it is the point, not the smallest one).
    find(
        fleets(),
        lambda c: REACHES[case](c, plan_of(c)),
        settings=settings(database=None, max_examples=1000, phases=[Phase.generate]),
    )


@settings(max_examples=300, deadline=None)
@given(fleets())
def test_drain_plan_invariants(case: Case) -> None:
    snapshot, drained, empty_dir, unmanaged = case
    plan = plan_of(case)
    for name, reached in REACHES.items():
        if reached(case, plan):
            event(name)
    by_node = snapshot.node_by_name
    jobs = snapshot.job_by_key

    # every pod on the drained nodes, exactly once; nothing else
    listed = [m.pod for m in (*plan.evict, *plan.blocked, *plan.skipped)]
    assert Counter(listed) == Counter(p.key for p in snapshot.pods if p.node in drained)

    # nothing lands on a drained or unschedulable node
    targets = [m.to for m in plan.evict if m.to]
    for g in plan.gangs:
        if isinstance(g.replacement, Placement):
            targets += g.replacement.nodes
    for t in targets:
        assert t not in drained and by_node[t].schedulable

    # no GPU over-committed: what arrives fits what was free plus what restarting gangs give back
    restarting = {g.job for g in plan.gangs}
    room = Counter({n.name: n.gpus_free for n in snapshot.nodes})
    for p in snapshot.pods:
        if p.owner in restarting and p.node not in drained:
            room[p.node] += p.gpus
    arriving = Counter[str]()
    for m in plan.evict:
        if m.to and m.owner not in restarting:
            arriving[m.to] += m.gpus
    for g in plan.gangs:
        if isinstance(g.replacement, Placement):
            for t in g.replacement.nodes:
                arriving[t] += g.replacement.request.gpus_per_worker
    for t, gpus in arriving.items():
        assert gpus <= room[t], f"{t}: {gpus} GPUs planned, {room[t]} free"

    # the rules
    pods = {p.key: p for p in snapshot.pods}
    assert all(pods[m.pod].owner_kind == "DaemonSet" for m in plan.skipped)
    assert all(m.blocked and not m.to for m in plan.blocked)
    assert all(not m.blocked for m in plan.evict)
    for m in plan.evict:
        p = pods[m.pod]
        assert p.owner_kind != "DaemonSet"
        assert unmanaged or p.owner_kind
        assert empty_dir or not p.empty_dir
        if p.gpus and p.phase is PodPhase.RUNNING and not (p.owner_kind == "Job" and p.owner in jobs):
            assert m.to, "a GPU replica that moves has a destination"
        assert not m.retry

    # PodDisruptionBudgets: a pod waits for its budget only once the drain has spent all of it
    evicted_ready = Counter(pods[m.pod].owner for m in plan.evict if pods[m.pod].ready)
    for pdb in snapshot.pdbs:
        assert evicted_ready[pdb.owner] <= pdb.disruptions_allowed
    for m in plan.blocked:
        if not m.retry:
            assert m.blocked in (BARE_POD, EMPTY_DIR) or m.blocked.startswith("no capacity: ")
            continue
        pdb = snapshot.pdb_by_owner[m.owner]
        assert pods[m.pod].ready and evicted_ready[m.owner] == pdb.disruptions_allowed
        n = pdb.disruptions_allowed
        assert m.blocked == (
            f"PodDisruptionBudget {pdb.key} allows no disruption now ({pdb.current_healthy} healthy, "
            f"{pdb.desired_healthy} required); retried"
            if n == 0
            else f"PodDisruptionBudget {pdb.key} allows {n} disruption{'' if n == 1 else 's'} now, "
            "taken by other pods of this drain; retried"
        )
    assert plan.ok == all(m.retry for m in plan.blocked)

    # gangs: one per job that loses a rank, its ranks sent where the replacement puts them
    ranks = [m for m in plan.evict if m.owner_kind == "Job" and m.owner in jobs]
    assert [g.job for g in plan.gangs] == list(dict.fromkeys(m.owner for m in ranks))
    for g in plan.gangs:
        job = jobs[g.job]
        assert (g.ranks_on_drained, g.workers, g.gpus) == (
            sum(m.owner == g.job for m in ranks),
            job.workers,
            job.gpus,
        )
        running = max(0.0, min(snapshot.timestamp - job.started_at, 1800.0))
        assert g.gpu_hours_at_risk == pytest.approx(job.gpus * running / 3600)
        for m in ranks:
            if m.owner == g.job:
                rank = pods[m.pod].rank
                expected = g.replacement.nodes[rank] if isinstance(g.replacement, Placement) else ""
                assert m.to == expected
    assert math.isclose(plan.gpu_hours_at_risk, sum(g.gpu_hours_at_risk for g in plan.gangs))
    kinds = [
        0
        if not m.gpus or pods[m.pod].phase is not PodPhase.RUNNING
        else 2
        if m.owner_kind == "Job" and m.owner in jobs
        else 1
        for m in plan.evict
    ]
    assert kinds == sorted(kinds), "eviction order: no GPU, replicas, training ranks"
