"""The plan screen of any action, made from its registry entry: a field per parameter (the targets come from
the cursor), the plan made anew as the fields change, the action's own details and backend check.

The fields' text is read by the same grammar as the CLI and ``:`` commands (``+2`` adds two everywhere).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from rich.console import RenderableType

from aios_tui.ops import Kind, Ops, Plan, get
from aios_tui.ops.core import join
from aios_tui.render.plans import plan_details
from aios_tui.ui.screens.plan import Field, PlanScreen, Values

__all__ = ["plan_screen"]


def plan_screen(ops: Ops, name: str, targets: Sequence[str], values: Mapping[str, Any]) -> PlanScreen:
    """The plan screen of action ``name`` on ``targets``, its fields showing ``values`` (text as typed) or
    the action's defaults. Raises :class:`LookupError` when a target is not in the fleet."""
    action = get(name)
    ctx = ops.context()
    fixed: dict[str, Any] = {}
    param = action.target_param
    if param is not None:
        if not targets:
            raise LookupError(f"{name} needs a {param.kind.value}: select one first")
        typed = param.syntax(list(targets) if param.kind is Kind.NODES else targets[0])
        fixed[param.name] = param.resolve(typed, ops.snapshot())
    fields = []
    for p in action.params:
        if p.is_target:
            continue
        label, initial = action.field(ctx, p, {**fixed, p.name: values.get(p.name)})
        placeholder = "any" if not p.needed and p.default in ("", None) else ""
        fields.append(Field(p.name, label or p.name, initial, placeholder=placeholder))

    def make(typed: Values) -> Plan[Any]:
        return ops.plan(name, **fixed, **typed)

    def details(plan: Plan[Any]) -> RenderableType | None:
        return plan_details(plan.detail)

    what = join(targets) if len(targets) <= 3 else f"{len(targets)} nodes"
    return PlanScreen(f"{action.label} {what}".strip(), fields, make, details=details, verify=ops.verify)
