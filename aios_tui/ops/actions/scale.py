"""Scale an endpoint: the new replica count (``N``, ``+N``, ``-N``), the GPUs it takes or frees and whether
they fit, the $/h change and the endpoint's HPA; then one call to the owning source's ``scale_endpoint``."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from aios_tui.alloc.scaling import MAX_REPLICAS, ScaleAssessment, assess_scale, describe_cost
from aios_tui.ops.action import Action, PlanContext
from aios_tui.ops.core import Plan, looks_like_production
from aios_tui.ops.grammar import Amount, Kind, Param
from aios_tui.sources.base import Scalable, Source

__all__ = ["Scale"]


class Scale(Action[ScaleAssessment]):
    """``s`` on an endpoint, ``:scale ENDPOINT N``, ``aios-tui act scale ENDPOINT N``."""

    name = "scale"
    summary = "set an endpoint's replicas: N, or +N / -N to add or remove"
    label = "Scale"
    order = 10
    target = Kind.ENDPOINT
    capability = Scalable
    key = "s"
    panes = ("endpoints", "idle-owners")
    params = (
        Param("endpoint", Kind.ENDPOINT, "the endpoint, namespace/name", metavar="ENDPOINT"),
        Param(
            "replicas",
            Kind.AMOUNT,
            "replicas: N, or +N / -N relative to the current count",
            label="Replicas",
            metavar="REPLICAS",
        ),
    )

    def _new(self, ctx: PlanContext, args: Mapping[str, Any]) -> tuple[int, int]:
        current = ctx.endpoint(args["endpoint"]).replicas_desired
        amount: Amount = args["replicas"]
        return current, amount.of(current)

    def bounds(self, ctx: PlanContext, args: Mapping[str, Any]) -> list[str]:
        current, new = self._new(ctx, args)
        if new < 0:
            return [f"{args['endpoint']} has {current} replicas: {args['replicas']} would leave {new}."]
        if new > MAX_REPLICAS:
            return [f"{new:,} replicas is above the hard cap of {MAX_REPLICAS:,}: is it a typo?"]
        return []

    def field(self, ctx: PlanContext, param: Param, args: Mapping[str, Any]) -> tuple[str, str]:
        endpoint = ctx.endpoint(args["endpoint"])
        hpa = f"; HPA {endpoint.hpa.min_replicas}–{endpoint.hpa.max_replicas}" if endpoint.hpa else ""
        given = args.get("replicas")
        initial = str(given) if given is not None else str(endpoint.replicas_desired)
        return f"Replicas (now {endpoint.replicas_desired}{hpa}; +N/-N relative)", initial

    def plan(self, ctx: PlanContext, args: Mapping[str, Any]) -> Plan[ScaleAssessment]:
        endpoint = ctx.endpoint(args["endpoint"])
        _, replicas = self._new(ctx, args)
        a = assess_scale(ctx.snapshot, endpoint, replicas)
        reason = ctx.check(self.name, [endpoint.key])
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
            action=self.name,
            target=endpoint.key,
            source=endpoint.source,
            title=f"Scale {endpoint.key} from {a.current} to {a.new} replicas",
            lines=tuple(lines),
            warnings=a.warnings,
            blockers=blockers,
            confirm_phrase=endpoint.name if needs_phrase else None,
            params=MappingProxyType(
                {
                    "namespace": endpoint.namespace,
                    "name": endpoint.name,
                    "replicas": replicas,
                    "asked": str(args["replicas"]),
                }
            ),
            detail=a,
            targets=(endpoint.key,),
        )

    async def call(self, source: Source, plan: Plan[ScaleAssessment]) -> None:
        p = plan.params
        assert isinstance(source, Scalable)
        await source.scale_endpoint(str(p["namespace"]), str(p["name"]), int(p["replicas"]))
