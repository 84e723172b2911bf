"""What an operator does to the embedded fleet: scale, redeploy, cordon, evict, launch, resize a pool.

Each action runs under the source's lock at the current simulated time, then the scheduler reacts to what
it changed. Production endpoints carry a PodDisruptionBudget, and an eviction it forbids is refused as
Kubernetes does; a pool's scale-up brings nodes Ready after ``NODE_BOOT_DELAY`` and a scale-down terminates
the emptiest nodes at once, their pods lost.
"""

from __future__ import annotations

import asyncio
import functools
import random
import re
import zlib
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import ParamSpec

from aios_tui.sources.base import EvictionBlocked, LaunchSpec, SourceError
from aios_tui.sources.clouds.aws.prices import CATALOGUE
from aios_tui.sources.sim.core import SimCore
from aios_tui.sources.sim.events import EventKind
from aios_tui.sources.sim.signals import GPU_SPECS, mix, template_hash, unit
from aios_tui.sources.sim.world import (
    NODE_BOOT_DELAY,
    ZONES,
    SimEndpoint,
    SimJob,
    SimNode,
    add_node,
    guarded,
    min_available,
    ready_replicas,
)

__all__ = ["MAX_REPLICAS", "PDB_VIOLATION", "SimActions"]

_P = ParamSpec("_P")

PDB_VIOLATION = "Cannot evict pod as it would violate the pod's disruption budget."
"""The Eviction API's 429 message, word for word."""
MAX_REPLICAS = 1000
_NAME = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")


class SimActions(SimCore):
    """What makes :class:`~aios_tui.sources.sim.SimSource` ``Scalable``, ``Restartable``, a
    ``NodeMaintainer``, a ``JobLauncher``, a ``JobQueue`` and a ``PoolScaler``
    (:mod:`aios_tui.sources.base`), and the lookups its actions share."""

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
            self._take_start()
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
            and guarded(work)
            and ready_replicas(fleet, work) <= min_available(work)
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
            self._events.push(t + lo + (hi - lo) * unit(fleet.salt, salt), EventKind.NODE_UP, name)
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
        itype = CATALOGUE.types[pool.instance_type]
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
            self._tel.uuid_pos[fleet.gpus[pos].uuid] = pos
            self._tel.objs.append(self._tel.read_gpu(fleet, pos, t))
        node.obj = None
        self._set_pool(name)
        self._cap_dirty = True

    def _terminate(self, node: SimNode, t: float) -> None:
        """The machine is gone: its pods with it, their controllers react; then the node leaves the fleet."""
        fleet = self._f
        node.ready = False  # nothing its pods' controllers recreate lands on it
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
        self._tel.objs = [self._tel.objs[pos] for pos in keep]
        self._tel.uuid_pos = {g.uuid: i for i, g in enumerate(fleet.gpus)}
        fleet.dirty_gpus = {new_pos[p] for p in fleet.dirty_gpus if p in new_pos}
        gpu0 = 0
        for n in fleet.nodes:
            n.gpu0 = gpu0
            gpu0 += len(n.owners)
        self._tel.cursor = self._tel.cursor if self._tel.cursor < len(fleet.gpus) else 0
        self._nodes_tuple = ()
        self._cap_dirty = True

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
