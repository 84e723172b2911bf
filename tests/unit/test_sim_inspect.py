"""The embedded fleet read as an on-call engineer reads a cluster: pods' restarts and reasons, the events it
lived, its logs (tail, previous run, follow) with its incidents in them, the objects as YAML; and the ops
entry points that resolve an endpoint or a job to its pods and a pod to the source that can read it."""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path

import pytest

from aios_tui.config import PrometheusSettings
from aios_tui.domain import FleetSnapshot, JobState, PodPhase
from aios_tui.domain.clock import FrozenClock
from aios_tui.ops import Actor, AuditLog, Ops, Role, inspect
from aios_tui.poll import Poller
from aios_tui.sources.base import LogReader, ObjectReader, SourceData, SourceError
from aios_tui.sources.prometheus import PrometheusSource
from aios_tui.sources.sim import SimSource

START = 1_795_000_000.0  # 2026-11-18T11:06:40Z


def fleet(seed: int = 0) -> tuple[SimSource, FrozenClock, SourceData]:
    clock = FrozenClock(START)
    sim = SimSource(seed=seed, nodes=200, clock=clock, start=START)
    return sim, clock, sim.fetch_now()


def test_pods_have_their_facts() -> None:
    sim, _, data = fleet()
    assert isinstance(sim, LogReader) and isinstance(sim, ObjectReader)
    assert all(0 < p.created_at <= START for p in data.pods)
    assert all(p.containers for p in data.pods)
    (crash,) = [p for p in data.pods if p.reason == "CrashLoopBackOff"]
    xid_node = next(n for n in sim._f.nodes if n.xid_gpu >= 0)
    assert (crash.node, crash.owner, crash.ready) == (
        xid_node.name,
        "gpu-operator/nvidia-dcgm-exporter",
        False,
    )
    assert crash.restarts == 6  # the GPU fell off 12 minutes ago: back-off 10, 20, 40, 80, 160 s, then 5 min
    ooms = [p for p in data.pods if p.reason == "OOMKilled"]
    assert len(ooms) == 5 and all(p.restarts == 1 and p.containers == ("vllm",) and p.ready for p in ooms)
    jobs = {j.key: j for j in data.jobs}
    ranks = [p for p in data.pods if p.owner_kind == "Job"]
    assert ranks and all(p.created_at == jobs[p.owner].started_at for p in ranks)
    assert all(p.containers == ("trainer",) for p in ranks)
    assert sum(1 for p in data.pods if p.restarts) == 6


