"""The structured parts of plans, drawn for the plan screen: where each pod of a drain goes, or why not."""

from __future__ import annotations

import functools

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from aios_tui.alloc.drain import DrainPlan, PodMove
from aios_tui.alloc.placement import Placement
from aios_tui.alloc.pools import PoolScale
from aios_tui.render.glyphs import DIM_STYLE, FAIL_STYLE, WARN_STYLE

MAX_ROWS = 40
"""A drain of 50 nodes moves thousands of pods: show the first ones and count the rest."""


def _where(move: PodMove) -> Text:
    if move.blocked:
        return Text(move.blocked, WARN_STYLE if move.retry else FAIL_STYLE)
    if move.to:
        return Text(f"→ {move.to}")
    return Text("→ any node (needs no GPU)" if not move.gpus else "→ rescheduled", DIM_STYLE)


def _moves_table(title: str, moves: tuple[PodMove, ...]) -> RenderableType:
    table = Table(box=None, padding=(0, 1), header_style="bold", title=None, expand=True)
    table.add_column("POD", no_wrap=True, overflow="ellipsis", ratio=3)
    table.add_column("ON", no_wrap=True)
    table.add_column("GPU", justify="right", no_wrap=True)
    table.add_column("WHERE / WHY", ratio=4, overflow="fold")
    for m in moves[:MAX_ROWS]:
        table.add_row(m.pod, m.node, str(m.gpus or "-"), _where(m))
    rows: list[RenderableType] = [Text(title, "bold"), table]
    if len(moves) > MAX_ROWS:
        rows.append(Text(f"… and {len(moves) - MAX_ROWS} more", DIM_STYLE))
    return Group(*rows)


def drain_details(plan: DrainPlan) -> RenderableType:
    parts: list[RenderableType] = []
    if plan.blocked:
        parts.append(_moves_table(f"Cannot move now ({len(plan.blocked)})", plan.blocked))
    if plan.gangs:
        gangs = Table(box=None, padding=(0, 1), header_style="bold", expand=True)
        gangs.add_column("TRAINING JOB", no_wrap=True, overflow="ellipsis")
        gangs.add_column("RANKS LOST", justify="right", no_wrap=True)
        gangs.add_column("GPU-H AT RISK", justify="right", no_wrap=True)
        gangs.add_column("RESTARTS ON", ratio=1, overflow="fold")
        for g in plan.gangs:
            where = (
                Text(g.replacement.domain)
                if isinstance(g.replacement, Placement)
                else Text(f"queued: {g.replacement.reason}", WARN_STYLE)
            )
            gangs.add_row(g.job, f"{g.ranks_on_drained} of {g.workers}", f"{g.gpu_hours_at_risk:.1f}", where)
        parts += [Text("Training gangs that restart (all ranks, from their last checkpoint)", "bold"), gangs]
    if plan.evict:
        parts.append(_moves_table(f"Evicted, in this order ({len(plan.evict)})", plan.evict))
    if plan.skipped:
        parts.append(Text(f"Left in place: {len(plan.skipped)} DaemonSet pods", DIM_STYLE))
    return Group(*parts) if parts else Text("Nothing runs on these nodes but DaemonSets.", DIM_STYLE)


def pool_scale_details(scale: PoolScale) -> RenderableType:
    """The queued jobs a scale-up starts, or the nodes a scale-down removes and what runs on them."""
    parts: list[RenderableType] = []
    if scale.unblocked:
        jobs = Table(box=None, padding=(0, 1), header_style="bold", expand=True)
        jobs.add_column("QUEUED JOB THAT WOULD START", no_wrap=True, overflow="ellipsis", ratio=3)
        jobs.add_column("GANG", no_wrap=True)
        jobs.add_column("PRIO", justify="right", no_wrap=True)
        for j in scale.unblocked[:MAX_ROWS]:
            jobs.add_row(j.key, f"{j.workers}×{j.gpus_per_worker} {j.gpu_model or 'GPU'}", str(j.priority))
        parts.append(jobs)
    if scale.removed:
        nodes = Table(box=None, padding=(0, 1), header_style="bold", expand=True)
        nodes.add_column("NODE THAT GOES", no_wrap=True, overflow="ellipsis", ratio=2)
        nodes.add_column("GPUS USED", justify="right", no_wrap=True)
        nodes.add_column("PODS", justify="right", no_wrap=True)
        at_risk: dict[str, int] = {}
        for p in scale.at_risk:
            at_risk[p.node] = at_risk.get(p.node, 0) + 1
        for n in scale.removed[:MAX_ROWS]:
            used = Text(str(n.gpus_requested), WARN_STYLE if n.gpus_requested else "")
            nodes.add_row(n.name, used, str(at_risk.get(n.name, 0)))
        parts.append(nodes)
    return Group(*parts) if parts else Text("No queued job and no running pod is affected.", DIM_STYLE)


@functools.singledispatch
def plan_details(detail: object) -> RenderableType | None:
    """The long part of a plan, drawn by the type of its detail (a drain's pod table, a pool's jobs and
    nodes); None for plans whose rows say everything."""
    return None


@plan_details.register
def _(detail: DrainPlan) -> RenderableType | None:
    return drain_details(detail)


@plan_details.register
def _(detail: PoolScale) -> RenderableType | None:
    return pool_scale_details(detail)
