"""The structured parts of plans, drawn for the plan screen: where each pod of a drain goes, or why not."""

from __future__ import annotations

import functools
from collections.abc import Mapping
from types import MappingProxyType

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from aios_tui.alloc.drain import DrainPlan, Fate, PodMove
from aios_tui.alloc.placement import Placement, Refusal
from aios_tui.alloc.pools import PoolScale
from aios_tui.render.glyphs import DIM_STYLE, FAIL_STYLE, WARN_STYLE

MAX_ROWS = 40
"""A drain of 50 nodes moves thousands of pods: show the first ones and count the rest."""


def _where(move: PodMove, ends: Mapping[str, str]) -> Text:
    if move.blocked:
        return Text(move.blocked, WARN_STYLE if move.retry else FAIL_STYLE)
    if move.to:
        return Text(f"→ {move.to}")
    if move.gpus and move.owner in ends:
        return Text(f"not replaced: {ends[move.owner]}", FAIL_STYLE)
    return Text("→ any node (needs no GPU)" if not move.gpus else "→ rescheduled", DIM_STYLE)


def _moves_table(
    title: str, moves: tuple[PodMove, ...], ends: Mapping[str, str] = MappingProxyType({})
) -> RenderableType:
    table = Table(box=None, padding=(0, 1), header_style="bold", title=None, expand=True)
    table.add_column("POD", no_wrap=True, overflow="ellipsis", ratio=3)
    table.add_column("ON", no_wrap=True)
    table.add_column("GPU", justify="right", no_wrap=True)
    table.add_column("WHERE / WHY", ratio=4, overflow="fold")
    for m in moves[:MAX_ROWS]:
        table.add_row(m.pod, m.node, str(m.gpus or "-"), _where(m, ends))
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
        gangs.add_column("THEN", ratio=1, overflow="fold")
        for g in plan.gangs:
            if isinstance(g.replacement, Placement):
                where = Text(f"{g.fate.text}; fits{g.replacement.where}")
            elif isinstance(g.replacement, Refusal):
                where = Text(f"{g.fate.text}; queued: {g.replacement.reason}", WARN_STYLE)
            else:
                where = Text(g.fate.text, FAIL_STYLE if g.fate.fate is Fate.FAILS else WARN_STYLE)
            gangs.add_row(g.job, f"{g.ranks_on_drained} of {g.workers}", f"{g.gpu_hours_at_risk:.1f}", where)
        parts += [Text("Training gangs that lose ranks (what their controller then does)", "bold"), gangs]
    if plan.evict:
        # A rank of a gang that fails, or whose controller is unknown, is not rescheduled by this plan.
        ends = {g.job: g.fate.text for g in plan.gangs if g.fate.fate in (Fate.FAILS, Fate.UNKNOWN)}
        parts.append(_moves_table(f"Evicted, in this order ({len(plan.evict)})", plan.evict, ends))
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
