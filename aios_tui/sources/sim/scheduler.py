"""The embedded fleet's scheduler: the queue of jobs waiting for GPUs and the capacity they are placed on.

Every gang and every replica is placed by ``aios_tui.alloc.placement`` over the fleet as it stands
(cordoned, NotReady and failed nodes receive nothing), so a plan made over a snapshot lands where it said.
"""

from __future__ import annotations

import zlib
from collections import Counter
from collections.abc import Sequence

from aios_tui.alloc.placement import Capacity, GangRequest, Refusal
from aios_tui.domain import FleetSnapshot, JobState, Node
from aios_tui.sources.sim.core import SimCore
from aios_tui.sources.sim.events import EventKind
from aios_tui.sources.sim.signals import unit
from aios_tui.sources.sim.world import (
    JOB_READY_DELAY,
    REPLICA_READY_DELAY,
    Fleet,
    SimEndpoint,
    SimJob,
    SimNode,
    create_job_pod,
)

__all__ = ["SimScheduler", "capacity", "job_queue", "pinned_short"]


def job_queue(fleet: Fleet) -> list[SimJob]:
    queued = [j for j in fleet.jobs.values() if j.state is JobState.QUEUED]
    queued.sort(key=lambda j: (-j.priority, j.submitted_at, j.seq))
    return queued


def pinned_short(fleet: Fleet, job: SimJob) -> str:
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


def capacity(fleet: Fleet, t: float, nodes: tuple[Node, ...]) -> Capacity:
    """The alloc engine's view of the fleet (``nodes`` as built at ``t``), measuring fragmentation as a
    snapshot of it would."""
    counts: Counter[int] = Counter()
    for job in fleet.jobs.values():
        counts[job.per_worker] += job.workers
    for ep in fleet.endpoints.values():
        counts[ep.kind.gpus] += ep.desired
    total = sum(counts.values())
    # the distribution placement.demand_sizes reads from a snapshot of this fleet (tested to agree)
    sizes = {size: n / total for size, n in sorted(counts.items()) if n} if total else None
    snapshot = FleetSnapshot(t, nodes=nodes)
    return Capacity.from_snapshot(snapshot, sizes=sizes)


class SimScheduler(SimCore):
    """The scheduling pass of :class:`~aios_tui.sources.sim.SimSource`: it binds waiting replicas and
    starts queued gangs, each pod ready after a delay (an event)."""

    def _schedule(self, t: float) -> None:
        """Place waiting replicas, then start queued jobs that fit, in priority then submission order.

        Everything goes through the alloc engine over the fleet as it stands, so a plan made over a fresh
        snapshot (``place_gang``, ``plan_drain``) predicts exactly where the pods land.
        """
        fleet = self._f
        self._cap_dirty = False
        queue = job_queue(fleet)
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
                job.reason = pinned_short(fleet, job)
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
        return capacity(self._f, self._t, self._build_nodes(self._f))

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
        self._events.push(t + job.duration - job.done, EventKind.FINISH, job.key)
        where = ", ".join(dict.fromkeys(nodes))
        self._note(t, "job", job.key, "SuccessfulCreate", f"Created {job.workers} pods (ranks) on {where}")

    def _bind(self, key: str, node: SimNode, gpus: int, t: float, delay: tuple[float, float]) -> None:
        self._f.bind(key, node, gpus)
        lo, hi = delay
        self._events.push(
            t + lo + (hi - lo) * unit(self._f.salt, zlib.crc32(key.encode())), EventKind.READY, key
        )
