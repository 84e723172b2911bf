"""Where the free GPUs are, and how much of them the next request can use: the fleet's free capacity per
zone, rack and node pool.

An operator asks "is there room for an 8-GPU worker, and where?" before launching, and "why is this job
pending when the header says 300 GPUs are free?" during an incident. Free GPUs alone do not answer either:
300 free GPUs spread one or two per node hold no 8-GPU worker. So each domain shows its free GPUs, its
whole free nodes, how many workers of 1, 2, 4 and 8 GPUs fit on single nodes (Kueue users ask for free
slots per flavour and topology domain: kubernetes-sigs/kueue#10505), and the free GPUs a typical request
cannot use.

That last figure is the fragmentation measure of Weng et al., "Beware of Fragmentation" (USENIX ATC'23),
as :mod:`aios_tui.alloc.placement` computes it (``unusable_gpus``): a node with ``f`` free GPUs holds
``F(f) = f · P(size > f)`` GPUs that a request drawn from the running mix of request sizes cannot use; a
domain holds the sum over its nodes. The mix is the one of the domain's GPU model (one sample per training
worker and serving replica of that model), the whole fleet's when nothing asks for that model, the
placement's ``DEFAULT_SIZES`` when nothing asks for anything. Only nodes that can take pods count
(``Node.schedulable``, no failed GPU); the others are counted apart, as "blocked".
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from aios_tui.alloc.placement import demand_sizes, demand_sizes_by_model, unusable_gpus
from aios_tui.domain import FleetSnapshot, is_gpu_model

__all__ = ["SCOPE_ORDER", "SLOT_SIZES", "FreeDomain", "FreeTotals", "free_capacity"]

SLOT_SIZES: tuple[int, ...] = (1, 2, 4, 8)
"""The worker sizes (GPUs on one node) whose free slots are counted."""

Scope = Literal["zone", "rack", "pool"]

SCOPE_ORDER: dict[str, int] = {"zone": 0, "rack": 1, "pool": 2}
"""How rows come: zones first, then racks, then pools."""


@dataclass(frozen=True, slots=True)
class FreeDomain:
    """The free capacity of one zone, rack or node pool, for one GPU model."""

    scope: Scope
    name: str
    gpu_model: str
    zone: str
    """The zone (a pool spread over several: its zones, comma-separated)."""
    nodes: int
    """GPU nodes that can take pods."""
    gpus: int
    """Their allocatable GPUs."""
    free: int
    whole: int
    """Nodes with every GPU free."""
    slots: tuple[int, ...]
    """Workers of each of :data:`SLOT_SIZES` GPUs that fit, each on one node."""
    unusable: float
    """Free GPUs a request drawn from the model's size mix cannot use (expected)."""
    blocked: int
    """GPU nodes that cannot take pods: NotReady, cordoned, tainted, unhealthy or with a failed GPU."""

    @property
    def key(self) -> str:
        return f"{self.scope}:{self.name}:{self.gpu_model}"

    @property
    def unusable_share(self) -> float:
        """:attr:`unusable` as a share of the free GPUs (0 when none is free)."""
        return self.unusable / self.free if self.free else 0.0


@dataclass(frozen=True, slots=True)
class FreeTotals:
    """The whole fleet's free capacity, every model together."""

    free: int
    whole: int
    slots: tuple[int, ...]
    unusable: float
    blocked: int
    sizes: Mapping[str, Mapping[int, float]]
    """GPU model → the request-size mix its unusable GPUs are measured against."""

    @property
    def unusable_share(self) -> float:
        return self.unusable / self.free if self.free else 0.0


class _Acc:
    __slots__ = ("blocked", "free", "gpus", "nodes", "slots", "unusable", "whole", "zones")

    def __init__(self) -> None:
        self.nodes = self.gpus = self.free = self.whole = self.blocked = 0
        self.slots = [0] * len(SLOT_SIZES)
        self.unusable = 0.0
        self.zones: dict[str, None] = {}


def free_capacity(snapshot: FleetSnapshot) -> tuple[tuple[FreeDomain, ...], FreeTotals]:
    """Every zone, rack and node pool with GPU nodes (one row per GPU model in it), and the fleet's totals.
    Rows come zones first, then racks, then pools, each by name then model."""
    fleet_sizes = demand_sizes(snapshot)
    by_model = demand_sizes_by_model(snapshot)
    failed = snapshot.failed_nodes
    accs: dict[tuple[Scope, str, str], _Acc] = {}
    total = _Acc()
    unusable_memo: dict[tuple[str, int], float] = {}
    used_sizes: dict[str, Mapping[int, float]] = {}
    for n in snapshot.nodes:
        alloc = n.gpus_allocatable
        if alloc <= 0 or n.lost_since or not is_gpu_model(n.gpu_model):
            continue
        model = n.gpu_model
        scopes: list[tuple[Scope, str]] = [("zone", n.zone), ("pool", n.pool)]
        if n.rack:
            scopes.append(("rack", n.rack))
        targets = [_acc(accs, scope, name, model) for scope, name in scopes if name]
        targets.append(total)
        for a in targets:
            a.zones[n.zone] = None
        if not n.schedulable or n.name in failed:
            for a in targets:
                a.blocked += 1
            continue
        free = n.gpus_free  # whole GPUs: those partly taken by shares (time-slicing, MIG) hold no worker
        sizes = used_sizes.get(model)
        if sizes is None:
            sizes = used_sizes[model] = by_model.get(model) or fleet_sizes
        lost = unusable_memo.get((model, free))
        if lost is None:
            lost = unusable_memo[model, free] = unusable_gpus(free, sizes)
        fits = [free // size for size in SLOT_SIZES]
        for a in targets:
            a.nodes += 1
            a.gpus += alloc
            a.free += free
            a.whole += free == alloc
            a.unusable += lost
            for i, k in enumerate(fits):
                a.slots[i] += k
    rows = tuple(
        FreeDomain(
            scope=scope,
            name=name,
            gpu_model=model,
            zone=", ".join(z for z in a.zones if z),
            nodes=a.nodes,
            gpus=a.gpus,
            free=a.free,
            whole=a.whole,
            slots=tuple(a.slots),
            unusable=a.unusable,
            blocked=a.blocked,
        )
        for (scope, name, model), a in sorted(accs.items(), key=lambda kv: (SCOPE_ORDER[kv[0][0]], kv[0][1:]))
    )
    totals = FreeTotals(
        free=total.free,
        whole=total.whole,
        slots=tuple(total.slots),
        unusable=total.unusable,
        blocked=total.blocked,
        sizes=used_sizes,
    )
    return rows, totals


def _acc(accs: dict[tuple[Scope, str, str], _Acc], scope: Scope, name: str, model: str) -> _Acc:
    a = accs.get((scope, name, model))
    if a is None:
        a = accs[scope, name, model] = _Acc()
    return a
