"""Drain nodes: cordon them, evict their pods to the rest of the fleet, say what each training gang's
controller then does (restart, requeue, or fail), wait on PodDisruptionBudgets. The plan, a server-side dry
run of its evictions, and its steps: cordon every node, then evict a few pods at a time, retrying those a
PodDisruptionBudget refuses. Cancelled, it stops after the evictions in flight and says what was done."""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from aios_tui.alloc.drain import BARE_POD, EMPTY_DIR, DrainPlan, Fate, PodMove
from aios_tui.alloc.drain import plan_drain as make_drain_plan
from aios_tui.alloc.placement import Placement, Refusal
from aios_tui.ops.action import Action, PlanContext, RunContext
from aios_tui.ops.core import (
    ACTION_TIMEOUT_S,
    EVICT_CONCURRENCY,
    ActionRefused,
    CancelToken,
    Plan,
    Progress,
    describe,
    is_production,
    join,
    nodes_title,
    plural,
)
from aios_tui.ops.grammar import Kind, Param
from aios_tui.ops.permissions import Role
from aios_tui.sources.base import EvictionBlocked, EvictionDryRun, NodeMaintainer, SourceError

__all__ = ["DRY_RUN_CONCURRENCY", "DRY_RUN_LIMIT", "Drain"]

log = logging.getLogger("aios_tui.ops")

DRY_RUN_LIMIT = 200
"""Pods a drain preview asks the server about (a 50-node drain can hold thousands)."""
DRY_RUN_CONCURRENCY = 8
MAX_NODES = 500
"""More nodes in one drain is a mistake (a typo'd pattern), not a plan anyone reads."""

_MAX_LISTED = 5
"""Pods named one by one in a plan's lines; the rest are counted (the console shows the full table)."""

_HOW_TO_ALLOW = {
    EMPTY_DIR: " (allow deleting emptyDir data, as kubectl drain --delete-emptydir-data)",
    BARE_POD: " (allow deleting pods with no controller, as kubectl drain --force)",
}


