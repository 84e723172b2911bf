"""Launching a training job as an action: the plan (where its gang goes, rank by rank, with the cost; or why
it cannot start now and what extra capacity would let it) and the one call to the owning source's
``launch_job``, pinned to the planned nodes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING

from aios_tui.alloc.placement import GangRequest, Placement, Refusal, place_gang
from aios_tui.alloc.scaling import describe_cost, gpu_hour_price
from aios_tui.alloc.whatif import WhatIf, capacity_whatif
from aios_tui.domain import FleetSnapshot, is_na
from aios_tui.ops.core import Plan, _prod
from aios_tui.sources.base import JobLauncher, LaunchSpec, Source

if TYPE_CHECKING:
    from aios_tui.ops.actions import Ops

__all__ = ["LaunchPlan", "execute_launch", "plan_launch"]


@dataclass(frozen=True, slots=True)
class LaunchPlan:
    """The structured plan behind a launch: the job, where its gang goes (or why it cannot), the what-if."""

    spec: LaunchSpec
    placement: Placement | Refusal
    whatif: WhatIf | None = None
    """For a refusal: the smallest extra capacity that would fit the job (None: no pool would)."""


def plan_launch(ops: Ops, snap: FleetSnapshot, spec: LaunchSpec) -> Plan:
    """The :class:`Plan` of starting the training job ``spec`` (see :meth:`Ops.plan_launch`)."""
    key = f"{spec.namespace}/{spec.name}"
    blockers: list[str] = []
    reason = ops.check("launch")
    if reason is not None:
        blockers.append(reason)
    if key in snap.job_by_key:
        blockers.append(f"A job named {key} already exists.")
    if not spec.image.strip():
        blockers.append("The job needs an image.")
    if spec.workers < 1 or spec.gpus_per_worker < 1:
        blockers.append(
            f"A job needs at least 1 worker of at least 1 GPU, not {spec.workers}×{spec.gpus_per_worker}."
        )
        return _launch_plan(ops, spec, key, blockers, None, None, _launcher(ops, ()))

    request = GangRequest(
        workers=spec.workers,
        gpus_per_worker=spec.gpus_per_worker,
        gpu_model=spec.gpu_model,
        zone=spec.zone,
        priority=spec.priority,
        name=key,
    )
    placement = place_gang(snap, request)
    whatif = capacity_whatif(snap, request) if isinstance(placement, Refusal) else None
    if isinstance(placement, Refusal):
        blockers.append(placement.reason)
        if whatif is not None:
            blockers.append(f"{whatif.describe()} would fit it.")
        else:
            blockers.append("No node pool could fit it, even grown.")
        source = _launcher(ops, ())
    else:
        source = _launcher(ops, placement.nodes)
    return _launch_plan(ops, spec, key, blockers, placement, whatif, source)


def _launch_plan(
    ops: Ops,
    spec: LaunchSpec,
    key: str,
    blockers: list[str],
    placement: Placement | Refusal | None,
    whatif: WhatIf | None,
    source: str,
) -> Plan:
    snap = ops._snapshot()
    shape = f"{spec.workers}×{spec.gpus_per_worker} {spec.gpu_model or 'GPUs'}"
    lines: list[tuple[str, str]] = [
        ("Job", key),
        ("Image", spec.image or "none"),
        ("Gang", f"{shape} ({spec.workers * spec.gpus_per_worker} GPUs), all or nothing"),
        ("Zone", spec.zone or "any (the whole gang in one)"),
        ("Priority", str(spec.priority)),
    ]
    nodes: tuple[str, ...] = ()
    if isinstance(placement, Placement):
        nodes = placement.nodes
        lines.append(("Placement", _ranks(nodes)))
        lines.append(("Domain", placement.domain))
        fragmented = f"{placement.fragmented_after:.1f} free GPUs (weighted by request size)"
        lines.append(("Fragmented after", fragmented))
        model = spec.gpu_model or next(
            (n.gpu_model for n in (snap.node_by_name.get(x) for x in nodes) if n is not None), ""
        )
        price = gpu_hour_price(snap, model)
        if not is_na(price):
            cost = float(price) * spec.workers * spec.gpus_per_worker
            lines.append(("Capacity cost", f"{describe_cost(cost)} (GPU-hours committed)"))
    elif isinstance(placement, Refusal):
        lines.append(("Placement", "none now"))
        if whatif is not None:
            lines.append(("What would fit", whatif.describe()))
    detail = None if placement is None else LaunchPlan(spec, placement, whatif)
    return Plan(
        action="launch",
        target=key,
        source=source,
        title=f"Launch {key} ({shape})",
        lines=tuple(lines),
        warnings=(),
        blockers=tuple(blockers),
        confirm_phrase=spec.name if _prod(spec.namespace) else None,
        params=MappingProxyType(
            {
                "namespace": spec.namespace,
                "name": spec.name,
                "image": spec.image,
                "workers": spec.workers,
                "gpus_per_worker": spec.gpus_per_worker,
                "gpu_model": spec.gpu_model,
                "zone": spec.zone,
                "priority": spec.priority,
                "placement": nodes,
            }
        ),
        detail=detail,
    )


def _launcher(ops: Ops, nodes: Sequence[str]) -> str:
    """The source that would launch a job on ``nodes`` (or the first that can launch at all)."""
    snap = ops._snapshot()
    for name in nodes:
        node = snap.node_by_name.get(name)
        if node is not None:
            return node.source
    for name, source in ops._sources.items():
        if isinstance(source, JobLauncher):
            return name
    return ""


async def execute_launch(ops: Ops, plan: Plan, source: Source) -> None:
    """The one call to the source behind a launch :class:`Plan`."""
    assert isinstance(source, JobLauncher)
    launch = ops.launch_plan(plan)
    assert launch is not None and isinstance(launch.placement, Placement)
    spec = launch.spec
    await source.launch_job(
        LaunchSpec(
            namespace=spec.namespace,
            name=spec.name,
            image=spec.image,
            workers=spec.workers,
            gpus_per_worker=spec.gpus_per_worker,
            gpu_model=spec.gpu_model,
            zone=spec.zone,
            priority=spec.priority,
            placement=launch.placement.nodes,
        )
    )


def _ranks(nodes: Sequence[str]) -> str:
    """``rank 0–1 → a; rank 2 → b``: each run of ranks on the same node, in rank order."""
    runs: list[tuple[int, int, str]] = []
    for rank, node in enumerate(nodes):
        if runs and runs[-1][2] == node and runs[-1][1] == rank - 1:
            runs[-1] = (runs[-1][0], rank, node)
        else:
            runs.append((rank, rank, node))
    return "; ".join(f"rank {a} → {node}" if a == b else f"ranks {a}–{b} → {node}" for a, b, node in runs)
