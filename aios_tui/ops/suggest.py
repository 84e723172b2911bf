"""What the GPU telemetry suggests doing: cordon the nodes whose GPUs are failing or throttling.

Pure: a snapshot in, suggestions out. Acting on one goes through the normal cordon plan (``Ops.plan_cordon``)
and its confirmation, permissions and audit, like pressing ``c`` on the node.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from aios_tui.domain import FleetSnapshot, Gpu, Health

__all__ = ["Suggestion", "suggest_cordons"]


@dataclass(frozen=True, slots=True)
class Suggestion:
    """Cordon ``node``: new pods stay off it until its GPUs are looked at."""

    node: str
    severity: Health
    """FAIL: a fatal XID or uncorrectable ECC errors (the GPU is lost or corrupts memory); WARN: thermal,
    HW slowdown or power-brake throttling, a non-fatal XID, a GPU running hot."""
    reasons: tuple[str, ...]
    """One per GPU problem: ``gpu3 XID 79 (fallen off the bus)``."""
    gpus: tuple[int, ...]
    """Indices of the GPUs with a problem."""
    action: str = "cordon"

    @property
    def key(self) -> str:
        return self.node

    @property
    def reason(self) -> str:
        return "; ".join(self.reasons)


def suggest_cordons(snapshot: FleetSnapshot) -> tuple[Suggestion, ...]:
    """The nodes to cordon because of their GPUs, worst first (then by name); cordoned nodes are skipped.

    Reads only the GPUs with a problem (:attr:`FleetSnapshot.sick_gpus`, found in the snapshot's one pass
    over the fleet), so it costs nothing on a healthy fleet of any size.
    """
    by_node: dict[str, list[Gpu]] = {}
    for g in snapshot.sick_gpus:
        by_node.setdefault(g.node, []).append(g)
    out: list[Suggestion] = []
    nodes = snapshot.node_by_name
    for name, gpus in by_node.items():
        node = nodes.get(name)
        if node is None or node.cordoned:
            continue
        out.append(_suggestion(name, gpus))
    out.sort(key=lambda s: (-s.severity, s.node))
    return tuple(out)


def _suggestion(node: str, gpus: Sequence[Gpu]) -> Suggestion:
    ordered = sorted(gpus, key=lambda g: (-g.health, g.index))
    reasons = tuple(f"gpu{g.index} {p}" for g in ordered for p in g.problems)
    return Suggestion(
        node=node,
        severity=max(g.health for g in gpus),
        reasons=reasons,
        gpus=tuple(sorted(g.index for g in gpus)),
    )
