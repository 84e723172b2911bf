"""Drain planning: what happens to each pod when nodes are drained, before anything is evicted.

``kubectl drain`` cordons, lists the node's pods, filters them and evicts the rest through the Eviction API.
:func:`plan_drain` predicts that run over a snapshot: which pods are left in place (DaemonSet pods, as with
``--ignore-daemonsets``), which cannot go and why (no controller, emptyDir data, a PodDisruptionBudget with
no headroom, no capacity for a GPU replica elsewhere), where every GPU replica would land (the same
placement engine the scheduler of the embedded fleet uses, over the rest of the fleet), which training gangs
lose a rank, what their controller then really does (:func:`job_fate`: a Job with ``backoffLimit: 0`` fails
rather than restarts), and how many GPU-hours of work since their last checkpoint that costs.

Pure: no I/O, no asyncio.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from aios_tui.alloc.placement import Capacity, GangRequest, Placement, Refusal
from aios_tui.domain import FleetSnapshot, Job, Pdb, Pod, PodPhase

__all__ = [
    "BARE_POD",
    "EMPTY_DIR",
    "DrainPlan",
    "Fate",
    "GangImpact",
    "JobFate",
    "PodMove",
    "job_fate",
    "plan_drain",
]

BARE_POD = "no controller: it would be deleted, not moved"
EMPTY_DIR = "holds emptyDir data (/dev/shm) that eviction deletes"
_DONE = (PodPhase.SUCCEEDED, PodPhase.FAILED)


@dataclass(frozen=True, slots=True)
class PodMove:
    """One pod on a drained node and what the drain does with it."""

    pod: str
    """``namespace/name``."""
    node: str
    """Where it runs now."""
    gpus: int
    owner: str
    """Key of the job or endpoint (``namespace/name``), "" for a bare pod."""
    owner_kind: str
    """Job, ReplicaSet, StatefulSet, DaemonSet, or "" for a bare pod."""
    to: str = ""
    """Planned node; "" when the pod needs no GPU (any node will do), when it is blocked, or for a rank
    whose restarted gang would queue (see ``GangImpact.replacement``)."""
    blocked: str = ""
    """Why it cannot move now ("" when it can)."""
    retry: bool = False
    """True when only a PodDisruptionBudget blocks it: the drain retries it as the budget frees up."""


class Fate(enum.Enum):
    """What a Job's controller does once a drain has evicted some of its pods."""

    RESTARTS = "restarts"
    """The Job controller replaces the evicted pods (retries are left, or the eviction is not counted)."""
    REQUEUED = "requeued"
    """Kueue takes the workload back to its queue and admits it again when it fits."""
    FAILS = "fails"
    """The Job ends Failed: nothing restarts."""
    UNKNOWN = "unknown"
    """Another controller decides (a JobSet's failurePolicy), which this console cannot read."""


@dataclass(frozen=True, slots=True)
class JobFate:
    fate: Fate
    text: str
    """For people: "restarts: 2 of 6 retries left", "fails, not restarted (backoffLimit 0 reached: …)"."""


def job_fate(job: Job, evicted: int) -> JobFate:
    """What happens to ``job`` once ``evicted`` of its pods are evicted, per the Job API's documented rules.

    An evicted pod carries the ``DisruptionTarget`` condition. The first podFailurePolicy rule matching it
    decides: ``Ignore`` does not count it, ``FailJob`` fails the Job, ``FailIndex`` fails its index; with no
    rule (or ``Count``) it counts against ``backoffLimit`` (default 6; the Job fails when more pods than
    that have failed: BackoffLimitExceeded) or, for an Indexed Job with ``backoffLimitPerIndex``, against
    that index's budget (FailedIndexes). A JobSet child is recreated or not by its JobSet's
    ``failurePolicy.maxRestarts``, which is not read here: "unknown". With ``restartPolicy: OnFailure``
    container restarts count against the limit too, unseen in ``status.failed``: "at most" so many left.
    A Kueue-managed Job that does not fail is requeued by Kueue; one that fails stays failed (Kueue does
    not requeue a finished Job).
    Exit-code rules are not predicted: a drained container's exit code is the program's choice.
    """
    if job.jobset:
        return JobFate(Fate.UNKNOWN, f"unknown: managed by JobSet {job.jobset} (its failurePolicy decides)")
    action = job.disruption_action
    policy = f"podFailurePolicy {action} on DisruptionTarget"
    failure = restart = ""
    if action == "FailJob":
        failure = f"fails, not restarted ({policy}: PodFailurePolicy)"
    elif action == "FailIndex":
        failure = f"fails, not restarted ({policy}: the evicted indexes fail)"
    elif action == "Ignore":
        restart = f"restarts: evictions not counted ({policy})"
    elif action not in ("", "Count"):  # an action newer than this console
        return JobFate(Fate.UNKNOWN, f"unknown: podFailurePolicy {action} on DisruptionTarget")
    elif job.backoff_limit_per_index is not None:
        per = job.backoff_limit_per_index
        if per == 0 and evicted:
            failure = "fails, not restarted (backoffLimitPerIndex 0 reached: FailedIndexes)"
        restart = f"restarts: up to {per} retries per index"
    else:
        limit = job.backoff_limit
        left = limit - job.failed_pods - evicted
        if left < 0:
            failure = f"fails, not restarted (backoffLimit {limit} reached: BackoffLimitExceeded)"
        # OnFailure: container restarts in place count too, and status.failed does not show them.
        at_most = "at most " if job.restart_policy == "OnFailure" else ""
        restart = f"restarts: {at_most}{left} of {limit} retries left"
    if failure:
        requeue = "; Kueue does not requeue a failed Job" if job.queue else ""
        return JobFate(Fate.FAILS, failure + requeue)
    if job.queue:
        return JobFate(Fate.REQUEUED, f"requeued by Kueue (queue {job.queue})")
    return JobFate(Fate.RESTARTS, restart)


