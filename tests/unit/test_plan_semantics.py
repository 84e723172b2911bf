"""Plans that follow what the controllers really do (issue 12): a Job's backoffLimit, podFailurePolicy,
JobSet and Kueue decide whether a drained gang restarts; a Deployment's or StatefulSet's strategy decides a
redeploy's surge; a launch's priority reaches the Job as a PriorityClass; waits and domains read cleanly.

Jobs come from objects captured from a real kube-apiserver (tests/fixtures/kubernetes) and hand-made
variants of them, read by the same converter the Kubernetes source uses.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from aios_tui.alloc.drain import Fate, JobFate, job_fate, plan_drain
from aios_tui.alloc.placement import Capacity, GangRequest, Placement
from aios_tui.domain import Endpoint, FleetSnapshot, Job, JobState, Node, Pod, PodPhase
from aios_tui.ops import Actor, AuditLog, Ops, Role
from aios_tui.ops.actions.drain import _seconds
from aios_tui.ops.actions.redeploy import rollout_step
from aios_tui.sources._k8s_convert import build_endpoint, build_job, convert_deployment, convert_job
from aios_tui.sources.base import LaunchSpec, SourceData
from tests.actions import launch_args

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "kubernetes"
GPU = ("nvidia.com/gpu",)


def _fixture(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / f"{name}.json").read_text())  # in the repository: CI has it
    return data


def captured_job(name: str = "jobs-list") -> dict[str, Any]:
    """The training Job of a captured answer: ``jobs-list`` (a list) or ``gang-scheduling/job_gang-…``."""
    data = _fixture(name)
    body = data.get("response") or data.get("body")
    assert isinstance(body, dict)
    obj = body["items"][0] if "items" in body else body
    return copy.deepcopy(obj)


def job_of(obj: Mapping[str, Any]) -> Job:
    return build_job(convert_job(obj, gpu_names=GPU), (), {}, source="k8s")


def variant(*, labels: Mapping[str, str] | None = None, **spec: Any) -> dict[str, Any]:
    """The captured gang job (backoffLimit 0, no Kueue) with ``spec`` fields changed (None removes one)."""
    obj = captured_job("gang-scheduling/job_gang-00_running")
    for key, value in spec.items():
        if key == "failed":
            obj["status"]["failed"] = value
        elif key == "template":
            obj["spec"]["template"]["spec"]["restartPolicy"] = value
        elif value is None:
            obj["spec"].pop(key, None)
        else:
            obj["spec"][key] = value
    obj["metadata"]["labels"].update(labels or {})
    return obj


def _disruption(action: str) -> dict[str, Any]:
    return {"rules": [{"action": action, "onPodConditions": [{"type": "DisruptionTarget"}]}]}


# --- what a Job's controller does after an eviction -----------------------------------------------------


def test_the_captured_gang_with_backoff_limit_zero_fails() -> None:
    job = job_of(captured_job("gang-scheduling/job_gang-00_running"))
    assert (job.backoff_limit, job.failed_pods, job.disruption_action, job.queue) == (0, 0, "", "")
    assert job_fate(job, 1) == JobFate(
        Fate.FAILS, "fails, not restarted (backoffLimit 0 reached: BackoffLimitExceeded)"
    )


def test_a_kueue_job_that_fails_is_not_requeued() -> None:
    job = job_of(captured_job())  # train-llama-70b: Kueue queue "research", backoffLimit 0
    assert job.queue == "research"
    assert job_fate(job, 1) == JobFate(
        Fate.FAILS,
        "fails, not restarted (backoffLimit 0 reached: BackoffLimitExceeded); "
        "Kueue does not requeue a failed Job",
    )


@pytest.mark.parametrize(
    ("changes", "evicted", "expected"),
    [
        # backoffLimit left out: Kubernetes' default 6; 3 failed so far, 1 evicted now
        ({"backoffLimit": None, "failed": 3}, 1, JobFate(Fate.RESTARTS, "restarts: 2 of 6 retries left")),
        (
            {"backoffLimit": 2, "failed": 1},
            2,
            JobFate(Fate.FAILS, "fails, not restarted (backoffLimit 2 reached: BackoffLimitExceeded)"),
        ),
        ({"backoffLimit": 2, "failed": 1}, 1, JobFate(Fate.RESTARTS, "restarts: 0 of 2 retries left")),
        (
            {"podFailurePolicy": _disruption("Ignore")},
            4,
            JobFate(
                Fate.RESTARTS, "restarts: evictions not counted (podFailurePolicy Ignore on DisruptionTarget)"
            ),
        ),
        (
            {"backoffLimit": 6, "podFailurePolicy": _disruption("FailJob")},
            1,
            JobFate(
                Fate.FAILS,
                "fails, not restarted (podFailurePolicy FailJob on DisruptionTarget: PodFailurePolicy)",
            ),
        ),
        (  # an action added to the API after this console: said, not guessed
            {"backoffLimit": 6, "podFailurePolicy": _disruption("Requeue")},
            1,
            JobFate(Fate.UNKNOWN, "unknown: podFailurePolicy Requeue on DisruptionTarget"),
        ),
        (
            {"backoffLimit": 0, "podFailurePolicy": _disruption("Count")},
            1,
            JobFate(Fate.FAILS, "fails, not restarted (backoffLimit 0 reached: BackoffLimitExceeded)"),
        ),
        (
            {"backoffLimitPerIndex": 0},
            1,
            JobFate(Fate.FAILS, "fails, not restarted (backoffLimitPerIndex 0 reached: FailedIndexes)"),
        ),
        ({"backoffLimitPerIndex": 3}, 1, JobFate(Fate.RESTARTS, "restarts: up to 3 retries per index")),
        (
            {"backoffLimit": 4, "template": "OnFailure"},
            1,
            JobFate(Fate.RESTARTS, "restarts: at most 3 of 4 retries left"),  # container restarts count too
        ),
    ],
)
def test_restart_semantics_read_from_the_job(
    changes: dict[str, Any], evicted: int, expected: JobFate
) -> None:
    assert job_fate(job_of(variant(**changes)), evicted) == expected


def test_an_exit_code_rule_does_not_decide_an_eviction() -> None:
    policy = {
        "rules": [
            {"action": "FailJob", "onExitCodes": {"operator": "In", "values": [42]}},
            {"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget", "status": "True"}]},
        ]
    }
    job = job_of(variant(podFailurePolicy=policy))
    assert job.disruption_action == "Ignore"
    assert job_fate(job, 1).fate is Fate.RESTARTS


def test_kueue_requeues_and_a_jobset_child_is_unknown() -> None:
    kueue = job_of(variant(backoffLimit=None, labels={"kueue.x-k8s.io/queue-name": "research"}))
    assert job_fate(kueue, 1) == JobFate(Fate.REQUEUED, "requeued by Kueue (queue research)")
    child = job_of(variant(labels={"jobset.sigs.k8s.io/jobset-name": "pretrain"}))
    assert child.jobset == "pretrain"
    assert job_fate(child, 1) == JobFate(
        Fate.UNKNOWN, "unknown: managed by JobSet pretrain (its failurePolicy decides)"
    )


# --- the drain plan -----------------------------------------------------------------------------------------


def _node(name: str, rack: str, requested: int = 0, zone: str = "z1") -> Node:
    return Node(
        name=name,
        source="fake",
        pool="h100",
        zone=zone,
        instance_type="p5.48xlarge",
        gpu_model="H100",
        gpus_total=8,
        gpus_allocatable=8,
        gpus_requested=requested,
        rack=rack,
    )


def _gang_fleet(job: Job) -> FleetSnapshot:
    """A 2×8 gang on a1, a2 (rack a); rack b free: with a1 drained, only rack b holds it again."""
    job = replace(
        job,
        namespace="ml",
        name="train",
        source="fake",
        workers=2,
        gpus_per_worker=8,
        gpu_model="H100",
        state=JobState.RUNNING,
        placement=("a1", "a2"),
        started_at=100.0,
    )
    pods = tuple(
        Pod(
            "ml",
            f"train-{i}",
            n,
            PodPhase.RUNNING,
            gpus=8,
            owner_kind="Job",
            owner="ml/train",
            ready=True,
            rank=i,
            source="fake",
        )
        for i, n in enumerate(("a1", "a2"))
    )
    nodes = (_node("a1", "a", 8), _node("a2", "a", 8), _node("b1", "b"), _node("b2", "b"))
    return FleetSnapshot(timestamp=1000.0, nodes=nodes, pods=pods, jobs=(job,))


class _Fake:
    name = kind = "fake"
    interval = timeout = 1.0

    def __init__(self, snap: FleetSnapshot) -> None:
        self.snap = snap
        self.evicted: list[str] = []

    async def fetch(self) -> SourceData:
        return SourceData(nodes=self.snap.nodes, pods=self.snap.pods, jobs=self.snap.jobs)

    async def close(self) -> None:
        pass

    async def set_cordon(self, node: str, cordoned: bool) -> None:
        pass

    async def evict_pod(self, namespace: str, name: str) -> None:
        self.evicted.append(f"{namespace}/{name}")

    async def redeploy_endpoint(self, namespace: str, name: str, image: str | None = None) -> None:
        pass

    async def launch_job(self, spec: LaunchSpec) -> None:
        self.launched = spec


class _Named(_Fake):
    """A launcher whose priorities are named classes, as Kubernetes'."""

    classes: Mapping[str, int] | None = None

    def priority_classes(self) -> Mapping[str, int] | None:
        return self.classes


