"""Draining nodes as an action: the plan (cordon them, evict their pods to the rest of the fleet, restart the
training gangs they hold, wait on PodDisruptionBudgets), a server-side dry run of its evictions, and its
steps: cordon every node, then evict a few pods at a time, retrying those a PodDisruptionBudget refuses.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Sequence
from types import MappingProxyType
from typing import TYPE_CHECKING

from aios_tui.alloc.drain import BARE_POD, EMPTY_DIR, PodMove
from aios_tui.alloc.drain import plan_drain as make_drain_plan
from aios_tui.alloc.placement import Placement
from aios_tui.domain import FleetSnapshot
from aios_tui.ops.core import (
    ACTION_TIMEOUT_S,
    EVICT_CONCURRENCY,
    Plan,
    Progress,
    _describe,
    _join,
    _nodes_title,
    _plural,
    _prod,
    _Steps,
)
from aios_tui.sources.base import EvictionBlocked, EvictionDryRun, NodeMaintainer, SourceError

if TYPE_CHECKING:
    from aios_tui.ops.actions import Ops

__all__ = ["DRY_RUN_CONCURRENCY", "DRY_RUN_LIMIT", "dry_run_drain", "plan_drain", "run_drain"]

log = logging.getLogger("aios_tui.ops")

DRY_RUN_LIMIT = 200
"""Pods a drain preview asks the server about (a 50-node drain can hold thousands)."""
DRY_RUN_CONCURRENCY = 8

_MAX_LISTED = 5
"""Pods named one by one in a plan's lines; the rest are counted (the console shows the full table)."""

_HOW_TO_ALLOW = {
    EMPTY_DIR: " (allow deleting emptyDir data, as kubectl drain --delete-emptydir-data)",
    BARE_POD: " (allow deleting pods with no controller, as kubectl drain --force)",
}


def plan_drain(
    ops: Ops,
    snap: FleetSnapshot,
    nodes: Sequence[str],
    *,
    allow_empty_dir: bool = False,
    allow_unmanaged: bool = False,
    pdb_timeout_s: float = 300.0,
) -> Plan:
    """The :class:`Plan` of draining ``nodes`` (see :meth:`Ops.plan_drain`)."""
    found = ops._nodes(snap, nodes)
    names = tuple(n.name for n in found)
    dp = make_drain_plan(snap, names, allow_empty_dir=allow_empty_dir, allow_unmanaged=allow_unmanaged)
    blockers = ops._node_blockers("drain", found)
    warnings: list[str] = []

    gpus = sum(m.gpus for m in dp.evict)
    lines: list[tuple[str, str]] = [
        ("Nodes", _join(names)),
        ("Cordon", "first, so nothing new lands there"),
        ("Evict", f"{_plural(len(dp.evict), 'pod')} ({gpus} GPUs)" if dp.evict else "nothing"),
    ]
    moved = [m for m in dp.evict if m.gpus and m.to]
    if moved:
        shown = "; ".join(f"{m.pod} → {m.to}" for m in moved[:_MAX_LISTED])
        more = f"; … and {len(moved) - _MAX_LISTED} more" if len(moved) > _MAX_LISTED else ""
        lines.append(("Moves", shown + more))
    for gang in dp.gangs:
        if isinstance(gang.replacement, Placement):
            where = f"restarts in {gang.replacement.domain}"
        else:
            where = "cannot restart now"
            warnings.append(f"{gang.job} restarts but does not fit anywhere: {gang.replacement.reason}")
        lines.append(
            (
                f"Gang {gang.job}",
                f"{gang.ranks_on_drained} of {gang.workers} ranks on these nodes; whole gang of "
                f"{gang.gpus} GPUs {where}; {gang.gpu_hours_at_risk:.1f} GPU-hours at risk",
            )
        )
    if dp.gangs:
        lines.append(("GPU-hours at risk", f"{dp.gpu_hours_at_risk:.1f} (since the last checkpoints)"))
    if dp.skipped:
        lines.append(("Stay", f"{_plural(len(dp.skipped), 'DaemonSet pod')} (as --ignore-daemonsets)"))
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
            warnings.append(f"{who}: {reason} (every {ops._pdb_retry_s:g} s for up to {pdb_timeout_s:g} s).")
        else:
            blockers.append(f"{who}: {reason}{_HOW_TO_ALLOW.get(reason, '')}")
    if any(m.retry for m in dp.blocked):
        lines.append(("PDB wait", f"up to {pdb_timeout_s:g} s, retrying every {ops._pdb_retry_s:g} s"))

    pods = [*dp.evict, *dp.blocked]
    if len(names) > 1:
        phrase: str | None = f"{len(names)} nodes"
    elif any(_prod(m.pod.split("/", 1)[0]) for m in pods):
        phrase = names[0]
    else:
        phrase = None
    return Plan(
        action="drain",
        target=_join(names),
        source=found[0].source,
        title=f"Drain {_nodes_title(names)}",
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
    )


