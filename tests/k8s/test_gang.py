"""Gang launches that cannot collide (issue 12, item 4), against the test server's Job controller and its
minimal scheduler, through the real ``kubernetes`` client and the same ops path as the CLI.

The scene is the one recorded on a real v1.36 control plane (shared/fixtures/kubernetes/gang-scheduling):
16 empty nodes of 8 A100s. Twelve consoles, each with its own source, plan a 4×8 gang from the same view,
so all twelve plan the same four nodes, and launch at once. Without the cluster's gang scheduling the
launches reserve through one Lease (compare-and-swap on its resourceVersion) and re-plan; with it they pin
nothing and the scheduler places each PodGroup whole or not at all.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from aios_tui.domain import JobState
from aios_tui.sources._k8s_convert import MalformedObject, convert_podgroup
from aios_tui.sources.base import LaunchSpec
from tests.actions import launch_args
from tests.k8s.apiserver import FakeApiServer
from tests.k8s.test_source import make_source, wait_for
from tests.k8s.test_source_actions import World, make_world

NS = "trace"
PRODUCT = "NVIDIA-A100-SXM4-80GB"
NODES = [f"a100-{i:02d}" for i in range(16)]
INDEX = "batch.kubernetes.io/job-completion-index"


def a100_scene() -> list[dict[str, Any]]:
    """16 Ready nodes of 8 A100s in one zone, nothing running."""
    capacity = {"cpu": "96", "memory": "1Ti", "pods": "110", "nvidia.com/gpu": "8"}
    return [
        {
            "kind": "Node",
            "metadata": {
                "name": name,
                "labels": {
                    "kubernetes.io/hostname": name,
                    "topology.kubernetes.io/zone": "us-east-1a",
                    "nvidia.com/gpu.product": PRODUCT,
                },
            },
            "spec": {},
            "status": {
                "capacity": capacity,
                "allocatable": capacity,
                "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady"}],
            },
        }
        for name in NODES
    ]


async def consoles(server: FakeApiServer, tmp_path: Path, n: int) -> list[World]:
    kubeconfig = server.write_kubeconfig(tmp_path / "kubeconfig")
    return [await make_world(server, kubeconfig, tmp_path / f"audit-{i}.jsonl") for i in range(n)]


@pytest.fixture
def server() -> Iterator[FakeApiServer]:
    with FakeApiServer(a100_scene(), bookmark_interval=0.1) as s:
        s.run_job_controller()
        s.run_scheduler()
        yield s


@pytest.fixture
def gang_server() -> Iterator[FakeApiServer]:
    with FakeApiServer(a100_scene(), bookmark_interval=0.1, gang_scheduling=True) as s:
        s.run_job_controller()
        s.run_scheduler()
        yield s


def gangs(server: FakeApiServer) -> dict[str, list[dict[str, Any]]]:
    """Each job's live pods, in rank order."""
    out: dict[str, list[dict[str, Any]]] = {}
    for pod in server.list("pods", NS):
        out.setdefault(pod["metadata"]["labels"]["job-name"], []).append(pod)
    return {job: sorted(pods, key=lambda p: int(p["metadata"]["labels"][INDEX])) for job, pods in out.items()}


async def settle(server: FakeApiServer, check: Callable[[dict[str, list[dict[str, Any]]]], bool]) -> None:
    deadline = time.monotonic() + 10.0
    while not check(gangs(server)):
        assert time.monotonic() < deadline, f"never settled: {sorted(gangs(server))}"
        await asyncio.sleep(0.05)


def gpus_on_nodes(server: FakeApiServer) -> dict[str, int]:
    used: dict[str, int] = {}
    for pods in gangs(server).values():
        for pod in pods:
            node = pod["spec"].get("nodeName")
            if node:
                used[node] = used.get(node, 0) + 8
    return used


def finish(server: FakeApiServer, name: str) -> None:
    """The Job succeeds, as the Job controller records it, and its pods go."""
    job = server.get("Job", NS, name)
    assert job is not None
    done = {"type": "Complete", "status": "True", "reason": "CompletionsReached"}
    job["status"] = {"succeeded": 4, "conditions": [done], "completionTime": "2026-12-05T21:00:00Z"}
    server.apply(job)
    for pod in gangs(server)[name]:
        server.delete("Pod", NS, pod["metadata"]["name"])


