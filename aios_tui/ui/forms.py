"""The plan screen of each action: its fields, how their text becomes a ``Plan``, and what else it shows.

Each builder returns the :class:`PlanScreen` for one action; the app checks the permission first and runs
what the user confirms. All planning goes through ``ops``.
"""

from __future__ import annotations

from collections.abc import Sequence

from rich.console import RenderableType

from aios_tui.domain import FleetSnapshot
from aios_tui.ops import Ops, Plan
from aios_tui.render.plans import drain_details, pool_scale_details
from aios_tui.sources.base import DEFAULT_TRAINING_IMAGE, LaunchSpec
from aios_tui.ui.screens.plan import Field, PlanScreen, Values


def parse_yes_no(text: str) -> bool:
    value = text.strip().lower()
    if value in ("y", "yes", "true", "1"):
        return True
    if value in ("", "n", "no", "false", "0"):
        return False
    raise ValueError(f"answer y or n, got {text!r}")


def parse_int(text: str, what: str, *, lo: int = 0) -> int:
    try:
        value = int(text)
    except ValueError:
        raise ValueError(f"{what} must be a whole number, got {text!r}") from None
    if value < lo:
        raise ValueError(f"{what} must be at least {lo}, got {text!r}")
    return value


def parse_seconds(text: str, what: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"{what} must be a number of seconds, got {text!r}") from None
    if value < 0:
        raise ValueError(f"{what} cannot be negative, got {text!r}")
    return value


def parse_replicas(text: str, current: int) -> int:
    """``5`` sets five replicas; ``+2`` and ``-1`` are relative to the current count."""
    text = text.strip()
    if not text:
        raise ValueError("type a number of replicas (or +N / -N)")
    try:
        value = int(text)
    except ValueError:
        raise ValueError(f"replicas must be a whole number, got {text!r}") from None
    return current + value if text[0] in "+-" else value


def _targets(nodes: Sequence[str]) -> str:
    return nodes[0] if len(nodes) == 1 else f"{len(nodes)} nodes"


def scale_form(
    ops: Ops, snapshot: FleetSnapshot, endpoint_key: str, replicas: str | None = None
) -> PlanScreen:
    endpoint = snapshot.endpoint_by_key.get(endpoint_key)
    if endpoint is None:
        raise LookupError(f"no endpoint {endpoint_key!r}")
    current = endpoint.replicas_desired
    hpa = f"; HPA {endpoint.hpa.min_replicas}–{endpoint.hpa.max_replicas}" if endpoint.hpa else ""

    def plan(values: Values) -> Plan:
        return ops.plan_scale(endpoint_key, parse_replicas(values["replicas"], current))

    field = Field("replicas", f"Replicas (now {current}{hpa}; +N/-N relative):", replicas or str(current))
    return PlanScreen(f"Scale {endpoint_key}", [field], plan)


def scale_pool_form(
    ops: Ops, snapshot: FleetSnapshot, pool_name: str, desired: str | None = None
) -> PlanScreen:
    """The new desired capacity of a node pool (``+N``/``-N`` relative), then its plan."""
    pool = snapshot.pools_by_name.get(pool_name)
    if pool is None:
        raise LookupError(f"no node pool {pool_name!r}")
    current = pool.desired_capacity

    def plan(values: Values) -> Plan:
        return ops.plan_scale_pool(pool_name, parse_replicas(values["desired"], current))

    def details(p: Plan) -> RenderableType | None:
        scale = ops.pool_scale(p)
        return pool_scale_details(scale) if scale is not None else None

    label = f"Nodes (now {current}; {pool.min_size}–{pool.max_size}; +N/-N)"
    field = Field("desired", label, desired or str(current))
    return PlanScreen(f"Scale pool {pool_name}", [field], plan, details=details)


def cordon_form(ops: Ops, snapshot: FleetSnapshot, nodes: Sequence[str]) -> PlanScreen:
    """Cordon the nodes, or uncordon them when every one of them is cordoned already."""
    known = [n for name in nodes if (n := snapshot.node_by_name.get(name)) is not None]
    cordon = not (known and all(n.cordoned for n in known))
    title = f"{'Cordon' if cordon else 'Uncordon'} {_targets(nodes)}"
    return PlanScreen(title, [], lambda _: ops.plan_cordon(nodes, cordon=cordon))


def cordon_action(snapshot: FleetSnapshot, nodes: Sequence[str]) -> str:
    known = [n for name in nodes if (n := snapshot.node_by_name.get(name)) is not None]
    return "uncordon" if known and all(n.cordoned for n in known) else "cordon"


def drain_form(ops: Ops, nodes: Sequence[str]) -> PlanScreen:
    def plan(values: Values) -> Plan:
        return ops.plan_drain(
            nodes,
            allow_empty_dir=parse_yes_no(values["empty_dir"]),
            allow_unmanaged=parse_yes_no(values["unmanaged"]),
            pdb_timeout_s=parse_seconds(values["pdb_timeout"], "the PodDisruptionBudget wait"),
        )

    def details(p: Plan) -> RenderableType | None:
        drain = ops.drain_plan(p)
        return drain_details(drain) if drain is not None else None

    fields = [
        Field("empty_dir", "Delete emptyDir data? y/n", "n"),
        Field("unmanaged", "Delete bare pods? y/n", "n"),
        Field("pdb_timeout", "PDB wait (s)", "300"),
    ]
    return PlanScreen(
        f"Drain {_targets(nodes)}",
        fields,
        plan,
        details=details,
        verify=ops.dry_run_drain,
    )


def redeploy_form(ops: Ops, snapshot: FleetSnapshot, endpoint_key: str) -> PlanScreen:
    endpoint = snapshot.endpoint_by_key.get(endpoint_key)
    image = endpoint.image if endpoint is not None else ""

    def plan(values: Values) -> Plan:
        new = values["image"].strip()
        return ops.plan_redeploy(endpoint_key, None if new in ("", image) else new)

    field = Field("image", "Image (as is: rolling restart; :TAG for a new tag)", image)
    return PlanScreen(f"Redeploy {endpoint_key}", [field], plan)


def launch_form(ops: Ops, suggested_name: str) -> PlanScreen:
    def plan(values: Values) -> Plan:
        key = values["name"].strip()
        namespace, _, name = key.rpartition("/")
        if not name or not namespace:
            raise ValueError(f"name the job as namespace/name, got {key!r}")
        spec = LaunchSpec(
            namespace=namespace,
            name=name,
            image=values["image"].strip(),
            workers=parse_int(values["workers"], "workers", lo=1),
            gpus_per_worker=parse_int(values["gpus"], "GPUs per worker", lo=1),
            gpu_model=values["model"].strip(),
            zone=values["zone"].strip(),
            priority=parse_int(values["priority"], "priority", lo=-1_000_000_000),
        )
        return ops.plan_launch(spec)

    fields = [
        Field("name", "Job (ns/name)", suggested_name),
        Field("image", "Image", DEFAULT_TRAINING_IMAGE),
        Field("workers", "Workers", "2"),
        Field("gpus", "GPUs per worker", "8"),
        Field("model", "GPU model", "H100", placeholder="any model"),
        Field("zone", "Zone", "", placeholder="any zone (the gang stays in one)"),
        Field("priority", "Priority", "0"),
    ]
    return PlanScreen("Launch a training job", fields, plan)
