"""The embedded simulated fleet: the default source, a whole GPU fleet that lives in time and obeys actions.

Pools of 8-GPU H100, H200 and A100 nodes, 4- and 8-GPU L4 nodes and CPU nodes across three zones; training
gangs that run, queue for capacity, finish and free their GPUs; serving endpoints whose traffic follows the
day and whose latency climbs when replicas run short; a handful of faults an on-call engineer would find.

Determinism: the state is a function of the seed, the size, the clock readings and the actions applied.
The layout comes from ``random.Random(seed)``; readings come from integer hashes of (seed, entity, time
bucket). Time moves in events (a pod becomes ready, a job finishes, the HPA evaluates, a job is submitted)
processed in time order, so a fake clock drives everything in tests.

Scheduling: every gang and every replica is placed by ``aios_tui.alloc.placement`` over the fleet as it
stands (cordoned, NotReady and failed nodes receive nothing), so a plan made over a snapshot lands where it
said. Gangs start all or nothing; evicting one rank restarts the whole gang from its last checkpoint.
Production endpoints carry a PodDisruptionBudget, and an eviction it forbids is refused as Kubernetes does.

Cost: objects that did not change are reused between fetches; GPU telemetry is refreshed on a rotating
slice (a staggered DCGM scrape) plus every GPU an action touched.

Triage (``_sim_inspect``): pods carry restarts, age and reasons, the fleet tells the events it lived (its
XID with its time, scheduling refusals, OOM kills, a crash loop, what it carried out), and it reads pods'
logs and shows objects as YAML shaped like Kubernetes', its incidents in them.
"""

from __future__ import annotations

import asyncio
import functools
import heapq
import math
import random
import re
import threading
import zlib
from collections import Counter, deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import ParamSpec

from aios_tui.alloc.placement import Capacity, GangRequest, Refusal
from aios_tui.alloc.prices import INSTANCE_TYPES
from aios_tui.domain import (
    IDLE_UTIL_PCT,
    NA,
    Condition,
    Endpoint,
    FleetSnapshot,
    Gpu,
    Health,
    Hpa,
    Job,
    JobState,
    Metric,
    Node,
    Pdb,
    Pod,
    Taint,
    Throttle,
)
from aios_tui.domain.clock import now as wall_now
from aios_tui.sources._sim_fleet import (
    HPA_METRIC,
    JOB_READY_DELAY,
    MAX_NODES,
    NODE_BOOT_DELAY,
    REPLICA_READY_DELAY,
    ZONES,
    Fleet,
    SimEndpoint,
    SimJob,
    SimNode,
    add_node,
    build_fleet,
    create_job_pod,
    create_replica_pod,
    demand,
    draw_workers,
    hpa_desired,
    job_duration,
    mark_running,
    new_job,
)
from aios_tui.sources._sim_inspect import SimInspect
from aios_tui.sources._sim_signals import (
    GPU_SPECS,
    gpu_physics,
    mix,
    serving_stats,
    suffix,
    template_hash,
    unit,
)
from aios_tui.sources.base import EvictionBlocked, LaunchSpec, SourceData, SourceError

__all__ = ["SimSource"]

_P = ParamSpec("_P")

MAX_CATCHUP = 3600.0
"""A clock jump longer than this is compressed: older events are applied as if they happened then."""
HPA_PERIOD = 30.0
HPA_WINDOW = 300.0
"""Scale-down stabilisation window, as the HPA's default."""
FINISHED_KEPT = 32
CHECKPOINT_S = 1800.0
"""Training jobs checkpoint this often: a restarted gang loses at most this much of its work."""
PDB_VIOLATION = "Cannot evict pod as it would violate the pod's disruption budget."
"""The Eviction API's 429 message, word for word."""
MAX_REPLICAS = 1000
ERROR_SLO = 0.01
"""Every simulated endpoint's error-rate objective: 1 % (its errors idle at 0.02–0.06 % and climb as its
replicas saturate; past ρ = 1 it sheds requests)."""
_SLICE_MIN, _SLICE_MAX, _SLICE_SHARE = 512, 4096, 10
"""GPUs refreshed per fetch: a tenth of the fleet, at least 512 and at most 4096."""
_NAME = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")

_READY, _FINISH, _SUBMIT, _HPA, _NODE_UP = range(5)

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
_GPU_METRICS = {"util": 0, "mem_used": 1, "temp": 2, "power": 3, "sm_clock": 4}
_ENDPOINT_METRICS = ("qps", "p50_ms", "p99_ms", "error_rate", "replicas_ready")

_Values = tuple[float, float, float, float, float, Throttle]


def _metric(x: float) -> Metric:
    return NA if math.isnan(x) else x


def _guarded(ep: SimEndpoint) -> bool:
    """Production endpoints carry a PodDisruptionBudget."""
    return "prod" in ep.namespace


def _min_available(ep: SimEndpoint) -> int:
    """The budget's minAvailable: all replicas but one, and never fewer than one."""
    return max(1, ep.desired - 1)


