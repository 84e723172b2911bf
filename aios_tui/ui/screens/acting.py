"""What the screens share to offer actions: key bindings made from the action registry, and the targets a
screen's selection gives an action."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from textual.binding import Binding

from aios_tui.domain import FleetSnapshot
from aios_tui.ops import Kind, all_actions, get
from aios_tui.ui.widgets.fleet_table import FleetTable

__all__ = ["ScreenContext", "action_bindings", "selection"]


def _none() -> FleetSnapshot | None:
    return None


@dataclass(frozen=True, slots=True)
class ScreenContext:
    """What a screen may ask of the console without importing the app (which imports every screen): the
    live snapshot, the clock, whether an action is offered at all (``can_act``: read-only mode, the role) and
    how its key shows (``key_state``: True offered, None dimmed, False hidden). Screens ask the app to *do*
    things by posting messages (:mod:`aios_tui.ui.messages`)."""

    fleet: Callable[[], FleetSnapshot | None] = _none
    clock: Callable[[], float] = lambda: 0.0
    can_act: Callable[[str], bool] = lambda name: True
    key_state: Callable[[str, Sequence[str]], bool | None] = lambda name, targets: True


def action_bindings(panes: Iterable[str]) -> list[Binding]:
    """A binding ``act('<name>')`` for each registered action whose key works in one of ``panes`` (the
    screen's ``check_action`` shows only those that apply to its pane and role)."""
    wanted = set(panes)
    seen: set[tuple[str, str]] = set()
    out: list[Binding] = []
    for action in all_actions():
        if action.key is None or not wanted & set(action.panes) or (action.key, action.name) in seen:
            continue
        seen.add((action.key, action.name))
        out.append(Binding(action.key, f"act('{action.name}')", action.label, show=action.in_footer))
    return out


def selection(name: str, pane: str, table: FleetTable) -> Sequence[str]:
    """The targets of action ``name`` in ``pane``: the marked rows (or the row under the cursor) for an
    action on nodes, the row under the cursor otherwise; nothing where the pane does not offer it."""
    action = get(name)
    if pane not in action.panes or action.target is None:
        return ()
    if action.target is Kind.NODES:
        return tuple(table.targets())
    return (table.cursor_key,) if table.cursor_key is not None else ()