class Drain(Action[DrainPlan]):
    """``D`` on nodes (the marked ones, or the one under the cursor), ``:drain NODE…``."""

    name = "drain"
    summary = "cordon nodes and evict their pods to the rest of the fleet"
    label = "Drain"
    order = 40
    target = Kind.NODES
    capability = NodeMaintainer
    min_role_many = Role.ADMIN
    key = "D"
    panes = ("nodes", "cordon")
    params = (
        Param("nodes", Kind.NODES, "the nodes, by name", metavar="NODE"),
        Param(
            "allow_empty_dir",
            Kind.FLAG,
            "evict pods with emptyDir data (/dev/shm), deleting it (kubectl's --delete-emptydir-data)",
            option="--allow-empty-dir",
            default=False,
            label="Delete emptyDir data? y/n",
        ),
        Param(
            "allow_unmanaged",
            Kind.FLAG,
            "delete pods that no controller recreates (kubectl's --force)",
            option="--allow-unmanaged",
            default=False,
            label="Delete bare pods? y/n",
        ),
        Param(
            "pdb_timeout_s",
            Kind.SECONDS,
            "how long to retry evictions a PodDisruptionBudget refuses (default 300)",
            option="--pdb-timeout",
            default=300.0,
            lo=0,
            hi=86_400,
            label="PDB wait (s)",
            metavar="SECONDS",
        ),
    )

    def bounds(self, ctx: PlanContext, args: Mapping[str, Any]) -> list[str]:
        count = len(args["nodes"])
        if count > MAX_NODES:
            return [f"{count:,} nodes in one drain: at most {MAX_NODES} at a time"]
        return []

    def field(self, ctx: PlanContext, param: Param, args: Mapping[str, Any]) -> tuple[str, str]:
        label, text = super().field(ctx, param, args)
        return label, f"{float(text):g}" if param.kind is Kind.SECONDS else text

    def plan(self, ctx: PlanContext, args: Mapping[str, Any]) -> Plan[DrainPlan]:
        found = ctx.nodes(args["nodes"])
        names = tuple(n.name for n in found)
        allow_empty_dir, allow_unmanaged = bool(args["allow_empty_dir"]), bool(args["allow_unmanaged"])
        pdb_timeout_s = float(args["pdb_timeout_s"])
        dp = make_drain_plan(
            ctx.snapshot, names, allow_empty_dir=allow_empty_dir, allow_unmanaged=allow_unmanaged
        )
        blockers = ctx.node_blockers(self.name, found)
        warnings: list[str] = []

        gpus = sum(m.gpus for m in dp.evict)
        lines: list[tuple[str, str]] = [
            ("Nodes", join(names)),
            ("Cordon", "first, so nothing new lands there"),
            ("Evict", f"{plural(len(dp.evict), 'pod')} ({gpus} GPUs)" if dp.evict else "nothing"),
        ]
        moved = [m for m in dp.evict if m.gpus and m.to]
        if moved:
            shown = "; ".join(f"{m.pod} → {m.to}" for m in moved[:_MAX_LISTED])
            more = f"; … and {len(moved) - _MAX_LISTED} more" if len(moved) > _MAX_LISTED else ""
            lines.append(("Moves", shown + more))
        for gang in dp.gangs:
            fate = gang.fate
            restarts = fate.fate is Fate.RESTARTS
            if isinstance(gang.replacement, Placement):
                place = gang.replacement.where
                where = (
                    f"restarts{place} ({fate.text.removeprefix('restarts: ')})"
                    if restarts
                    else f"{fate.text}; fits now{place}"
                )
            elif isinstance(gang.replacement, Refusal):
                where = f"{fate.text}; does not fit now"
                verb = "restarts" if restarts else "is requeued"
                warnings.append(f"{gang.job} {verb} but does not fit anywhere: {gang.replacement.reason}")
            else:
                where = fate.text
            if fate.fate is Fate.FAILS:
                warnings.append(f"{gang.job} {fate.text}: this drain ends the {gang.gpus}-GPU job.")
            elif fate.fate is Fate.UNKNOWN:
                warnings.append(f"{gang.job}: what happens after the eviction is {fate.text}.")
            lines.append(
                (
                    f"Gang {gang.job}",
                    f"{gang.ranks_on_drained} of {gang.workers} ranks on these nodes; gang of "
                    f"{gang.gpus} GPUs {where}; {gang.gpu_hours_at_risk:.1f} GPU-hours at risk",
                )
            )
        if dp.gangs:
            lines.append(("GPU-hours at risk", f"{dp.gpu_hours_at_risk:.1f} (since the last checkpoints)"))
        if dp.skipped:
            lines.append(("Stay", f"{plural(len(dp.skipped), 'DaemonSet pod')} (as --ignore-daemonsets)"))
        # One sentence per reason, not per pod: a drain of a busy node blocks hundreds of pods alike.
        by_reason: dict[tuple[bool, str], list[PodMove]] = {}
        for move in dp.blocked:
            by_reason.setdefault((move.retry, move.blocked), []).append(move)
        for (retry, reason), moves in by_reason.items():
            who = (
                f"{moves[0].pod} on {moves[0].node}"
                if len(moves) == 1
                else f"{len(moves)} pods (e.g. {moves[0].pod})"
            )
            if retry:
                warnings.append(
                    f"{who}: {reason} (every {ctx.pdb_retry_s:g} s for up to {pdb_timeout_s:g} s)."
                )
            else:
                blockers.append(f"{who}: {reason}{_HOW_TO_ALLOW.get(reason, '')}")
        if any(m.retry for m in dp.blocked):
            lines.append(("PDB wait", f"up to {pdb_timeout_s:g} s, retrying every {ctx.pdb_retry_s:g} s"))

        pods = [*dp.evict, *dp.blocked]
        if len(names) > 1:
            phrase: str | None = f"{len(names)} nodes"
        elif any(is_production(m.pod.split("/", 1)[0]) for m in pods) or any(
            g.fate.fate is Fate.FAILS for g in dp.gangs
        ):  # a drain that ends a training job is typed, not just pressed
            phrase = names[0]
        else:
            phrase = None
        return Plan(
            action=self.name,
            target=join(names),
            source=found[0].source,
            title=f"Drain {nodes_title(names)}",
            lines=tuple(lines),
            warnings=tuple(warnings),
            blockers=tuple(blockers),
            confirm_phrase=phrase,
            params=MappingProxyType(
                {
                    "nodes": names,
                    "allow_empty_dir": allow_empty_dir,
                    "allow_unmanaged": allow_unmanaged,
                    "pdb_timeout_s": pdb_timeout_s,
                }
            ),
            detail=dp,
            targets=names,
        )

    def still_valid(self, ctx: PlanContext, plan: Plan[DrainPlan]) -> None:
        super().still_valid(ctx, plan)
        if not isinstance(plan.detail, DrainPlan):
            raise ActionRefused(f"{plan.title}: the plan has no drain plan behind it; plan it again")

    def json_detail(self, plan: Plan[DrainPlan]) -> dict[str, Any]:
        return {"drain_plan": plan.detail}

    async def verify(self, ctx: PlanContext, plan: Plan[DrainPlan]) -> tuple[str, ...]:
        """The server's dry run of the evictions (Kubernetes ``dryRun=All``): what its PodDisruptionBudgets
        would refuse now. Empty when the backend cannot dry-run or nothing is evicted; at most
        :data:`DRY_RUN_LIMIT` pods are asked (the rest are counted)."""
        source = ctx.sources.get(plan.source)
        if not isinstance(source, EvictionDryRun):
            return ()
        moves = [*plan.detail.evict, *(m for m in plan.detail.blocked if m.retry)]
        if not moves:
            return ()
        asked = moves[:DRY_RUN_LIMIT]
        gate = asyncio.Semaphore(DRY_RUN_CONCURRENCY)

        async def ask(move: PodMove) -> str | None:
            namespace, _, name = move.pod.rpartition("/")
            async with gate:
                try:
                    await asyncio.wait_for(source.evict_pod_dry_run(namespace, name), ACTION_TIMEOUT_S)
                except EvictionBlocked as exc:
                    return f"{move.pod}: refused now ({exc.pdb or 'PodDisruptionBudget'}: {exc})"
                except (SourceError, TimeoutError) as exc:
                    return f"{move.pod}: dry run failed: {describe(exc)}"
            return None

        answers = [a for a in await asyncio.gather(*(ask(m) for m in asked)) if a]
        more = f" ({len(moves) - len(asked)} more not asked)" if len(moves) > len(asked) else ""
        if not answers:
            return (f"server dry run: all {len(asked)} evictions would be accepted now{more}",)
        head = f"server dry run: {len(answers)} of {len(asked)} evictions would be refused now{more}"
        return (
            head,
            *answers[:_MAX_LISTED],
            *([f"… and {len(answers) - _MAX_LISTED} more"] if len(answers) > _MAX_LISTED else []),
        )

    def step_names(self, plan: Plan[DrainPlan]) -> tuple[str, ...]:
        dp = plan.detail
        moves = [*dp.evict, *(m for m in dp.blocked if m.retry)]
        return (*(f"cordon {n}" for n in dp.nodes), *(_evict_step(m) for m in moves))

    async def run(self, run: RunContext, plan: Plan[DrainPlan]) -> None:
        """Cordon every node, then evict in the plan's order, a few at a time.

        A gang whose controller takes every rank away once one is evicted (Kueue requeues the workload; a
        Job that fails has its other pods terminated) gets one eviction, its other ranks on these nodes
        leaving with it; a gang whose Job merely replaces the evicted pod has every rank evicted, as
        ``kubectl drain`` would. An eviction a PodDisruptionBudget refuses is
        retried every ``pdb_retry_s`` up to the plan's ``pdb_timeout_s``, each wait reported; a cancel ends
        the wait at once.
        """
        dp = plan.detail
        source = run.source
        assert isinstance(source, NodeMaintainer)
        steps, say = run.steps, run.say
        timeout_s = float(plan.params["pdb_timeout_s"])
        moves = [*dp.evict, *(m for m in dp.blocked if m.retry)]
        leaders: dict[str, PodMove] = {}
        followers: dict[str, list[PodMove]] = {}
        evictions: list[PodMove] = []
        gangs = {g.job for g in dp.gangs if g.fate.fate in (Fate.REQUEUED, Fate.FAILS)}
        for move in moves:
            if move.owner in gangs and move.gpus:
                if move.owner in leaders:
                    followers.setdefault(move.owner, []).append(move)
                    continue
                leaders[move.owner] = move
            evictions.append(move)
        say(f"{plan.title}: cordoning {plural(len(dp.nodes), 'node')}, evicting {plural(len(moves), 'pod')}")

        for node in dp.nodes:
            if await steps.attempt(f"cordon {node}", functools.partial(source.set_cordon, node, True)):
                say(f"cordoned {node}")
            else:
                return  # evicting from a node that still takes new pods would move nothing

        gate = asyncio.Semaphore(EVICT_CONCURRENCY)
        evicted = 0

        async def evict(move: PodMove) -> None:
            nonlocal evicted
            async with gate:
                if not steps.may_start():
                    return
                name = _evict_step(move)
                try:
                    await _evict_waiting(source, move, timeout_s, run.pdb_retry_s, steps.cancel, say)
                except _PdbTimeout as exc:
                    steps.fail(name, str(exc), hard=False)
                    say(f"{name}: {exc}")
                    return
                except _Cancelled:
                    return
                except TimeoutError:
                    steps.fail(
                        name,
                        f"no answer after {ACTION_TIMEOUT_S:g}s; it may still apply, check before retrying",
                    )
                    return
                except Exception as exc:
                    log.warning("%s failed", name, exc_info=True)
                    steps.fail(name, describe(exc))
                    say(f"{name} failed: {describe(exc)}")
                    return
                steps.done(name)
                mates = followers.get(move.owner, ()) if leaders.get(move.owner) is move else ()
                for mate in mates:
                    steps.done(_evict_step(mate))
                evicted += 1 + len(mates)
                gang = f", {plural(len(mates), 'more rank')} leave with its gang" if mates else ""
                say(f"{name}{gang} ({evicted}/{len(moves)})")

        await asyncio.gather(*(evict(m) for m in evictions))