async def launch_twelve(worlds: list[World], guarantee: str) -> list[Any]:
    plans = [
        w.ops.plan("launch", **launch_args(LaunchSpec(NS, f"gang-{i:02d}", "trainer:latest", 4, 8)))
        for i, w in enumerate(worlds)
    ]
    assert all(p.ok for p in plans), [p.blockers for p in plans]
    assert dict(plans[0].lines)["All or nothing"].startswith(guarantee)
    # Every console planned from the same view: the same four nodes, which is what used to collide.
    assert len({p.params["placement"] for p in plans}) == 1
    return list(await asyncio.gather(*(w.ops.execute(p) for w, p in zip(worlds, plans, strict=True))))


async def test_twelve_consoles_launching_at_once_start_the_four_that_fit_then_the_next_four(
    server: FakeApiServer, tmp_path: Path
) -> None:
    worlds = await consoles(server, tmp_path, 12)
    try:
        results = await launch_twelve(worlds, "GPUs reserved first (Lease aios-tui-gang-reservations")
        started = sorted(f"gang-{i:02d}" for i, r in enumerate(results) if r.ok)
        assert len(started) == 4, [r.message for r in results]
        for r in results:
            if not r.ok:
                assert "was created suspended, not started: 32 GPUs (4×8) not free now" in r.message
        await settle(
            server,
            lambda g: sorted(g) == started and all(p["spec"].get("nodeName") for j in started for p in g[j]),
        )
        reserved: set[str] = set()
        for name in started:
            job = server.get("Job", NS, name)
            assert job is not None
            nodes = job["metadata"]["annotations"]["aios-tui.dev/reserved-nodes"].split(",")
            # Each rank on the node its launch reserved, and no two launches reserved the same node.
            assert [p["spec"]["nodeName"] for p in gangs(server)[name]] == nodes
            assert not reserved & set(nodes)
            reserved |= set(nodes)
        assert reserved == set(NODES)
        assert gpus_on_nodes(server) == dict.fromkeys(NODES, 8)  # all 128 used, none over-committed
        queued = [f"gang-{i:02d}" for i, r in enumerate(results) if not r.ok]
        for name in queued:
            job = server.get("Job", NS, name)
            assert job is not None and job["spec"]["suspend"] is True  # no pod: holds no GPU
        lease = server.get("Lease", NS, "aios-tui-gang-reservations")
        assert lease is not None
        table = json.loads(lease["metadata"]["annotations"]["aios-tui.dev/reservations"])
        assert sorted(table) == [f"{NS}/{n}" for n in started]
        snap = await worlds[0].settle(lambda s: all(f"{NS}/{n}" in s.job_by_key for n in queued))
        for name in queued:
            job_view = snap.job_by_key[f"{NS}/{name}"]
            assert job_view.state is JobState.QUEUED
            assert job_view.pending_reason.startswith("queued: 32 GPUs (4×8) not free now (needs 4×8 A100")
            assert job_view.pending_reason.endswith("it starts, whole, when they are")

        # The four finish: four of the queued start, whole, released by one console each.
        for name in started:
            finish(server, name)
        await settle(server, lambda g: sum(all(p["spec"].get("nodeName") for p in g[j]) for j in g) == 4)
        await asyncio.sleep(0.3)  # every console's release loop has had its turn
        live = gangs(server)
        assert len(live) == 4 and all(len(pods) == 4 for pods in live.values())
        assert not set(live) & set(started) and set(live) <= set(queued)
        assert gpus_on_nodes(server) == dict.fromkeys(NODES, 8)
        for name, pods in live.items():
            job = server.get("Job", NS, name)
            assert job is not None and not job["spec"]["suspend"]
            nodes = job["metadata"]["annotations"]["aios-tui.dev/reserved-nodes"].split(",")
            assert [p["spec"]["nodeName"] for p in pods] == nodes
        # Each release is a change nobody typed: audited by the console that made it, intent then end.
        released = [
            (e.phase, e.outcome, e.target)
            for w in worlds
            for e in w.ops.audit.read()
            if e.title.startswith("Release queued job")
        ]
        for name in live:
            assert [r[:2] for r in released if r[2] == f"{NS}/{name}"] == [
                ("intent", "started"),
                ("end", "ok"),
            ]
    finally:
        for w in worlds:
            await w.poller.stop()


