"""Redeploying an endpoint as an action: a rolling restart or a new image (``repo:tag``, or ``:tag`` for a new
tag of the current repository), planned with its surge, the free slots it needs and the endpoint's
PodDisruptionBudget, then one call to the owning source's ``redeploy_endpoint``.
"""

from __future__ import annotations

import math
import re
from types import MappingProxyType
from typing import TYPE_CHECKING

from aios_tui.alloc.scaling import assess_scale
from aios_tui.domain import FleetSnapshot
from aios_tui.ops.core import Plan, _plural, looks_like_production
from aios_tui.sources.base import Restartable, Source

if TYPE_CHECKING:
    from aios_tui.ops.actions import Ops

__all__ = ["execute_redeploy", "plan_redeploy", "resolve_image"]

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


def _rolling(replicas: int) -> tuple[int, int]:
    """A Deployment's default RollingUpdate: maxSurge 25% rounded up, maxUnavailable 25% rounded down."""
    return math.ceil(replicas * 0.25), math.floor(replicas * 0.25)


def plan_redeploy(ops: Ops, snap: FleetSnapshot, endpoint_key: str, image: str | None = None) -> Plan:
    """The :class:`Plan` of redeploying ``endpoint_key`` (see :meth:`Ops.plan_redeploy`)."""
    endpoint = ops._endpoint(snap, endpoint_key)
    blockers: list[str] = []
    warnings: list[str] = []
    reason = ops.check("redeploy", endpoint_key)
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
        warnings.append(f"{new} is already the image: this is a rolling restart.")
        new = None
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
        surge, unavailable = _rolling(replicas)
        gpus = surge * endpoint.gpus_per_replica
        extra = f", +{gpus} × {endpoint.gpu_model or 'GPU'} while it rolls" if gpus else ""
        lines.append(("Rollout", f"maxSurge {surge}{extra}; maxUnavailable {unavailable}"))
        if endpoint.gpus_per_replica > 0:
            fit = assess_scale(snap, endpoint, replicas + surge)
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
    pdb = snap.pdb_by_owner.get(endpoint.key)
    if pdb is None:
        lines.append(("PDB", "none"))
    else:
        rule = (
            f"minAvailable {pdb.min_available}"
            if pdb.min_available is not None
            else f"maxUnavailable {pdb.max_unavailable}"
        )
        allowed = _plural(pdb.disruptions_allowed, "disruption")
        lines.append(("PDB", f"{pdb.key}: {rule}, {allowed} allowed now"))

    what = f"to {new}" if new is not None else "(rolling restart)"
    return Plan(
        action="redeploy",
        target=endpoint.key,
        source=endpoint.source,
        title=f"Redeploy {endpoint.key} {what}",
        lines=tuple(lines),
        warnings=tuple(warnings),
        blockers=tuple(blockers),
        confirm_phrase=endpoint.name if looks_like_production(endpoint) else None,
        params=MappingProxyType({"namespace": endpoint.namespace, "name": endpoint.name, "image": new}),
    )


async def execute_redeploy(plan: Plan, source: Source) -> None:
    """The one call to the source behind a redeploy :class:`Plan`."""
    p = plan.params
    assert isinstance(source, Restartable)
    image = p["image"]
    await source.redeploy_endpoint(str(p["namespace"]), str(p["name"]), None if image is None else str(image))
