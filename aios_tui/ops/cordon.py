"""Cordoning and uncordoning nodes as an action: the plan (which nodes, what changes for new and running
pods) and its steps, one ``set_cordon`` call per node on the owning source.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from types import MappingProxyType
from typing import TYPE_CHECKING

from aios_tui.domain import FleetSnapshot, Health
from aios_tui.ops.core import Plan, Progress, _join, _nodes_title, _Steps
from aios_tui.sources.base import NodeMaintainer

if TYPE_CHECKING:
    from aios_tui.ops.actions import Ops

__all__ = ["plan_cordon", "run_cordon"]


def plan_cordon(ops: Ops, snap: FleetSnapshot, nodes: Sequence[str], cordon: bool = True) -> Plan:
    """The :class:`Plan` of cordoning (or uncordoning) ``nodes`` (see :meth:`Ops.plan_cordon`)."""
    action = "cordon" if cordon else "uncordon"
    found = ops._nodes(snap, nodes)
    names = tuple(n.name for n in found)
    blockers = ops._node_blockers(action, found)
    warnings: list[str] = []
    already = [n.name for n in found if n.cordoned == cordon]
    if already and len(already) == len(found):
        blockers.append(f"{_join(already)} {'is' if len(already) == 1 else 'are'} already {action}ed.")
    elif already:
        warnings.append(
            f"{_join(already)} already {action}ed: left as {'it is' if len(already) == 1 else 'they are'}."
        )
    if cordon:
        busy = sum(n.gpus_requested for n in found)
        effect = f"no new pods; {busy} GPUs in use keep running (drain to move them)"
    else:
        unhealthy = [n.name for n in found if not n.ready or n.health is Health.FAIL]
        if unhealthy:
            warnings.append(
                f"{_join(unhealthy)} {'is' if len(unhealthy) == 1 else 'are'} not healthy: "
                "pods may land on a bad node."
            )
        free = sum(n.gpus_free for n in found)
        effect = f"new pods may land again: {free} GPUs free"
    lines = (("Nodes", _join(names)), ("Effect", effect))
    return Plan(
        action=action,
        target=_join(names),
        source=found[0].source,
        title=f"{action.capitalize()} {_nodes_title(names)}",
        lines=lines,
        warnings=tuple(warnings),
        blockers=tuple(blockers),
        confirm_phrase=None,
        params=MappingProxyType({"nodes": names, "cordoned": cordon}),
    )


async def run_cordon(plan: Plan, source: NodeMaintainer, steps: _Steps, say: Progress) -> None:
    """Cordon (or uncordon) each node of the plan in turn, stopping at the first failure."""
    p = plan.params
    cordoned = bool(p["cordoned"])
    for node in p["nodes"]:
        steps.add(f"{plan.action} {node}")
    for node in p["nodes"]:
        name = f"{plan.action} {node}"
        if steps.stopped:
            break
        if await steps.attempt(name, functools.partial(source.set_cordon, node, cordoned)):
            say(f"{plan.action}ed {node}")