async def test_a_reserved_gang_not_yet_bound_is_taken_in_every_console_s_plan(
    server: FakeApiServer, tmp_path: Path
) -> None:
    """A Job another console reserved (annotation), its pods not bound yet: its nodes are not free here."""
    server.apply(
        {
            "kind": "Job",
            "metadata": {
                "name": "other",
                "namespace": NS,
                "annotations": {"aios-tui.dev/reserved-nodes": "a100-00,a100-01"},
            },
            "spec": {
                "suspend": True,  # no pods: only the reservation says the GPUs are taken
                "parallelism": 2,
                "completions": 2,
                "completionMode": "Indexed",
                "template": {
                    "spec": {
                        "containers": [{"name": "t", "resources": {"requests": {"nvidia.com/gpu": "8"}}}]
                    }
                },
            },
        }
    )
    (world,) = await consoles(server, tmp_path, 1)
    try:
        snap = await world.settle(lambda s: f"{NS}/other" in s.job_by_key)
        assert {n.name: n.gpus_requested for n in snap.nodes if n.gpus_requested} == {
            "a100-00": 8,
            "a100-01": 8,
        }
        plan = world.ops.plan("launch", **launch_args(LaunchSpec(NS, "mine", "img", 2, 8)))
        assert plan.ok and not set(plan.params["placement"]) & {"a100-00", "a100-01"}
    finally:
        await world.poller.stop()


async def test_with_the_cluster_s_gang_scheduling_nothing_is_pinned_and_no_gang_is_partial(
    gang_server: FakeApiServer, tmp_path: Path
) -> None:
    worlds = await consoles(gang_server, tmp_path, 12)
    try:
        for w in worlds:  # discovery has answered (the PodGroups are listed): the plan can say so
            assert w.source.gang_scheduling()
        results = await launch_twelve(worlds, "the cluster's gang scheduling (a PodGroup) binds it whole")
        assert all(r.ok for r in results), [r.message for r in results]
        job = gang_server.get("Job", NS, "gang-00")
        assert job is not None
        template = job["spec"]["template"]["spec"]
        assert template["nodeSelector"] == {"nvidia.com/gpu.product": PRODUCT}  # the plan's model, no node
        assert "affinity" not in template and "schedulingGates" not in template

        def placed(g: dict[str, list[dict[str, Any]]]) -> bool:
            return (
                len(g) == 12 and sum(all(p["spec"].get("nodeName") for p in pods) for pods in g.values()) == 4
            )

        await settle(gang_server, placed)
        await asyncio.sleep(0.3)  # the scheduler's chance to bind more: it must not bind part of a gang
        bound = {
            j: sum(1 for p in pods if p["spec"].get("nodeName")) for j, pods in gangs(gang_server).items()
        }
        assert sorted(bound.values()) == [0] * 8 + [4] * 4
        assert gpus_on_nodes(gang_server) == dict.fromkeys(NODES, 8)
        waiting = sorted(j for j, n in bound.items() if n == 0)
        snap = await worlds[0].settle(
            lambda s: (
                all(
                    s.job_by_key[f"{NS}/{j}"].state is JobState.QUEUED
                    for j in waiting
                    if f"{NS}/{j}" in s.job_by_key
                )
                and all(f"{NS}/{j}" in s.job_by_key for j in waiting)
            )
        )
        reason = snap.job_by_key[f"{NS}/{waiting[0]}"].pending_reason
        assert reason.startswith("gang waits whole (PodGroup gang-")
        assert ": Unschedulable: pod group is unschedulable" in reason
    finally:
        for w in worlds:
            await w.poller.stop()


def test_gang_scheduling_is_asked_once_and_a_404_means_absent(server: FakeApiServer, tmp_path: Path) -> None:
    src = make_source(server.write_kubeconfig(tmp_path / "kubeconfig"))
    try:
        wait_for(src, lambda d: True)
        assert src.gang_scheduling() is False
        assert src.gang_scheduling() is False
        asked = [p for m, p in server.requests if p == "/apis/scheduling.k8s.io/v1alpha2"]
        assert len(asked) == 1
        assert not any("podgroups" in p for _, p in server.requests)
    finally:
        src.close_now()


