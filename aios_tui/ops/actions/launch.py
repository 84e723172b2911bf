"""Launch a training job: where its gang goes, rank by rank, with the cost; or why it cannot start now, what
would fit instead (another GPU model or zone, fewer or smaller workers), what extra capacity would let it,
and queueing it where the backend starts queued gangs whole. Then one call to the owning source's
``launch_job``, pinned to the planned nodes (or unpinned, to queue)."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from types import MappingProxyType
from typing import Any, Protocol, runtime_checkable

from aios_tui.alloc.placement import GangRequest, Placement, Refusal, place_gang
from aios_tui.alloc.scaling import describe_cost, gpu_hour_price
from aios_tui.alloc.whatif import WhatIf, capacity_whatif
from aios_tui.domain import FleetSnapshot, Job, is_na
from aios_tui.ops.action import Action, PlanContext
from aios_tui.ops.core import ActionRefused, Alternative, Plan, is_production
from aios_tui.ops.grammar import Defaults, Kind, Param, k8s_name
from aios_tui.sources.base import (
    DEFAULT_TRAINING_IMAGE,
    JobLauncher,
    JobQueue,
    LaunchSpec,
    NamedPriorities,
    Source,
)

__all__ = ["MAX_WORKERS", "Launch", "LaunchPlan", "default_job_name", "values_like"]

MAX_WORKERS = 10_000
"""More workers in one gang is a typo, not a job (the largest public runs use about 2,000 nodes)."""
_CLASS_NAME = re.compile(r"[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?")
"""A PriorityClass name: a DNS subdomain (lowercase letters, digits, '-' and '.', at most 253)."""


@runtime_checkable
class GangGuarantee(Protocol):
    """A launcher that says how it keeps a gang all or nothing on the cluster (Kubernetes: Kueue, the
    cluster's own gang scheduling, or a reservation): shown in the plan, since it decides whether the
    placement shown is where the ranks go."""

    def gang_guarantee(self, workers: int) -> str: ...


def default_job_name(defaults: Defaults) -> str:
    """``default/train-alice-20261117-101320``: the same in the console and the CLI."""
    from datetime import UTC, datetime

    stamp = datetime.fromtimestamp(defaults.now, UTC).strftime("%Y%m%d-%H%M%S")
    return f"default/train-{k8s_name(defaults.user)}-{stamp}"


def values_like(job: Job, snapshot: FleetSnapshot) -> dict[str, str]:
    """The launch form filled in like ``job`` (a queued one, say: its plan then says what would fit now):
    the same image, gang, GPU model, zone and priority, under the first free name ``<name>-2``, ``-3`` … in
    its namespace (the queued job itself stays queued)."""
    n = 2
    while f"{job.key}-{n}" in snapshot.job_by_key:
        n += 1
    return {
        "job": f"{job.key}-{n}",
        "image": job.image or DEFAULT_TRAINING_IMAGE,
        "workers": str(job.workers),
        "gpus_per_worker": str(job.gpus_per_worker),
        "gpu_model": job.gpu_model,
        "zone": job.zone,
        "priority": str(job.priority),
    }


@dataclass(frozen=True, slots=True)
class LaunchPlan:
    """The structured plan behind a launch: the job, where its gang goes (or why it cannot), the what-if."""

    spec: LaunchSpec
    placement: Placement | Refusal
    whatif: WhatIf | None = None
    """For a refusal: the smallest extra capacity that would fit the job (None: no pool would)."""
    queued: bool = False
    """It does not fit now and is launched to wait in the backend's queue."""


class Launch(Action[LaunchPlan]):
    """``n`` in the Jobs pane, ``:launch --workers W --gpus-per-worker G …``."""

    name = "launch"
    summary = "start a training job: a gang of workers × GPUs, placed all or nothing"
    label = "Launch"
    order = 50
    target = None
    capability = JobLauncher
    key = "n"
    panes = ("jobs", "job")
    """In the jobs pane (a new job with the defaults), and in a queued or failed job's detail (the form
    filled in like that job, so its plan says what would fit now)."""
    params = (
        Param(
            "job",
            Kind.JOB_NAME,
            "namespace/name of the job (default: default/train-<user>-<UTC time>)",
            option="--name",
            default=default_job_name,
            label="Job (ns/name)",
            metavar="NS/NAME",
        ),
        Param(
            "image",
            Kind.IMAGE,
            f"container image (default: {DEFAULT_TRAINING_IMAGE})",
            option="--image",
            default=DEFAULT_TRAINING_IMAGE,
            label="Image",
            metavar="IMAGE",
        ),
        Param(
            "workers",
            Kind.COUNT,
            "workers in the gang (default 1)",
            option="--workers",
            default=1,
            lo=1,
            hi=MAX_WORKERS,
            label="Workers",
            metavar="W",
        ),
        Param(
            "gpus_per_worker",
            Kind.COUNT,
            "GPUs per worker (default 8)",
            option="--gpus-per-worker",
            default=8,
            lo=1,
            hi=1024,
            label="GPUs per worker",
            metavar="G",
        ),
        Param(
            "gpu_model",
            Kind.GPU_MODEL,
            "GPU model as the fleet names it, in any case: h100, H200 … (default: any, one model per gang)",
            option="--gpu-model",
            default="",
            required=False,
            label="GPU model",
            metavar="M",
        ),
        Param(
            "zone",
            Kind.ZONE,
            "zone (default: any; the whole gang is always in one zone)",
            option="--zone",
            default="",
            required=False,
            label="Zone",
            metavar="Z",
        ),
        Param(
            "priority",
            Kind.COUNT,
            "priority (default 0; higher starts first)",
            option="--priority",
            default=0,
            lo=-1_000_000_000,
            hi=1_000_000_000,
            label="Priority",
            metavar="P",
        ),
        Param(
            "priority_class",
            Kind.IMAGE,  # free text, checked in plan(): the grammar has no kind for a cluster object's name
            "PriorityClass of the job's pods, where priorities are named classes (Kubernetes)",
            option="--priority-class",
            default="",
            required=False,
            label="PriorityClass",
            metavar="NAME",
        ),
        Param(
            "queue",
            Kind.FLAG,
            "if it does not fit now, queue it to start whole when it fits (where the backend can)",
            option="--queue",
            default=False,
            label="Queue if it does not fit? y/n",
        ),
    )

    def _spec(self, args: Mapping[str, Any]) -> LaunchSpec:
        namespace, _, name = str(args["job"]).partition("/")
        return LaunchSpec(
            namespace=namespace,
            name=name,
            image=str(args["image"] or ""),
            workers=int(args["workers"]),
            gpus_per_worker=int(args["gpus_per_worker"]),
            gpu_model=str(args["gpu_model"] or ""),
            zone=str(args["zone"] or ""),
            priority=int(args["priority"]),
            priority_class=str(args.get("priority_class") or ""),
        )

    def targets_of(self, args: Mapping[str, Any]) -> tuple[str, ...]:
        return (str(args["job"]),) if args.get("job") else ()

    def bounds(self, ctx: PlanContext, args: Mapping[str, Any]) -> list[str]:
        """A gang wider than any node, or larger than the fleet and its pools grown to their limits, is
        refused before any placement is tried."""
        spec = self._spec(args)
        model = spec.gpu_model
        nodes = [n for n in ctx.snapshot.nodes if n.gpus_allocatable and (not model or n.gpu_model == model)]
        pools = [p for p in ctx.snapshot.pools if p.gpu_model and (not model or p.gpu_model == model)]
        widest = max((n.gpus_allocatable for n in nodes), default=0)
        widest = max(widest, *(p.gpus_per_node for p in pools)) if pools else widest
        shape = model or "GPU"
        if spec.gpus_per_worker > widest:
            return [f"No {shape} node has {spec.gpus_per_worker} GPUs: the widest has {widest}."]
        need = spec.workers * spec.gpus_per_worker
        have = sum(n.gpus_allocatable for n in nodes)
        grow = sum(max(0, p.max_size - p.nodes) * p.gpus_per_node for p in pools)
        if need > have + grow:
            return [
                f"{spec.workers}×{spec.gpus_per_worker} needs {need:,} {shape}s: the fleet has {have:,} "
                f"and its pools can add at most {grow:,} more."
            ]
        return []

    def plan(self, ctx: PlanContext, args: Mapping[str, Any]) -> Plan[LaunchPlan]:
        spec = self._spec(args)
        snap = ctx.snapshot
        key = f"{spec.namespace}/{spec.name}"
        blockers: list[str] = []
        reason = ctx.check(self.name, ())
        if reason is not None:
            blockers.append(reason)
        if key in snap.job_by_key:
            blockers.append(f"A job named {key} already exists.")
        if not spec.image.strip():
            blockers.append("The job needs an image.")

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
        queued = False
        alternatives: tuple[Alternative, ...] = ()
        placed = placement.nodes if isinstance(placement, Placement) else ()
        source = ctx.launcher(JobLauncher, placed)
        spec = self._priority(ctx.sources.get(source), spec, blockers)
        lines = self._head(spec, key)
        launcher = ctx.sources.get(source)
        if isinstance(launcher, GangGuarantee):
            lines.append(("All or nothing", launcher.gang_guarantee(spec.workers)))
        if isinstance(placement, Placement):
            lines += self._placed(snap, spec, placement)
        else:
            can_queue = _queues(ctx.sources.get(source))
            lines.append(("Placement", "none now"))
            if whatif is not None:
                lines.append(("What would fit", whatif.describe()))
            if args.get("queue") and can_queue:
                queued = True
                lines.append(("Queue", "waits, whole, until it fits, then starts (no GPU is held before)"))
            else:
                blockers.append(placement.reason)
                blockers.append(
                    f"{whatif.describe()} would fit it."
                    if whatif is not None
                    else "No node pool could fit it."
                )
                if args.get("queue"):
                    blockers.append(
                        f"{source or 'No source'} cannot queue a gang whole: launch it when it fits."
                    )
                alternatives = _alternatives(snap, spec, placement, can_queue)
        return Plan(
            action=self.name,
            target=key,
            source=source,
            title=f"Launch {key} ({_shape(spec)})" + (", queued" if queued else ""),
            lines=tuple(lines),
            warnings=(),
            blockers=tuple(blockers),
            confirm_phrase=spec.name if is_production(spec.namespace) else None,
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
                    "priority_class": spec.priority_class,
                    "placement": placement.nodes if isinstance(placement, Placement) else (),
                    "queued": queued,
                }
            ),
            detail=LaunchPlan(spec, placement, whatif, queued),
            targets=(key,),
            alternatives=alternatives,
        )

    def _head(self, spec: LaunchSpec, key: str) -> list[tuple[str, str]]:
        return [
            ("Job", key),
            ("Image", spec.image or "none"),
            ("Gang", f"{_shape(spec)} ({spec.workers * spec.gpus_per_worker} GPUs), all or nothing"),
            ("Zone", spec.zone or "any (the whole gang in one)"),
            (
                "Priority",
                f"PriorityClass {spec.priority_class} (its value is the cluster's)"
                if spec.priority_class
                else str(spec.priority),
            ),
        ]

    def _priority(self, source: Source | None, spec: LaunchSpec, blockers: list[str]) -> LaunchSpec:
        """The spec with its priority as the launching source takes it, blockers added where it cannot.

        Where priorities are named classes (Kubernetes' PriorityClass, a cluster object holding the value),
        ``--priority N`` maps to the one known class of value N; when the source does not know its classes,
        or none or several have that value, the plan is blocked and names ``--priority-class``: a number
        silently dropped from the job would be worse. Elsewhere a class name has nothing to name.
        """
        name = spec.priority_class
        if name and not _CLASS_NAME.fullmatch(name):
            blockers.append(f"{name!r} is not a PriorityClass name (lowercase letters, digits, '-' and '.').")
            return spec
        if not isinstance(source, NamedPriorities):
            if name:
                blockers.append(
                    f"{source.name if source else 'The launching source'} has no PriorityClasses: "
                    "give --priority N instead."
                )
            return spec
        classes = source.priority_classes()
        if name:
            if spec.priority:
                blockers.append(
                    f"Give --priority {spec.priority} or --priority-class {name}, not both: "
                    "the class holds the value."
                )
            elif classes is not None and name not in classes:
                blockers.append(
                    f"No PriorityClass named {name} (the cluster has {', '.join(sorted(classes)) or 'none'})."
                )
            return spec
        if spec.priority == 0:
            return spec
        known = sorted(n for n, v in (classes or {}).items() if v == spec.priority)
        if len(known) == 1:
            return replace(spec, priority_class=known[0])
        how = "kubectl get priorityclasses lists them"
        if classes is None:
            why = "the source does not know the cluster's PriorityClasses"
        elif known:
            why = f"{', '.join(known)} all have value {spec.priority}"
        else:
            why = f"no PriorityClass has value {spec.priority}"
        blockers.append(
            f"Priority {spec.priority} cannot reach the Job: Kubernetes takes a PriorityClass name and "
            f"{why}. Give --priority-class NAME instead ({how})."
        )
        return spec

    def _placed(self, snap: FleetSnapshot, spec: LaunchSpec, placement: Placement) -> list[tuple[str, str]]:
        lines = [
            ("Placement", _ranks(placement.nodes)),
            *([("Domain", placement.domain)] if placement.domain else []),
            ("Fragmented after", f"{placement.fragmented_after:.1f} free GPUs (weighted by request size)"),
        ]
        model = spec.gpu_model or next(
            (n.gpu_model for n in (snap.node_by_name.get(x) for x in placement.nodes) if n is not None), ""
        )
        price = gpu_hour_price(snap, model)
        if not is_na(price):
            cost = float(price) * spec.workers * spec.gpus_per_worker
            lines.append(("Capacity cost", f"{describe_cost(cost)} (GPU-hours committed)"))
        return lines

    def still_valid(self, ctx: PlanContext, plan: Plan[LaunchPlan]) -> None:
        launch = plan.detail
        if plan.target in ctx.snapshot.job_by_key:
            raise ActionRefused(f"a job named {plan.target} already exists; nothing was done")
        if launch.queued:
            return
        if not isinstance(launch.placement, Placement):
            raise ActionRefused(f"{plan.title}: the plan has no placement behind it; plan it again")
        from aios_tui.alloc.placement import Capacity

        try:
            Capacity.from_snapshot(ctx.snapshot).commit(launch.placement)
        except ValueError as exc:
            raise ActionRefused(
                f"the planned nodes no longer have room for {plan.target} ({exc}); plan it again"
            ) from exc

    def json_detail(self, plan: Plan[LaunchPlan]) -> dict[str, Any]:
        launch = plan.detail
        return {
            "placement": launch.placement,
            "placed": isinstance(launch.placement, Placement),
            "queued": launch.queued,
            "whatif": launch.whatif,
            "alternatives": [{"label": a.label, "args": dict(a.args)} for a in plan.alternatives],
        }

    async def call(self, source: Source, plan: Plan[LaunchPlan]) -> None:
        assert isinstance(source, JobLauncher)
        launch = plan.detail
        nodes = launch.placement.nodes if isinstance(launch.placement, Placement) else ()
        await source.launch_job(replace(launch.spec, placement=nodes))


