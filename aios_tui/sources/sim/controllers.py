"""The embedded fleet's controllers: what Kubernetes and the training operator do on their own.

The Deployment controller matches each endpoint's replica count and rolls one old pod at a time; the HPA
evaluates every ``HPA_PERIOD`` with the default scale-down window; a gang that loses a rank restarts whole
from its last checkpoint; a finished job frees its GPUs and, a while later, another is submitted.
"""

from __future__ import annotations

import random

from aios_tui.domain import JobState, Pod
from aios_tui.sources.sim.core import SimCore
from aios_tui.sources.sim.events import EventKind
from aios_tui.sources.sim.layout import job_duration
from aios_tui.sources.sim.signals import mix, suffix, unit
from aios_tui.sources.sim.world import (
    SimEndpoint,
    SimJob,
    SimNode,
    create_replica_pod,
    demand,
    hpa_desired,
    mark_running,
    ready_replicas,
)

__all__ = ["CHECKPOINT_S", "FINISHED_KEPT", "HPA_WINDOW", "SimControllers"]

HPA_WINDOW = 300.0
"""Scale-down stabilisation window, as the HPA's default."""
FINISHED_KEPT = 32
CHECKPOINT_S = 1800.0
"""Training jobs checkpoint this often: a restarted gang loses at most this much of its work."""


class SimControllers(SimCore):
    """The controllers of :class:`~aios_tui.sources.sim.SimSource`: they react to events and actions."""

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
        self._events.push(t + rng.uniform(120.0, 900.0), EventKind.SUBMIT, job.gpu_model)
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
            ready = ready_replicas(fleet, ep)
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
        """A DaemonSet pod comes back on its node; another controller's pod on the next node of its kind
        with room for its requests, or Pending when none has (the sim schedules only GPU pods after that,
        as Kubernetes would leave it: ``Insufficient cpu``)."""
        fleet = self._f
        home = fleet.node_by_name[pod.node]
        node: SimNode | None = home
        if pod.owner_kind != "DaemonSet":
            fits = [n for n in fleet.nodes if n.itype is home.itype and n.schedulable and n.has_room(pod)]
            node = next((n for n in fits if n.idx > home.idx), fits[0] if fits else None)
        name = f"{pod.name.rsplit('-', 1)[0]}-{suffix(fleet.next_uid())}"
        fresh = Pod(
            namespace=pod.namespace,
            name=name,
            node=node.name if node is not None else "",
            owner_kind=pod.owner_kind,
            owner=pod.owner,
            empty_dir=pod.empty_dir,
            source=pod.source,
            created_at=t,
            containers=pod.containers,
            cpu=pod.cpu,
            memory=pod.memory,
        )
        fleet.put_pod(fresh)
        if node is not None:
            self._events.push(t + 3.0 + 5.0 * unit(fleet.salt, fleet.uid), EventKind.READY, fresh.key)

    def _positions(self, key: str) -> list[int]:
        held = self._f.bound.get(key)
        return [] if held is None else [held[0].gpu0 + i for i in held[1]]

    def _touch_job(self, job: SimJob) -> None:
        """Refresh the job's GPUs in the next fetch (their load changed)."""
        for key in job.pods:
            if key:
                self._f.dirty_gpus.update(self._positions(key))
