"""What the GPU telemetry suggests doing: cordon the nodes whose GPUs need more than a look.

Pure: a snapshot in, suggestions out, read off the snapshot's verdicts (:attr:`FleetSnapshot.verdicts`,
computed once per snapshot in the domain), so drawing the header or the health view never recomputes them.
Acting on one goes through the normal cordon plan (``Ops.plan_cordon``) and its confirmation, permissions
and audit, like pressing ``c`` on the node.
"""

from __future__ import annotations

from dataclasses import dataclass

from aios_tui.domain import FleetSnapshot, Health
from aios_tui.domain.health import Need, Verdict, to_cordon

__all__ = ["Suggestion", "suggest_cordons"]


@dataclass(frozen=True, slots=True)
class Suggestion:
    """Cordon ``node``: new pods stay off it until its GPUs are looked at."""

    node: str
    severity: Health
    """FAIL: the node needs draining or more (a reset, a reboot, a replacement: :class:`Need`); WARN: a
    watch (thermal, HW slowdown or power-brake throttling, an XID the application caused, a GPU running
    hot, a few NVLink errors)."""
    reasons: tuple[str, ...]
    """One per problem, worst first: ``gpu3 XID 79 fallen off the bus, 12m ago → reboot node``."""
    gpus: tuple[int, ...]
    """Indices of the GPUs with a problem."""
    action: str = "cordon"
    need: Need = Need.WATCH
    """The node's verdict."""

    @property
    def key(self) -> str:
        return self.node

    @property
    def reason(self) -> str:
        return "; ".join(self.reasons)


def suggest_cordons(snapshot: FleetSnapshot) -> tuple[Suggestion, ...]:
    """The nodes to cordon because of their GPUs, worst first (then by name): :func:`to_cordon`."""
    return tuple(_suggestion(v, snapshot.timestamp) for v in to_cordon(snapshot))


def _suggestion(v: Verdict, now: float) -> Suggestion:
    return Suggestion(
        node=v.node,
        severity=Health.FAIL if v.need >= Need.DRAIN else Health.WARN,
        reasons=tuple(f.describe(now) for f in v.findings),
        gpus=v.gpus,
        need=v.need,
    )