async def dry_run_drain(ops: Ops, plan: Plan, *, limit: int = DRY_RUN_LIMIT) -> tuple[str, ...]:
    """The server's dry run of a drain plan's evictions (see :meth:`Ops.dry_run_drain`)."""
    drain = ops.drain_plan(plan)
    source = ops._sources.get(plan.source)
    if drain is None or not isinstance(source, EvictionDryRun):
        return ()
    moves = [*drain.evict, *(m for m in drain.blocked if m.retry)]
    if not moves:
        return ()
    asked = moves[:limit]
    gate = asyncio.Semaphore(DRY_RUN_CONCURRENCY)

    async def ask(move: PodMove) -> str | None:
        namespace, _, name = move.pod.rpartition("/")
        async with gate:
            try:
                await asyncio.wait_for(source.evict_pod_dry_run(namespace, name), ACTION_TIMEOUT_S)
            except EvictionBlocked as exc:
                return f"{move.pod}: refused now ({exc.pdb or 'PodDisruptionBudget'}: {exc})"
            except (SourceError, TimeoutError) as exc:
                return f"{move.pod}: dry run failed: {_describe(exc)}"
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


async def run_drain(ops: Ops, plan: Plan, source: NodeMaintainer, steps: _Steps, say: Progress) -> None:
    """Cordon every node, then evict in the plan's order, a few at a time.

    A training gang restarts whole when one of its ranks is evicted, so one eviction per gang is made;
    its other ranks on these nodes leave with the restart. An eviction a PodDisruptionBudget refuses is
    retried every ``pdb_retry_s`` up to the plan's ``pdb_timeout_s``, each wait reported.
    """
    dp = ops.drain_plan(plan)
    assert dp is not None
    timeout_s = float(plan.params["pdb_timeout_s"])
    cordons = [f"cordon {n}" for n in dp.nodes]
    moves = [*dp.evict, *(m for m in dp.blocked if m.retry)]
    leaders: dict[str, PodMove] = {}
    followers: dict[str, list[PodMove]] = {}
    evictions: list[PodMove] = []
    gangs = {g.job for g in dp.gangs}
    for move in moves:
        if move.owner in gangs and move.gpus:
            if move.owner in leaders:
                followers.setdefault(move.owner, []).append(move)
                continue
            leaders[move.owner] = move
        evictions.append(move)
    for name in cordons:
        steps.add(name)
    for move in moves:
        steps.add(_evict_step(move))
    say(f"{plan.title}: cordoning {_plural(len(cordons), 'node')}, evicting {_plural(len(moves), 'pod')}")

    for node, name in zip(dp.nodes, cordons, strict=True):
        if await steps.attempt(name, functools.partial(source.set_cordon, node, True)):
            say(f"cordoned {node}")
        else:
            return  # evicting from a node that still takes new pods would move nothing

    gate = asyncio.Semaphore(EVICT_CONCURRENCY)
    evicted = 0

    async def evict(move: PodMove) -> None:
        nonlocal evicted
        async with gate:
            if steps.stopped:
                return
            name = _evict_step(move)
            try:
                await _evict_waiting(ops, source, move, timeout_s, say)
            except _PdbTimeout as exc:
                steps.fail(name, str(exc), hard=False)
                say(f"{name}: {exc}")
                return
            except TimeoutError:
                steps.fail(
                    name,
                    f"no answer after {ACTION_TIMEOUT_S:g}s; it may still apply, check before retrying",
                )
                return
            except Exception as exc:
                log.warning("%s failed", name, exc_info=True)
                steps.fail(name, _describe(exc))
                say(f"{name} failed: {_describe(exc)}")
                return
            steps.done(name)
            mates = followers.get(move.owner, ()) if leaders.get(move.owner) is move else ()
            for mate in mates:
                steps.done(_evict_step(mate))
            evicted += 1 + len(mates)
            gang = f", {_plural(len(mates), 'more rank')} leave with its gang" if mates else ""
            say(f"{name}{gang} ({evicted}/{len(moves)})")

    await asyncio.gather(*(evict(m) for m in evictions))


async def _evict_waiting(
    ops: Ops, source: NodeMaintainer, move: PodMove, timeout_s: float, say: Progress
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
            wait = min(ops._pdb_retry_s, left)
            say(f"evict {move.pod}: waiting for PodDisruptionBudget {pdb} (429), retrying in {wait:g} s")
            await asyncio.sleep(wait)


class _PdbTimeout(Exception):
    """An eviction still refused by a PodDisruptionBudget when the drain's wait ran out."""


def _evict_step(move: PodMove) -> str:
    return f"evict {move.pod} from {move.node}"
