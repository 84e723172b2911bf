"""Scaling a node pool: what a new desired capacity would change, computed over a snapshot.

Up: the capacity what-if run for real. ``n`` hypothetical nodes of the pool's instance type are added to the
fleet's free capacity and the queue is placed in the scheduler's order (priority, then submission), each
placement committed, once without them and once with them: the jobs placed only the second time are the
ones the new nodes unblock. A pool over several zones grows evenly: each new node goes to the pool's zone
with the fewest nodes (the first listed on ties), as an Auto Scaling group balances across its zones. The
new nodes count from the nodes that are in the snapshot, so launches still pending count too.

Down: which nodes would go and what runs on them. Here they are the pool's emptiest (fewest GPUs in use,
then the newest name), which is what the embedded fleet removes; a cloud Auto Scaling group picks by its own
termination policy, so for a cloud pool the plan says so and names the emptiest as an estimate.

The $/h change is the pool's per-node price times the change in desired capacity, NA when the price is
unknown. A cloud pool's nodes may fall short of its desired count (launches pending, or failing for want of
capacity) or exceed it (terminations under way): a scale-up imagines the nodes from those there are up to
the new count, a scale-down removes those above the new count, and neither does the other.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from aios_tui.alloc.placement import Capacity, GangRequest, Placement
from aios_tui.domain import (
    NA,
    FleetSnapshot,
    Job,
    JobState,
    Metric,
    Node,
    NodePool,
    Pod,
    is_gpu_model,
    is_na,
)

__all__ = [
    "PoolScale",
    "assess_pool_scale",
    "hypothetical_nodes",
    "pending_for_pool",
    "pool_nodes",
    "removal_order",
]


@dataclass(frozen=True, slots=True)
class PoolScale:
    """What setting ``pool``'s desired capacity to ``new`` would do."""

    pool: NodePool
    current: int
    """Desired capacity now (the node count when the source has none)."""
    new: int
    nodes_now: int
    """Nodes of the pool in the snapshot."""
    cost_delta_per_hour: Metric
    """Price per node × (new − current); NA when the pool has no price."""
    added_zones: tuple[str, ...] = ()
    """Zone of each hypothetical new node, in launch order."""
    unblocked: tuple[Job, ...] = ()
    """Queued jobs that fit once the new nodes are up, and do not fit now."""
    still_queued: int = 0
    """Queued jobs of this pool's GPU model that still would not fit."""
    removed: tuple[Node, ...] = ()
    """For a scale-down: the nodes that would go (an estimate for a cloud pool; see the module)."""
    at_risk: tuple[Pod, ...] = ()
    """Pods on the removed nodes."""
    gpus_at_risk: int = 0
    """GPUs in use on the removed nodes."""
    jobs_hit: tuple[str, ...] = ()
    """Training jobs with a rank on a removed node: each gang restarts from its last checkpoint."""
    blockers: tuple[str, ...] = ()

    @property
    def delta(self) -> int:
        return self.new - self.current


def pool_nodes(snapshot: FleetSnapshot, pool: NodePool) -> list[Node]:
    return [n for n in snapshot.nodes if n.pool == pool.name and n.source == pool.source]


def removal_order(nodes: Sequence[Node]) -> list[Node]:
    """Emptiest first: fewest GPUs in use, then the newest (highest) name."""
    by_name = sorted(nodes, key=lambda n: n.name, reverse=True)
    return sorted(by_name, key=lambda n: n.gpus_requested)


def hypothetical_nodes(pool: NodePool, existing: Sequence[Node], count: int) -> list[Node]:
    """``count`` new Ready nodes of ``pool``, each in the zone where the pool has the fewest nodes."""
    zones = pool.zones or tuple(dict.fromkeys(n.zone for n in existing)) or ("",)
    per_zone = {z: 0 for z in zones}
    for n in existing:
        if n.zone in per_zone:
            per_zone[n.zone] += 1
    out = []
    for i in range(count):
        zone = min(zones, key=lambda z: per_zone[z])
        per_zone[zone] += 1
        out.append(
            Node(
                name=f"{pool.name}-new-{i + 1}",
                source=pool.source,
                pool=pool.name,
                zone=zone,
                instance_type=pool.instance_type,
                gpu_model=pool.gpu_model,
                gpus_total=pool.gpus_per_node,
                gpus_allocatable=pool.gpus_per_node,
                rack=f"{pool.name}-new",
                price_per_hour=pool.price_per_hour,
            )
        )
    return out


