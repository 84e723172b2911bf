"""The embedded fleet as the domain sees it: frozen nodes, endpoints, budgets and jobs built from its state.

A node's object is cached on its record until something about it changes (:class:`~.world.Fleet` marks
it), so a fetch rebuilds only the nodes that changed; endpoints and jobs move with the time and are built
at every fetch.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from aios_tui.domain import NA, Condition, Endpoint, Gpu, Health, Hpa, Job, JobState, Metric, Node, Pdb, Taint
from aios_tui.sources.sim.construct import make_endpoint, make_job
from aios_tui.sources.sim.scheduler import job_queue
from aios_tui.sources.sim.telemetry import Telemetry, endpoint_values
from aios_tui.sources.sim.world import HPA_METRIC, Fleet, SimNode, guarded, min_available, ready_replicas

__all__ = ["ERROR_SLO", "build_endpoints", "build_jobs", "build_nodes", "node_obj"]

ERROR_SLO = 0.01
"""Every simulated endpoint's error-rate objective: 1 % (its errors idle at 0.02–0.06 % and climb as its
replicas saturate; past ρ = 1 it sheds requests)."""
_COND_READY = (Condition("Ready", "True", "KubeletReady", "kubelet is posting ready status"),)
_COND_NOT_READY = (
    Condition(
        "Ready",
        "False",
        "KubeletNotReady",
        "container runtime network not ready: NetworkReady=false reason:NetworkPluginNotReady "
        "message:Network plugin returns error: cni plugin not initialized",
    ),
)
_TAINTS_CORDONED = (Taint("node.kubernetes.io/unschedulable", "", "NoSchedule"),)
_TAINTS_NOT_READY = (
    Taint("node.kubernetes.io/not-ready", "", "NoSchedule"),
    Taint("node.kubernetes.io/not-ready", "", "NoExecute"),
)


def _metric(x: float) -> Metric:
    return NA if math.isnan(x) else x


def build_nodes(fleet: Fleet, gpus: Sequence[Gpu], source: str, last: tuple[Node, ...]) -> tuple[Node, ...]:
    """Every node, rebuilding those whose cached object was dropped; ``last`` when none was."""
    changed = False
    for node in fleet.nodes:
        if node.obj is None:
            node.obj = node_obj(node, gpus[node.gpu0 : node.gpu0 + len(node.owners)], source)
            changed = True
    if changed or not last:
        return tuple(n.obj for n in fleet.nodes if n.obj is not None)
    return last


def node_obj(node: SimNode, gpus: Sequence[Gpu], source: str) -> Node:
    """The node as Kubernetes shows it; ``gpus``: its GPUs' readings (its health follows theirs)."""
    health = max((g.health for g in gpus), default=Health.OK)
    conditions: tuple[Condition, ...] = _COND_READY
    taints: tuple[Taint, ...] = ()
    if not node.ready:
        health, conditions, taints = Health.FAIL, _COND_NOT_READY, _TAINTS_NOT_READY
    elif node.xid_gpu >= 0:
        bad = gpus[node.xid_gpu]
        conditions = (
            *_COND_READY,
            Condition("GPUHealthy", "False", "XID79", f"GPU {bad.index} ({bad.uuid}) has fallen off the bus"),
        )
    if node.cordoned:
        taints = (*taints, *_TAINTS_CORDONED)
    it = node.itype
    return Node(
        name=node.name,
        source=source,
        pool=node.pool,
        zone=node.zone,
        instance_type=it.name,
        gpu_model=it.gpu_model,
        gpus_total=it.gpus,
        gpus_allocatable=node.allocatable,
        gpus_requested=node.used,
        cpu_allocatable=node.cpu_allocatable,
        cpu_requested=node.cpu_requested,
        memory_allocatable=node.memory_allocatable,
        memory_requested=node.memory_requested,
        ready=node.ready,
        cordoned=node.cordoned,
        cordoned_by=node.cordoned_by if node.cordoned else "",
        conditions=conditions,
        taints=taints,
        labels=node.labels,
        rack=node.rack,
        provider_id=node.provider_id,
        price_per_hour=it.price_per_hour,
        health=health,
        cluster=source,
    )


def build_endpoints(
    fleet: Fleet, t: float, source: str, tel: Telemetry
) -> tuple[tuple[Endpoint, ...], tuple[Pdb, ...]]:
    """Every endpoint, and the PodDisruptionBudget of each production one; records each one's load in
    ``tel`` (the GPU readings that follow take it)."""
    out = []
    pdbs = []
    tel.rho = {}
    tel.rho_t = t
    for ep in fleet.endpoints.values():
        ready = ready_replicas(fleet, ep)
        if guarded(ep):
            least = min_available(ep)
            pdbs.append(
                Pdb(
                    namespace=ep.namespace,
                    name=ep.name,
                    owner=ep.key,
                    min_available=least,
                    current_healthy=ready,
                    desired_healthy=least,
                    disruptions_allowed=max(0, ready - least),
                    source=source,
                )
            )
        qps, p50, p99, err, _, rho = endpoint_values(fleet, ep, ready, t)
        tel.rho[ep.key] = rho
        hpa = None
        if ep.hpa is not None:
            lo, hi, target = ep.hpa
            hpa = Hpa(ep.name, lo, hi, HPA_METRIC, target, qps / ready if ready else NA)
        k = ep.kind
        out.append(
            make_endpoint(
                namespace=ep.namespace,
                name=ep.name,
                source=source,
                model=k.model,
                server=k.server,
                image=ep.image,
                replicas_desired=ep.desired,
                replicas_ready=ready,
                gpus_per_replica=k.gpus,
                gpu_model=k.gpu_model,
                qps=qps,
                p50_ms=_metric(p50),
                p99_ms=_metric(p99),
                p99_slo_ms=2.0 * k.p99,
                error_slo=ERROR_SLO,
                error_rate=err,
                hpa=hpa,
                cluster=source,
            )
        )
    return tuple(out), tuple(pdbs)


def build_jobs(fleet: Fleet, t: float, source: str) -> tuple[Job, ...]:
    position = {j.key: i + 1 for i, j in enumerate(job_queue(fleet))}
    out = []
    for job in fleet.jobs.values():
        state = job.state
        progress: Metric
        reason = job.reason
        if state is JobState.QUEUED:
            progress = NA
        elif state is JobState.SUCCEEDED:
            progress = 1.0
        elif state is JobState.FAILED:
            progress = job.final_progress
        elif job.stuck:
            progress = job.stuck_progress
        else:
            progress = min(0.999, max(0.0, (job.done + t - job.started_at) / job.duration))
            reason = ""
        out.append(
            make_job(
                namespace=job.namespace,
                name=job.name,
                source=source,
                workers=job.workers,
                gpus_per_worker=job.per_worker,
                gpu_model=job.gpu_model,
                state=state,
                priority=job.priority,
                queue=job.queue,
                queue_position=position.get(job.key, 0),
                placement=() if state is JobState.QUEUED else tuple(job.placement),
                pending_reason=reason,
                image=job.image,
                user=job.user,
                submitted_at=job.submitted_at,
                started_at=job.started_at,
                finished_at=job.finished_at,
                progress=progress,
                zone=job.zone,
                cluster=source,
            )
        )
    return tuple(out)
