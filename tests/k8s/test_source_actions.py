"""Actions on Kubernetes through ``aios_tui.ops.Ops``, with the same plans as on the embedded fleet, carried
out by the real client against `FakeApiServer`; and permissions (SelfSubjectAccessReview, 403, read-only)."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest

from aios_tui.domain import FleetSnapshot, JobState
from aios_tui.ops import ActionRefused, Actor, AuditLog, Ops, PermissionDenied, Role
from aios_tui.poll import Poller
from aios_tui.sources.base import EvictionBlocked, LaunchSpec, SourceError
from aios_tui.sources.kubernetes import KubernetesSource
from tests.actions import launch_args
from tests.k8s.apiserver import FakeApiServer
from tests.k8s.test_source import make_source

SERVE = "ml-prod/llm-serve"
H100 = "ip-10-0-1-11.ec2.internal"
DRAINED = "gpu-node-3"
MOVED = ("default/gpu-train-574c74bbd5-985f2", "default/gpu-train-574c74bbd5-ksgmd")


@dataclass
class World:
    server: FakeApiServer
    source: KubernetesSource
    poller: Poller
    ops: Ops

    async def settle(self, check: Callable[[FleetSnapshot], bool]) -> FleetSnapshot:
        deadline = time.monotonic() + 5.0
        while True:
            snap = await self.poller.refresh()
            if check(snap):
                return snap
            assert time.monotonic() < deadline, "the change never reached the snapshot"


async def make_world(server: FakeApiServer, kubeconfig: Path, audit: Path, **settings: Any) -> World:
    source = make_source(kubeconfig, **settings)
    poller = Poller([source])
    await poller.refresh()
    ops = Ops(
        poller.sources,
        lambda: poller.snapshot,
        AuditLog(audit),
        actor=Actor("alice", Role.ADMIN),
        after_action=poller.poke,
        pdb_retry_s=0.05,
    )
    return World(server, source, poller, ops)


@pytest.fixture
async def world(apiserver: FakeApiServer, kubeconfig: Path, tmp_path: Path) -> AsyncIterator[World]:
    w = await make_world(apiserver, kubeconfig, tmp_path / "audit.jsonl")
    yield w
    await w.poller.stop()


def reviewed(source: KubernetesSource, action: str, target: str | None) -> None:
    """Wait until a background access review answered for ``action`` (they start after the first lists)."""
    deadline = time.monotonic() + 5.0
    while not source.permission_known(action, target):
        assert time.monotonic() < deadline, "no access review was made"
        time.sleep(0.02)


def patches(server: FakeApiServer, path: str) -> int:
    return sum(1 for method, p in server.requests if method == "PATCH" and p.split("?")[0] == path)


# --- scale, redeploy ---------------------------------------------------------------------------------------


async def test_scale_through_the_scale_subresource(world: World) -> None:
    plan = world.ops.plan("scale", endpoint=SERVE, replicas=5)
    assert plan.ok and plan.source == "k8s:test"
    result = await world.ops.execute(plan, confirmation=plan.confirm_phrase)
    assert result.ok, result.message
    deployment = world.server.get("Deployment", "ml-prod", "llm-serve")
    assert deployment is not None and deployment["spec"]["replicas"] == 5
    assert patches(world.server, "/apis/apps/v1/namespaces/ml-prod/deployments/llm-serve/scale") == 1
    await world.settle(lambda s: s.endpoint_by_key[SERVE].replicas_desired == 5)


async def test_redeploy_restarts_and_changes_the_image(world: World) -> None:
    plan = world.ops.plan("redeploy", endpoint=SERVE)
    assert (await world.ops.execute(plan, confirmation=plan.confirm_phrase)).ok
    deployment = world.server.get("Deployment", "ml-prod", "llm-serve")
    assert deployment is not None
    assert "kubectl.kubernetes.io/restartedAt" in deployment["spec"]["template"]["metadata"]["annotations"]
    plan = world.ops.plan("redeploy", endpoint=SERVE, image="vllm/vllm-openai:v0.9.1")
    result = await world.ops.execute(plan, confirmation=plan.confirm_phrase)
    assert result.ok, result.message
    deployment = world.server.get("Deployment", "ml-prod", "llm-serve")
    assert deployment is not None
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert container["image"] == "vllm/vllm-openai:v0.9.1"
    assert container["ports"] == [{"containerPort": 8000, "protocol": "TCP"}]  # the rest of it kept
    await world.settle(lambda s: s.endpoint_by_key[SERVE].image == "vllm/vllm-openai:v0.9.1")


# --- nodes -------------------------------------------------------------------------------------------------


async def test_cordon_and_uncordon(world: World) -> None:
    result = await world.ops.execute(world.ops.plan("cordon", nodes=[H100]))
    assert result.ok, result.message
    node = world.server.get("Node", "", H100)
    assert node is not None and node["spec"]["unschedulable"] is True
    # The change is ours in the node's managedFields, so every console says who cordoned it.
    managed = node["metadata"]["managedFields"]
    [entry] = [e for e in managed if "f:unschedulable" in e["fieldsV1"].get("f:spec", {})]
    assert entry["manager"] == "aios-tui"
    snap = await world.settle(lambda s: s.node_by_name[H100].cordoned)
    assert snap.node_by_name[H100].cordoned_by == "aios-tui"
    assert (await world.ops.execute(world.ops.plan("uncordon", nodes=[H100]))).ok
    node = world.server.get("Node", "", H100)
    assert node is not None and not node["spec"].get("unschedulable")
    await world.settle(lambda s: not s.node_by_name[H100].cordoned)


async def test_drain_evicts_through_the_eviction_api(world: World) -> None:
    plan = world.ops.plan("drain", nodes=[DRAINED])
    assert plan.ok, plan.blockers
    result = await world.ops.execute(plan)
    assert result.ok, result.message
    for key in MOVED:
        namespace, name = key.split("/")
        assert world.server.get("Pod", namespace, name) is None
        assert ("POST", f"/api/v1/namespaces/{namespace}/pods/{name}/eviction") in world.server.requests
    await world.settle(
        lambda s: s.node_by_name[DRAINED].cordoned and not {p.key for p in s.pods} & set(MOVED)
    )


async def test_drain_reports_a_pdb_refusal_and_a_misconfigured_pdb(world: World) -> None:
    world.server.set_eviction(MOVED[0], 429)
    world.server.set_eviction(MOVED[1], 500)
    plan = world.ops.plan("drain", nodes=[DRAINED], pdb_timeout_s=0.2)
    lines: list[str] = []
    result = await world.ops.execute(plan, progress=lines.append)
    assert not result.ok
    assert any("waiting for PodDisruptionBudget" in line and "(429)" in line for line in lines)
    assert "still allows no disruption after 0.2 s" in result.message
    assert any("misconfigured PodDisruptionBudget" in step for step in result.not_done)
    assert world.server.get("Pod", "default", MOVED[0].split("/")[1]) is not None


async def test_evict_answers(world: World) -> None:
    world.server.set_eviction("ml-prod/llm-serve-c7b59b455-fwlz8", 429)
    with pytest.raises(EvictionBlocked) as blocked:
        await world.source.evict_pod("ml-prod", "llm-serve-c7b59b455-fwlz8")
    assert blocked.value.pdb == "ml-prod/llm-serve"
    assert "Cannot evict pod as it would violate the pod's disruption budget." in str(blocked.value)
    assert "needs 3 healthy pods and has 1 currently" in str(blocked.value)
    await world.source.evict_pod_dry_run("ml-prod", "debug-shell")  # 201, and nothing changes
    assert world.server.get("Pod", "ml-prod", "debug-shell") is not None
    await world.source.evict_pod("ml-prod", "debug-shell")
    assert world.server.get("Pod", "ml-prod", "debug-shell") is None
    with pytest.raises(SourceError, match=r"pod ml-prod/debug-shell not found \(already gone\)"):
        await world.source.evict_pod("ml-prod", "debug-shell")


# --- launch ------------------------------------------------------------------------------------------------


async def test_launch_an_indexed_job_pinned_to_the_planned_nodes(world: World) -> None:
    world.server.run_job_controller()
    plan = world.ops.plan(
        "launch", **launch_args(LaunchSpec("research", "probe", "nvcr.io/nvidia/pytorch:24.08-py3", 1, 4))
    )
    assert plan.ok, plan.blockers
    assert plan.params["placement"] == (DRAINED,)
    result = await world.ops.execute(plan)
    assert result.ok, result.message
    job = world.server.get("Job", "research", "probe")
    assert job is not None
    spec = job["spec"]
    assert (spec["completionMode"], spec["parallelism"], spec["completions"]) == ("Indexed", 1, 1)
    pod = spec["template"]["spec"]
    assert pod["containers"][0]["resources"]["limits"] == {"nvidia.com/gpu": "4"}
    terms = pod["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"][
        "nodeSelectorTerms"
    ]
    assert terms == [
        {"matchExpressions": [{"key": "kubernetes.io/hostname", "operator": "In", "values": [DRAINED]}]}
    ]
    assert "podAntiAffinity" not in pod["affinity"]  # 4 of 8 GPUs: ranks may share a node
    snap = await world.settle(lambda s: "research/probe" in s.job_by_key)
    assert snap.job_by_key["research/probe"].state in (JobState.STARTING, JobState.QUEUED)


def test_whole_node_workers_get_one_pod_per_node(world: World) -> None:
    spec = LaunchSpec("ml", "big", "img", 2, 8, placement=("gpu-node-1", "gpu-node-2"))
    affinity = world.source.job_manifest(spec)["spec"]["template"]["spec"]["affinity"]
    anti = affinity["podAntiAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    assert anti == [
        {"labelSelector": {"matchLabels": {"job-name": "big"}}, "topologyKey": "kubernetes.io/hostname"}
    ]


async def test_launch_hands_the_job_to_kueue_when_configured(
    apiserver: FakeApiServer, kubeconfig: Path, tmp_path: Path
) -> None:
    w = await make_world(apiserver, kubeconfig, tmp_path / "audit.jsonl", kueue_queue="research")
    try:
        plan = w.ops.plan("launch", **launch_args(LaunchSpec("research", "queued", "img", 1, 4)))
        assert (await w.ops.execute(plan)).ok
        job = apiserver.get("Job", "research", "queued")
        assert job is not None
        assert job["metadata"]["labels"]["kueue.x-k8s.io/queue-name"] == "research"
        assert job["spec"]["suspend"] is True and "affinity" not in job["spec"]["template"]["spec"]
        snap = await w.settle(lambda s: "research/queued" in s.job_by_key)
        queued = snap.job_by_key["research/queued"]
        assert (queued.state, queued.queue) == (JobState.QUEUED, "research")
    finally:
        await w.poller.stop()


# --- permissions -------------------------------------------------------------------------------------------


async def test_an_action_rbac_forbids_is_unavailable_with_its_reason(
    apiserver: FakeApiServer, kubeconfig: Path, tmp_path: Path
) -> None:
    apiserver.deny("patch", "deployments", "scale", "ml-prod")
    w = await make_world(apiserver, kubeconfig, tmp_path / "audit.jsonl")
    try:
        reviewed(w.source, "scale", SERVE)
        reason = f"you may not scale {SERVE} in k8s:test: RBAC denies patch on deployments/scale in ml-prod"
        assert w.source.permission("scale", SERVE) == reason
        assert w.ops.check("scale", SERVE) == reason
        assert w.ops.check("redeploy", SERVE) is None  # only the scale subresource is denied
        plan = w.ops.plan("scale", endpoint=SERVE, replicas=4)
        assert reason in plan.blockers
        with pytest.raises(ActionRefused, match="RBAC denies patch on deployments/scale"):
            await w.ops.execute(plan, confirmation=plan.confirm_phrase)
        assert ("POST", "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews") in apiserver.requests
    finally:
        await w.poller.stop()


async def test_a_403_at_run_time_is_reported_plainly(world: World) -> None:
    reviewed(world.source, "scale", SERVE)
    plan = world.ops.plan("scale", endpoint=SERVE, replicas=4)
    assert plan.ok  # allowed when planned ...
    world.server.deny("patch", "deployments", "scale", "ml-prod")  # ... and not any more
    result = await world.ops.execute(plan, confirmation=plan.confirm_phrase)
    assert not result.ok
    assert result.message.endswith(
        "failed: forbidden: RBAC: user system:serviceaccount:default:tester may not patch deployments/scale "
        "in namespace ml-prod"
    )
    with pytest.raises(SourceError, match=r"^forbidden: RBAC: user \S+ may not patch deployments/scale in"):
        await world.source.scale_endpoint("ml-prod", "llm-serve", 4)


async def test_expired_credentials_on_an_action(world: World) -> None:
    world.server.expire_token()
    with pytest.raises(SourceError, match=r"credentials expired or invalid \(401 Unauthorized\)"):
        await world.source.set_cordon(H100, True)


async def test_a_read_only_context_refuses_every_action(
    apiserver: FakeApiServer, kubeconfig: Path, tmp_path: Path
) -> None:
    w = await make_world(apiserver, kubeconfig, tmp_path / "audit.jsonl", read_only_contexts=("test",))
    try:
        assert w.source.read_only
        reason = w.ops.check("cordon", H100)
        assert reason is not None and "read-only" in reason
        assert w.ops.check("launch") is not None
        plan = w.ops.plan("cordon", nodes=[H100])
        with pytest.raises((ActionRefused, PermissionDenied), match="read-only"):
            await w.ops.execute(plan)
        node = apiserver.get("Node", "", H100)
        assert node is not None and not node["spec"].get("unschedulable")
    finally:
        await w.poller.stop()


async def test_drain_preview_asks_the_server_for_a_dry_run_and_changes_nothing(world: World) -> None:
    plan = world.ops.plan("drain", nodes=[DRAINED])
    drain = plan.detail
    assert drain is not None and drain.evict
    refused = drain.evict[0].pod
    world.server.set_eviction(refused, 429)
    before = {p["metadata"]["name"] for p in world.server.list("pods")}
    lines = await world.ops.verify(plan)
    assert lines[0].startswith(f"server dry run: 1 of {len(drain.evict)} evictions would be refused now")
    assert refused in lines[1] and "refused now" in lines[1]
    assert {p["metadata"]["name"] for p in world.server.list("pods")} == before  # dryRun=All: nothing evicted
    world.server.set_eviction(refused, 201)
    assert (await world.ops.verify(plan))[0].startswith("server dry run: all ")


# --- plans that follow the real Job semantics and priority (issue 12) --------------------------------------


def _gang(backoff_limit: int | None) -> list[dict[str, Any]]:
    """A 2-rank Indexed Job in ``ml`` (as captured from kube-apiserver: gang-scheduling/job_gang-00) with
    both ranks running on the drained node."""
    spec: dict[str, Any] = {
        "parallelism": 2,
        "completions": 2,
        "completionMode": "Indexed",
        "template": {
            "metadata": {"labels": {"job-name": "gang"}},
            "spec": {
                "restartPolicy": "Never",
                "containers": [
                    {"name": "t", "image": "img", "resources": {"limits": {"nvidia.com/gpu": "1"}}}
                ],
            },
        },
    }
    if backoff_limit is not None:
        spec["backoffLimit"] = backoff_limit
    uid = "647ea366-a02e-445c-8c1a-8cd5ad9e9f2a"
    job = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": "gang", "namespace": "ml", "uid": uid, "labels": {"job-name": "gang"}},
        "spec": spec,
        "status": {"active": 2, "startTime": "2026-12-05T20:47:03Z"},
    }
    owner = {"apiVersion": "batch/v1", "kind": "Job", "name": "gang", "uid": uid, "controller": True}
    pods = [
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": f"gang-{i}-x",
                "namespace": "ml",
                "labels": {"job-name": "gang", "batch.kubernetes.io/job-completion-index": str(i)},
                "ownerReferences": [owner],
            },
            "spec": {
                "nodeName": DRAINED,
                "containers": [
                    {"name": "t", "image": "img", "resources": {"limits": {"nvidia.com/gpu": "1"}}}
                ],
            },
            "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]},
        }
        for i in range(2)
    ]
    return [job, *pods]


@pytest.mark.parametrize(
    ("backoff_limit", "then"),
    [
        (0, "fails, not restarted (backoffLimit 0 reached: BackoffLimitExceeded)"),
        (None, "restarts"),  # Kubernetes' default backoffLimit 6: 5 retries left after this eviction
    ],
)
async def test_a_drain_plan_says_what_the_job_controller_will_do(
    world: World, backoff_limit: int | None, then: str
) -> None:
    for obj in _gang(backoff_limit):
        world.server.apply(obj)
    snap = await world.settle(
        lambda s: len(s.pods_by_owner.get("ml/gang", ())) == 2 and "ml/gang" in s.job_by_key
    )  # pods and the Job come on watches of their own
    assert snap.job_by_key["ml/gang"].backoff_limit == (6 if backoff_limit is None else 0)
    plan = world.ops.plan("drain", nodes=[DRAINED])
    line = dict(plan.lines)["Gang ml/gang"]
    assert line.startswith(f"2 of 2 ranks on these nodes; gang of 2 GPUs {then}"), line
    warned = [w for w in plan.warnings if w.startswith("ml/gang fails, not restarted")]
    if backoff_limit == 0:
        assert warned == [
            "ml/gang fails, not restarted (backoffLimit 0 reached: BackoffLimitExceeded): "
            "this drain ends the 2-GPU job."
        ]
    else:
        assert "restarts: 4 of 6 retries left" in line and warned == []


async def test_a_launch_with_a_priority_class_names_it_in_the_job(world: World) -> None:
    world.server.run_job_controller()
    world.server.apply(
        {
            "apiVersion": "scheduling.k8s.io/v1",
            "kind": "PriorityClass",
            "metadata": {"name": "research-high"},
            "value": 1000,
        }
    )
    spec = LaunchSpec("research", "prio", "img", 1, 4)
    reviewed(world.source, "launch", "research/prio")
    plan = world.ops.plan("launch", **launch_args(spec), priority_class="research-high")
    assert plan.ok, plan.blockers
    assert (await world.ops.execute(plan)).ok
    job = world.server.get("Job", "research", "prio")
    assert job is not None and job["spec"]["template"]["spec"]["priorityClassName"] == "research-high"
    numbered = world.ops.plan("launch", **launch_args(replace(spec, name="numbered", priority=100)))
    assert any(b.startswith("Priority 100 cannot reach the Job") for b in numbered.blockers)


async def test_a_launch_naming_a_missing_priority_class_creates_nothing(world: World) -> None:
    spec = LaunchSpec("research", "typo", "img", 1, 4, priority_class="reserch-high")
    with pytest.raises(SourceError, match="no PriorityClass named reserch-high on this cluster"):
        await world.source.launch_job(spec)
    assert world.server.get("Job", "research", "typo") is None


async def test_each_rank_goes_to_its_planned_node_when_workers_share_nodes(world: World) -> None:
    """Three ranks planned as (gpu-node-3, gpu-node-3, gpu-node-1): the template can only name the set of
    nodes, so the pods are created gated and each gets its rank's node before all are released. (Not the
    H100 node: its 8 GPUs are in use, and the launch's re-check would rightly queue the gang.)"""
    world.server.run_job_controller()
    placement = (DRAINED, DRAINED, "gpu-node-1")
    spec = LaunchSpec("research", "ranks", "img", 3, 2, placement=placement)
    assert world.source.job_manifest(spec)["spec"]["template"]["spec"]["schedulingGates"] == [
        {"name": "aios-tui.dev/rank-placement"}
    ]
    await world.source.launch_job(spec)
    pods = {
        int(p["metadata"]["labels"]["batch.kubernetes.io/job-completion-index"]): p["spec"]
        for p in world.server.list("pods", "research")
        if p["metadata"]["labels"].get("job-name") == "ranks"
    }
    assert {i: s["nodeSelector"] for i, s in pods.items()} == {
        i: {"kubernetes.io/hostname": node} for i, node in enumerate(placement)
    }
    assert all(s["schedulingGates"] == [] for s in pods.values())


async def test_a_pinned_launch_whose_pods_never_appear_says_so(world: World) -> None:
    world.source.PIN_WAIT_S = 0.5  # type: ignore[misc]  # no Job controller here: nothing makes the pods
    spec = LaunchSpec("research", "stuck", "img", 1, 4, placement=(DRAINED,))
    with pytest.raises(SourceError, match=r"only 0 of 1 pods appeared within 0\.5s; they wait, gated"):
        await world.source.launch_job(spec)
    assert world.server.get("Job", "research", "stuck") is not None
