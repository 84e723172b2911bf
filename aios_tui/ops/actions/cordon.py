"""Cordon and uncordon nodes: which nodes, what changes for new and running pods; then one ``set_cordon`` call
per node on the owning source, stopping at the first failure."""

from __future__ import annotations

import functools
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, ClassVar

from aios_tui.domain import Health
from aios_tui.ops.action import Action, PlanContext, RunContext
from aios_tui.ops.core import Plan, join, nodes_title
from aios_tui.ops.grammar import Kind, Param
from aios_tui.sources.base import NodeMaintainer

__all__ = ["Cordon", "Uncordon"]

_NODES = Param("nodes", Kind.NODES, "the nodes, by name", metavar="NODE")


class Cordon(Action[None]):
    """``c`` on nodes (the marked ones, or the one under the cursor), ``:cordon NODE…``."""

    name = "cordon"
    summary = "stop new pods landing on nodes (running pods stay)"
    label = "Cordon"
    order = 30
    target = Kind.NODES
    capability = NodeMaintainer
    key = "c"
    panes: ClassVar[tuple[str, ...]] = ("nodes", "cordon")
    params = (_NODES,)
    cordon: ClassVar[bool] = True

    def plan(self, ctx: PlanContext, args: Mapping[str, Any]) -> Plan[None]:
        found = ctx.nodes(args["nodes"])
        names = tuple(n.name for n in found)
        blockers = ctx.node_blockers(self.name, found)
        warnings: list[str] = []
        already = [n.name for n in found if n.cordoned == self.cordon]
        if already and len(already) == len(found):
            other = "uncordon (u)" if self.cordon else "cordon (c)"
            verb = "is" if len(already) == 1 else "are"
            blockers.append(f"{join(already)} {verb} already {self.name}ed: did you mean {other}?")
        elif already:
            verb = "it is" if len(already) == 1 else "they are"
            warnings.append(f"{join(already)} already {self.name}ed: left as {verb}.")
        if self.cordon:
            busy = sum(n.gpus_requested for n in found)
            effect = f"no new pods; {busy} GPUs in use keep running (drain to move them)"
        else:
            unhealthy = [n.name for n in found if not n.ready or n.health is Health.FAIL]
            if unhealthy:
                verb = "is" if len(unhealthy) == 1 else "are"
                warnings.append(f"{join(unhealthy)} {verb} not healthy: pods may land on a bad node.")
            effect = f"new pods may land again: {sum(n.gpus_free for n in found)} GPUs free"
        return Plan(
            action=self.name,
            target=join(names),
            source=found[0].source,
            title=f"{self.label} {nodes_title(names)}",
            lines=(("Nodes", join(names)), ("Effect", effect)),
            warnings=tuple(warnings),
            blockers=tuple(blockers),
            confirm_phrase=None,
            params=MappingProxyType({"nodes": names, "cordoned": self.cordon}),
            targets=names,
        )

    def step_names(self, plan: Plan[None]) -> tuple[str, ...]:
        return tuple(f"{self.name} {node}" for node in plan.targets)

    async def run(self, run: RunContext, plan: Plan[None]) -> None:
        """Each node in turn, stopping at the first failure."""
        source = run.source
        assert isinstance(source, NodeMaintainer)
        for node, step in zip(plan.targets, self.step_names(plan), strict=True):
            if await run.steps.attempt(step, functools.partial(source.set_cordon, node, self.cordon)):
                run.say(f"{self.name}ed {node}")


class Uncordon(Cordon):
    """``u`` on cordoned nodes, ``:uncordon NODE…``."""

    name = "uncordon"
    summary = "let new pods land on cordoned nodes again"
    label = "Uncordon"
    order = 31
    key = "u"
    panes = ("nodes",)
    in_footer = False  # "c" on a cordoned node says to press "u"; help and the palette list it
    cordon = False
