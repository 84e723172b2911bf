"""Scaling a node pool as an action: the plan (new desired capacity within the pool's limits, the $/h change,
the queued jobs it unblocks, and for a scale-down the nodes and pods at risk).

Executed by :meth:`~aios_tui.ops.actions.Ops.execute` like every other action: read-only mode and roles
(shrinking needs ``admin``, see :data:`~aios_tui.ops.permissions.MIN_ROLE_SHRINK`), the source's own
permission check, a typed confirmation for a scale-down, one call to the owning source's ``scale_pool``,
one audit line.
"""

from __future__ import annotations

from collections.abc import Sequence
from types import MappingProxyType
from typing import TYPE_CHECKING

from aios_tui.alloc.pools import assess_pool_scale
from aios_tui.alloc.scaling import describe_cost
from aios_tui.domain import FleetSnapshot, Job, NodePool
from aios_tui.ops.core import Plan, TargetNotFound
from aios_tui.ops.permissions import denial

if TYPE_CHECKING:
    from aios_tui.ops.actions import Ops

__all__ = ["describe_pool", "plan_scale_pool"]

_LISTED = 5
"""Jobs, nodes and pods named one by one in a plan's lines; the rest are counted."""


def describe_pool(pool: NodePool) -> str:
    """``p5.48xlarge, 8 × H100 per node, us-east-1a (source sim)``."""
    gpus = f", {pool.gpus_per_node} × {pool.gpu_model} per node" if pool.gpu_model else ", no GPUs"
    zones = ", ".join(pool.zones) or "zone unknown"
    kind = f"{pool.kind} " if pool.kind else ""
    return f"{kind}{pool.instance_type}{gpus}, {zones} (source {pool.source})"


def _listed(names: Sequence[str]) -> str:
    more = f"; … and {len(names) - _LISTED} more" if len(names) > _LISTED else ""
    return ", ".join(names[:_LISTED]) + more


def _job(job: Job) -> str:
    return f"{job.key} ({job.workers}×{job.gpus_per_worker} {job.gpu_model or 'GPU'})"


def _zones(zones: Sequence[str]) -> str:
    counts: dict[str, int] = {}
    for z in zones:
        counts[z] = counts.get(z, 0) + 1
    return ", ".join(f"{n} in {z}" if z else f"{n}" for z, n in counts.items())


def plan_scale_pool(ops: Ops, snap: FleetSnapshot, pool_name: str, desired: int) -> Plan:
    """The :class:`Plan` of setting ``pool_name`` to ``desired`` nodes (see :meth:`Ops.plan_scale_pool`)."""
    pool = snap.pools_by_name.get(pool_name)
    if pool is None:
        raise TargetNotFound(f"node pool {pool_name} not found")
    a = assess_pool_scale(snap, pool, desired)
    shrinks = desired < a.current
    blockers: list[str] = []
    reason = ops.check("scale-pool", pool_name)
    if reason is None and shrinks:
        reason = denial("scale-pool", ops.actor.role, read_only=ops.read_only, shrinks=True)
    if reason is not None:
        blockers.append(reason)
    blockers += a.blockers
    warnings: list[str] = []

    pending = a.current - a.nodes_now
    now = f"{a.nodes_now} node{'' if a.nodes_now == 1 else 's'} now"
    if pending > 0:
        now += f", {pending} launching"
    lines: list[tuple[str, str]] = [
        ("Pool", f"{pool.name}: {describe_pool(pool)}"),
        ("Desired", f"{a.current} → {desired} ({now}; limits {pool.min_size}–{pool.max_size})"),
        ("Cost", f"{describe_cost(a.cost_delta_per_hour)} (price per node × change in desired)"),
    ]
    if a.added_zones:
        lines.append(("Adds", f"{len(a.added_zones)} × {pool.instance_type} ({_zones(a.added_zones)})"))
        if len(pool.zones) > 1:
            warnings.append(
                "The pool spans several zones: the new nodes are assumed spread evenly, as the Auto Scaling "
                "group balances them; a job needs its whole gang in one zone."
            )
    if desired > a.current and pool.gpu_model:
        if a.unblocked:
            shown = [_job(j) for j in a.unblocked]
            lines.append(("Unblocks", f"{len(a.unblocked)} queued: {_listed(shown)}"))
        else:
            lines.append(("Unblocks", "no queued job"))
        if a.still_queued:
            lines.append(("Still queued", f"{a.still_queued} job(s) for {pool.gpu_model} would still wait"))
    if a.removed:
        names = [n.name for n in a.removed]
        if pool.kind:
            warnings.append(
                f"AWS chooses which instances to terminate (the group's termination policy); the emptiest "
                f"now are {_listed(names)}."
            )
            lines.append(("Removes (estimate)", _listed(names)))
        else:
            lines.append(("Removes", f"{_listed(names)} (the emptiest)"))
        gpu_pods = sum(1 for p in a.at_risk if p.owner_kind != "DaemonSet")
        lines.append(
            (
                "At risk",
                f"{gpu_pods} pod(s) besides DaemonSets, {a.gpus_at_risk} GPUs in use, killed unevicted",
            )
        )
        if a.jobs_hit:
            lines.append(("Gangs restart", _listed(a.jobs_hit)))
        if a.gpus_at_risk:
            warnings.append(
                f"{a.gpus_at_risk} GPUs in use go with the nodes, without eviction and with no "
                "PodDisruptionBudget to stop it: drain the nodes first to move their work."
            )
    elif shrinks and pending > 0:
        lines.append(("Removes", "nothing running: cancels launches not yet up"))

    return Plan(
        action="scale-pool",
        target=pool.name,
        source=pool.source,
        title=f"Scale node pool {pool.name} from {a.current} to {desired} nodes",
        lines=tuple(lines),
        warnings=tuple(warnings),
        blockers=tuple(blockers),
        # A scale-down terminates machines with what runs on them: type the pool's name, as for a drain of
        # several nodes or a scale to zero. Growing it only costs money: a plain yes.
        confirm_phrase=pool.name if shrinks else None,
        params=MappingProxyType({"pool": pool.name, "from": a.current, "desired": desired}),
        detail=a,
    )