def _queues(source: Source | None) -> bool:
    return isinstance(source, JobQueue) and source.queues_jobs()


def _shape(spec: LaunchSpec) -> str:
    return f"{spec.workers}×{spec.gpus_per_worker} {spec.gpu_model or 'GPUs'}"


def _alternatives(
    snap: FleetSnapshot, spec: LaunchSpec, refusal: Refusal, can_queue: bool
) -> tuple[Alternative, ...]:
    """What would start now instead, tried in the order a person would: the same gang elsewhere (any zone,
    another GPU model), then fewer workers, then narrower workers with the same GPUs in all; and queueing."""
    tries: list[tuple[str, dict[str, str], GangRequest]] = []
    base = GangRequest(spec.workers, spec.gpus_per_worker, spec.gpu_model, spec.zone, spec.priority)
    if spec.zone:
        tries.append((f"{_shape(spec)} in any zone", {"zone": ""}, replace(base, zone="")))
    models = sorted({n.gpu_model for n in snap.nodes if n.gpu_model and n.gpu_model != spec.gpu_model})
    for model in models:
        shape = f"{spec.workers}×{spec.gpus_per_worker} {model}"
        tries.append((shape, {"gpu_model": model}, replace(base, gpu_model=model)))
    if 0 < refusal.placeable_workers < spec.workers:
        w = refusal.placeable_workers
        shape = f"{w}×{spec.gpus_per_worker} {spec.gpu_model or 'GPUs'}"
        tries.append((f"{shape} (fewer workers)", {"workers": str(w)}, replace(base, workers=w)))
    if spec.gpus_per_worker > 1 and spec.gpus_per_worker % 2 == 0:
        w, g = spec.workers * 2, spec.gpus_per_worker // 2
        shape = f"{w}×{g} {spec.gpu_model or 'GPUs'}"
        args = {"workers": str(w), "gpus_per_worker": str(g)}
        tries.append(
            (f"{shape} (same GPUs, narrower workers)", args, replace(base, workers=w, gpus_per_worker=g))
        )
    out: list[Alternative] = []
    for label, args, request in tries:
        placed = place_gang(snap, request)
        if isinstance(placed, Placement):
            out.append(Alternative(f"{label}: fits now{placed.where}", MappingProxyType(args)))
        if len(out) == 3:
            break
    if can_queue:
        out.append(Alternative("queue it: it starts, whole, when it fits", MappingProxyType({"queue": "y"})))
    return tuple(out)


def _ranks(nodes: Sequence[str]) -> str:
    """``rank 0–1 → a; rank 2 → b``: each run of ranks on the same node, in rank order."""
    runs: list[tuple[int, int, str]] = []
    for rank, node in enumerate(nodes):
        if runs and runs[-1][2] == node and runs[-1][1] == rank - 1:
            runs[-1] = (runs[-1][0], rank, node)
        else:
            runs.append((rank, rank, node))
    return "; ".join(f"rank {a} → {node}" if a == b else f"ranks {a}–{b} → {node}" for a, b, node in runs)
