"""The fleet, plans and results as plain text, for ``aios-tui snapshot`` and ``plan`` / ``act``: what an
on-call engineer reads in a few seconds in a terminal or a pasted incident note."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, TextIO

from aios_tui.domain import NA, FleetSnapshot, Health, JobState, Node, fmt, fmt_money, fmt_pct
from aios_tui.ops import ActionResult, Kind, Plan, lookup
from aios_tui.ops.suggest import suggest_cordons
from aios_tui.render.table import gpus_taken

__all__ = ["MAX_ROWS", "write_plan", "write_result", "write_summary"]

MAX_ROWS = 20


def _table(out: TextIO, title: str, headers: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    out.write(f"\n{title} ({len(rows)})\n")
    if not rows:
        out.write("  none\n")
        return
    shown = rows[:MAX_ROWS]
    widths = [max(len(h), *(len(r[i]) for r in shown)) for i, h in enumerate(headers)]
    for row in (headers, *shown):
        out.write("  " + "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() + "\n")
    if len(rows) > MAX_ROWS:
        out.write(f"  … and {len(rows) - MAX_ROWS} more\n")


def _node_problems(node: Node, snap: FleetSnapshot) -> list[str]:
    problems = []
    if not node.ready:
        problems.append("NotReady")
    if node.cordoned:
        problems.append("cordoned")
    problems.extend(str(t) for t in node.taints if t.effect in ("NoSchedule", "NoExecute"))
    for gpu in snap.gpus_by_node.get(node.name, ()):
        problems.extend(f"gpu{gpu.index} {p}" for p in gpu.problems)
    if not problems and node.health is not Health.OK:
        problems.append(f"health {node.health.label}")
    return problems


def write_summary(snap: FleetSnapshot, out: TextIO) -> None:
    """The snapshot as plain text: header, totals, then nodes with problems, queued/failed jobs, endpoints."""
    t = snap.totals
    when = datetime.fromtimestamp(snap.timestamp, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    out.write(f"aios-tui snapshot  {when}  context: {snap.context or '-'}\n")
    health = ", ".join(
        f"{s.describe(snap.timestamp)}" + (f" ({s.error})" if s.error else "") for s in snap.sources
    )
    out.write(f"sources    {health or 'none'}\n")
    out.write(f"nodes      {t.nodes_ready}/{t.nodes} ready\n")
    idle_cost = "" if t.idle_cost_per_hour is NA else f" ({fmt_money(t.idle_cost_per_hour)})"
    out.write(
        f"GPUs       {t.gpus} total, {t.gpus_used} used, {t.gpus_free} free, "
        f"{t.gpus_idle_allocated} allocated but idle{idle_cost}, {t.unhealthy_gpus} unhealthy\n"
    )
    out.write(f"util       {fmt_pct(t.avg_util)} average\n")
    out.write(f"cost       {t.cost_text()}\n")
    out.write(f"jobs       {t.jobs_running} running, {t.jobs_queued} queued; endpoints {t.endpoints}\n")

    node_rows = []
    for node in snap.nodes:
        problems = _node_problems(node, snap)
        if problems:
            gpus = f"{gpus_taken(node)}/{node.gpus_allocatable}"
            node_rows.append([node.name, node.pool, node.zone, node.status, gpus, "; ".join(problems)])
    _table(out, "Nodes with problems", ["NAME", "POOL", "ZONE", "STATUS", "GPUS", "PROBLEMS"], node_rows)
    cordon_rows = [[s.node, s.need.word, s.reason] for s in suggest_cordons(snap)]
    _table(out, "Nodes to cordon", ["NODE", "VERDICT", "WHY"], cordon_rows)

    job_rows = [
        [
            j.key,
            j.state.value,
            f"{j.workers}x{j.gpus_per_worker} {j.gpu_model}".rstrip(),
            str(j.queue_position or ""),
            j.pending_reason,
        ]
        for j in sorted(
            (j for j in snap.jobs if j.state in (JobState.QUEUED, JobState.FAILED)),
            key=lambda j: (j.state is not JobState.QUEUED, j.queue_position, j.key),
        )
    ]
    _table(out, "Queued and failed jobs", ["JOB", "STATE", "GPUS", "QUEUE", "REASON"], job_rows)

    ep_rows = [
        [
            e.key,
            e.model,
            f"{e.replicas_ready}/{e.replicas_desired}",
            fmt(e.qps, ".1f"),
            fmt(e.p50_ms, ".0f", "ms"),
            fmt(e.p99_ms, ".0f", "ms"),
            fmt_pct(e.error_rate * 100, ".1f"),
        ]
        for e in snap.endpoints
    ]
    _table(out, "Endpoints", ["ENDPOINT", "MODEL", "READY", "QPS", "P50", "P99", "ERRORS"], ep_rows)


def write_plan(plan: Plan[Any], out: TextIO, *, checked: Sequence[str] = ()) -> None:
    """The plan as a person reads it on the plan screen, then what the backend's dry run said."""
    out.write(f"{plan.title}\n")
    width = max((len(label) for label, _ in plan.lines), default=0)
    for label, value in plan.lines:
        out.write(f"  {label.ljust(width)}  {value}\n")
    for warning in plan.warnings:
        out.write(f"  warning: {warning}\n")
    for blocker in plan.blockers:
        out.write(f"  cannot: {blocker}\n")
    action = lookup(plan.action)
    for alternative in plan.alternatives:
        flags = []
        for name, value in alternative.args.items():
            param = next((p for p in action.params if p.name == name), None) if action else None
            option = param.option if param is not None and param.option else f"--{name.replace('_', '-')}"
            flags.append(option if param is not None and param.kind is Kind.FLAG else f"{option} {value}")
        out.write(f"  instead: {alternative.label} ({' '.join(flags)})\n")
    if plan.confirm_phrase is not None:
        out.write(f"  confirm by typing: {plan.confirm_phrase}\n")
    out.writelines(f"  {line}\n" for line in checked)


def write_result(result: ActionResult, out: TextIO) -> None:
    out.write(f"{result.message}\n")
    for step in result.done:
        if result.message != f"{step}: done":  # a single step named as the action: said once
            out.write(f"  done: {step}\n")
    for step in result.not_done:
        out.write(f"  not done: {step}\n")
