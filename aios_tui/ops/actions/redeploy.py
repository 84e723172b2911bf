"""Redeploy an endpoint: a rolling restart or a new image (``repo:tag``, or ``:tag`` for a new tag of the
current repository), planned with its surge, the free slots it needs and the endpoint's
PodDisruptionBudget; then one call to the owning source's ``redeploy_endpoint``."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from aios_tui.alloc.scaling import assess_scale
from aios_tui.domain import Endpoint
from aios_tui.ops.action import Action, PlanContext
from aios_tui.ops.core import Plan, looks_like_production, plural
from aios_tui.ops.grammar import Kind, Param
from aios_tui.sources.base import Restartable, Source

__all__ = ["Redeploy", "resolve_image", "rollout_step"]

_IMAGE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/:@-]*")
_TAG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")


def _repository(image: str) -> str:
    """``host:5000/vllm/vllm-openai`` from ``host:5000/vllm/vllm-openai:v0.6.3`` (or ``…@sha256:…``)."""
    image = image.split("@", 1)[0]
    slash = image.rfind("/")
    colon = image.rfind(":")
    return image[:colon] if colon > slash else image


def resolve_image(current: str, given: str) -> str:
    """The image to roll out: ``given`` in full, or ``:TAG`` meaning ``current``'s repository with TAG.

    Raises ValueError with a sentence for the user.
    """
    given = given.strip()
    if given.startswith(":"):
        tag = given[1:]
        if not _TAG.fullmatch(tag):
            raise ValueError(f"{given!r} is not a valid image tag")
        if not current:
            raise ValueError(
                f"the current image is unknown, so {given!r} names no repository: give the image"
            )
        return f"{_repository(current)}:{tag}"
    if not _IMAGE.fullmatch(given):
        raise ValueError(f"{given!r} is not a valid image reference")
    return given


def _resolve(value: str, replicas: int, *, up: bool) -> int:
    """A count, or a percentage of ``replicas`` (rounded up for maxSurge, down for maxUnavailable)."""
    if value.endswith("%"):
        scaled = replicas * int(value[:-1]) / 100
        return math.ceil(scaled) if up else math.floor(scaled)
    return int(value)


def rollout_step(endpoint: Endpoint) -> tuple[int, int]:
    """(replicas added above the desired count, replicas down) at once while ``endpoint`` rolls.

    A Deployment's RollingUpdate resolves maxSurge and maxUnavailable against its replicas and, when both
    come to 0, takes 1 unavailable (Kubernetes' ResolveFenceposts); Recreate takes every replica down
    first. A StatefulSet never surges: it replaces maxUnavailable pods (default 1) at a time, highest
    ordinal first; OnDelete replaces none until their pods are deleted.
    """
    replicas = endpoint.replicas_desired
    if endpoint.strategy == "Recreate":
        return 0, replicas
    if endpoint.strategy == "OnDelete":
        return 0, 0
    surge = 0 if endpoint.workload_kind == "StatefulSet" else _resolve(endpoint.max_surge, replicas, up=True)
    unavailable = _resolve(endpoint.max_unavailable, replicas, up=False)
    if surge == 0 and unavailable == 0:
        unavailable = 1
    return surge, min(unavailable, replicas)


class Redeploy(Action[None]):
    """``r`` on an endpoint, ``:redeploy ENDPOINT [--image IMAGE]``."""

    name = "redeploy"
    summary = "roll an endpoint's pods: a rolling restart, or a new image (repo:tag, or :tag)"
    label = "Redeploy"
    order = 20
    target = Kind.ENDPOINT
    capability = Restartable
    key = "r"
    panes = ("endpoints",)
    params = (
        Param("endpoint", Kind.ENDPOINT, "the endpoint, namespace/name", metavar="ENDPOINT"),
        Param(
            "image",
            Kind.IMAGE,
            "new image, or :TAG for a new tag of the same repository (default: a rolling restart)",
            option="--image",
            required=False,
            label="Image (as is: rolling restart; :TAG for a new tag)",
            metavar="IMAGE",
        ),
    )

    def field(self, ctx: PlanContext, param: Param, args: Mapping[str, Any]) -> tuple[str, str]:
        given = args.get("image")
        return param.label, given if given else ctx.endpoint(args["endpoint"]).image

    def plan(self, ctx: PlanContext, args: Mapping[str, Any]) -> Plan[None]:
        endpoint = ctx.endpoint(args["endpoint"])
        image: str | None = args.get("image") or None
        blockers: list[str] = []
        warnings: list[str] = []
        reason = ctx.check(self.name, [endpoint.key])
        if reason is not None:
            blockers.append(reason)

        current = endpoint.image
        new: str | None = None
        if image is not None:
            try:
                new = resolve_image(current, image)
            except ValueError as exc:
                blockers.append(f"{exc}.")
        if new is not None and new == current:
            new = None  # the image as it is: a rolling restart
        lines: list[tuple[str, str]] = [("Endpoint", f"{endpoint.key} (source {endpoint.source})")]
        if new is None:
            lines.append(("Image", f"{current or 'unknown'} (unchanged: rolling restart)"))
        else:
            lines.append(("Image", f"{current or 'unknown'} → {new}"))

        replicas = endpoint.replicas_desired
        lines.append(("Replicas", f"{replicas} ({endpoint.replicas_ready} ready)"))
        if replicas == 0:
            warnings.append(f"{endpoint.key} has no replicas: only its template changes, nothing restarts.")
        else:
            surge, unavailable = rollout_step(endpoint)
            gpus = surge * endpoint.gpus_per_replica
            extra = f", +{gpus} × {endpoint.gpu_model or 'GPU'} while it rolls" if gpus else ""
            lines.append(("Rollout", _rollout_line(endpoint, surge, unavailable, extra)))
            if endpoint.strategy == "Recreate":
                warnings.append(
                    f"Recreate: all {replicas} replicas stop before the new ones start; "
                    f"{endpoint.key} serves nothing in between."
                )
            elif endpoint.strategy == "OnDelete":
                warnings.append(
                    "updateStrategy OnDelete: the StatefulSet replaces no pod until it is deleted; "
                    "only its template changes."
                )
            if endpoint.gpus_per_replica > 0 and surge > 0:
                fit = assess_scale(ctx.snapshot, endpoint, replicas + surge)
                if fit.free_slots < surge:
                    stall = (
                        "the rollout waits until one frees"
                        if unavailable == 0
                        else f"the rollout replaces {unavailable} at a time in place instead"
                    )
                    warnings.append(
                        f"No free {endpoint.gpu_model or 'GPU'} slot for the surge "
                        f"({fit.free_slots} of {surge}): {stall}."
                    )
            if endpoint.replicas_ready < replicas:
                warnings.append(
                    f"Only {endpoint.replicas_ready} of {replicas} replicas are ready: "
                    "the rollout may lower capacity further."
                )
        pdb = ctx.snapshot.pdb_by_owner.get(endpoint.key)
        if pdb is None:
            lines.append(("PDB", "none"))
        else:
            if pdb.min_available is not None:
                rule = f"minAvailable {pdb.min_available}, "
            elif pdb.max_unavailable is not None:
                rule = f"maxUnavailable {pdb.max_unavailable}, "
            else:  # a percentage: the counts below say what it comes to
                rule = ""
            allowed = plural(pdb.disruptions_allowed, "disruption")
            lines.append(("PDB", f"{pdb.key}: {rule}{allowed} allowed now"))

        what = f"to {new}" if new is not None else "(rolling restart)"
        return Plan(
            action=self.name,
            target=endpoint.key,
            source=endpoint.source,
            title=f"Redeploy {endpoint.key} {what}",
            lines=tuple(lines),
            warnings=tuple(warnings),
            blockers=tuple(blockers),
            confirm_phrase=endpoint.name if looks_like_production(endpoint) else None,
            params=MappingProxyType({"namespace": endpoint.namespace, "name": endpoint.name, "image": new}),
            targets=(endpoint.key,),
        )

    async def call(self, source: Source, plan: Plan[None]) -> None:
        p = plan.params
        assert isinstance(source, Restartable)
        image = p["image"]
        await source.redeploy_endpoint(
            str(p["namespace"]), str(p["name"]), None if image is None else str(image)
        )


def _rollout_line(endpoint: Endpoint, surge: int, unavailable: int, extra: str) -> str:
    """The Rollout line: what the object says and what it resolves to for this many replicas."""
    if endpoint.strategy == "Recreate":
        return f"Recreate: all {unavailable} down, then all up"
    if endpoint.strategy == "OnDelete":
        return "OnDelete: pods are replaced only when deleted"
    if endpoint.workload_kind == "StatefulSet":
        return f"RollingUpdate, {plural(unavailable, 'pod')} at a time from the highest ordinal (no surge)"

    def said(given: str, count: int) -> str:
        return f"{count} ({given})" if given.endswith("%") else str(count)

    return (
        f"maxSurge {said(endpoint.max_surge, surge)}{extra}; "
        f"maxUnavailable {said(endpoint.max_unavailable, unavailable)}"
    )