def _ops(snap: FleetSnapshot, tmp_path: Path, fake: _Fake | None = None) -> Ops:
    source = fake or _Fake(snap)
    return Ops(
        {"fake": source}, lambda: snap, AuditLog(tmp_path / "audit.jsonl"), actor=Actor("a", Role.ADMIN)
    )


def test_a_gang_that_will_fail_gets_no_restart_and_the_plan_warns(tmp_path: Path) -> None:
    snap = _gang_fleet(job_of(captured_job("gang-scheduling/job_gang-00_running")))
    dp = plan_drain(snap, ["a1"])
    (gang,) = dp.gangs
    assert gang.fate.fate is Fate.FAILS and gang.replacement is None
    assert [m.to for m in dp.evict] == [""]  # the rank goes nowhere: nothing restarts
    plan = _ops(snap, tmp_path).plan("drain", nodes=["a1"])
    assert dict(plan.lines)["Gang ml/train"] == (
        "1 of 2 ranks on these nodes; gang of 16 GPUs fails, not restarted "
        "(backoffLimit 0 reached: BackoffLimitExceeded); 4.0 GPU-hours at risk"
    )
    assert plan.warnings == (
        "ml/train fails, not restarted (backoffLimit 0 reached: BackoffLimitExceeded): "
        "this drain ends the 16-GPU job.",
    )
    assert plan.confirm_phrase == "a1"  # ending a job is typed, not just pressed