@dataclass(frozen=True, slots=True)
class GangImpact:
    """A training gang that loses a rank to the drain, and what its controller then does."""

    job: str
    ranks_on_drained: int
    workers: int
    gpus: int
    gpu_hours_at_risk: float
    """``gpus × min(time running, checkpoint interval) / 3600``: the work since the last checkpoint."""
    replacement: Placement | Refusal | None
    """Where the restarted or requeued gang would go with the drained nodes excluded, or why it would
    queue; None when it will not restart (its fate is FAILS or UNKNOWN)."""
    fate: JobFate = JobFate(Fate.RESTARTS, "restarts")


@dataclass(frozen=True, slots=True)
class DrainPlan:
    nodes: tuple[str, ...]
    evict: tuple[PodMove, ...]
    """In eviction order: pods without GPUs, then serving replicas, then training ranks."""
    blocked: tuple[PodMove, ...]
    skipped: tuple[PodMove, ...]
    """DaemonSet pods, left in place (``kubectl drain --ignore-daemonsets``)."""
    gangs: tuple[GangImpact, ...]
    gpu_hours_at_risk: float

    @property
    def ok(self) -> bool:
        """Nothing blocked for a reason other than a PodDisruptionBudget the drain waits out."""
        return all(m.retry for m in self.blocked)


def plan_drain(
    snapshot: FleetSnapshot,
    nodes: Sequence[str],
    *,
    allow_empty_dir: bool = False,
    allow_unmanaged: bool = False,
    checkpoint_s: float = 1800.0,
) -> DrainPlan:
    """Plan draining ``nodes`` (in that order) over ``snapshot``.

    Rules, in the order they apply to each pod on a drained node:

    - a DaemonSet pod is skipped (its controller would only put it back);
    - a bare pod is blocked (:data:`BARE_POD`) unless ``allow_unmanaged`` (then it is deleted);
    - a pod with emptyDir data is blocked (:data:`EMPTY_DIR`) unless ``allow_empty_dir``;
    - a ready pod whose owner's PodDisruptionBudget has no disruption left is blocked with ``retry``
      (a pod that is not ready costs the budget nothing, as a Pending pod on Kubernetes);
    - a GPU replica is re-placed on the rest of the fleet, or blocked ("no capacity: …");
    - a training rank costs its gang: a :class:`GangImpact` with the Job's :func:`job_fate`; a gang that
      restarts (or is requeued) gets a replacement placed after its GPUs are released (a refusal means the
      job would queue); one that fails or whose fate is unknown gets none. The rank is evicted either way.

    Raises ValueError naming any node the snapshot does not know.
    """
    by_name = snapshot.node_by_name
    drained = tuple(dict.fromkeys(nodes))
    unknown = [n for n in drained if n not in by_name]
    if unknown:
        raise ValueError(f"unknown node{'s' if len(unknown) > 1 else ''}: {', '.join(unknown)}")
    drained_set = frozenset(drained)
    capacity = Capacity.from_snapshot(snapshot, exclude=drained)
    jobs = snapshot.job_by_key
    budget = _Budgets(snapshot.pdb_by_owner)

    skipped: list[PodMove] = []
    blocked: list[PodMove] = []
    light: list[tuple[PodMove, Pod]] = []
    replicas: list[tuple[PodMove, Pod]] = []
    ranks: list[tuple[PodMove, Pod]] = []
    pods_on = snapshot.pods_on(drained)
    for name in drained:
        for pod in pods_on[name]:
            move = PodMove(pod.key, pod.node, pod.gpus, pod.owner, pod.owner_kind)
            if pod.owner_kind == "DaemonSet":
                skipped.append(move)
            elif not pod.owner_kind and not allow_unmanaged:
                blocked.append(_block(move, BARE_POD))
            elif pod.empty_dir and not allow_empty_dir:
                blocked.append(_block(move, EMPTY_DIR))
            elif pod.phase in _DONE or not pod.gpus:
                light.append((move, pod))
            elif pod.owner_kind == "Job" and pod.owner in jobs:
                ranks.append((move, pod))
            else:
                replicas.append((move, pod))

    evict: list[PodMove] = []
    for move, pod in light:
        if (why := budget.refuse(pod)) is not None:
            blocked.append(_block(move, why, retry=True))
        else:
            budget.take(pod)
            evict.append(move)
    for move, pod in replicas:
        if (why := budget.refuse(pod)) is not None:
            blocked.append(_block(move, why, retry=True))
            continue
        model = _replica_model(snapshot, pod)
        request = GangRequest(1, pod.gpus, model, name=pod.owner)
        placed = capacity.place(request)
        if isinstance(placed, Refusal):
            blocked.append(_block(move, f"no capacity: {placed.reason}"))
            continue
        capacity.commit(placed)
        budget.take(pod)
        evict.append(_to(move, placed.nodes[0]))

    gang_ranks: dict[str, list[tuple[PodMove, Pod]]] = {}
    for move, pod in ranks:
        if (why := budget.refuse(pod)) is not None:
            blocked.append(_block(move, why, retry=True))
            continue
        budget.take(pod)
        gang_ranks.setdefault(pod.owner, []).append((move, pod))
    gangs: list[GangImpact] = []
    for key, members in gang_ranks.items():
        job = jobs[key]
        fate = job_fate(job, len(members))
        replacement = (
            _replace_gang(snapshot, capacity, job, drained_set)
            if fate.fate in (Fate.RESTARTS, Fate.REQUEUED)
            else None
        )
        gangs.append(
            GangImpact(
                job=key,
                ranks_on_drained=len(members),
                workers=job.workers,
                gpus=job.gpus,
                gpu_hours_at_risk=_at_risk(snapshot.timestamp, job, checkpoint_s),
                replacement=replacement,
                fate=fate,
            )
        )
        for move, pod in members:
            to = ""
            if isinstance(replacement, Placement) and 0 <= pod.rank < len(replacement.nodes):
                to = replacement.nodes[pod.rank]
            evict.append(_to(move, to) if to else move)

    return DrainPlan(
        nodes=drained,
        evict=tuple(evict),
        blocked=tuple(blocked),
        skipped=tuple(skipped),
        gangs=tuple(gangs),
        gpu_hours_at_risk=sum(g.gpu_hours_at_risk for g in gangs),
    )


