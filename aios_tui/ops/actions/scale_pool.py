"""Scale a node pool: the new desired capacity (``N``, ``+N``, ``-N``) within the pool's limits, the $/h
change, the queued jobs it unblocks, and for a scale-down the nodes and pods at risk; then one call to the
owning source's ``scale_pool``.

Growing needs ``operator``; shrinking needs ``admin`` and the pool's name typed, because it terminates
machines with their pods and no PodDisruptionBudget stops it. The limits are checked before any what-if is
built: ``:scale-pool h100-a 100000000`` is refused at once, naming them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import Any

from aios_tui.alloc.placement import GangRequest
from aios_tui.alloc.pools import PoolScale, assess_pool_scale
from aios_tui.alloc.scaling import describe_cost
from aios_tui.alloc.whatif import capacity_whatif
from aios_tui.domain import FleetSnapshot, Job, NodePool
from aios_tui.ops.action import Action, PlanContext
from aios_tui.ops.core import ActionRefused, Plan
from aios_tui.ops.grammar import Amount, Kind, Param
from aios_tui.ops.permissions import Role
from aios_tui.sources.base import PoolScaleNotes, PoolScaler, Source

__all__ = ["ScalePool", "describe_pool", "pool_fix"]


def pool_fix(job: Job, snapshot: FleetSnapshot) -> tuple[str, int] | None:
    """The pool, and how many nodes more, that would let queued ``job`` start (the what-if its detail shows:
    ``+2 × p5.48xlarge in pool h100-a``); None when it fits now or no pool would do."""
    fix = capacity_whatif(snapshot, GangRequest.for_job(job))
    return None if fix is None else (fix.pool, fix.nodes)


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


class ScalePool(Action[PoolScale]):
    """``s`` in the pools view (``p``), ``:scale-pool POOL N``."""

    name = "scale-pool"
    summary = "set a node pool's desired capacity in nodes: N, or +N / -N"
    label = "Scale pool"
    order = 60
    target = Kind.POOL
    capability = PoolScaler
    min_role_shrink = Role.ADMIN
    key = "s"
    panes = ("pools", "job")
    """In the pools view, and in a queued job's detail (the pool its what-if names, +N filled in)."""
    aliases = ("scalepool",)
    params = (
        Param(
            "pool",
            Kind.POOL,
            "the node pool (an Auto Scaling group or EKS node group, a managed instance group or GKE node "
            "pool, a VM scale set or AKS agent pool, a pool of the embedded fleet)",
            metavar="POOL",
        ),
        Param(
            "desired",
            Kind.AMOUNT,
            "desired nodes: N, or +N / -N relative to the current desired capacity",
            label="Nodes",
            metavar="NODES",
        ),
    )

    def _new(self, ctx: PlanContext, args: Mapping[str, Any]) -> tuple[NodePool, int]:
        pool = ctx.pool(args["pool"])
        amount: Amount = args["desired"]
        return pool, amount.of(pool.desired_capacity)

    def shrinks(self, ctx: PlanContext, args: Mapping[str, Any]) -> bool:
        pool, desired = self._new(ctx, args)
        return desired < pool.desired_capacity

    def bounds(self, ctx: PlanContext, args: Mapping[str, Any]) -> list[str]:
        pool, desired = self._new(ctx, args)
        if not pool.min_size <= desired <= pool.max_size:
            asked = f" ({args['desired']} from {pool.desired_capacity})" if args["desired"].relative else ""
            return [
                f"{desired:,}{asked} is outside the pool's limits {pool.min_size}–{pool.max_size}: "
                "change the limits first (they are the autoscaler's bounds)."
            ]
        return []

    def field(self, ctx: PlanContext, param: Param, args: Mapping[str, Any]) -> tuple[str, str]:
        pool = ctx.pool(args["pool"])
        given = args.get("desired")
        initial = str(given) if given is not None else str(pool.desired_capacity)
        return f"Nodes (now {pool.desired_capacity}; {pool.min_size}–{pool.max_size}; +N/-N)", initial

    def plan(self, ctx: PlanContext, args: Mapping[str, Any]) -> Plan[PoolScale]:
        pool, desired = self._new(ctx, args)
        a = assess_pool_scale(ctx.snapshot, pool, desired)
        shrinks = desired < a.current
        blockers: list[str] = []
        reason = ctx.check(self.name, [pool.name])
        if reason is not None:
            blockers.append(reason)
        blockers += a.blockers
        warnings: list[str] = []

        pending = a.current - a.nodes_now
        now = f"{a.nodes_now} node{'' if a.nodes_now == 1 else 's'} now"
        if pending > 0:
            now += f", {pending} of the desired not up (launching, or the cloud lacks capacity)"
        elif pending < 0:
            now += f", {-pending} above the desired (terminating)"
        lines: list[tuple[str, str]] = [
            ("Pool", f"{pool.name}: {describe_pool(pool)}"),
            ("Desired", f"{a.current} → {desired} ({now}; limits {pool.min_size}–{pool.max_size})"),
            ("Cost", f"{describe_cost(a.cost_delta_per_hour)} (price per node × change in desired)"),
        ]
        if desired > a.current:
            # The change in the desired count, as the cost line prices it; the what-if imagines the nodes
            # from those up now, which differs when the pool is short of (or above) its desired count.
            adds = f"{desired - a.current} × {pool.instance_type} to the desired count"
            if a.added_zones and len(a.added_zones) == desired - a.current:
                adds += f" ({_zones(a.added_zones)})"
            elif a.added_zones:
                adds += (
                    f"; with {a.nodes_now} up now, the what-if counts {len(a.added_zones)} new "
                    f"({_zones(a.added_zones)})"
                )
            lines.append(("Adds", adds))
            if pending > 0:
                warnings.append(
                    f"{pool.name} has {a.nodes_now} of its desired {a.current} nodes up: if the cloud lacks "
                    "capacity (launches failing), the new ones wait too; the what-if assumes they come up."
                )
            if a.added_zones and len(pool.zones) > 1:
                warnings.append(
                    "The pool spans several zones: the new nodes are assumed spread evenly, as the Auto "
                    "Scaling group balances them; a job needs its whole gang in one zone."
                )
        if desired > a.current and pool.gpu_model:
            if a.unblocked:
                shown = [_job(j) for j in a.unblocked]
                lines.append(("Unblocks", f"{len(a.unblocked)} queued: {_listed(shown)}"))
            else:
                lines.append(("Unblocks", "no queued job"))
            if a.still_queued:
                lines.append(
                    ("Still queued", f"{a.still_queued} job(s) for {pool.gpu_model} would still wait")
                )
        if a.removed:
            names = [n.name for n in a.removed]
            if pool.kind:
                warnings.append(
                    f"AWS chooses which instances to terminate (the group's termination policy); the "
                    f"emptiest now are {_listed(names)}."
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
            cancelled = min(pending, a.current - desired)
            still = max(0, desired - a.nodes_now)
            removes = (
                f"no node that is up; cancels {cancelled} launch{'es' if cancelled != 1 else ''} not yet up"
            )
            if still:
                removes += f" ({still} still to come)"
            lines.append(("Removes", removes))

        source = ctx.sources.get(pool.source)
        if isinstance(source, PoolScaleNotes):
            warnings += source.scale_notes(pool.name, a.current, desired)
            blockers += source.scale_blockers(pool.name, desired)

        return Plan(
            action=self.name,
            target=pool.name,
            source=pool.source,
            title=f"Scale node pool {pool.name} from {a.current} to {desired} nodes",
            lines=tuple(lines),
            warnings=tuple(warnings),
            blockers=tuple(blockers),
            # A scale-down terminates machines with what runs on them: type the pool's name, as for a drain
            # of several nodes or a scale to zero. Growing it only costs money: a plain yes.
            confirm_phrase=pool.name if shrinks else None,
            params=MappingProxyType(
                {"pool": pool.name, "from": a.current, "desired": desired, "asked": str(args["desired"])}
            ),
            detail=a,
            targets=(pool.name,),
            shrinks=shrinks,
        )

    def still_valid(self, ctx: PlanContext, plan: Plan[PoolScale]) -> None:
        super().still_valid(ctx, plan)
        pool = ctx.snapshot.pools_by_name[plan.target]
        if pool.desired_capacity != plan.params["from"]:
            raise ActionRefused(
                f"{plan.target}'s desired capacity changed from {plan.params['from']} to "
                f"{pool.desired_capacity} since the plan; nothing was done: plan it again"
            )

    def json_detail(self, plan: Plan[PoolScale]) -> dict[str, Any]:
        scale = plan.detail
        return {
            "pool_scale": {
                "pool": scale.pool.name,
                "from": scale.current,
                "desired": scale.new,
                "nodes_now": scale.nodes_now,
                "cost_delta_per_hour": scale.cost_delta_per_hour,
                "added_zones": list(scale.added_zones),
                "unblocked": [j.key for j in scale.unblocked],
                "still_queued": scale.still_queued,
                "removed": [n.name for n in scale.removed],
                "pods_at_risk": [p.key for p in scale.at_risk],
                "gpus_at_risk": scale.gpus_at_risk,
                "jobs_restarting": list(scale.jobs_hit),
            }
        }

    async def call(self, source: Source, plan: Plan[PoolScale]) -> None:
        assert isinstance(source, PoolScaler)
        await source.scale_pool(str(plan.params["pool"]), int(plan.params["desired"]))