def test_a_gang_with_retries_left_restarts_where_it_fits(tmp_path: Path) -> None:
    snap = _gang_fleet(job_of(variant(backoffLimit=None)))
    dp = plan_drain(snap, ["a1"])
    (gang,) = dp.gangs
    assert isinstance(gang.replacement, Placement) and gang.replacement.domain == "rack b"
    plan = _ops(snap, tmp_path).plan("drain", nodes=["a1"])
    assert dict(plan.lines)["Gang ml/train"] == (
        "1 of 2 ranks on these nodes; gang of 16 GPUs restarts in rack b (5 of 6 retries left); "
        "4.0 GPU-hours at risk"
    )
    assert plan.warnings == () and plan.confirm_phrase is None


def test_a_jobset_child_is_a_warning_not_a_promise(tmp_path: Path) -> None:
    snap = _gang_fleet(job_of(variant(labels={"jobset.sigs.k8s.io/jobset-name": "pretrain"})))
    plan = _ops(snap, tmp_path).plan("drain", nodes=["a1"])
    assert plan.detail.gangs[0].replacement is None
    assert plan.warnings == (
        "ml/train: what happens after the eviction is unknown: managed by JobSet pretrain "
        "(its failurePolicy decides).",
    )


# --- redeploy: the object's strategy ----------------------------------------------------------------------


def _deployment(**strategy: Any) -> dict[str, Any]:
    data = _fixture("deployments-list")
    obj: dict[str, Any] = copy.deepcopy(data["response"]["items"][0])
    obj["spec"]["strategy"] = strategy
    return obj


def _endpoint(obj: Mapping[str, Any], replicas: int, kind: str = "Deployment") -> Endpoint:
    rec = convert_deployment(obj, kind=kind, gpu_names=GPU)
    return replace(build_endpoint(rec, None, source="k8s"), replicas_desired=replicas)


def test_the_deployment_strategy_sets_the_surge() -> None:
    given = _deployment(type="RollingUpdate", rollingUpdate={"maxSurge": 1, "maxUnavailable": 0})
    assert rollout_step(_endpoint(given, 8)) == (1, 0)
    assert rollout_step(_endpoint(_deployment(), 8)) == (2, 2)  # 25 % defaults
    assert rollout_step(_endpoint(_deployment(), 3)) == (1, 0)  # surge rounds up, unavailable down
    pct = _deployment(type="RollingUpdate", rollingUpdate={"maxSurge": "10%", "maxUnavailable": "10%"})
    assert rollout_step(_endpoint(pct, 4)) == (1, 0)
    zero = _deployment(type="RollingUpdate", rollingUpdate={"maxSurge": "0%", "maxUnavailable": "10%"})
    assert rollout_step(_endpoint(zero, 4)) == (0, 1)  # both 0: Kubernetes takes 1 unavailable
    assert rollout_step(_endpoint(_deployment(type="Recreate"), 5)) == (0, 5)