def test_a_reservation_over_a_stale_lease_gets_409_and_is_planned_again(
    server: FakeApiServer, tmp_path: Path
) -> None:
    """Two consoles plan the same four nodes: B reserves them after A read the Lease, so A's write is
    refused (409, the resourceVersion precondition) and A, reading again, reserves four other nodes."""
    kubeconfig = server.write_kubeconfig(tmp_path / "kubeconfig")
    a, b = make_source(kubeconfig), make_source(kubeconfig)
    try:
        for src in (a, b):
            wait_for(src, lambda d: len(d.nodes) == 16)
        planned = tuple(NODES[:4])
        a._lease(NS)  # makes the Lease
        lease, table = a._lease(NS)
        assert lease is not None and table == {}
        assert b._reserve(LaunchSpec(NS, "b", "img", 4, 8, placement=planned)) == planned
        stale = {f"{NS}/a": {"nodes": list(planned), "gpus": 8, "at": 0}}
        assert a._write_lease(NS, lease, stale) is False
        again = a._reserve(LaunchSpec(NS, "a", "img", 4, 8, placement=planned))
        assert isinstance(again, tuple) and len(again) == 4 and not set(again) & set(planned)
        stored = server.get("Lease", NS, "aios-tui-gang-reservations")
        assert stored is not None
        table = json.loads(stored["metadata"]["annotations"]["aios-tui.dev/reservations"])
        assert {k: v["nodes"] for k, v in table.items()} == {f"{NS}/a": list(again), f"{NS}/b": list(planned)}
    finally:
        a.close_now()
        b.close_now()


def test_a_podgroup_names_its_job_and_its_words_are_cleaned() -> None:
    """The shape kube-apiserver 1.36 sends (gang-scheduling/podgroups_list.json), with hostile words."""
    group = {
        "metadata": {
            "name": "gang-05-858654864c-gang-05-pgt-0-8575bf4bcb",
            "namespace": "trace",
            "ownerReferences": [
                {"apiVersion": "batch/v1", "kind": "Job", "name": "gang-05", "controller": True},
                {
                    "apiVersion": "scheduling.k8s.io/v1alpha2",
                    "kind": "Workload",
                    "name": "gang-05-858654864c",
                },
            ],
        },
        "spec": {"schedulingPolicy": {"gang": {"minCount": 2}}, "disruptionMode": "Pod"},
        "status": {
            "conditions": [
                {
                    "type": "PodGroupScheduled",
                    "status": "False",
                    "reason": "Unschedulable",
                    "message": "pod group \x1b]0;owned\x07is \u202eunschedulable\u200b",
                }
            ]
        },
    }
    rec = convert_podgroup(group)
    assert (rec.job, rec.scheduled, rec.reason) == ("gang-05", "False", "Unschedulable")
    assert rec.message == "pod group is unschedulable"
    with pytest.raises(MalformedObject):
        convert_podgroup({**group, "status": {"conditions": "not a list"}})


async def test_a_gang_that_does_not_fit_can_be_queued_and_starts_whole_when_it_fits(
    server: FakeApiServer, tmp_path: Path
) -> None:
    """One after another: four gangs fill the 16 nodes; the fifth is refused with "queue it" offered, and,
    queued, waits suspended (no GPU held) until one of the four finishes."""
    (world,) = await consoles(server, tmp_path, 1)
    try:
        for i in range(4):
            plan = world.ops.plan("launch", **launch_args(LaunchSpec(NS, f"gang-{i}", "img", 4, 8)))
            assert (await world.ops.execute(plan)).ok
            key = f"{NS}/gang-{i}"
            await world.settle(lambda s: key in s.job_by_key)  # noqa: B023 (awaited here, at once)
        await settle(server, lambda g: sum(all(p["spec"].get("nodeName") for p in g[j]) for j in g) == 4)
        args = launch_args(LaunchSpec(NS, "fifth", "img", 4, 8, gpu_model="A100"))
        await world.settle(lambda s: sum(n.gpus_requested for n in s.nodes) == 128)
        refused = world.ops.plan("launch", **args)
        assert not refused.ok and refused.alternatives[-1].label == "queue it: it starts, whole, when it fits"
        queued = world.ops.plan("launch", **args, queue=True)
        assert queued.ok and queued.title.endswith(", queued")
        assert (await world.ops.execute(queued)).ok
        job = server.get("Job", NS, "fifth")
        assert job is not None and job["spec"]["suspend"] is True
        assert job["spec"]["template"]["spec"]["nodeSelector"] == {"nvidia.com/gpu.product": PRODUCT}
        snap = await world.settle(lambda s: f"{NS}/fifth" in s.job_by_key)
        assert snap.job_by_key[f"{NS}/fifth"].state is JobState.QUEUED
        finish(server, "gang-2")
        await settle(server, lambda g: "fifth" in g and all(p["spec"].get("nodeName") for p in g["fifth"]))
        fifth = gangs(server)["fifth"]
        assert len(fifth) == 4 and gpus_on_nodes(server) == dict.fromkeys(NODES, 8)
    finally:
        await world.poller.stop()
