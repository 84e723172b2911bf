"""The embedded fleet's pods as an on-call engineer reads them: their restarts and reasons, their logs, the
objects as YAML shaped like Kubernetes', and the events the fleet lived.

Everything is a function of the fleet, the seed and the clock readings, like the rest of the simulation:
a log line is drawn from a hash of (pod, line number) at a time on the pod's own cadence, never from a
random generator, so the same pod shows the same log at the same time, and the last ``tail`` lines are
made directly, not by replaying a three-day run. The incidents of the fleet show in them: a replica of an
endpoint short of capacity logs a full queue and timed-out requests at the times its load was past
capacity; a hung training gang's ranks stop logging steps and its NCCL watchdog reports the collective
that never returned; on the node whose GPU fell off the bus the NVIDIA device plugin withdraws it
(``XidCriticalError``) and the DCGM exporter is in CrashLoopBackOff; the NotReady node's pods' logs cannot
be read (its kubelet does not answer, as Kubernetes says); a few LLM replicas were OOM-killed once while
loading weights (restarts 1, the previous run's log ends mid-load).

Timestamps are formatted from the simulated time (``time.gmtime`` of a given time, not a clock reading).
"""

from __future__ import annotations

import asyncio
import bisect
import math
import time
import zlib
from collections import deque
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Final

from aios_tui.domain import Endpoint, Event, Job, JobState, Node, Pod, PodPhase
from aios_tui.domain.text import clean
from aios_tui.sources._object_yaml import object_yaml
from aios_tui.sources.base import SourceData, SourceError
from aios_tui.sources.sim.core import SimCore
from aios_tui.sources.sim.signals import mix, unit
from aios_tui.sources.sim.world import SERVER_CONTAINER, Fleet, SimEndpoint, SimJob, demand

__all__ = [
    "LogPlan",
    "crash_pod",
    "endpoint_object",
    "iso",
    "job_object",
    "log_lines",
    "node_object",
    "oom_at",
    "pod_object",
]

MAX_LIVED: Final = 2000
"""Events of what the fleet carried out (scales, cordons, evictions, launches) kept, the newest."""
MAX_TAIL: Final = 100_000
_NOT_READY_AGO: Final = 1500.0
_CORDONED_AGO: Final = 900.0
OOM_SHARE: Final = 0.12
"""Share of the LLM replicas (vLLM) made with the fleet that were OOM-killed once while loading weights."""
CRASH_BACKOFF_S: Final = 300.0
"""The kubelet's back-off cap between restarts of a crashing container."""
SCHEDULER_RETRY_S: Final = 300.0
"""How often the scheduler tries a pod it could not place again, at most (its back-off cap)."""
_STEP_S: Final = {"H100": 6.0, "H200": 5.0, "A100": 11.0, "L4": 18.0}
"""Seconds per training step by GPU (what one optimizer step of the sim's jobs takes)."""
LINE_LIMIT: Final = 2000
"""Characters kept of one log line, as the Kubernetes source keeps."""
FOLLOW_POLL_S: Final = 0.5
"""How often a followed log looks for lines the simulated time has reached."""
_WATCHDOG_S: Final = 600.0
"""PyTorch's default NCCL collective timeout (``timeout=timedelta(minutes=10)``)."""


def iso(t: float) -> str:
    """``2026-12-06T03:21:05Z``: a simulated time as the API server writes it."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


def _hash(*parts: object) -> int:
    return mix(zlib.crc32("\x1f".join(map(str, parts)).encode()))


# --- pod facts --------------------------------------------------------------------------------------------


def oom_at(key: str, created: float, salt: int, start: float) -> float:
    """When a vLLM replica made with the fleet (created before ``start``) was OOM-killed, loading weights in
    its first run; 0 for the others. About :data:`OOM_SHARE` of them, by a hash of the pod's key."""
    h = _hash(salt, key, "oom")
    if unit(h, 1) >= OOM_SHARE or not created or created >= start:
        return 0.0
    return created + 40.0 + 80.0 * unit(h, 2)


