"""Cordon, drain, redeploy and launch through Ops on a fake source: plans, progress, PDB retries, roles,
typed confirmations, done / not done, and a re-run that continues."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field, replace
from pathlib import Path

import pytest

from aios_tui.alloc.drain import DrainPlan
from aios_tui.domain import Endpoint, FleetSnapshot, Job, JobState, Node, Pdb, Pod, PodPhase
from aios_tui.ops import (
    ActionRefused,
    Actor,
    AuditLog,
    CancelToken,
    ConfirmationError,
    LaunchPlan,
    Ops,
    PermissionDenied,
    Role,
    TargetNotFound,
    resolve_image,
)
from aios_tui.poll import Poller
from aios_tui.sources.base import (
    EvictionBlocked,
    JobLauncher,
    LaunchSpec,
    NodeMaintainer,
    Restartable,
    SourceData,
    SourceError,
)
from tests.actions import launch_args


def node(name: str, free: int = 8, *, rack: str = "r1", cordoned: bool = False) -> Node:
    return Node(
        name=name,
        source="fake",
        pool="h100",
        zone="z1",
        instance_type="p5.48xlarge",
        gpu_model="H100",
        gpus_total=8,
        gpus_allocatable=8,
        gpus_requested=8 - free,
        rack=rack,
        cordoned=cordoned,
        price_per_hour=98.32,
    )


def pod(key: str, on: str, gpus: int = 0, owner: str = "", kind: str = "ReplicaSet", rank: int = -1) -> Pod:
    namespace, name = key.split("/")
    return Pod(
        namespace=namespace,
        name=name,
        node=on,
        phase=PodPhase.RUNNING,
        gpus=gpus,
        owner_kind=kind,
        owner=owner,
        ready=True,
        rank=rank,
        source="fake",
    )


class FakeFleet:
    """A source that cordons, evicts, redeploys and launches; evictions can be refused or fail on demand."""

    name = "fake"
    kind = "fake"
    interval = 1.0
    timeout = 1.0

    def __init__(self, nodes: list[Node], pods: list[Pod], **kw: object) -> None:
        self.nodes = {n.name: n for n in nodes}
        self.pods = {p.key: p for p in pods}
        self.jobs: list[Job] = list(kw.get("jobs", []))  # type: ignore[call-overload]
        self.endpoints: list[Endpoint] = list(kw.get("endpoints", []))  # type: ignore[call-overload]
        self.pdbs: list[Pdb] = list(kw.get("pdbs", []))  # type: ignore[call-overload]
        self.calls: list[tuple[object, ...]] = []
        self.blocked: dict[str, int] = {}
        """Pod key → how many more evictions of it a PodDisruptionBudget refuses (-1: always)."""
        self.broken: set[str] = set()
        """Pod keys whose eviction fails with a server error (once)."""

    def snapshot(self) -> FleetSnapshot:
        return FleetSnapshot(
            timestamp=1000.0,
            nodes=tuple(self.nodes.values()),
            pods=tuple(self.pods.values()),
            jobs=tuple(self.jobs),
            endpoints=tuple(self.endpoints),
            pdbs=tuple(self.pdbs),
        )

    async def fetch(self) -> SourceData:
        s = self.snapshot()
        return SourceData(nodes=s.nodes, pods=s.pods, jobs=s.jobs, endpoints=s.endpoints, pdbs=s.pdbs)

    async def close(self) -> None:
        pass

    async def set_cordon(self, node: str, cordoned: bool) -> None:
        self.calls.append(("cordon", node, cordoned))
        self.nodes[node] = replace(self.nodes[node], cordoned=cordoned)

    async def evict_pod(self, namespace: str, name: str) -> None:
        key = f"{namespace}/{name}"
        self.calls.append(("evict", key))
        if key in self.broken:
            self.broken.discard(key)
            raise SourceError("500 Internal Server Error (Authorization: Bearer s3cr3t)")
        left = self.blocked.get(key, 0)
        if left:
            self.blocked[key] = left - 1
            raise EvictionBlocked(
                "Cannot evict pod as it would violate the pod's disruption budget.", pdb="ml-prod/chat-pdb"
            )
        if key not in self.pods:
            raise SourceError(f"pod {key} not found")
        gone = self.pods.pop(key)
        if gone.owner_kind == "Job":  # the whole gang restarts: all its pods go
            for other in [p for p in self.pods.values() if p.owner == gone.owner]:
                del self.pods[other.key]

    async def redeploy_endpoint(self, namespace: str, name: str, image: str | None = None) -> None:
        self.calls.append(("redeploy", f"{namespace}/{name}", image))

    async def launch_job(self, spec: LaunchSpec) -> None:
        self.calls.append(("launch", spec))


@dataclass
class World:
    fleet: FakeFleet
    audit: AuditLog
    role: Role = Role.OPERATOR
    read_only: bool = False
    progress: list[str] = field(default_factory=list)

    @property
    def ops(self) -> Ops:
        return Ops(
            {"fake": self.fleet},
            self.fleet.snapshot,
            self.audit,
            actor=Actor("alice", self.role),
            read_only=self.read_only,
            pdb_retry_s=0.001,
        )

    def lines(self) -> list[dict[str, object]]:
        """Every line of the audit log: intents, steps, ends."""
        if not self.audit.path.exists():
            return []
        return [json.loads(line) for line in self.audit.path.read_text().splitlines()]

    def ends(self) -> list[dict[str, object]]:
        return [line for line in self.lines() if line.get("phase", "end") == "end"]


def standard_fleet() -> FakeFleet:
    """Node a: a CPU pod, one prod chat replica (PDB), two ranks of a 2-rank gang. Nodes b, c: free."""
    pods = [
        pod("ml/log-shipper-x", "a", kind="DaemonSet", owner="ml/log-shipper"),
        pod("ml/sidecar-1", "a", owner="ml/sidecar"),
        pod("ml-prod/chat-1", "a", gpus=2, owner="ml-prod/chat"),
        pod("ml-prod/chat-2", "b", gpus=2, owner="ml-prod/chat"),
        pod("ml/train-0", "a", gpus=2, owner="ml/train", kind="Job", rank=0),
        pod("ml/train-1", "a", gpus=2, owner="ml/train", kind="Job", rank=1),
    ]
    return FakeFleet(
        [node("a", free=2), node("b", free=6), node("c", rack="r2")],
        pods,
        jobs=[
            Job(
                "ml",
                "train",
                "fake",
                2,
                2,
                gpu_model="H100",
                state=JobState.RUNNING,
                queue="research",  # Kueue's: one evicted rank takes the workload away, as evict_pod does
                placement=("a", "a"),
                started_at=100.0,
            )
        ],
        endpoints=[
            Endpoint(
                "ml-prod",
                "chat",
                "fake",
                image="vllm/vllm-openai:v0.6.3",
                replicas_desired=2,
                replicas_ready=2,
                gpus_per_replica=2,
                gpu_model="H100",
            )
        ],
        pdbs=[
            Pdb(
                "ml-prod",
                "chat-pdb",
                "ml-prod/chat",
                min_available=1,
                current_healthy=2,
                desired_healthy=1,
                disruptions_allowed=1,
            )
        ],
    )


def world(tmp_path: Path, fleet: FakeFleet | None = None, **kw: object) -> World:
    return World(fleet or standard_fleet(), AuditLog(tmp_path / "audit.jsonl"), **kw)  # type: ignore[arg-type]


def test_the_fake_has_the_capabilities() -> None:
    fleet = standard_fleet()
    assert isinstance(fleet, NodeMaintainer) and isinstance(fleet, Restartable)
    assert isinstance(fleet, JobLauncher)


# --- cordon / uncordon -------------------------------------------------------------------------------------


async def test_cordon_then_uncordon(tmp_path: Path) -> None:
    w = world(tmp_path)
    plan = w.ops.plan("cordon", nodes=["a", "b"])
    assert plan.ok and plan.action == "cordon" and plan.confirm_phrase is None
    assert plan.title == "Cordon 2 nodes (a, b)"
    assert dict(plan.params) == {"nodes": ("a", "b"), "cordoned": True}
    assert dict(plan.lines)["Effect"] == "no new pods; 8 GPUs in use keep running (drain to move them)"
    result = await w.ops.execute(plan, progress=w.progress.append)
    assert result.ok and result.done == ("cordon a", "cordon b") and result.not_done == ()
    assert w.progress == ["cordoned a", "cordoned b"]
    assert w.fleet.nodes["a"].cordoned and w.fleet.nodes["b"].cordoned

    again = w.ops.plan("cordon", nodes=["a"])
    assert again.blockers == ("a is already cordoned: did you mean uncordon (u)?",)
    un = w.ops.plan("uncordon", nodes=["a"])
    assert un.ok and un.action == "uncordon"
    assert (await w.ops.execute(un)).done == ("uncordon a",)
    assert not w.fleet.nodes["a"].cordoned
    assert [line["outcome"] for line in w.ends()] == ["ok", "ok"]
    assert w.ends()[0]["params"] == {"nodes": ["a", "b"], "cordoned": True}
    # Step by step, each node's end on disk as it happened.
    steps = [(ln["step"], ln["outcome"]) for ln in w.lines() if ln.get("phase") == "step"]
    assert steps == [("cordon a", "ok"), ("cordon b", "ok"), ("uncordon a", "ok")]


async def test_cordon_failing_midway_reports_done_and_not_done(tmp_path: Path) -> None:
    w = world(tmp_path)

    async def broken(node: str, cordoned: bool) -> None:
        if node == "b":
            raise SourceError("connection refused")
        w.fleet.nodes[node] = replace(w.fleet.nodes[node], cordoned=cordoned)

    w.fleet.set_cordon = broken  # type: ignore[method-assign]
    result = await w.ops.execute(w.ops.plan("cordon", nodes=["a", "b", "c"]))
    assert not result.ok
    assert result.done == ("cordon a",)
    assert result.not_done == ("cordon b: connection refused", "cordon c")  # the source's words, no class
    assert "1 of 3 steps done, 2 not done" in result.message
    assert w.lines()[-1]["outcome"] == "failed"


def test_unknown_nodes_are_named(tmp_path: Path) -> None:
    w = world(tmp_path)
    with pytest.raises(TargetNotFound, match="nodes x, y not found"):
        w.ops.plan("cordon", nodes=["a", "x", "y"])
    with pytest.raises(TargetNotFound, match="node z not found"):
        w.ops.plan("drain", nodes=["z"])


async def test_viewer_and_read_only_may_not_cordon(tmp_path: Path) -> None:
    viewer = world(tmp_path, role=Role.VIEWER)
    plan = viewer.ops.plan("cordon", nodes=["a"])
    assert plan.blockers == ("role viewer may not cordon (it needs operator)",)
    with pytest.raises(PermissionDenied):
        await viewer.ops.execute(replace(plan, blockers=()))
    ro = world(tmp_path, read_only=True)
    with pytest.raises(PermissionDenied, match="read-only mode"):
        await ro.ops.execute(replace(ro.ops.plan("uncordon", nodes=["a"]), blockers=()))
    assert viewer.fleet.calls == [] and ro.fleet.calls == []
    assert [line["outcome"] for line in ro.lines()] == ["refused", "refused"]


# --- drain --------------------------------------------------------------------------------------------------


async def test_drain_one_node_cordons_first_then_evicts_in_order(tmp_path: Path) -> None:
    w = world(tmp_path)
    plan = w.ops.plan("drain", nodes=["a"])
    dp = plan.detail
    assert isinstance(dp, DrainPlan) and dp.ok
    assert plan.ok, plan.blockers
    assert plan.confirm_phrase == "a"  # a production replica lives there
    rows = dict(plan.lines)
    assert rows["Evict"] == "4 pods (6 GPUs)"
    assert rows["Stay"].startswith("1 DaemonSet pod")
    assert rows["Gang ml/train"].startswith("2 of 2 ranks on these nodes")

    with pytest.raises(ConfirmationError):
        await w.ops.execute(plan)
    result = await w.ops.execute(plan, confirmation="a", progress=w.progress.append)

    assert result.ok, result.message
    assert w.fleet.calls[0] == ("cordon", "a", True)
    evicted = [c[1] for c in w.fleet.calls if c[0] == "evict"]
    # CPU pod, then the serving replica, then ONE rank: the gang restarts whole.
    assert evicted == ["ml/sidecar-1", "ml-prod/chat-1", "ml/train-0"]
    assert result.done == (
        "cordon a",
        "evict ml/sidecar-1 from a",
        "evict ml-prod/chat-1 from a",
        "evict ml/train-0 from a",
        "evict ml/train-1 from a",
    )
    assert not [p for p in w.fleet.pods.values() if p.node == "a" and p.owner_kind != "DaemonSet"]
    assert "evict ml/train-0 from a, 1 more rank leave with its gang (4/4)" in w.progress
    refused, end = w.ends()
    assert refused["outcome"] == "refused"  # the first try, without the phrase
    assert end["outcome"] == "ok"
    assert end["action"] == "drain" and end["params"]["nodes"] == ["a"]  # type: ignore[index]
    [intent] = [ln for ln in w.lines() if ln.get("phase") == "intent"]
    assert intent["steps"] == list(result.done)


async def test_drain_retries_an_eviction_a_pdb_refuses_and_says_so(tmp_path: Path) -> None:
    w = world(tmp_path)
    w.fleet.blocked["ml-prod/chat-1"] = 3
    plan = w.ops.plan("drain", nodes=["a"])
    result = await w.ops.execute(plan, confirmation="a", progress=w.progress.append)
    assert result.ok
    assert [c for c in w.fleet.calls if c == ("evict", "ml-prod/chat-1")] == [("evict", "ml-prod/chat-1")] * 4
    waits = [p for p in w.progress if "waiting for PodDisruptionBudget" in p]
    assert len(waits) == 3
    assert (
        waits[0]
        == "evict ml-prod/chat-1: waiting for PodDisruptionBudget ml-prod/chat-pdb (429), retrying in 0.001 s"
    )


async def test_a_pdb_that_never_yields_times_out_and_the_rest_still_drains(tmp_path: Path) -> None:
    w = world(tmp_path)
    w.fleet.blocked["ml-prod/chat-1"] = -1
    plan = w.ops.plan("drain", nodes=["a"], pdb_timeout_s=0.02)
    result = await w.ops.execute(plan, confirmation="a", progress=w.progress.append)
    assert not result.ok
    assert result.not_done == (
        "evict ml-prod/chat-1 from a: "
        "PodDisruptionBudget ml-prod/chat-pdb still allows no disruption after 0.02 s",
    )
    assert "evict ml/train-0 from a" in result.done and "cordon a" in result.done
    assert w.lines()[-1]["outcome"] == "failed"


async def test_a_failure_midway_stops_and_a_rerun_continues(tmp_path: Path) -> None:
    w = world(tmp_path)
    w.fleet.broken.add("ml-prod/chat-1")
    plan = w.ops.plan("drain", nodes=["a"])
    result = await w.ops.execute(plan, confirmation="a")
    assert not result.ok
    assert result.done[:2] == ("cordon a", "evict ml/sidecar-1 from a")
    failed = [s for s in result.not_done if s.startswith("evict ml-prod/chat-1 from a: ")]
    assert failed and "s3cr3t" not in failed[0] and "s3cr3t" not in result.message
    assert "run it again to continue" in result.message
    assert "ml-prod/chat-1" in w.fleet.pods

    # Run the same drain again: planned from the fleet as it is now, it does only what is left.
    again = w.ops.plan("drain", nodes=["a"])
    left = again.detail
    assert left is not None
    assert "ml/sidecar-1" not in {m.pod for m in left.evict}
    result = await w.ops.execute(again, confirmation="a")
    assert result.ok, result.message
    assert not [p for p in w.fleet.pods.values() if p.node == "a" and p.owner_kind != "DaemonSet"]
    assert [line["outcome"] for line in w.ends()] == ["failed", "ok"]


async def test_several_nodes_need_admin_and_the_typed_count(tmp_path: Path) -> None:
    op = world(tmp_path)
    plan = op.ops.plan("drain", nodes=["b", "c"])
    assert plan.blockers[0].startswith("role operator may not drain 2 at once")
    assert op.ops.check("drain", "b") is None
    assert op.ops.check("drain", ["b", "c"]) is not None
    with pytest.raises(PermissionDenied):
        await op.ops.execute(replace(plan, blockers=()), confirmation="2 nodes")

    admin = world(tmp_path, op.fleet, role=Role.ADMIN)
    plan = admin.ops.plan("drain", nodes=["b", "c"])
    assert plan.ok and plan.confirm_phrase == "2 nodes"
    with pytest.raises(ConfirmationError, match="does not match"):
        await admin.ops.execute(plan, confirmation="b")
    result = await admin.ops.execute(plan, confirmation="2 nodes")
    assert result.ok and result.done[:2] == ("cordon b", "cordon c")


async def test_a_drain_with_a_bare_pod_is_blocked_until_allowed(tmp_path: Path) -> None:
    fleet = standard_fleet()
    fleet.pods["ml/debug"] = pod("ml/debug", "c", kind="")
    w = world(tmp_path, fleet)
    plan = w.ops.plan("drain", nodes=["c"])
    assert not plan.ok and plan.blockers[0].startswith("ml/debug on c: no controller")
    with pytest.raises(ActionRefused, match="no controller"):
        await w.ops.execute(plan)
    assert fleet.calls == []
    assert w.ops.plan("drain", nodes=["c"], allow_unmanaged=True).ok


async def test_an_interrupted_drain_is_audited_with_what_was_done(tmp_path: Path) -> None:
    w = world(tmp_path)
    w.fleet.blocked["ml-prod/chat-1"] = -1
    plan = w.ops.plan("drain", nodes=["a"], pdb_timeout_s=60)
    waiting = asyncio.Event()

    def progress(line: str) -> None:
        w.progress.append(line)
        if "waiting for" in line:
            waiting.set()

    task = asyncio.create_task(w.ops.execute(plan, confirmation="a", progress=progress))
    await waiting.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    line = w.lines()[-1]
    assert line["outcome"] == "interrupted"
    assert str(line["message"]).startswith("Drain a: interrupted after ")
    assert w.progress[-1] == line["message"]


async def test_a_cancelled_drain_stops_after_the_current_step_and_says_what_was_done(tmp_path: Path) -> None:
    w = world(tmp_path)
    w.fleet.blocked["ml-prod/chat-1"] = -1  # waits on its PodDisruptionBudget until stopped
    plan = w.ops.plan("drain", nodes=["a"], pdb_timeout_s=600)
    cancel = CancelToken()

    def progress(line: str) -> None:
        w.progress.append(line)
        if "waiting for" in line:
            cancel.cancel("bob")

    result = await asyncio.wait_for(
        w.ops.execute(plan, confirmation="a", progress=progress, cancel=cancel), timeout=10
    )
    assert not result.ok and result.cancelled
    assert result.message.startswith("Drain a: cancelled by bob after ")
    assert "cordon a" in result.done
    assert "evict ml-prod/chat-1 from a" in result.not_done
    assert w.ends()[-1]["outcome"] == "cancelled"
    evictions = [c for c in w.fleet.calls if c == ("evict", "ml-prod/chat-1")]
    assert len(evictions) == 1  # the wait ended at once: no second try after the cancel


async def test_a_console_killed_midway_is_reported_at_the_next_start_and_closed(tmp_path: Path) -> None:
    """What ``kill -9`` leaves: an intent and the steps it finished, no end. The next start says so once."""
    w = world(tmp_path)
    plan = w.ops.plan("cordon", nodes=["a", "b"])

    second = asyncio.Event()

    async def stuck(node: str, cordoned: bool) -> None:
        if node == "b":
            second.set()  # "cordon a" is journaled by now
            await asyncio.Event().wait()  # never answers: killed while waiting
        w.fleet.nodes[node] = replace(w.fleet.nodes[node], cordoned=cordoned)

    w.fleet.set_cordon = stuck  # type: ignore[method-assign]
    task = asyncio.create_task(w.ops.execute(plan))
    await second.wait()
    # Drop what the task would write on cancellation: a killed process writes nothing more.
    on_disk = w.audit.path.read_bytes()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    w.audit.path.write_bytes(on_disk)
    dead = [json.loads(line) for line in on_disk.decode().splitlines()]
    dead[0]["pid"] = 2**22 + 17  # a process that is gone
    w.audit.path.write_text("".join(json.dumps(line) + "\n" for line in dead))

    [said] = w.ops.unfinished()
    assert said == (
        "Cordon 2 nodes (a, b): interrupted at 2026-11-18 11:06 UTC, 1 of 2 steps done (cordon a)"
    )
    assert w.ops.unfinished() == []  # said once: the end is on disk now
    [record] = w.audit.records()
    assert record.outcome == "interrupted" and record.done == ["cordon a"]


async def test_an_action_still_running_in_a_live_process_is_not_reported(tmp_path: Path) -> None:
    w = world(tmp_path)
    plan = w.ops.plan("cordon", nodes=["a"])
    gate, started = asyncio.Event(), asyncio.Event()

    async def slow(node: str, cordoned: bool) -> None:
        started.set()  # the intent is on disk by now
        await gate.wait()

    w.fleet.set_cordon = slow  # type: ignore[method-assign]
    task = asyncio.create_task(w.ops.execute(plan))
    await started.wait()
    assert w.ops.unfinished() == []  # ours, under way
    gate.set()
    assert (await task).ok


# --- redeploy -----------------------------------------------------------------------------------------------


def test_resolve_image() -> None:
    assert resolve_image("vllm/vllm-openai:v0.6.3", ":v0.6.4") == "vllm/vllm-openai:v0.6.4"
    assert resolve_image("reg:5000/vllm/openai:v1", ":v2") == "reg:5000/vllm/openai:v2"
    assert resolve_image("reg:5000/vllm/openai", ":v2") == "reg:5000/vllm/openai:v2"
    assert resolve_image("vllm/openai@sha256:abc", ":v2") == "vllm/openai:v2"
    assert resolve_image("x:1", "ghcr.io/y/z:2") == "ghcr.io/y/z:2"
    with pytest.raises(ValueError, match="current image is unknown"):
        resolve_image("", ":v2")
    with pytest.raises(ValueError, match="not a valid image tag"):
        resolve_image("x:1", ":bad tag")
    with pytest.raises(ValueError, match="not a valid image reference"):
        resolve_image("x:1", "has space")


async def test_redeploy_a_new_tag_in_production(tmp_path: Path) -> None:
    w = world(tmp_path)
    plan = w.ops.plan("redeploy", endpoint="ml-prod/chat", image=":v0.6.4")
    assert plan.ok and plan.confirm_phrase == "chat"
    assert plan.title == "Redeploy ml-prod/chat to vllm/vllm-openai:v0.6.4"
    rows = dict(plan.lines)
    assert rows["Image"] == "vllm/vllm-openai:v0.6.3 → vllm/vllm-openai:v0.6.4"
    assert rows["Replicas"] == "2 (2 ready)"
    assert rows["Rollout"] == "maxSurge 1 (25%), +2 × H100 while it rolls; maxUnavailable 0 (25%)"
    assert rows["PDB"] == "ml-prod/chat-pdb: minAvailable 1, 1 disruption allowed now"
    result = await w.ops.execute(plan, confirmation="chat")
    assert result.ok and result.done == (plan.title,)
    assert w.fleet.calls == [("redeploy", "ml-prod/chat", "vllm/vllm-openai:v0.6.4")]


async def test_rolling_restart_and_a_bad_image(tmp_path: Path) -> None:
    w = world(tmp_path)
    restart = w.ops.plan("redeploy", endpoint="ml-prod/chat")
    assert restart.title == "Redeploy ml-prod/chat (rolling restart)"
    assert dict(restart.lines)["Image"] == "vllm/vllm-openai:v0.6.3 (unchanged: rolling restart)"
    await w.ops.execute(restart, confirmation="chat")
    assert w.fleet.calls == [("redeploy", "ml-prod/chat", None)]
    bad = w.ops.plan("redeploy", endpoint="ml-prod/chat", image="no good")
    assert not bad.ok and "not a valid image reference" in bad.blockers[0]
    with pytest.raises(TargetNotFound):
        w.ops.plan("redeploy", endpoint="ml/absent")


# --- launch -------------------------------------------------------------------------------------------------


async def test_launch_shows_the_ranks_and_pins_them(tmp_path: Path) -> None:
    w = world(tmp_path)
    spec = LaunchSpec("ml", "new", "pytorch:24", workers=2, gpus_per_worker=4, gpu_model="H100")
    plan = w.ops.plan("launch", **launch_args(spec))
    assert plan.ok, plan.blockers
    launch = plan.detail
    assert isinstance(launch, LaunchPlan)
    nodes = launch.placement.nodes  # type: ignore[union-attr]
    assert len(nodes) == 2
    assert "→" in dict(plan.lines)["Placement"]
    result = await w.ops.execute(plan)
    assert result.ok
    [(_, sent)] = w.fleet.calls
    assert isinstance(sent, LaunchSpec) and sent.placement == nodes and sent.name == "new"
    assert w.lines()[-1]["params"]["placement"] == list(nodes)  # type: ignore[index]


async def test_launch_refuses_a_taken_name_and_stale_placement(tmp_path: Path) -> None:
    w = world(tmp_path)
    taken = w.ops.plan("launch", **launch_args(LaunchSpec("ml", "train", "img", 1, 1)))
    assert "A job named ml/train already exists." in taken.blockers
    plan = w.ops.plan("launch", **launch_args(LaunchSpec("ml", "big", "img", 1, 8, gpu_model="H100")))
    assert plan.ok
    target = plan.params["placement"][0]
    w.fleet.nodes[target] = replace(w.fleet.nodes[target], gpus_requested=8)
    with pytest.raises(ActionRefused, match="no longer have room"):
        await w.ops.execute(plan)
    assert w.fleet.calls == []


# --- on the embedded fleet ----------------------------------------------------------------------------


async def sim_ops(tmp_path: Path, role: Role = Role.ADMIN) -> tuple[Ops, Poller]:
    from aios_tui.sources.sim import SimSource

    now = [1_700_000_000.0]
    poller = Poller([SimSource(seed=7, nodes=24, clock=lambda: now[0], start=now[0])])
    await poller.refresh()
    ops = Ops(
        dict(poller.sources),
        lambda: poller.snapshot,
        AuditLog(tmp_path / "audit.jsonl"),
        actor=Actor("alice", role),
        pdb_retry_s=0.001,
    )
    return ops, poller


async def test_a_launch_on_the_sim_lands_where_planned(tmp_path: Path) -> None:
    ops, poller = await sim_ops(tmp_path)
    plan = ops.plan(
        "launch", **launch_args(LaunchSpec("ml", "pinned", "pytorch:24", workers=2, gpus_per_worker=2))
    )
    assert plan.ok, plan.blockers
    planned = plan.params["placement"]
    assert (await ops.execute(plan)).ok
    snap = await poller.refresh()
    assert snap.job_by_key["ml/pinned"].placement == planned
    await poller.stop()


async def test_a_drain_on_the_sim_empties_the_node(tmp_path: Path) -> None:
    ops, poller = await sim_ops(tmp_path)
    snap = poller.snapshot
    busy = max(snap.nodes, key=lambda n: (n.schedulable, n.gpus_requested))
    plan = ops.plan(
        "drain", nodes=[busy.name], allow_empty_dir=True, allow_unmanaged=True, pdb_timeout_s=0.05
    )
    if not plan.ok:
        pytest.skip(f"no capacity to drain {busy.name} in this fleet: {plan.blockers}")
    result = await ops.execute(plan, confirmation=plan.confirm_phrase)
    snap = await poller.refresh()
    left = {p.key for p in snap.pods_by_node.get(busy.name, ()) if p.owner_kind != "DaemonSet"}
    assert snap.node_by_name[busy.name].cordoned
    not_done = {s.split(" ")[1] for s in result.not_done}
    assert left <= not_done, (left, result.message)
    await poller.stop()