async def _evict_waiting(
    source: NodeMaintainer,
    move: PodMove,
    timeout_s: float,
    retry_s: float,
    cancel: CancelToken,
    say: Progress,
) -> None:
    namespace, name = move.pod.split("/", 1)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while True:
        try:
            async with asyncio.timeout(ACTION_TIMEOUT_S):
                await source.evict_pod(namespace, name)
            return
        except EvictionBlocked as exc:
            pdb = exc.pdb or "of its owner"
            left = deadline - loop.time()
            if left <= 0:
                raise _PdbTimeout(
                    f"PodDisruptionBudget {pdb} still allows no disruption after {timeout_s:g} s"
                ) from exc
            wait = min(retry_s, left)
            say(
                f"evict {move.pod}: waiting for PodDisruptionBudget {pdb} (429), retrying in {_seconds(wait)}"
            )
            if await cancel.sleep(wait):
                raise _Cancelled from exc


class _PdbTimeout(Exception):
    """An eviction still refused by a PodDisruptionBudget when the drain's wait ran out."""


class _Cancelled(Exception):
    """The drain was cancelled while this eviction waited on a PodDisruptionBudget."""


def _seconds(s: float) -> str:
    """``5 s`` for 4.93427: a wait read by people, to the second (under one, to one significant digit)."""
    return f"{round(s)} s" if s >= 0.95 else f"{s:.1g} s"


def _evict_step(move: PodMove) -> str:
    return f"evict {move.pod} from {move.node}"