class SimSource(SimInspect):
    """A simulated GPU fleet of ``nodes`` nodes; the same ``seed`` and clock readings give the same fleet.

    ``start`` is the simulated time at which the fleet is laid out (default: the clock at construction);
    each fetch advances it to ``clock()``.
    """

    kind = "sim"

    def __init__(
        self,
        *,
        seed: int = 0,
        nodes: int = 200,
        name: str = "sim",
        interval: float = 2.0,
        timeout: float = 5.0,
        clock: Callable[[], float] = wall_now,
        start: float | None = None,
    ) -> None:
        if isinstance(nodes, bool) or not isinstance(nodes, int) or not 1 <= nodes <= MAX_NODES:
            raise ValueError(f"nodes must be a whole number from 1 to {MAX_NODES}, got {nodes!r}")
        if not interval > 0 or not timeout > 0:
            raise ValueError(f"interval and timeout must be positive, got {interval!r} and {timeout!r}")
        self.name = name
        self.interval = interval
        self.timeout = timeout
        self._seed = seed
        self._size = nodes
        self._clock = clock
        self._start = float(clock() if start is None else start)
        self._t = self._start
        self._lock = threading.Lock()
        self._fleet: Fleet | None = None
        self._events: list[tuple[float, int, int, str]] = []
        self._event_seq = 0
        self._cap_dirty = False
        self._finished: deque[tuple[str, SimJob]] = deque()
        self._gpu_objs: list[Gpu] = []
        self._uuid_pos: dict[str, int] = {}
        self._cursor = 0
        self._nodes_tuple: tuple[Node, ...] = ()
        self._pods_tuple: tuple[Pod, ...] = ()
        self._rho: dict[str, float] = {}
        self._rho_t = math.nan
        self._state_at_start: dict[str, tuple[object, ...]] = {}
        """GPU uuid → what it ran at the start (:meth:`_gpu_state`); a node added since has none."""
        self._ready_at_start: dict[str, int] = {}
        self._init_inspect()

    # --- the Source protocol ----------------------------------------------------------------------------

    async def fetch(self) -> SourceData:
        return await asyncio.to_thread(self.fetch_now)

    def fetch_now(self) -> SourceData:
        """Advance the fleet to ``clock()`` and return all of it."""
        with self._lock:
            fleet = self._ensure()
            self._advance(self._clock())
            t = self._t
            endpoints, pdbs = self._build_endpoints(fleet, t)
            jobs = self._build_jobs(fleet, t)
            gpus = self._refresh_gpus(fleet, t)
            nodes = self._build_nodes(fleet)
            self._mark_facts(fleet, t)  # OOM kills, crash loops
            if fleet.pods_dirty:
                self._pods_tuple = tuple(fleet.pods.values())
                fleet.pods_dirty = False
            return SourceData(
                nodes=nodes,
                gpus=gpus,
                pods=self._pods_tuple,
                jobs=jobs,
                endpoints=endpoints,
                pools=fleet.pools,
                pdbs=pdbs,
                context=f"{self.name} (simulated, seed {self._seed}, {self._size} nodes)",
                events=self._events_now(fleet, jobs, t),
            )

    async def close(self) -> None:
        """Nothing to release: the fleet lives in memory."""

    # --- actions ------------------------------------------------------------------------------------------

    async def scale_endpoint(self, namespace: str, name: str, replicas: int) -> None:
        await self._act(self._scale, namespace, name, replicas)

    async def redeploy_endpoint(self, namespace: str, name: str, image: str | None = None) -> None:
        await self._act(self._redeploy, namespace, name, image)

    async def set_cordon(self, node: str, cordoned: bool) -> None:
        await self._act(self._cordon, node, cordoned)

    async def evict_pod(self, namespace: str, name: str) -> None:
        await self._act(self._evict, namespace, name)

    async def launch_job(self, spec: LaunchSpec) -> None:
        await self._act(self._launch, spec)

    def queues_jobs(self) -> bool:
        """A job launched with no placement waits in the queue and starts whole once it fits."""
        return True

    async def scale_pool(self, name: str, desired: int) -> None:
        """Set a pool's desired capacity, as an Auto Scaling group: new nodes join Ready after
        ``NODE_BOOT_DELAY``; a scale-down terminates the emptiest nodes at once, their pods lost (a training
        gang restarts, a replica is recreated elsewhere, another controller's pod moves)."""
        await self._act(self._scale_pool, name, desired)

    async def _act(self, fn: Callable[_P, None], *args: _P.args, **kwargs: _P.kwargs) -> None:
        await asyncio.to_thread(self._locked, functools.partial(fn, *args, **kwargs))

    def _locked(self, action: Callable[[], None]) -> None:
        """Run an action at the current time, then let the scheduler react to what it changed."""
        with self._lock:
            self._ensure()
            self._advance(self._clock())
            action()
            if self._cap_dirty:
                self._schedule(self._t)

    def _scale(self, namespace: str, name: str, replicas: int) -> None:
        if isinstance(replicas, bool) or not isinstance(replicas, int):
            raise ValueError(f"replicas must be a whole number, got {replicas!r}")
        if not 0 <= replicas <= MAX_REPLICAS:
            raise ValueError(f"replicas must be between 0 and {MAX_REPLICAS}, got {replicas}")
        ep = self._endpoint(namespace, name)
        old, ep.desired = ep.desired, replicas
        self._noted_replicas(ep, self._t, old)
        self._reconcile(ep)

    def _redeploy(self, namespace: str, name: str, image: str | None) -> None:
        ep = self._endpoint(namespace, name)
        if image is not None:
            if not image.strip():
                raise ValueError("image must not be empty")
            ep.image = image
        ep.revision += 1
        ep.template = template_hash(mix(ep.salt + ep.revision))
        said = f"Scaled up replica set {ep.name}-{ep.template} to 1 (rollout of revision {ep.revision + 1})"
        self._note(self._t, "endpoint", ep.key, "ScalingReplicaSet", said)
        self._reconcile(ep)

    def _cordon(self, name: str, cordoned: bool) -> None:
        node = self._node(name)
        if node.cordoned != cordoned:
            node.cordoned = cordoned
            node.cordoned_by = "aios-tui" if cordoned else ""
            node.obj = None
            self._cap_dirty = True
            now = "NodeNotSchedulable" if cordoned else "NodeSchedulable"
            self._note(self._t, "node", name, now, f"Node {name} status is now: {now}")

    def _evict(self, namespace: str, name: str) -> None:
        fleet, t = self._f, self._t
        key = f"{namespace}/{name}"
        pod = fleet.pods.get(key)
        if pod is None:
            raise SourceError(f"pod {key} not found")
        work = fleet.work.get(key)
        if (
            isinstance(work, SimEndpoint)
            and pod.ready
            and _guarded(work)
            and self._ready(fleet, work) <= _min_available(work)
        ):
            raise EvictionBlocked(PDB_VIOLATION, pdb=work.key)
        self._note(t, "pod", key, "Killing", f"Stopping pod {key}: evicted (Eviction API)")
        if isinstance(work, SimEndpoint):
            work.pods.pop(key, None)
            fleet.remove_pod(key)
            self._cap_dirty = True
            self._reconcile(work)
        elif isinstance(work, SimJob):
            self._restart(work, t)
        else:
            fleet.remove_pod(key)
            if pod.owner_kind:
                self._recreate_plain(pod, t)

    def _launch(self, spec: LaunchSpec) -> None:
        fleet, t = self._f, self._t
        for what, value in (("namespace", spec.namespace), ("name", spec.name)):
            if not _NAME.fullmatch(value):
                raise ValueError(f"job {what} {value!r} is not a valid Kubernetes name")
        spec.check_shape()
        if spec.zone and spec.zone not in ZONES:
            raise ValueError(f"unknown zone {spec.zone!r}; the fleet has {', '.join(ZONES)}")
        pinned = [self._node(n) for n in spec.placement]
        model = self._resolve_model(spec.gpu_model, pinned)
        per_node = max(n.itype.gpus for n in fleet.by_model[model])
        if spec.gpus_per_worker > per_node:
            raise ValueError(
                f"{model} nodes have {per_node} GPUs; a worker cannot ask for {spec.gpus_per_worker}"
            )
        for node in pinned:
            if node.model != model:
                raise ValueError(f"node {node.name} has {node.model or 'no'} GPUs, the job asks for {model}")
            if spec.zone and node.zone != spec.zone:
                raise ValueError(f"node {node.name} is in {node.zone}, the job asks for {spec.zone}")
        key = f"{spec.namespace}/{spec.name}"
        if key in fleet.jobs:
            raise SourceError(f"job {key} already exists")
        fleet.job_seq += 1
        rng = random.Random(mix(fleet.salt ^ fleet.job_seq))
        job = SimJob(
            seq=fleet.job_seq,
            namespace=spec.namespace,
            name=spec.name,
            workers=spec.workers,
            per_worker=spec.gpus_per_worker,
            gpu_model=model,
            submitted_at=t,
            duration=rng.uniform(3600.0, 6 * 3600.0),
            salt=mix(fleet.salt ^ (fleet.job_seq * 0x51ED27)),
            priority=spec.priority,
            queue=f"{spec.namespace}-{model.lower()}",
            image=spec.image,
            pinned=tuple(spec.placement),
            zones=(spec.zone,) if spec.zone else (),
            util_base=rng.uniform(89.0, 96.0),
            intensity=rng.uniform(0.86, 1.06),
            mem_frac=rng.uniform(0.6, 0.95),
            pods=[""] * spec.workers,
        )
        fleet.jobs[key] = job
        self._cap_dirty = True

    def _scale_pool(self, name: str, desired: int) -> None:
        fleet, t = self._f, self._t
        if isinstance(desired, bool) or not isinstance(desired, int):
            raise ValueError(f"desired capacity must be a whole number, got {desired!r}")
        pool = next((p for p in fleet.pools if p.name == name), None)
        if pool is None:
            raise SourceError(f"node pool {name} not found")
        if not pool.min_size <= desired <= pool.max_size:
            raise ValueError(
                f"desired capacity {desired} is outside {name}'s limits {pool.min_size}–{pool.max_size}"
            )
        members = [n for n in fleet.nodes if n.pool == name]
        self._set_pool(name, desired=desired)
        need = desired - len(members) - fleet.launching.get(name, 0)
        for _ in range(max(0, need)):
            fleet.launching[name] = fleet.launching.get(name, 0) + 1
            lo, hi = NODE_BOOT_DELAY
            salt = zlib.crc32(f"{name}:{fleet.pool_next.get(name, 0)}:{fleet.launching[name]}".encode())
            self._push(t + lo + (hi - lo) * unit(fleet.salt, salt), _NODE_UP, name)
        excess = len(members) - desired
        if excess > 0:
            # The emptiest first, the newest on ties: what ``alloc.pools.removal_order`` predicts.
            members.sort(key=lambda n: n.name, reverse=True)
            members.sort(key=lambda n: n.used)
            for node in members[:excess]:
                self._terminate(node, t)
            self._set_pool(name)

    def _set_pool(self, name: str, *, desired: int | None = None) -> None:
        """Refresh the pool's node count (and set its desired capacity)."""
        fleet = self._f
        count = sum(1 for n in fleet.nodes if n.pool == name)
        fleet.pools = tuple(
            replace(p, nodes=count, desired=p.desired if desired is None else desired)
            if p.name == name
            else p
            for p in fleet.pools
        )

    def _node_up(self, name: str, t: float) -> None:
        """A launch of pool ``name`` finished: the node joins Ready, unless the pool is full by now."""
        fleet = self._f
        fleet.launching[name] = max(0, fleet.launching.get(name, 0) - 1)
        pool = next((p for p in fleet.pools if p.name == name), None)
        if pool is None:
            return
        members = [n for n in fleet.nodes if n.pool == name]
        if len(members) >= pool.desired_capacity:
            return
        itype = INSTANCE_TYPES[pool.instance_type]
        per_zone = {z: 0 for z in pool.zones}
        for n in members:
            per_zone[n.zone] = per_zone.get(n.zone, 0) + 1
        zone = min(pool.zones, key=lambda z: per_zone[z])
        ordinal = fleet.pool_next.get(name, len(members))
        fleet.pool_next[name] = ordinal + 1
        rng = random.Random(mix(fleet.salt ^ zlib.crc32(f"{name}/{ordinal}".encode())))
        first = len(fleet.gpus)
        node = add_node(fleet, name, zone, ordinal, itype, GPU_SPECS.get(itype.gpu_model), rng)
        for pos in range(first, len(fleet.gpus)):
            self._uuid_pos[fleet.gpus[pos].uuid] = pos
            self._gpu_objs.append(self._read_gpu(fleet, pos, t))
        node.obj = None
        self._set_pool(name)
        self._cap_dirty = True

    def _terminate(self, node: SimNode, t: float) -> None:
        """The machine is gone: its pods with it, their controllers react; then the node leaves the fleet."""
        fleet = self._f
        for key, pod in list(fleet.pods.items()):
            if pod.node != node.name or key not in fleet.pods:
                continue
            work = fleet.work.get(key)
            if isinstance(work, SimEndpoint):
                work.pods.pop(key, None)
                fleet.remove_pod(key)
                self._reconcile(work)
            elif isinstance(work, SimJob):
                self._restart(work, t)
            else:
                fleet.remove_pod(key)
                if pod.owner_kind and pod.owner_kind != "DaemonSet":
                    self._recreate_plain(pod, t)
        for job in fleet.jobs.values():
            if node.name in job.pinned:
                job.pinned = ()
        old = fleet.gpus
        fleet.nodes.remove(node)
        del fleet.node_by_name[node.name]
        if node.model:
            fleet.by_model[node.model].remove(node)
        keep = [pos for pos, g in enumerate(old) if g.node is not node]
        new_pos = {pos: i for i, pos in enumerate(keep)}
        fleet.gpus = [old[pos] for pos in keep]
        self._gpu_objs = [self._gpu_objs[pos] for pos in keep]
        self._uuid_pos = {g.uuid: i for i, g in enumerate(fleet.gpus)}
        fleet.dirty_gpus = {new_pos[p] for p in fleet.dirty_gpus if p in new_pos}
        gpu0 = 0
        for n in fleet.nodes:
            n.gpu0 = gpu0
            gpu0 += len(n.owners)
        self._cursor = self._cursor if self._cursor < len(fleet.gpus) else 0
        self._nodes_tuple = ()
        self._cap_dirty = True

    # --- history ------------------------------------------------------------------------------------------

    def warmup(self, kind: str, key: str, metric: str, points: int, step: float) -> Sequence[float]:
        """Readings for the ``points`` steps before the fleet was laid out (before the console opened),
        oldest first, from the same functions as the live ones and the fleet as it stood then.

        The fleet is not a history provider: the poller keeps what each fetch returned (the history it
        lived, an incident included after it was fixed) and asks this only for the time before the first
        fetch. Endpoints are drawn with their replicas at the start; a GPU (or a node with one) whose work
        changed since (given to another pod, freed, its job hung or ended, its node down) has none: NaN, as
        today's work would be a made-up past. An unknown key gives NaNs; an unknown kind or metric raises
        ValueError.
        """
        if not step > 0:
            raise ValueError(f"step must be positive, got {step!r}")
        with self._lock:
            fleet = self._ensure()
            times = [self._start - (points - i) * step for i in range(max(0, points))]
            if kind == "gpu":
                if metric not in _GPU_METRICS:
                    raise ValueError(f"unknown GPU metric {metric!r}; known: {', '.join(_GPU_METRICS)}")
                pos = self._uuid_pos.get(key)
                if pos is None or self._state_at_start.get(key) != self._gpu_state(fleet, pos):
                    return [math.nan] * len(times)
                i = _GPU_METRICS[metric]
                out = []
                for t in times:
                    values = self._gpu_values(fleet, pos, t, self._ready_at_start)
                    out.append(math.nan if values is None else float(values[i]))
                return out
            if kind == "node":
                if metric != "util":
                    raise ValueError(f"unknown node metric {metric!r}; known: util")
                node = fleet.node_by_name.get(key)
                at_start = self._state_at_start
                if node is None or any(
                    at_start.get(fleet.gpus[node.gpu0 + i].uuid) != self._gpu_state(fleet, node.gpu0 + i)
                    for i in range(len(node.owners))
                ):
                    return [math.nan] * len(times)
                return [self._node_util(fleet, node, t, self._ready_at_start) for t in times]
            if kind == "endpoint":
                if metric not in _ENDPOINT_METRICS:
                    raise ValueError(
                        f"unknown endpoint metric {metric!r}; known: {', '.join(_ENDPOINT_METRICS)}"
                    )
                ep = fleet.endpoints.get(key)
                ready = self._ready_at_start.get(key)
                if ep is None or ready is None:
                    return [math.nan] * len(times)
                j = _ENDPOINT_METRICS.index(metric)
                return [self._endpoint_values(fleet, ep, ready, t)[j] for t in times]
            raise ValueError(f"unknown history kind {kind!r}; known: gpu, node, endpoint")

    @staticmethod
    def _gpu_state(fleet: Fleet, pos: int) -> tuple[object, ...]:
        """What a GPU's readings depend on besides the time and its endpoint's replicas: what it runs and in
        which state. The warm-up draws a GPU whose state is still the start's, and no other."""
        g = fleet.gpus[pos]
        node = g.node
        owner = node.owners[g.index] if g.index < len(node.owners) else ""
        work = fleet.work.get(owner) if owner else None
        pod = fleet.pods.get(owner) if owner else None
        job = (work.state, work.stuck) if isinstance(work, SimJob) else None
        return (owner, node.ready, g.index == node.xid_gpu, job, pod is not None and pod.ready)

    # --- model time ---------------------------------------------------------------------------------------

    @property
    def _f(self) -> Fleet:
        assert self._fleet is not None
        return self._fleet

    def _ensure(self) -> Fleet:
        if self._fleet is not None:
            return self._fleet
        fleet = self._fleet = build_fleet(self.name, self._seed, self._size, self._start)
        for key, job in fleet.jobs.items():
            if job.state is JobState.RUNNING and math.isfinite(job.duration):
                self._push(job.started_at + job.duration, _FINISH, key)
            elif job.state is JobState.SUCCEEDED:
                self._finished.append((key, job))
        if any(ep.hpa for ep in fleet.endpoints.values()):
            self._push(self._start + HPA_PERIOD, _HPA, "")
        self._uuid_pos = {g.uuid: i for i, g in enumerate(fleet.gpus)}
        self._gpu_objs = [self._read_gpu(fleet, i, self._start) for i in range(len(fleet.gpus))]
        fleet.dirty_gpus.clear()
        self._schedule(self._start)  # after the readings: the engine sees nodes, whose health they give
        # What the warm-up history (the time before the start) is drawn from: the fleet as it stood then.
        self._state_at_start = {g.uuid: self._gpu_state(fleet, i) for i, g in enumerate(fleet.gpus)}
        self._ready_at_start = {k: self._ready(fleet, ep) for k, ep in fleet.endpoints.items()}
        return fleet

    def _push(self, when: float, kind: int, key: str) -> None:
        self._event_seq += 1
        heapq.heappush(self._events, (when, self._event_seq, kind, key))

    def _advance(self, now: float) -> None:
        """Apply every event up to ``now`` in time order; a clock that goes back leaves the fleet as it is."""
        if now <= self._t:
            return
        floor = now - MAX_CATCHUP
        events = self._events
        while events and events[0][0] <= now:
            when, _, kind, key = heapq.heappop(events)
            self._t = self._f.now = max(when, floor, self._t)
            self._handle(kind, key, self._t)
            if self._cap_dirty:
                self._schedule(self._t)
        self._t = self._f.now = now
        if self._cap_dirty:
            self._schedule(now)

    def _handle(self, kind: int, key: str, t: float) -> None:
        fleet = self._f
        if kind == _READY:
            self._pod_ready(key)
        elif kind == _FINISH:
            job = fleet.jobs.get(key)
            if job is None or job.state not in (JobState.RUNNING, JobState.STARTING):
                return
            if job.started_at + job.duration - job.done > t:  # set for a run that a restart ended
                return
            if job.state is JobState.STARTING:  # ranks still starting: finish once they run
                self._push(t + 60.0, _FINISH, key)
                return
            self._finish(job, t)
        elif kind == _SUBMIT:
            rng = random.Random(mix(fleet.salt ^ (0x5B << 48) ^ fleet.job_seq))
            workers, duration, priority = draw_workers(rng), job_duration(rng), rng.choice((0, 0, 0, 100))
            job = new_job(
                fleet, rng, model=key, workers=workers, submitted_at=t, duration=duration, priority=priority
            )
            job.pods = [""] * job.workers
            self._cap_dirty = True
        elif kind == _HPA:
            self._hpa_tick(t)
            self._push(t + HPA_PERIOD, _HPA, "")
        elif kind == _NODE_UP:
            self._node_up(key, t)

    def _pod_ready(self, key: str) -> None:
        fleet = self._f
        pod = fleet.pods.get(key)
        if pod is None or pod.ready or not pod.node:
            return
        mark_running(fleet, key)
        work = fleet.work.get(key)
        if isinstance(work, SimJob):
            if work.state is JobState.STARTING and all(k and fleet.pods[k].ready for k in work.pods):
                work.state = JobState.RUNNING
                self._touch_job(work)
        elif isinstance(work, SimEndpoint):
            fleet.dirty_gpus.update(self._positions(key))
            self._reconcile(work)

    def _finish(self, job: SimJob, t: float) -> None:
        fleet = self._f
        job.state = JobState.SUCCEEDED
        job.finished_at = t
        for key in job.pods:
            if key:
                fleet.remove_pod(key)
        job.pods = []
        self._cap_dirty = True
        rng = random.Random(mix(job.salt))
        self._push(t + rng.uniform(120.0, 900.0), _SUBMIT, job.gpu_model)
        self._finished.append((job.key, job))
        while len(self._finished) > FINISHED_KEPT:
            old_key, old = self._finished.popleft()
            if fleet.jobs.get(old_key) is old:
                del fleet.jobs[old_key]

    def _hpa_tick(self, t: float) -> None:
        fleet = self._f
        for ep in fleet.endpoints.values():
            if ep.hpa is None:
                continue
            ready = self._ready(fleet, ep)
            if not ready:
                continue
            want = hpa_desired(ep, demand(ep, t, fleet.salt) / ready, ep.desired)
            recs = ep.hpa_recs
            recs.append((t, want))
            while recs[0][0] < t - HPA_WINDOW:
                recs.pop(0)
            new = want if want > ep.desired else max(r for _, r in recs)
            if new != ep.desired:
                old, ep.desired = ep.desired, new
                self._noted_replicas(ep, t, old)
                self._reconcile(ep)

    # --- scheduling ---------------------------------------------------------------------------------------

    def _schedule(self, t: float) -> None:
        """Place waiting replicas, then start queued jobs that fit, in priority then submission order.

        Everything goes through the alloc engine over the fleet as it stands, so a plan made over a fresh
        snapshot (``place_gang``, ``plan_drain``) predicts exactly where the pods land.
        """
        fleet = self._f
        self._cap_dirty = False
        queue = self._queue(fleet)
        if not fleet.unplaced and not queue:
            return
        cap = self._capacity()
        refused: set[GangRequest] = set()  # requests already found not to fit in this pass
        for key in list(fleet.unplaced):
            ep = fleet.work[key]
            assert isinstance(ep, SimEndpoint), "ranks are bound with their gang, never left waiting"
            request = GangRequest(1, ep.kind.gpus, ep.kind.gpu_model, name=ep.key)
            if request in refused:
                continue
            placed = cap.place(request)
            if isinstance(placed, Refusal):
                refused.add(request)
                continue
            cap.commit(placed)
            self._bind(key, fleet.node_by_name[placed.nodes[0]], ep.kind.gpus, t, REPLICA_READY_DELAY)
        for job in queue:
            if job.pinned:
                job.reason = self._pinned_short(fleet, job)
                if not job.reason:
                    self._start_job(job, job.pinned, t)
                    cap = self._capacity()  # the pin bypassed the engine: re-read what is left
                continue
            zone = job.zones[0] if job.zones else ""
            request = GangRequest(job.workers, job.per_worker, job.gpu_model, zone, job.priority, job.key)
            placed = cap.place(request)
            if isinstance(placed, Refusal):
                job.reason = placed.reason
            else:
                cap.commit(placed)
                job.reason = ""
                self._start_job(job, placed.nodes, t)

    def _capacity(self) -> Capacity:
        """The alloc engine's view of the fleet now, measuring fragmentation as a snapshot of it would."""
        fleet = self._f
        counts: Counter[int] = Counter()
        for job in fleet.jobs.values():
            counts[job.per_worker] += job.workers
        for ep in fleet.endpoints.values():
            counts[ep.kind.gpus] += ep.desired
        total = sum(counts.values())
        # the distribution placement.demand_sizes reads from a snapshot of this fleet (tested to agree)
        sizes = {size: n / total for size, n in sorted(counts.items()) if n} if total else None
        snapshot = FleetSnapshot(self._t, nodes=self._build_nodes(fleet))
        return Capacity.from_snapshot(snapshot, sizes=sizes)

    @staticmethod
    def _queue(fleet: Fleet) -> list[SimJob]:
        queued = [j for j in fleet.jobs.values() if j.state is JobState.QUEUED]
        queued.sort(key=lambda j: (-j.priority, j.submitted_at, j.seq))
        return queued

    @staticmethod
    def _pinned_short(fleet: Fleet, job: SimJob) -> str:
        """Why the nodes a launch pinned its ranks to cannot take them now ("" when they can)."""
        for name, ranks in Counter(job.pinned).items():
            node = fleet.node_by_name[name]
            need = ranks * job.per_worker
            if not node.ready:
                return f"planned node {name} is NotReady"
            if node.cordoned:
                return f"planned node {name} is cordoned"
            if not node.schedulable:
                return f"planned node {name} has a failed GPU"
            if node.free < need:
                return f"planned node {name} has {node.free} of the {need} GPUs it needs free"
        return ""

    def _start_job(self, job: SimJob, nodes: Sequence[str], t: float) -> None:
        fleet = self._f
        job.state = JobState.STARTING
        job.started_at = t
        job.zone = fleet.node_by_name[nodes[0]].zone
        job.placement = list(nodes)
        job.pods = [""] * job.workers
        for rank, name in enumerate(nodes):
            key = create_job_pod(fleet, job, rank)
            self._bind(key, fleet.node_by_name[name], job.per_worker, t, JOB_READY_DELAY)
        self._push(t + job.duration - job.done, _FINISH, job.key)
        where = ", ".join(dict.fromkeys(nodes))
        self._note(t, "job", job.key, "SuccessfulCreate", f"Created {job.workers} pods (ranks) on {where}")

    def _restart(self, job: SimJob, t: float) -> None:
        """A gang lost a rank: every rank goes, the job queues again and resumes from its last checkpoint.

        A hung gang comes back healthy (restarting is the cure for a stuck collective); a pin from the
        launch is dropped, as it was the plan for the first start.
        """
        fleet = self._f
        for key in job.pods:
            if key:
                fleet.remove_pod(key)
        said = f"a rank was lost: all {job.workers} ranks stop; the gang queues, resumes from its checkpoint"
        self._note(t, "job", job.key, "GangRestart", said, warning=True)
        if job.stuck:
            job.stuck = False
            job.duration = job_duration(random.Random(job.salt))
            job.done = job.stuck_progress * job.duration
        elif job.state is JobState.RUNNING:
            job.done += max(0.0, t - job.started_at - CHECKPOINT_S)
        job.state = JobState.QUEUED
        job.placement = []
        job.pods = [""] * job.workers
        job.pinned = ()
        job.zone = ""
        self._cap_dirty = True

    def _bind(self, key: str, node: SimNode, gpus: int, t: float, delay: tuple[float, float]) -> None:
        self._f.bind(key, node, gpus)
        lo, hi = delay
        self._push(t + lo + (hi - lo) * unit(self._f.salt, zlib.crc32(key.encode())), _READY, key)

    def _reconcile(self, ep: SimEndpoint) -> None:
        """The Deployment controller: match the replica count, then roll one old pod at a time."""
        fleet = self._f
        keys = list(ep.pods)
        excess = len(keys) - ep.desired
        if excess > 0:
            age = {k: i for i, k in enumerate(keys)}

            def victim_order(k: str) -> tuple[bool, bool, bool, int]:
                pod = fleet.pods[k]
                return (k not in fleet.unplaced, pod.ready, ep.pods[k] == ep.template, -age[k])

            for k in sorted(keys, key=victim_order)[:excess]:
                self._drop_replica(ep, k)
        for _ in range(ep.desired - len(ep.pods)):
            self._new_replica(ep)
        old = [k for k, h in ep.pods.items() if h != ep.template]
        if old and all(fleet.pods[k].ready for k, h in ep.pods.items() if h == ep.template):
            self._drop_replica(ep, min(old, key=lambda k: fleet.pods[k].ready))
            self._new_replica(ep)

    def _new_replica(self, ep: SimEndpoint) -> None:
        """A Pending replica; the scheduling pass that follows every action and event places it."""
        create_replica_pod(self._f, ep)
        self._cap_dirty = True

    def _drop_replica(self, ep: SimEndpoint, key: str) -> None:
        del ep.pods[key]
        self._f.remove_pod(key)
        self._cap_dirty = True

    def _recreate_plain(self, pod: Pod, t: float) -> None:
        """A DaemonSet pod comes back on its node; another controller's pod on the next node of its kind."""
        fleet = self._f
        node = fleet.node_by_name[pod.node]
        if pod.owner_kind != "DaemonSet":
            peers = [n for n in fleet.nodes if n.itype is node.itype and n.schedulable and n is not node]
            later = [n for n in peers if n.idx > node.idx]
            node = (later or peers or [node])[0]
        name = f"{pod.name.rsplit('-', 1)[0]}-{suffix(fleet.next_uid())}"
        fresh = Pod(
            namespace=pod.namespace,
            name=name,
            node=node.name,
            owner_kind=pod.owner_kind,
            owner=pod.owner,
            empty_dir=pod.empty_dir,
            source=pod.source,
            created_at=t,
            containers=pod.containers,
        )
        fleet.put_pod(fresh)
        self._push(t + 3.0 + 5.0 * unit(fleet.salt, fleet.uid), _READY, fresh.key)

    # --- lookups ------------------------------------------------------------------------------------------

    def _endpoint(self, namespace: str, name: str) -> SimEndpoint:
        ep = self._f.endpoints.get(f"{namespace}/{name}")
        if ep is None:
            raise SourceError(f"endpoint {namespace}/{name} not found")
        return ep

    def _node(self, name: str) -> SimNode:
        node = self._f.node_by_name.get(name)
        if node is None:
            raise SourceError(f"node {name} not found")
        return node

    def _resolve_model(self, asked: str, pinned: Sequence[SimNode]) -> str:
        models = self._f.by_model
        if not asked:
            if not pinned:
                return max(models, key=lambda m: len(models[m]))
            if not pinned[0].model:
                raise ValueError(f"node {pinned[0].name} has no GPUs")
            return pinned[0].model
        wanted = asked.upper().replace("-", " ")
        for model, spec in GPU_SPECS.items():
            if model in models and wanted in (model, spec.name.upper().replace("-", " ")):
                return model
        raise ValueError(f"no {asked!r} GPUs in this fleet; it has {', '.join(models)}")

    def _positions(self, key: str) -> list[int]:
        held = self._f.bound.get(key)
        return [] if held is None else [held[0].gpu0 + i for i in held[1]]

    def _touch_job(self, job: SimJob) -> None:
        """Refresh the job's GPUs in the next fetch (their load changed)."""
        for key in job.pods:
            if key:
                self._f.dirty_gpus.update(self._positions(key))

    @staticmethod
    def _ready(fleet: Fleet, ep: SimEndpoint) -> int:
        pods = fleet.pods
        return sum(1 for k in ep.pods if pods[k].ready)

    # --- readings -----------------------------------------------------------------------------------------

    def _rho_at(self, fleet: Fleet, ep: SimEndpoint, t: float, ready: int | None = None) -> float:
        """Load at ``t`` on the replicas ready now (or on ``ready`` of them: the warm-up's, at the start)."""
        if ready is None and t == self._rho_t and ep.key in self._rho:
            return self._rho[ep.key]
        if ready is None:
            ready = self._ready(fleet, ep)
        return demand(ep, t, fleet.salt) / (ready * ep.kind.capacity) if ready else math.inf

    def _gpu_values(
        self, fleet: Fleet, pos: int, t: float, ready: Mapping[str, int] | None = None
    ) -> _Values | None:
        """Utilisation, memory used, temperature, power, SM clock and throttle reasons; None when unknown.
        ``ready``: each endpoint's ready replicas to take (the warm-up's, at the start) instead of now's."""
        g = fleet.gpus[pos]
        node = g.node
        spec = node.spec
        assert spec is not None
        if not node.ready or g.index == node.xid_gpu:
            return None
        u = unit(g.salt, int(t // 2.0))
        owner = node.owners[g.index]
        util, mem, intensity = 0.0, spec.mem_idle, 0.9
        if owner:
            work = fleet.work.get(owner)
            if isinstance(work, SimJob):
                if work.stuck:
                    util, mem = 3.0 * u, spec.mem_total * work.mem_frac
                elif work.state is JobState.RUNNING:
                    step = unit(work.salt, int(t // 2.0))  # synchronous steps: the gang moves together
                    util = min(99.0, max(85.0, work.util_base + 8.0 * (step - 0.5) + 2.0 * (u - 0.5)))
                    mem = spec.mem_total * work.mem_frac * (0.995 + 0.01 * u)
                    intensity = work.intensity
                elif fleet.pods[owner].ready:  # waiting at the rendezvous for a missing rank
                    util, mem = 2.0 * u, spec.mem_idle + 1800.0
            elif isinstance(work, SimEndpoint) and fleet.pods[owner].ready:
                rho = min(self._rho_at(fleet, work, t, None if ready is None else ready.get(work.key)), 1.0)
                util = max(0.0, min(100.0, 97.0 * rho + 2.0 * (u - 0.5)))
                mem = spec.mem_total * work.kind.mem_frac * (0.998 + 0.004 * u)
                intensity = 0.8
        util = float(round(util))
        power, temp, clock, reasons = gpu_physics(
            spec, util, intensity, node.inlet, g.index == node.hot_gpu, u
        )
        return util, float(round(mem)), temp, power, clock, reasons

    def _read_gpu(self, fleet: Fleet, pos: int, t: float) -> Gpu:
        g = fleet.gpus[pos]
        node = g.node
        spec = node.spec
        assert spec is not None
        owner = node.owners[g.index]
        values = self._gpu_values(fleet, pos, t)
        ecc = g.salt % 11 if g.salt % 7 == 0 else 0
        if values is None:  # no reading: the node is down or the GPU fell off the bus
            return Gpu(
                node=node.name,
                index=g.index,
                uuid=g.uuid,
                model=spec.name,
                mem_total=spec.mem_total,
                power_limit=spec.power_limit,
                sm_clock_max=spec.sm_clock_max,
                xid=79 if g.index == node.xid_gpu else 0,
                xid_at=node.xid_at if g.index == node.xid_gpu else 0.0,
                ecc_corrected=ecc,
                pod=owner,
            )
        util, mem, temp, power, clock, reasons = values
        low_since: Metric = NA
        if owner and util < IDLE_UTIL_PCT:
            # What the signals know: a hung gang idles since it hung, an over-provisioned endpoint's first
            # replicas since long before; anything else is left to the poller to follow.
            work = fleet.work.get(owner)
            if isinstance(work, SimJob):
                if work.stuck and work.stuck_since:
                    low_since = work.stuck_since
            elif isinstance(work, SimEndpoint) and owner in work.idle_pods:
                low_since = work.idle_since
        return Gpu(
            node=node.name,
            index=g.index,
            uuid=g.uuid,
            model=spec.name,
            util=util,
            mem_used=mem,
            mem_total=spec.mem_total,
            temp=temp,
            power=power,
            power_limit=spec.power_limit,
            sm_clock=clock,
            sm_clock_max=spec.sm_clock_max,
            ecc_corrected=ecc,
            throttle=reasons,
            pod=owner,
            low_since=low_since,
            # As NVML reports them: a pending row remap asks for a reset; a healthy GPU needs nothing.
            recovery_action="reset" if g.index == node.remap_gpu else "none",
            remap_pending=g.index == node.remap_gpu,
            nvlink_errors=node.nvlink_errors if g.index == node.nvlink_gpu else 0,
        )

    def _refresh_gpus(self, fleet: Fleet, t: float) -> tuple[Gpu, ...]:
        """Re-read the GPUs actions touched and the next slice of the rotation (a staggered scrape)."""
        n = len(fleet.gpus)
        if not n:
            return ()
        k = min(n, max(_SLICE_MIN, min(_SLICE_MAX, -(-n // _SLICE_SHARE))))
        positions = fleet.dirty_gpus
        first = self._cursor
        positions.update(range(first, min(n, first + k)))
        if first + k > n:
            positions.update(range(first + k - n))
        self._cursor = (first + k) % n
        objs, gpus = self._gpu_objs, fleet.gpus
        for pos in positions:
            objs[pos] = self._read_gpu(fleet, pos, t)
            g = gpus[pos]
            if g.index == g.node.hot_gpu:
                g.node.obj = None  # its health follows the GPU's temperature
        positions.clear()
        return tuple(objs)

    def _build_nodes(self, fleet: Fleet) -> tuple[Node, ...]:
        changed = False
        for node in fleet.nodes:
            if node.obj is None:
                node.obj = self._node_obj(node)
                changed = True
        if changed or not self._nodes_tuple:
            self._nodes_tuple = tuple(n.obj for n in fleet.nodes if n.obj is not None)
        return self._nodes_tuple

    def _node_obj(self, node: SimNode) -> Node:
        gpus = self._gpu_objs[node.gpu0 : node.gpu0 + len(node.owners)]
        health = max((g.health for g in gpus), default=Health.OK)
        conditions: tuple[Condition, ...] = _COND_READY
        taints: tuple[Taint, ...] = ()
        if not node.ready:
            health, conditions, taints = Health.FAIL, _COND_NOT_READY, _TAINTS_NOT_READY
        elif node.xid_gpu >= 0:
            bad = gpus[node.xid_gpu]
            conditions = (
                *_COND_READY,
                Condition(
                    "GPUHealthy", "False", "XID79", f"GPU {bad.index} ({bad.uuid}) has fallen off the bus"
                ),
            )
        if node.cordoned:
            taints = (*taints, *_TAINTS_CORDONED)
        it = node.itype
        return Node(
            name=node.name,
            source=self.name,
            pool=node.pool,
            zone=node.zone,
            instance_type=it.name,
            gpu_model=it.gpu_model,
            gpus_total=it.gpus,
            gpus_allocatable=node.allocatable,
            gpus_requested=node.used,
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
            cluster=self.name,
        )

    def _endpoint_values(self, fleet: Fleet, ep: SimEndpoint, ready: int, t: float) -> tuple[float, ...]:
        """qps, p50, p99, error rate, ready replicas and ρ for ``ep`` at ``t`` (NaN latency: none ready)."""
        d = demand(ep, t, fleet.salt)
        k = ep.kind
        rho, p50, p99, err = serving_stats(d, ready, k.capacity, k.p50, k.p99, unit(ep.salt, int(t // 5.0)))
        return d, p50, p99, err, float(ready), rho

    def _build_endpoints(self, fleet: Fleet, t: float) -> tuple[tuple[Endpoint, ...], tuple[Pdb, ...]]:
        """Every endpoint, and the PodDisruptionBudget of each production one."""
        out = []
        pdbs = []
        self._rho = {}
        self._rho_t = t
        for ep in fleet.endpoints.values():
            ready = self._ready(fleet, ep)
            if _guarded(ep):
                least = _min_available(ep)
                pdbs.append(
                    Pdb(
                        namespace=ep.namespace,
                        name=ep.name,
                        owner=ep.key,
                        min_available=least,
                        current_healthy=ready,
                        desired_healthy=least,
                        disruptions_allowed=max(0, ready - least),
                        source=self.name,
                    )
                )
            qps, p50, p99, err, _, rho = self._endpoint_values(fleet, ep, ready, t)
            self._rho[ep.key] = rho
            hpa = None
            if ep.hpa is not None:
                lo, hi, target = ep.hpa
                hpa = Hpa(ep.name, lo, hi, HPA_METRIC, target, qps / ready if ready else NA)
            k = ep.kind
            out.append(
                Endpoint(
                    namespace=ep.namespace,
                    name=ep.name,
                    source=self.name,
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
                    cluster=self.name,
                )
            )
        return tuple(out), tuple(pdbs)

    def _build_jobs(self, fleet: Fleet, t: float) -> tuple[Job, ...]:
        position = {j.key: i + 1 for i, j in enumerate(self._queue(fleet))}
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
                Job(
                    namespace=job.namespace,
                    name=job.name,
                    source=self.name,
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
                    cluster=self.name,
                )
            )
        return tuple(out)

    def _node_util(self, fleet: Fleet, node: SimNode | None, t: float, ready: Mapping[str, int]) -> float:
        if node is None or not node.owners:
            return math.nan
        utils = []
        for i in range(len(node.owners)):
            values = self._gpu_values(fleet, node.gpu0 + i, t, ready)
            if values is not None:
                utils.append(values[0])
        return sum(utils) / len(utils) if utils else math.nan