def test_statefulset_rolls_one_at_a_time_without_surge() -> None:
    obj = _deployment()
    del obj["spec"]["strategy"]
    obj["spec"]["updateStrategy"] = {"type": "RollingUpdate"}
    ep = _endpoint(obj, 4, kind="StatefulSet")
    assert (ep.workload_kind, ep.max_surge, ep.max_unavailable) == ("StatefulSet", "0", "1")
    assert rollout_step(ep) == (0, 1)


def test_the_redeploy_plan_uses_the_objects_strategy(tmp_path: Path) -> None:
    obj = _deployment(type="RollingUpdate", rollingUpdate={"maxSurge": 1, "maxUnavailable": 0})
    ep = replace(_endpoint(obj, 8), source="fake", gpus_per_replica=2, gpu_model="H100", replicas_ready=8)
    snap = FleetSnapshot(timestamp=1000.0, nodes=(_node("b1", "b"),), endpoints=(ep,))
    plan = _ops(snap, tmp_path).plan("redeploy", endpoint=ep.key)
    assert dict(plan.lines)["Rollout"] == "maxSurge 1, +2 × H100 while it rolls; maxUnavailable 0"
    snap = replace(snap, endpoints=(replace(ep, strategy="Recreate"),))
    plan = _ops(snap, tmp_path).plan("redeploy", endpoint=ep.key)
    assert dict(plan.lines)["Rollout"] == "Recreate: all 8 down, then all up"
    assert plan.warnings[0] == (
        "Recreate: all 8 replicas stop before the new ones start; "
        "ml-prod/llm-serve serves nothing in between."
    )


# --- numbers and labels for people ------------------------------------------------------------------------


def test_waits_are_rounded() -> None:
    assert [_seconds(s) for s in (4.93427, 5.0, 0.96, 0.05, 0.001)] == [
        "5 s",
        "5 s",
        "1 s",
        "0.05 s",
        "0.001 s",
    ]


def test_a_zone_without_a_name_is_not_printed() -> None:
    nodes = [_node(f"n{i}", rack="", zone="") for i in range(2)]
    cap = Capacity.from_snapshot(FleetSnapshot(timestamp=0.0, nodes=tuple(nodes)))
    placed = cap.place(GangRequest(2, 8, "H100"))
    assert isinstance(placed, Placement)
    assert (placed.domain, placed.where) == ("", "")


# --- launch: priority as the cluster takes it -------------------------------------------------------------


def _launch(tmp_path: Path, fake: _Fake, **args: Any) -> Any:
    spec = LaunchSpec("ml", "new", "img", 1, 8, gpu_model="H100", priority=args.pop("priority", 0))
    return _ops(fake.snap, tmp_path, fake).plan("launch", **launch_args(spec), **args)


def test_a_number_without_a_named_class_is_a_blocker(tmp_path: Path) -> None:
    fake = _Named(FleetSnapshot(timestamp=0.0, nodes=(_node("b1", "b"),)))
    plan = _launch(tmp_path, fake, priority=100)
    assert plan.blockers == (
        "Priority 100 cannot reach the Job: Kubernetes takes a PriorityClass name and the source does not "
        "know the cluster's PriorityClasses. Give --priority-class NAME instead (kubectl get priorityclasses "
        "lists them).",
    )
    fake.classes = {"research-high": 100, "batch-low": 10}
    plan = _launch(tmp_path, fake, priority=100)
    assert (
        plan.ok and dict(plan.lines)["Priority"] == "PriorityClass research-high (its value is the cluster's)"
    )
    assert plan.params["priority_class"] == "research-high"


async def test_a_named_class_reaches_the_launcher(tmp_path: Path) -> None:
    fake = _Named(FleetSnapshot(timestamp=0.0, nodes=(_node("b1", "b"),)))
    ops = _ops(fake.snap, tmp_path, fake)
    spec = LaunchSpec("ml", "new", "img", 1, 8, gpu_model="H100")
    plan = ops.plan("launch", **launch_args(spec), priority_class="research-high")
    assert plan.ok, plan.blockers
    assert dict(plan.lines)["Priority"] == "PriorityClass research-high (its value is the cluster's)"
    assert (await ops.execute(plan)).ok
    assert fake.launched.priority_class == "research-high"
    assert "No PriorityClass named" not in " ".join(plan.blockers)
    fake.classes = {"batch-low": 10}
    plan = ops.plan("launch", **launch_args(spec), priority_class="research-high")
    assert plan.blockers == ("No PriorityClass named research-high (the cluster has batch-low).",)
    plan = ops.plan("launch", **launch_args(spec), priority_class="Not_A_Name")
    assert plan.blockers == (
        "'Not_A_Name' is not a PriorityClass name (lowercase letters, digits, '-' and '.').",
    )


