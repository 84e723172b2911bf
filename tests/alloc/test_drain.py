"""Drain planning: invariants over random fleets (hypothesis), each blocking reason, gangs and their cost."""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aios_tui.alloc.drain import BARE_POD, EMPTY_DIR, DrainPlan, PodMove, plan_drain
from aios_tui.alloc.placement import Placement, Refusal
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


# --- invariants over random fleets --------------------------------------------------------------------------


@st.composite
def fleets(draw: st.DrawFn) -> tuple[FleetSnapshot, list[str], bool, bool]:
    """Random nodes (some cordoned or NotReady), jobs, replicas, CPU, DaemonSet and bare pods, PDBs."""
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
        f.job(f"job{j}", ranks, per_worker=per, started=draw(st.floats(0.0, 10_000.0)))
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
        f.pod(f"app{k}-x", draw(st.sampled_from(nodes)).name, empty_dir=draw(st.booleans()))
    if draw(st.booleans()):
        f.pod("debug-x", draw(st.sampled_from(nodes)).name, kind="")
    drained = draw(st.lists(st.sampled_from([nd.name for nd in nodes]), min_size=1, max_size=n, unique=True))
    return f.snapshot(), drained, draw(st.booleans()), draw(st.booleans())


@settings(max_examples=300, deadline=None)
@given(fleets())
def test_drain_plan_invariants(case: tuple[FleetSnapshot, list[str], bool, bool]) -> None:
    snapshot, drained, empty_dir, unmanaged = case
    plan = plan_drain(snapshot, drained, allow_empty_dir=empty_dir, allow_unmanaged=unmanaged)
    by_node = snapshot.node_by_name

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
        if p.gpus and p.phase is PodPhase.RUNNING and p.owner_kind != "Job":
            assert m.to, "a GPU replica that moves has a destination"
    evicted_ready = Counter(pods[m.pod].owner for m in plan.evict if pods[m.pod].ready)
    for pdb in snapshot.pdbs:
        assert evicted_ready[pdb.owner] <= pdb.disruptions_allowed
    assert plan.ok == all(m.retry for m in plan.blocked)
    assert all(m.blocked.startswith("PodDisruptionBudget ") for m in plan.blocked if m.retry)
    assert {g.job for g in plan.gangs} == {m.owner for m in plan.evict if m.owner_kind == "Job"}
    assert math.isclose(plan.gpu_hours_at_risk, sum(g.gpu_hours_at_risk for g in plan.gangs))
    kinds = [
        0 if not m.gpus or pods[m.pod].phase is not PodPhase.RUNNING else 2 if m.owner_kind == "Job" else 1
        for m in plan.evict
    ]
    assert kinds == sorted(kinds), "eviction order: no GPU, replicas, training ranks"