def crash_pod(pod: Pod, xid_at: float, t: float) -> tuple[int, float]:
    """A DCGM exporter on a node whose GPU fell off the bus at ``xid_at`` crashes at start (NVML cannot read
    the lost GPU) and is restarted with the kubelet's back-off: (restarts by ``t``, when the last run
    began)."""
    if not xid_at or "dcgm-exporter" not in pod.name or t < xid_at:
        return 0, 0.0
    began, restarts = xid_at, 0
    for wait in (10.0, 20.0, 40.0, 80.0, 160.0):  # each run lasts ~2 s, then the back-off doubles
        if began + wait + 2.0 > t:
            return restarts, began
        began += wait + 2.0
        restarts += 1
    more = int((t - began) // (CRASH_BACKOFF_S + 2.0))  # then every 5 minutes
    return restarts + more, began + more * (CRASH_BACKOFF_S + 2.0)


# --- logs -------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LogPlan:
    """What one container's run logs, and from when to when."""

    pod: Pod
    container: str
    kind: str
    """``vllm``, ``server`` (Triton, TorchServe, TF Serving), ``trainer``, ``exporter`` (crashing) or
    ``generic``."""
    start: float
    end: float = math.inf
    """When the run ended (a previous run); inf while it runs."""
    server: str = ""
    model: str = ""
    load: Callable[[float], float] | None = None
    """The endpoint's load ρ at a time (past 1: requests queue and time out)."""
    rank: int = 0
    workers: int = 1
    gpu_model: str = ""
    stuck_since: float = 0.0
    xid_at: float = 0.0
    """When a GPU of the pod's node fell off the bus (0: none did)."""
    xid_gpu: int = -1
    xid_uuid: str = ""
    oom: bool = False
    """The run ended OOM-killed (a previous run)."""

    @property
    def period(self) -> float:
        if self.kind == "trainer":
            return 10 * _STEP_S.get(self.gpu_model, 8.0)  # one line per 10 steps, as most trainers log
        if self.kind == "exporter":
            return math.inf
        return {"vllm": 5.0, "server": 2.0}.get(self.kind, 30.0)


def _vllm_ts(t: float) -> str:
    return time.strftime("%m-%d %H:%M:%S", time.gmtime(t))


def _startup(plan: LogPlan) -> list[tuple[float, str]]:
    t, c = plan.start, plan.container
    if plan.kind == "vllm":
        lines = [
            f"INFO {_vllm_ts(t)} api_server.py:495] vLLM API server version 0.6.3",
            f"INFO {_vllm_ts(t + 1)} llm_engine.py:237] Initializing an LLM engine: model='{plan.model}'",
            f"INFO {_vllm_ts(t + 9)} model_runner.py:1056] Starting to load model {plan.model}...",
        ]
        if plan.oom:  # killed while the shards load: the log ends mid-load
            return [(t + i, line) for i, line in enumerate(lines)] + [
                (t + 20 + 10 * k, f"Loading safetensors checkpoint shards: {pct}% Completed | {k + 1}/30")
                for k, pct in enumerate((3, 23, 43, 63, 83))
            ]
        lines += [
            f"INFO {_vllm_ts(t + 30)} model_runner.py:1067] Loading model weights took 131.5 GB",
            f"INFO {_vllm_ts(t + 34)} gpu_executor.py:122] # GPU blocks: 14372, # CPU blocks: 3276",
            "INFO:     Started server process [1]",
            "INFO:     Uvicorn running on http://0.0.0.0:8000 (Press CTRL+C to quit)",
        ]
        return [(t + i, line) for i, line in enumerate(lines)]
    if plan.kind == "server":
        return [
            (t, f"{iso(t)} INFO {plan.server} starting, model {plan.model}"),
            (t + 4, f"{iso(t + 4)} INFO {plan.server}: model {plan.model} loaded, version 1, READY"),
        ]
    if plan.kind == "trainer":
        world = plan.workers * 8
        return [
            (t, f"[rank{plan.rank}] {iso(t)} torchrun: world size {world}, node rank {plan.rank}"),
            (t + 20, f"[rank{plan.rank}] {iso(t + 20)} NCCL INFO Init COMPLETE nranks {world} cudaDev 0"),
            (t + 40, f"[rank{plan.rank}] {iso(t + 40)} resumed from the last checkpoint"),
        ]
    if plan.kind == "exporter":
        gpu = max(plan.xid_gpu, 0)
        return [
            (t, f'time="{iso(t)}" level=info msg="Starting dcgm-exporter" Version="3.3.8-3.6.0-ubuntu22.04"'),
            (t + 1, f'time="{iso(t + 1)}" level=info msg="DCGM successfully initialized!"'),
            (
                t + 2,
                f'time="{iso(t + 2)}" level=fatal msg="Failed to watch metrics: Error watching fields: '
                f'GPU {gpu} is lost (the GPU has fallen off the bus)"',
            ),
        ]
    return [(t, f"{iso(t)} INFO {c} started")]


_GENERIC = (
    "GET /healthz 200",
    "flushed 128 records",
    "reconciled 3 objects",
    "heartbeat ok",
    "GET /metrics 200",
)


def _line(plan: LogPlan, k: int, t: float) -> str:
    """The ``k``-th periodic line of the run, written at ``t``."""
    h = _hash(plan.pod.key, plan.container, k)
    u = unit(h, 1)
    if plan.kind == "trainer":
        step = int((t - plan.start) / _STEP_S.get(plan.gpu_model, 8.0))
        loss = 1.55 + 1.6 * math.exp(-step / 4000.0) + 0.04 * (u - 0.5)
        tps = 3900.0 * 8 * (0.93 + 0.1 * unit(h, 2))
        return (
            f"[rank{plan.rank}] {iso(t)} step {step} | loss {loss:.4f} | lr 3.00e-05 | "
            f"{tps:,.0f} tokens/s/node | mfu {38 + 6 * unit(h, 3):.1f}%"
        )
    rho = plan.load(t) if plan.load is not None else 0.3
    if plan.kind == "vllm":
        if k % 4 == 0:
            running = int(min(rho, 1.0) * 48)
            pending = int((rho - 0.9) * 500) if rho > 0.9 else int(3 * u)
            level = "WARNING" if pending > 50 else "INFO"
            return (
                f"{level} {_vllm_ts(t)} metrics.py:351] Avg prompt throughput: "
                f"{900 * min(rho, 1.0):.1f} tokens/s, Running: {running} reqs, Pending: {pending} reqs, "
                f"GPU KV cache usage: {min(99.9, 100 * rho):.1f}%"
            )
        client = f"10.0.{h % 8}.{(h >> 8) % 250 + 2}:{40000 + (h >> 16) % 20000}"
        if rho > 1.0 and u < min(0.8, rho - 1.0 + 0.3):
            return f"ERROR {_vllm_ts(t)} serving_chat.py:221] Request timed out after 30.0 s in the queue"
        return f'INFO:     {client} - "POST /v1/chat/completions HTTP/1.1" 200 OK'
    if plan.kind == "server":
        if rho > 1.0 and u < min(0.85, rho - 1.0 + 0.35):
            depth = int(256 * min(rho, 4.0))
            return (
                f"{iso(t)} WARN {plan.server}: request queue full ({depth} waiting): rejected with 503, "
                f"deadline 50 ms exceeded"
            )
        ms = (4.0 + 6.0 * u) * (1.0 + 4.0 * max(0.0, rho - 0.7))
        return f"{iso(t)} INFO {plan.server}: POST /v1/models/{plan.model}:predict 200 {ms:.1f}ms"
    return f"{iso(t)} INFO {plan.container}: {_GENERIC[h % len(_GENERIC)]}"


def _specials(plan: LogPlan, until: float) -> list[tuple[float, str]]:
    """Lines written once: a hung gang's watchdog, NCCL's errors on the node that lost a GPU, and the NVIDIA
    device plugin withdrawing that GPU (its health check watches XIDs)."""
    out: list[tuple[float, str]] = []
    r = plan.rank
    if plan.kind == "trainer" and plan.stuck_since and plan.stuck_since + _WATCHDOG_S <= until:
        at = plan.stuck_since + _WATCHDOG_S
        seq = int((plan.stuck_since - plan.start) / _STEP_S.get(plan.gpu_model, 8.0)) * 4
        out.append(
            (
                at,
                f"[rank{r}]:[E{time.strftime('%m%d %H:%M:%S', time.gmtime(at))}.081000 "
                "ProcessGroupNCCL.cpp:616] "
                f"[Rank {r}] Watchdog caught collective operation timeout: WorkNCCL(SeqNum={seq}, "
                "OpType=ALLREDUCE, NumelIn=262144, NumelOut=262144, Timeout(ms)=600000) ran for 600081 "
                "milliseconds before timing out.",
            )
        )
    if plan.xid_at and plan.start <= plan.xid_at <= until and plan.kind in ("trainer", "vllm", "server"):
        at = plan.xid_at + 1.0
        what = (
            f"[rank{r}] {iso(at)} NCCL WARN Cuda failure 'GPU is lost' (peer GPU {plan.xid_gpu} of this "
            "node, XID 79)"
            if plan.kind == "trainer"
            else f"{iso(at)} ERROR CUDA error: GPU is lost (GPU {plan.xid_gpu} of this node fell off the bus)"
        )
        out.append((at, what))
    if plan.xid_at and plan.start <= plan.xid_at <= until and plan.container == "nvidia-device-plugin":
        at = plan.xid_at + 0.4
        stamp = time.strftime("%m%d %H:%M:%S", time.gmtime(at))
        out.append(
            (
                at,
                f"I{stamp}.400000       1 health.go:131] XidCriticalError: Xid=79 on Device={plan.xid_uuid}; "
                "marking device as unhealthy.",
            )
        )
    return out


def log_lines(plan: LogPlan, until: float, tail: int) -> list[str]:
    """The last ``tail`` lines ``plan``'s run wrote up to ``until`` (and its end), oldest first, cleaned."""
    return [line for _, line in stamped_lines(plan, until, tail)]


def stamped_lines(plan: LogPlan, until: float, tail: int) -> list[tuple[float, str]]:
    """:func:`log_lines` with the time each line was written."""
    end = min(until, plan.end)
    if end < plan.start or tail <= 0:
        return []
    stamped = [(t, line) for t, line in _startup(plan) if t <= end]
    period = plan.period
    last_tick = plan.stuck_since if plan.kind == "trainer" and plan.stuck_since else end
    first_t = plan.start
    if plan.oom or not math.isfinite(period):
        ticks = range(0)
    else:
        first = plan.start + 60.0 if plan.kind in ("vllm", "trainer") else plan.start + 5.0
        k_max = int((min(end, last_tick) - first) // period) if min(end, last_tick) >= first else -1
        ticks = range(max(0, k_max - tail + 1), k_max + 1)
        first_t = first
    stamped += [(first_t + k * period, _line(plan, k, first_t + k * period)) for k in ticks]
    stamped += _specials(plan, end)
    stamped.sort(key=lambda s: s[0])
    return [(t, clean(line, LINE_LIMIT)) for t, line in stamped[-tail:]]


# --- objects ----------------------------------------------------------------------------------------------


def _uid(*parts: object) -> str:
    h = f"{_hash(*parts, 'uid'):016x}{_hash(*parts, 'uid2'):016x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:32]}"


def _meta(name: str, namespace: str, created: float, labels: Mapping[str, str]) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name}
    if namespace:
        meta["namespace"] = namespace
    meta["uid"] = _uid(namespace, name)
    meta["creationTimestamp"] = iso(created)
    if labels:
        meta["labels"] = dict(labels)
    return meta


def _cpu_quantity(milli: int) -> str:
    """Milli-CPU as Kubernetes writes a quantity: ``168``, ``100m``."""
    return str(milli // 1000) if milli % 1000 == 0 else f"{milli}m"


def _memory_quantity(size: int) -> str:
    """Bytes as Kubernetes writes a quantity, in the largest binary unit that divides them: ``230Gi``,
    ``128Mi``, ``2145993728Ki``."""
    for shift, symbol in ((30, "Gi"), (20, "Mi"), (10, "Ki")):
        if size % (1 << shift) == 0:
            return f"{size >> shift}{symbol}"
    return str(size)


def pod_object(
    pod: Pod, *, image: str, gpus_label: str = "nvidia.com/gpu", oom_at: float = 0.0
) -> dict[str, Any]:
    """The pod as ``kubectl get pod -o yaml`` would show it (the fields the console reads, and their
    neighbours)."""
    owner_name = pod.owner.rpartition("/")[2]
    labels: dict[str, str] = {}
    if pod.owner_kind == "Job":
        labels = {
            "batch.kubernetes.io/job-name": owner_name,
            "batch.kubernetes.io/job-completion-index": str(pod.rank),
        }
    elif pod.owner_kind in ("ReplicaSet", "DaemonSet"):
        labels = {"app": owner_name}
    meta = _meta(pod.name, pod.namespace, pod.created_at, labels)
    if pod.owner_kind:
        ref_name = pod.name.rsplit("-", 1)[0] if pod.owner_kind == "ReplicaSet" else owner_name
        api = {"Job": "batch/v1", "ReplicaSet": "apps/v1", "DaemonSet": "apps/v1"}.get(pod.owner_kind, "v1")
        meta["ownerReferences"] = [
            {
                "apiVersion": api,
                "kind": pod.owner_kind,
                "name": ref_name,
                "controller": True,
                "blockOwnerDeletion": True,
            }
        ]
    requests = {
        **({"cpu": _cpu_quantity(pod.cpu)} if pod.cpu else {}),
        **({"memory": _memory_quantity(pod.memory)} if pod.memory else {}),
        **({gpus_label: str(pod.gpus)} if pod.gpus else {}),
    }
    resources = {
        **({"limits": {gpus_label: str(pod.gpus)}} if pod.gpus else {}),
        **({"requests": requests} if requests else {}),
    }
    # The pod's requests on its first container (the others ask nothing).
    containers = [
        {"name": c, "image": image, **({"resources": resources} if resources and i == 0 else {})}
        for i, c in enumerate(pod.containers or ("main",))
    ]
    spec: dict[str, Any] = {"containers": containers}
    if pod.node:
        spec["nodeName"] = pod.node
    spec["restartPolicy"] = "Never" if pod.owner_kind == "Job" else "Always"
    if pod.empty_dir:
        spec["volumes"] = [{"name": "dshm", "emptyDir": {"medium": "Memory"}}]
    statuses = []
    for c in containers:
        state: dict[str, Any]
        if pod.reason == "CrashLoopBackOff":
            state = {
                "waiting": {
                    "reason": "CrashLoopBackOff",
                    "message": "back-off 5m0s restarting failed container",
                }
            }
        elif pod.phase is PodPhase.RUNNING:
            state = {"running": {"startedAt": iso(max(pod.created_at, oom_at + 10.0 if oom_at else 0.0))}}
        else:
            state = {"waiting": {"reason": "ContainerCreating"}}
        status_c: dict[str, Any] = {
            "name": c["name"],
            "image": image,
            "ready": pod.ready,
            "restartCount": pod.restarts,
            "state": state,
        }
        if oom_at:
            status_c["lastState"] = {
                "terminated": {"reason": "OOMKilled", "exitCode": 137, "finishedAt": iso(oom_at)}
            }
        statuses.append(status_c)
    ready = "True" if pod.ready else "False"
    status: dict[str, Any] = {
        "phase": pod.phase.value,
        "conditions": [
            {"type": "PodScheduled", "status": "True" if pod.node else "False"},
            {"type": "Ready", "status": ready},
        ],
    }
    if pod.node:
        status["containerStatuses"] = statuses
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec, "status": status}


def node_object(node: Node, created: float, gpus_label: str = "nvidia.com/gpu") -> dict[str, Any]:
    meta = _meta(node.name, "", created, node.labels)
    spec: dict[str, Any] = {"providerID": node.provider_id} if node.provider_id else {}
    if node.cordoned:
        spec["unschedulable"] = True
    if node.taints:
        spec["taints"] = [
            {"key": t.key, **({"value": t.value} if t.value else {}), "effect": t.effect} for t in node.taints
        ]
    capacity: dict[str, str] = {}
    allocatable: dict[str, str] = {}
    if node.cpu_allocatable:
        allocatable["cpu"] = _cpu_quantity(node.cpu_allocatable)
    if node.memory_allocatable:
        allocatable["memory"] = _memory_quantity(node.memory_allocatable)
    if node.gpus_total:
        capacity[gpus_label] = str(node.gpus_total)
        allocatable[gpus_label] = str(node.gpus_allocatable)
    status = {
        "capacity": capacity,
        "allocatable": allocatable,
        "conditions": [
            {"type": c.type, "status": c.status, "reason": c.reason, "message": c.message}
            for c in node.conditions
        ],
        "nodeInfo": {
            "kubeletVersion": "v1.31.4-eks-aeac579",
            "containerRuntimeVersion": "containerd://1.7.25",
        },
    }
    return {"apiVersion": "v1", "kind": "Node", "metadata": meta, "spec": spec, "status": status}


def job_object(job: Job, created: float) -> dict[str, Any]:
    meta = _meta(
        job.name, job.namespace, created, {"kueue.x-k8s.io/queue-name": job.queue} if job.queue else {}
    )
    gpus = str(job.gpus_per_worker)
    spec = {
        "parallelism": job.workers,
        "completions": job.workers,
        "completionMode": "Indexed",
        "backoffLimit": job.backoff_limit,
        "suspend": job.state is JobState.QUEUED,
        "template": {
            "spec": {
                "restartPolicy": job.restart_policy,
                **({"priority": job.priority} if job.priority else {}),
                "containers": [
                    {"name": "trainer", "image": job.image, "resources": {"limits": {"nvidia.com/gpu": gpus}}}
                ],
            }
        },
    }
    status: dict[str, Any] = {}
    if job.started_at:
        status["startTime"] = iso(job.started_at)
        status["active"] = job.workers if job.state in (JobState.RUNNING, JobState.STARTING) else 0
    if job.state is JobState.SUCCEEDED:
        status["completionTime"] = iso(job.finished_at)
        status["conditions"] = [{"type": "Complete", "status": "True"}]
    elif job.state is JobState.QUEUED and job.pending_reason:
        status["conditions"] = [
            {"type": "Suspended", "status": "True", "reason": "Queued", "message": job.pending_reason}
        ]
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": meta, "spec": spec, "status": status}


def endpoint_object(ep: Endpoint, created: float) -> dict[str, Any]:
    meta = _meta(ep.name, ep.namespace, created, {"app": ep.name})
    container: dict[str, Any] = {"name": SERVER_CONTAINER.get(ep.server, "server"), "image": ep.image}
    if ep.gpus_per_replica:
        container["resources"] = {"limits": {"nvidia.com/gpu": str(ep.gpus_per_replica)}}
    spec: dict[str, Any] = {
        "replicas": ep.replicas_desired,
        "selector": {"matchLabels": {"app": ep.name}},
        "strategy": {
            "type": ep.strategy,
            "rollingUpdate": {"maxSurge": ep.max_surge, "maxUnavailable": ep.max_unavailable},
        },
        "template": {"metadata": {"labels": {"app": ep.name}}, "spec": {"containers": [container]}},
    }
    status = {"replicas": ep.replicas_desired, "readyReplicas": ep.replicas_ready}
    return {
        "apiVersion": "apps/v1",
        "kind": ep.workload_kind,
        "metadata": meta,
        "spec": spec,
        "status": status,
    }


# --- events -----------------------------------------------------------------------------------------------


def failed_scheduling(job: Job, t: float, source: str) -> Event | None:
    """The scheduler's refusal of a queued gang, as its retries fold into one event: the last retry (every 5
    minutes, its back-off cap) at or before ``t``, with the count of retries so far."""
    if job.state is not JobState.QUEUED or not job.pending_reason or not job.submitted_at:
        return None
    tries = int(max(0.0, t - job.submitted_at) // SCHEDULER_RETRY_S)
    when = job.submitted_at + tries * SCHEDULER_RETRY_S
    return Event(when, "job", job.key, "FailedScheduling", job.pending_reason, True, tries + 1, source)


# --- the embedded fleet's side ----------------------------------------------------------------------------


class SimInspect(SimCore):
    """What :class:`~aios_tui.sources.sim.SimSource` adds to be a
    :class:`~aios_tui.sources.base.LogReader` and an :class:`~aios_tui.sources.base.ObjectReader`, and to
    give its pods' facts and the events it lived. State is set by :meth:`_init_inspect`."""

    if TYPE_CHECKING:

        def fetch_now(self) -> SourceData: ...

    def _init_inspect(self) -> None:
        self._lived: deque[Event] = deque(maxlen=MAX_LIVED)
        self._replicas: dict[str, list[tuple[float, int]]] = {}
        """Endpoint key → (time, replicas) each time its replica count was set, for its logs' load."""
        self._ooms: dict[str, float] = {}
        """Pod key → when it was OOM-killed (some vLLM replicas made with the fleet)."""
        self._crashing: dict[str, int] = {}
        """Pods in a crash loop → their restarts as last given to the fleet's pod."""
        self._marked = False

    # events

    def _note(self, t: float, kind: str, key: str, reason: str, message: str, warning: bool = False) -> None:
        """Record something the fleet did (a scale, a cordon, an eviction …) as Kubernetes would tell it."""
        self._lived.append(Event(t, kind, key, reason, message, warning, 1, self.name))

    def _noted_replicas(self, ep: SimEndpoint, t: float, old: int) -> None:
        if ep.desired == old:
            return
        self._replicas.setdefault(ep.key, [(self._start, old)]).append((t, ep.desired))
        how = "up" if ep.desired > old else "down"
        self._note(
            t,
            "endpoint",
            ep.key,
            "ScalingReplicaSet",
            f"Scaled {how} replica set {ep.name}-{ep.template} from {old} to {ep.desired}",
        )

    def _events_now(self, fleet: Fleet, jobs: Sequence[Job], t: float) -> tuple[Event, ...]:
        """The events of the fleet as it stands and as it lived: XIDs with their time, a NotReady node, a
        node another controller cordoned, queued gangs' scheduling refusals, OOM kills and crash loops, and
        what it carried out (newest first, at most :data:`MAX_LIVED` + what stands)."""
        src, start = self.name, self._start
        out = list(self._lived)
        for node in fleet.nodes:
            if node.xid_gpu >= 0 and node.xid_at:
                uuid = fleet.gpus[node.gpu0 + node.xid_gpu].uuid
                said = f"{node.name} GPU {node.xid_gpu}: XID 79, the GPU has fallen off the bus"
                out.append(Event(node.xid_at, "gpu", uuid, "XID 79", said, True, 1, src))
            if not node.ready:
                said = f"Node {node.name} status is now: NodeNotReady"
                out.append(
                    Event(start - _NOT_READY_AGO, "node", node.name, "NodeNotReady", said, True, 1, src)
                )
            by = node.cordoned_by
            if node.cordoned and by and by != "aios-tui":
                said = f"Node {node.name} status is now: NodeNotSchedulable (cordoned by {by})"
                out.append(
                    Event(start - _CORDONED_AGO, "node", node.name, "NodeNotSchedulable", said, True, 1, src)
                )
        for job in jobs:
            refused = failed_scheduling(job, t, src)
            if refused is not None:
                out.append(refused)
        for key, restarts in self._crashing.items():
            pod = fleet.pods.get(key)
            host = fleet.node_by_name.get(pod.node) if pod is not None else None
            if pod is not None and host is not None and restarts:
                _, began = crash_pod(pod, host.xid_at, t)
                said = f"Back-off restarting failed container {pod.containers[0]} in pod {pod.name}"
                out.append(Event(began, "pod", key, "BackOff", said, True, restarts, src))
        for key, when in self._ooms.items():
            pod = fleet.pods.get(key)
            container = pod.containers[0] if pod is not None and pod.containers else "vllm"
            said = f"container {container} was OOM-killed loading the model's weights"
            out.append(Event(when, "pod", key, "OOMKilled", said, True, 1, src))
        out.sort(key=lambda e: e.time, reverse=True)
        return tuple(out)

    # pods' facts

    def _mark_facts(self, fleet: Fleet, t: float) -> None:
        """Give the fleet's pods what their status would tell (call with the lock held): once, an OOM kill
        on about :data:`OOM_SHARE` of the vLLM replicas made with the fleet; at each call, the crash loop of
        the DCGM exporter on a node whose GPU fell off the bus, its restarts counted with the kubelet's
        back-off. Only the pods concerned are replaced (ages and containers are set where pods are made)."""
        if not self._marked:
            self._marked = True
            for ep in fleet.endpoints.values():
                if ep.kind.server != "vLLM":
                    continue
                for key in ep.pods:
                    pod = fleet.pods[key]
                    when = oom_at(key, pod.created_at, fleet.salt, self._start)
                    if when:
                        self._ooms[key] = when
                        fleet.put_pod(replace(pod, restarts=1, reason="OOMKilled"))
            lost = {n.name for n in fleet.nodes if n.xid_gpu >= 0 and n.xid_at}
            if lost:  # once over every pod: the exporters on those nodes
                for key, pod in fleet.pods.items():
                    if pod.node in lost and pod.owner_kind == "DaemonSet" and "dcgm-exporter" in pod.owner:
                        self._crashing[key] = 0
        for key, given in list(self._crashing.items()):
            exporter = fleet.pods.get(key)
            node = fleet.node_by_name.get(exporter.node) if exporter is not None else None
            if exporter is None or node is None:
                del self._crashing[key]
                continue
            restarts, _ = crash_pod(exporter, node.xid_at, t)
            if restarts and restarts != given:
                self._crashing[key] = restarts
                fleet.put_pod(replace(exporter, restarts=restarts, reason="CrashLoopBackOff", ready=False))

    def _oom_time(self, pod: Pod) -> float:
        return self._ooms.get(pod.key, 0.0)

    # logs

    async def read_log(
        self, namespace: str, pod: str, *, container: str = "", previous: bool = False, tail: int = 500
    ) -> list[str]:
        return await asyncio.to_thread(self.read_log_now, namespace, pod, container, previous, tail)

    def read_log_now(
        self, namespace: str, pod: str, container: str = "", previous: bool = False, tail: int = 500
    ) -> list[str]:
        """The last ``tail`` lines of the pod's container (its previous run's with ``previous``)."""
        plan, t = self._plan_now(f"{namespace}/{pod}", container, previous)
        return log_lines(plan, t, max(1, min(tail, MAX_TAIL)))

    async def follow_log(
        self, namespace: str, pod: str, *, container: str = "", tail: int = 100
    ) -> AsyncIterator[str]:
        """The last ``tail`` lines, then each line as the simulated time reaches it; it ends when the pod
        is gone (a scale-down, a finished job). Each look moves the simulation to the clock, no more: the
        fleet's objects are built by the fetches alone."""
        key = f"{namespace}/{pod}"
        plan, t = await asyncio.to_thread(self._plan_now, key, container, False)
        for _, line in stamped_lines(plan, t, max(1, min(tail, MAX_TAIL))):
            yield line
        seen = t
        while True:
            await asyncio.sleep(FOLLOW_POLL_S)
            try:
                plan, t = await asyncio.to_thread(self._plan_now, key, container, False)
            except SourceError:
                return  # the pod is gone
            if t <= seen:
                continue
            for when, line in stamped_lines(plan, t, MAX_TAIL):
                if when > seen:
                    yield line
            seen = t

    def _plan_now(self, key: str, container: str, previous: bool) -> tuple[LogPlan, float]:
        """The fleet moved to the clock's time, and what the pod's container logs then."""
        with self._lock:
            fleet = self._ensure()
            self._advance(self._clock())
            self._mark_facts(fleet, self._t)
            return self._log_plan(key, container, previous), self._t

    def _log_plan(self, key: str, container: str, previous: bool) -> LogPlan:
        """What the pod's container logs (call with the lock held). Raises SourceError in the Kubernetes
        source's words."""
        fleet = self._ensure()
        pod = fleet.pods.get(key)
        if pod is None:
            raise SourceError(f"pod {key} not found")
        name = container or (pod.containers[0] if pod.containers else "main")
        if name not in pod.containers:
            raise SourceError(
                f"container {name} is not valid for pod {key}: it has {', '.join(pod.containers)}"
            )
        if not pod.node:
            raise SourceError(
                f'logs of pod {key}: container "{name}" in pod "{pod.name}" is waiting to start: '
                "ContainerCreating"
            )
        if previous and not pod.restarts:
            raise SourceError(f"no previous run of container {name} in pod {key}: it has not restarted")
        work = fleet.work.get(key)
        node = fleet.node_by_name.get(pod.node)
        if node is not None and not node.ready:  # the API server asks the node's kubelet, which is gone
            raise SourceError(
                f"logs of pod {key}: node {node.name} is NotReady: its kubelet does not answer "
                f"(Get https://{node.name}:10250/containerLogs/{key}/{name}: i/o timeout)"
            )
        xid_at = node.xid_at if node is not None and node.xid_gpu >= 0 else 0.0
        xid_gpu = node.xid_gpu if node is not None else -1
        uuid = fleet.gpus[node.gpu0 + xid_gpu].uuid if node is not None and xid_gpu >= 0 else ""
        base = LogPlan(pod, name, "generic", pod.created_at, xid_at=xid_at, xid_gpu=xid_gpu, xid_uuid=uuid)
        if isinstance(work, SimEndpoint):
            kind = "vllm" if work.kind.server == "vLLM" else "server"
            model = work.kind.model if kind == "vllm" else work.kind.model.rpartition("/")[2]
            plan = replace(
                base, kind=kind, server=work.kind.server, model=model, load=self._load(fleet, work)
            )
            oom = self._oom_time(pod)
            if oom:
                return replace(plan, end=oom, oom=True) if previous else replace(plan, start=oom + 10.0)
            return plan
        if isinstance(work, SimJob):
            return replace(
                base,
                kind="trainer",
                rank=max(0, pod.rank),
                workers=work.workers,
                gpu_model=work.gpu_model,
                stuck_since=work.stuck_since if work.stuck else 0.0,
            )
        if pod.reason == "CrashLoopBackOff" and node is not None:
            _, began = crash_pod(pod, node.xid_at, self._t)
            if previous:
                _, before = crash_pod(pod, node.xid_at, began - 1.0)
                return replace(base, kind="exporter", start=before, end=began - 1.0)
            return replace(base, kind="exporter", start=began)
        return base

    def _load(self, fleet: Fleet, ep: SimEndpoint) -> Callable[[float], float]:
        """The endpoint's load ρ at a past time, from its replica counts as they were set then."""
        changes = list(self._replicas.get(ep.key, ()))
        capacity, salt = ep.kind.capacity, fleet.salt

        def load(t: float) -> float:
            replicas = ep.desired
            if changes:
                i = bisect.bisect_right(changes, t, key=lambda c: c[0])
                replicas = changes[max(0, i - 1)][1]
            return demand(ep, t, salt) / (replicas * capacity) if replicas else math.inf

        return load

    # objects

    async def read_object(self, kind: str, key: str) -> str:
        return await asyncio.to_thread(self.read_object_now, kind, key)

    def read_object_now(self, kind: str, key: str) -> str:
        """``kind`` ``key`` as YAML shaped like the Kubernetes object. Raises SourceError."""
        data = self.fetch_now()
        salt = self._ensure().salt
        made = self._start - 86_400.0 * (30.0 + 300.0 * unit(_hash(salt, kind, key), 4))
        obj: dict[str, Any] | None = None
        if kind == "node":
            node = next((n for n in data.nodes if n.name == key), None)
            obj = node_object(node, made) if node is not None else None
        elif kind == "pod":
            pod = next((p for p in data.pods if p.key == key), None)
            if pod is not None:
                obj = pod_object(pod, image=self._image_of(pod), oom_at=self._oom_time(pod))
        elif kind == "job":
            job = next((j for j in data.jobs if j.key == key), None)
            obj = job_object(job, job.submitted_at or made) if job is not None else None
        elif kind == "endpoint":
            ep = next((e for e in data.endpoints if e.key == key), None)
            obj = endpoint_object(ep, made) if ep is not None else None
        else:
            raise SourceError(
                f"{self.name} shows nodes, pods, jobs and endpoints as YAML, not {clean(kind, 40)}"
            )
        if obj is None:
            raise SourceError(f"{kind} {key} not found in {self.name}")
        return object_yaml(obj)

    def _image_of(self, pod: Pod) -> str:
        with self._lock:
            work = self._ensure().work.get(pod.key)
        if isinstance(work, SimEndpoint):
            return work.image
        if isinstance(work, SimJob):
            return work.image
        app = pod.owner.rpartition("/")[2] or "debug"
        return f"public.ecr.aws/example/{app}:1.0"