def test_the_events_it_lived() -> None:
    sim, clock, data = fleet()
    events = data.events
    assert [e.time for e in events] == sorted((e.time for e in events), reverse=True)
    xid_node = next(n for n in sim._f.nodes if n.xid_gpu >= 0)
    (xid,) = [e for e in events if e.reason == "XID 79"]
    assert (xid.kind, xid.time, xid.warning) == ("gpu", START - 720.0, True)
    assert xid.message == f"{xid_node.name} GPU {xid_node.xid_gpu}: XID 79, the GPU has fallen off the bus"
    assert xid.key == next(
        g.uuid for g in data.gpus if g.node == xid_node.name and g.index == xid_node.xid_gpu
    )
    queued = [j for j in data.jobs if j.state is JobState.QUEUED and j.pending_reason]
    refusals = {e.key: e for e in events if e.reason == "FailedScheduling"}
    assert queued and set(refusals) == {j.key for j in queued}
    for job in queued:
        e = refusals[job.key]
        assert e.kind == "job" and e.message == job.pending_reason and e.time <= START
        assert e.count == int((START - job.submitted_at) // 300) + 1
    assert {e.reason for e in events} >= {"NodeNotReady", "NodeNotSchedulable", "BackOff", "OOMKilled"}
    backoff = next(e for e in events if e.reason == "BackOff")
    assert backoff.count == 6 and START - 300 < backoff.time <= START

    # What it carries out joins them, at the clock's time.
    node = next(n for n in data.nodes if n.ready and not n.cordoned)
    clock.advance(30)
    asyncio.run(sim.set_cordon(node.name, True))
    ep = next(e for e in data.endpoints if e.name == "ranking-dlrm-feed")
    asyncio.run(sim.scale_endpoint(ep.namespace, ep.name, 9))
    after = sim.fetch_now().events
    assert after[0].time == START + 30
    noted = {(e.kind, e.key, e.reason): e for e in after if e.time == START + 30}
    assert noted[("node", node.name, "NodeNotSchedulable")].message == (
        f"Node {node.name} status is now: NodeNotSchedulable"
    )
    scaled = noted[("endpoint", ep.key, "ScalingReplicaSet")]
    assert scaled.message.startswith("Scaled up replica set ranking-dlrm-feed-") and scaled.message.endswith(
        "from 3 to 9"
    )


def test_same_seed_and_clock_same_logs_objects_and_events() -> None:
    a, _, da = fleet(seed=3)
    b, _, db = fleet(seed=3)
    assert da.events == db.events
    pod = next(p for p in da.pods if p.owner_kind == "Job" and p.phase is PodPhase.RUNNING)
    assert asyncio.run(a.read_log(pod.namespace, pod.name, tail=50)) == asyncio.run(
        b.read_log(pod.namespace, pod.name, tail=50)
    )
    assert asyncio.run(a.read_object("pod", pod.key)) == asyncio.run(b.read_object("pod", pod.key))
    _, _, dc = fleet(seed=4)
    assert dc.events != da.events


def test_the_incidents_are_in_the_logs() -> None:
    sim, _, data = fleet()
    slow = next(e for e in data.endpoints if e.name == "ranking-dlrm-feed")
    replica = next(p for p in data.pods if p.owner == slow.key)
    lines = asyncio.run(sim.read_log(replica.namespace, replica.name, tail=200))
    assert len(lines) == 200
    full = [line for line in lines if "request queue full" in line]
    assert 40 < len(full) < 160  # past capacity: a good part of its requests rejected
    assert all(line.startswith("2026-11-18T1") for line in lines)
    calm = next(e for e in data.endpoints if e.name == "embed-bge-search")
    quiet = asyncio.run(sim.read_log(calm.namespace, next(p.name for p in data.pods if p.owner == calm.key)))
    assert len(quiet) == 500 and not any("queue full" in line or "WARN" in line for line in quiet)

    hung = next(j for j in sim._f.jobs.values() if j.stuck)
    rank = next(p for p in data.pods if p.owner == hung.key and p.rank == 0)
    tail = asyncio.run(sim.read_log(rank.namespace, rank.name, tail=3))
    assert tail[-1].startswith("[rank0]:[E") and "Watchdog caught collective operation timeout" in tail[-1]
    assert all(" step " in line for line in tail[:-1])

    crash = next(p for p in data.pods if p.reason == "CrashLoopBackOff")
    now = asyncio.run(sim.read_log(crash.namespace, crash.name))
    before = asyncio.run(sim.read_log(crash.namespace, crash.name, previous=True))
    assert len(now) == len(before) == 3 and now != before
    assert "level=fatal" in now[-1] and "is lost (the GPU has fallen off the bus)" in now[-1]

    plugin = next(p for p in data.pods if p.node == crash.node and p.owner.endswith("/nvidia-device-plugin"))
    withdrawn = asyncio.run(sim.read_log(plugin.namespace, plugin.name, tail=100_000))
    lost = next(
        g.uuid
        for g in data.gpus
        if g.node == crash.node and g.index == sim._f.node_by_name[crash.node].xid_gpu
    )
    (said,) = [line for line in withdrawn if "XidCriticalError" in line]
    assert said.endswith(f"XidCriticalError: Xid=79 on Device={lost}; marking device as unhealthy.")

    oom = max((p for p in data.pods if p.reason == "OOMKilled"), key=lambda p: p.created_at)  # the youngest
    killed = asyncio.run(sim.read_log(oom.namespace, oom.name, previous=True))
    assert killed[-1].startswith("Loading safetensors checkpoint shards: ")  # killed mid-load
    assert not any("Uvicorn" in line for line in killed)
    assert "Uvicorn running" in " ".join(asyncio.run(sim.read_log(oom.namespace, oom.name, tail=100_000)))


def test_a_scaled_endpoint_s_log_keeps_the_incident() -> None:
    sim, clock, data = fleet()
    slow = next(e for e in data.endpoints if e.name == "ranking-dlrm-feed")
    replica = next(p for p in data.pods if p.owner == slow.key)
    asyncio.run(sim.scale_endpoint(slow.namespace, slow.name, 12))
    clock.advance(600)
    lines = asyncio.run(sim.read_log(replica.namespace, replica.name, tail=600))  # 2 s a line: 20 minutes
    before = [line for line in lines if line[:20] < "2026-11-18T11:06:40Z"]
    after = [line for line in lines if line[:20] > "2026-11-18T11:06:40Z"]
    assert len(before) > 250 and len(after) > 250
    assert sum("queue full" in line for line in before) > 50
    assert not any("queue full" in line for line in after)


def test_errors_in_the_kubernetes_source_s_words() -> None:
    sim, _, data = fleet()
    fresh = next(p for p in data.pods if p.restarts == 0 and p.owner_kind == "Job")
    with pytest.raises(SourceError) as err:
        asyncio.run(sim.read_log(fresh.namespace, fresh.name, previous=True))
    assert str(err.value) == f"no previous run of container trainer in pod {fresh.key}: it has not restarted"
    down = next(n for n in data.nodes if not n.ready)
    gone = next(p for p in data.pods if p.node == down.name)
    with pytest.raises(SourceError) as err:
        asyncio.run(sim.read_log(gone.namespace, gone.name))
    assert str(err.value).startswith(
        f"logs of pod {gone.key}: node {down.name} is NotReady: its kubelet does not answer (Get https://"
    )
    with pytest.raises(SourceError, match=r"^pod ml-prod/nope not found$"):
        asyncio.run(sim.read_log("ml-prod", "nope"))
    with pytest.raises(SourceError, match=r"^container sidecar is not valid for pod .*: it has trainer$"):
        asyncio.run(sim.read_log(fresh.namespace, fresh.name, container="sidecar"))
    with pytest.raises(SourceError, match=r"^node gone not found in sim$"):
        asyncio.run(sim.read_object("node", "gone"))
    with pytest.raises(SourceError, match=r"^sim shows nodes, pods, jobs and endpoints as YAML, not gpu$"):
        asyncio.run(sim.read_object("gpu", "x"))


def test_objects_as_yaml() -> None:
    sim, _, data = fleet()
    cordoned = next(n for n in data.nodes if n.cordoned)
    text = asyncio.run(sim.read_object("node", cordoned.name))
    assert text.startswith(f"apiVersion: v1\nkind: Node\nmetadata:\n  name: {cordoned.name}\n")
    assert "  unschedulable: true\n" in text and "effect: NoSchedule" in text
    job = next(j for j in data.jobs if j.state is JobState.RUNNING)
    assert f"  parallelism: {job.workers}\n" in asyncio.run(sim.read_object("job", job.key))
    ep = data.endpoints[0]
    assert f"  replicas: {ep.replicas_desired}\n" in asyncio.run(sim.read_object("endpoint", ep.key))


async def test_follow_gets_the_lines_the_clock_reaches() -> None:
    sim, clock, data = fleet()
    slow = next(e for e in data.endpoints if e.name == "ranking-dlrm-feed")
    replica = next(p for p in data.pods if p.owner == slow.key)
    follow = sim.follow_log(replica.namespace, replica.name, tail=2)
    first = [await asyncio.wait_for(anext(follow), 5), await asyncio.wait_for(anext(follow), 5)]
    assert first == await sim.read_log(replica.namespace, replica.name, tail=2)
    clock.advance(10)  # 5 more lines, 2 s apart
    more = [await asyncio.wait_for(anext(follow), 5) for _ in range(5)]
    assert [line[:20] for line in more] == [f"2026-11-18T11:06:{41 + i * 2:02d}Z" for i in range(5)]
    await follow.aclose()  # type: ignore[attr-defined]


async def test_ops_resolve_pods_and_their_source() -> None:
    clock = FrozenClock(START)
    sim = SimSource(seed=0, nodes=200, clock=clock, start=START)
    poller = Poller([sim], clock=clock)
    snap = await poller.refresh()
    ep = next(e for e in snap.endpoints if e.name == "ranking-dlrm-feed")
    replicas = inspect.pods_of(snap, "endpoint", ep.key)
    assert len(replicas) == 3 and all(p.owner == ep.key for p in replicas)
    job = next(j for j in snap.jobs if j.state is JobState.RUNNING and j.workers > 1)
    ranks = inspect.pods_of(snap, "job", job.key)
    assert [p.rank for p in ranks] == list(range(job.workers))
    node = ranks[0].node
    assert ranks[0] in inspect.pods_of(snap, "node", node)
    gpu = next(g for g in snap.gpus if g.pod == ranks[0].key)
    assert inspect.pods_of(snap, "gpu", gpu.uuid) == (ranks[0],)
    assert inspect.pods_of(snap, "pool", "x") == ()

    sources = {sim.name: sim}
    lines = await inspect.read_log(sources, snap, replicas[0].key, tail=5)
    assert lines == await sim.read_log(replicas[0].namespace, replicas[0].name, tail=5)
    assert (await inspect.read_object(sources, snap, "endpoint", ep.key)).startswith("apiVersion: apps/v1\n")
    assert "kind: Node" in await inspect.read_object(sources, snap, "node", node)
    with pytest.raises(
        SourceError, match=r"^pod ml-prod/nope is not in the fleet \(gone, or not seen yet\)$"
    ):
        await inspect.read_log(sources, snap, "ml-prod/nope")

    # A pod whose source has no logs (Prometheus knows endpoints, not their pods' logs).
    prom = PrometheusSource(name="prometheus:dcgm", settings=PrometheusSettings(enabled=True))
    moved = FleetSnapshot(snap.timestamp, pods=(dataclasses.replace(replicas[0], source=prom.name),))
    with pytest.raises(SourceError) as err:
        await inspect.read_log({prom.name: prom}, moved, replicas[0].key)
    assert str(err.value) == "prometheus:dcgm has no logs: logs come from Kubernetes or the embedded fleet"
    await poller.stop()


async def test_a_read_only_viewer_reads_logs_and_yaml_through_ops(tmp_path: Path) -> None:
    clock = FrozenClock(START)
    sim = SimSource(seed=0, nodes=200, clock=clock, start=START)
    poller = Poller([sim], clock=clock)
    snap = await poller.refresh()
    audit = AuditLog(tmp_path / "audit.jsonl")
    ops = Ops({sim.name: sim}, lambda: poller.snapshot, audit, actor=Actor("v", Role.VIEWER), read_only=True)
    job = next(j for j in snap.jobs if j.state is JobState.RUNNING)
    (rank0, *_) = ops.pods_of("job", job.key)
    assert rank0.rank == 0
    assert len(await ops.read_log(rank0.key, tail=7)) == 7
    follow = ops.follow_log(rank0.key, tail=1)
    assert " step " in await asyncio.wait_for(anext(follow), 5)
    await follow.aclose()  # type: ignore[attr-defined]
    assert (await ops.read_object("job", job.key)).startswith("apiVersion: batch/v1\nkind: Job\n")
    log = tmp_path / "audit.jsonl"
    assert not log.exists() or not log.read_text()  # reading is not an action: nothing audited
    await poller.stop()