def test_a_class_name_where_priorities_are_numbers_is_a_blocker(tmp_path: Path) -> None:
    fake = _Fake(FleetSnapshot(timestamp=0.0, nodes=(_node("b1", "b"),)))
    assert _launch(tmp_path, fake, priority=100).ok  # a number reaches this source as it is
    plan = _launch(tmp_path, fake, priority_class="high")
    assert plan.blockers == ("fake has no PriorityClasses: give --priority N instead.",)


def test_the_domain_line_is_left_out_when_the_zone_has_no_name(tmp_path: Path) -> None:
    fake = _Fake(FleetSnapshot(timestamp=0.0, nodes=(_node("n1", "", zone=""), _node("n2", "", zone=""))))
    spec = LaunchSpec("ml", "new", "img", 2, 8, gpu_model="H100")
    plan = _ops(fake.snap, tmp_path, fake).plan("launch", **launch_args(spec))
    assert plan.ok and "Domain" not in dict(plan.lines)


def test_the_plan_screen_says_a_failing_gangs_ranks_are_not_replaced() -> None:
    from rich.console import Console

    from aios_tui.render.plans import drain_details

    snap = _gang_fleet(job_of(captured_job("gang-scheduling/job_gang-00_running")))
    console = Console(width=240, record=True, color_system=None)
    console.print(drain_details(plan_drain(snap, ["a1"])))
    text = console.export_text()
    assert "not replaced: fails, not restarted (backoffLimit 0 reached: BackoffLimitExceeded)" in text
    assert "rescheduled" not in text


def test_the_captured_deployment_strategy_is_read_as_given() -> None:
    data = _fixture("deployments-list")
    ep = _endpoint(data["response"]["items"][0], 3)  # llm-serve, as kube-apiserver defaults it: 25 % / 25 %
    assert (ep.strategy, ep.max_surge, ep.max_unavailable) == ("RollingUpdate", "25%", "25%")
    assert rollout_step(ep) == (1, 0)


@pytest.mark.parametrize("bad", ["lots", "25 %", -1, 1.5])
def test_a_malformed_surge_is_named(bad: object) -> None:
    from aios_tui.sources._k8s_convert import MalformedObject

    obj = _deployment(type="RollingUpdate", rollingUpdate={"maxSurge": bad})
    with pytest.raises(MalformedObject, match=r"spec\.strategy\.rollingUpdate\.maxSurge"):
        convert_deployment(obj, kind="Deployment", gpu_names=GPU)


def test_the_job_detail_says_what_an_eviction_does() -> None:
    from rich.console import Console

    from aios_tui.render.detail import job_detail

    job = replace(job_of(captured_job("gang-scheduling/job_gang-00_running")), state=JobState.RUNNING)
    snap = FleetSnapshot(timestamp=0.0, jobs=(job,))
    console = Console(width=200, record=True, color_system=None)
    console.print(job_detail(job, snap, 0.0, lambda *_: [], 120, False))
    line = next(x for x in console.export_text().splitlines() if "If a rank is evicted" in x)
    assert line.split("If a rank is evicted", 1)[1].strip() == (
        "fails, not restarted (backoffLimit 0 reached: BackoffLimitExceeded)"
    )


@pytest.mark.parametrize(
    ("changes", "evicted"),
    [
        ({"backoffLimit": None}, ["ml/train-0", "ml/train-1"]),  # the Job replaces one pod: evict each rank
        ({}, ["ml/train-0"]),  # backoffLimit 0: the Job fails and its controller ends the other rank
    ],
)
async def test_every_rank_is_evicted_unless_the_controller_ends_the_gang(
    tmp_path: Path, changes: dict[str, Any], evicted: list[str]
) -> None:
    snap = _gang_fleet(job_of(variant(**changes)))
    fake = _Fake(snap)
    ops = _ops(snap, tmp_path, fake)
    plan = ops.plan("drain", nodes=["a1", "a2"])
    result = await ops.execute(plan, confirmation=plan.confirm_phrase)
    assert result.ok, result.message
    assert fake.evicted == evicted