def _queued(snapshot: FleetSnapshot) -> list[Job]:
    jobs = [j for j in snapshot.jobs if j.state is JobState.QUEUED]
    jobs.sort(key=lambda j: (-j.priority, j.submitted_at, j.key))
    return jobs


def _placed(cap: Capacity, queue: Sequence[Job]) -> set[str]:
    """Keys of the queued jobs that start, placing them in order and committing each."""
    out: set[str] = set()
    for job in queue:
        result = cap.place(GangRequest.for_job(job))
        if isinstance(result, Placement):
            cap.commit(result)
            out.add(job.key)
    return out


def assess_pool_scale(snapshot: FleetSnapshot, pool: NodePool, desired: int) -> PoolScale:
    """What setting ``pool`` to ``desired`` nodes would do on ``snapshot`` (see the module)."""
    current = pool.desired_capacity
    members = pool_nodes(snapshot, pool)
    blockers: list[str] = []
    if desired < 0:
        blockers.append(f"A pool cannot have {desired} nodes.")
    elif not pool.min_size <= desired <= pool.max_size:
        blockers.append(
            f"{desired} is outside the pool's limits {pool.min_size}–{pool.max_size}: "
            "change the limits first (they are the autoscaler's bounds)."
        )
    elif desired == current:
        blockers.append(f"{pool.name} already has desired capacity {current}.")
    price = pool.price_per_hour
    cost: Metric = NA if is_na(price) else float(price) * (desired - current)
    base = PoolScale(pool, current, desired, len(members), cost, blockers=tuple(blockers))
    if blockers and desired != current:
        return base  # out of bounds: nothing to assess, and 10⁸ hypothetical nodes would take minutes

    queue = _queued(snapshot)
    fits_model = [j for j in queue if _fits_pool(j, pool)]
    # Nodes to imagine on a scale-up: from the nodes there are, not from the desired count, which a cloud
    # may not have reached (a launch failing for want of capacity). A scale-down adds none, even below it.
    add = max(0, desired - len(members)) if desired > current else 0
    if add and fits_model:
        new_nodes = hypothetical_nodes(pool, members, add)
        before = _placed(Capacity.from_snapshot(snapshot), queue)
        cap = Capacity.from_snapshot(snapshot)
        cap.add_nodes(new_nodes)
        after = _placed(cap, queue)
        unblocked = tuple(j for j in queue if j.key in after and j.key not in before)
        still = sum(1 for j in fits_model if j.key not in after)
        return _with(base, added_zones=tuple(n.zone for n in new_nodes), unblocked=unblocked, still=still)
    if add:
        zones = tuple(n.zone for n in hypothetical_nodes(pool, members, add))
        return _with(base, added_zones=zones, still=len(fits_model))

    remove = max(0, len(members) - desired) if desired < current else 0
    if not remove:
        return _with(base, still=len(fits_model))
    removed = tuple(removal_order(members)[:remove])
    names = {n.name for n in removed}
    pods = tuple(p for n in removed for p in snapshot.pods_by_node.get(n.name, ()))
    gpus = sum(n.gpus_requested for n in removed)
    jobs_hit = tuple(
        sorted({j.key for j in snapshot.jobs if j.state is not JobState.QUEUED and names & set(j.placement)})
    )
    return PoolScale(
        pool,
        current,
        desired,
        len(members),
        cost,
        removed=removed,
        at_risk=pods,
        gpus_at_risk=gpus,
        jobs_hit=jobs_hit,
        still_queued=len(fits_model),
        blockers=base.blockers,
    )


def _fits_pool(job: Job, pool: NodePool) -> bool:
    """Whether a worker of ``job`` could run on a node of ``pool`` at all."""
    if not pool.gpu_model or not is_gpu_model(pool.gpu_model) or job.gpus_per_worker > pool.gpus_per_node:
        return False
    if job.gpu_model and job.gpu_model != pool.gpu_model:
        return False
    return not job.zone or not pool.zones or job.zone in pool.zones


def pending_for_pool(snapshot: FleetSnapshot, pool: NodePool) -> int:
    """Queued jobs whose workers fit a node of ``pool`` (its GPU model, enough GPUs per node, its zones)."""
    return sum(1 for j in snapshot.jobs if j.state is JobState.QUEUED and _fits_pool(j, pool))


def _with(
    base: PoolScale, *, added_zones: tuple[str, ...] = (), unblocked: tuple[Job, ...] = (), still: int = 0
) -> PoolScale:
    return PoolScale(
        base.pool,
        base.current,
        base.new,
        base.nodes_now,
        base.cost_delta_per_hour,
        added_zones=added_zones,
        unblocked=unblocked,
        still_queued=still,
        blockers=base.blockers,
    )
