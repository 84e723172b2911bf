"""Scaling an endpoint as an action: the plan (new replica count, the GPUs it takes or frees and whether they
fit, the $/h change, the endpoint's HPA) and the one call to the owning source's ``scale_endpoint``.
"""

from __future__ import annotations

from types import MappingProxyType
from typing import TYPE_CHECKING

from aios_tui.alloc.scaling import assess_scale, describe_cost
from aios_tui.domain import FleetSnapshot
from aios_tui.ops.core import Plan, looks_like_production
from aios_tui.sources.base import Scalable, Source

if TYPE_CHECKING:
    from aios_tui.ops.actions import Ops

__all__ = ["execute_scale", "plan_scale"]


def plan_scale(ops: Ops, snap: FleetSnapshot, endpoint_key: str, replicas: int) -> Plan:
    """The :class:`Plan` of setting ``endpoint_key`` to ``replicas`` (see :meth:`Ops.plan_scale`)."""
    endpoint = ops._endpoint(snap, endpoint_key)
    a = assess_scale(snap, endpoint, replicas)
    reason = ops.check("scale", endpoint_key)
    blockers = a.blockers if reason is None else (reason, *a.blockers)

    shape = a.gpu_model or "GPU"
    lines: list[tuple[str, str]] = [
        ("Endpoint", f"{endpoint.key} (source {endpoint.source})"),
        ("Replicas", f"{a.current} → {a.new}"),
    ]
    if a.gpus_per_replica > 0 and a.gpus_delta > 0:
        slots = f"{a.free_slots} free slot{'' if a.free_slots == 1 else 's'}"
        placed = f"fits: {slots}" if a.fits else f"{a.shortfall} of {a.added} stay Pending: {slots}"
        lines.append(("GPUs", f"+{a.gpus_delta} × {shape} ({placed})"))
    elif a.gpus_delta < 0:
        lines.append(("GPUs", f"−{-a.gpus_delta} × {shape} freed"))
    if a.gpus_delta:
        lines.append(("Capacity cost", f"{describe_cost(a.cost_delta_per_hour)} (GPU-hours committed)"))
    if endpoint.hpa is not None:
        hpa = endpoint.hpa
        wants = "" if a.hpa_recommendation is None else f", wants {a.hpa_recommendation}"
        lines.append(
            ("HPA", f"{hpa.name}: {hpa.min_replicas}–{hpa.max_replicas} replicas, {hpa.metric}{wants}")
        )

    needs_phrase = replicas == 0 or looks_like_production(endpoint)
    return Plan(
        action="scale",
        target=endpoint.key,
        source=endpoint.source,
        title=f"Scale {endpoint.key} from {a.current} to {a.new} replicas",
        lines=tuple(lines),
        warnings=a.warnings,
        blockers=blockers,
        confirm_phrase=endpoint.name if needs_phrase else None,
        params=MappingProxyType(
            {"namespace": endpoint.namespace, "name": endpoint.name, "replicas": replicas}
        ),
    )


async def execute_scale(plan: Plan, source: Source) -> None:
    """The one call to the source behind a scale :class:`Plan`."""
    p = plan.params
    assert isinstance(source, Scalable)
    await source.scale_endpoint(str(p["namespace"]), str(p["name"]), int(p["replicas"]))