class _Budgets:
    """Disruptions each PodDisruptionBudget still allows while the plan is being made."""

    def __init__(self, pdbs: Mapping[str, Pdb]) -> None:
        self._pdbs = pdbs
        self._left = {owner: pdb.disruptions_allowed for owner, pdb in self._pdbs.items()}

    def refuse(self, pod: Pod) -> str | None:
        """Why the budget refuses evicting ``pod`` now, or None when it allows it."""
        pdb = self._pdbs.get(pod.owner)
        if pdb is None or not pod.ready or pod.phase in _DONE or self._left[pod.owner] > 0:
            return None
        if pdb.disruptions_allowed == 0:
            healthy = f"{pdb.current_healthy} healthy, {pdb.desired_healthy} required"
            return f"PodDisruptionBudget {pdb.key} allows no disruption now ({healthy}); retried"
        n = pdb.disruptions_allowed
        return (
            f"PodDisruptionBudget {pdb.key} allows {n} disruption{'' if n == 1 else 's'} now, "
            "taken by other pods of this drain; retried"
        )

    def take(self, pod: Pod) -> None:
        if pod.owner in self._left and pod.ready and pod.phase not in _DONE:
            self._left[pod.owner] -= 1


def _block(move: PodMove, why: str, *, retry: bool = False) -> PodMove:
    return PodMove(move.pod, move.node, move.gpus, move.owner, move.owner_kind, blocked=why, retry=retry)


def _to(move: PodMove, node: str) -> PodMove:
    return PodMove(move.pod, move.node, move.gpus, move.owner, move.owner_kind, to=node)


def _replica_model(snapshot: FleetSnapshot, pod: Pod) -> str:
    """The GPU model a replica needs: its endpoint's when known, else that of the node it runs on."""
    endpoint = snapshot.endpoint_by_key.get(pod.owner)
    if endpoint is not None and endpoint.gpu_model:
        return endpoint.gpu_model
    return snapshot.node_by_name[pod.node].gpu_model


def _replace_gang(
    snapshot: FleetSnapshot, capacity: Capacity, job: Job, drained: frozenset[str]
) -> Placement | Refusal:
    """Release the gang's GPUs outside the drained nodes, then place it again (committing when it fits)."""
    for pod in snapshot.pods_by_owner.get(job.key, ()):
        if pod.node and pod.gpus and pod.node not in drained and pod.phase not in _DONE:
            capacity.release(pod.node, pod.gpus)
    request = GangRequest(
        job.workers, job.gpus_per_worker, job.gpu_model, priority=job.priority, name=job.key
    )
    placed = capacity.place(request)
    if isinstance(placed, Placement):
        capacity.commit(placed)
    return placed


def _at_risk(now: float, job: Job, checkpoint_s: float) -> float:
    """GPU-hours of work since the last checkpoint, assuming one every ``checkpoint_s`` seconds."""
    running = now - job.started_at if job.started_at > 0 else math.inf
    return job.gpus * max(0.0, min(running, checkpoint_s)) / 3600.0
