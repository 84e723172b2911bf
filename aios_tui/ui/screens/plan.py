"""The plan screen every action goes through: parameters, the plan and its consequences, then confirm.

Generic over actions: it is given a function that turns the parameter text into a :class:`~aios_tui.ops.Plan`
(re-planned as the user types, since planning is pure and fast) and returns the confirmed plan and the typed
confirmation, or ``None`` when cancelled.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar

from rich.console import Group
from rich.table import Table
from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Input, Label, Static

from aios_tui.ops import Plan


@dataclass(frozen=True)
class Confirmed:
    plan: Plan
    confirmation: str | None


class PlanScreen(ModalScreen[Confirmed | None]):
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel")]

    DEFAULT_CSS = """
    PlanScreen { align: center middle; }
    PlanScreen > Vertical {
        width: 94%; max-width: 100; height: auto; max-height: 100%;
        border: round $accent; background: $surface; padding: 0 1;
    }
    PlanScreen .row { height: 1; }
    PlanScreen .row Label { width: auto; padding: 0 1 0 0; }
    PlanScreen Input { width: 1fr; }
    PlanScreen #plan-scroll { height: auto; max-height: 1fr; margin: 1 0 0 0; }
    PlanScreen #plan-body { height: auto; }
    PlanScreen .hint { color: $text-muted; }
    PlanScreen #confirm-row { display: none; height: auto; margin-top: 1; }
    PlanScreen.-confirm #confirm-row { display: block; }
    """

    def __init__(
        self, title: str, make_plan: Callable[[str], Plan], *, param_label: str, initial: str = ""
    ) -> None:
        super().__init__()
        self._title = title
        self._make_plan = make_plan
        self._param_label = param_label
        self._initial = initial
        self.plan: Plan | None = None
        self.error: str = ""

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(Text(self._title, "bold"))
            with Horizontal(classes="row"):
                yield Label(self._param_label, classes="hint")
                yield Input(self._initial, id="param", select_on_focus=True, compact=True)
            with VerticalScroll(id="plan-scroll"):
                yield Static(id="plan-body")
            with Vertical(id="confirm-row"):
                yield Label("", id="confirm-label")
                yield Input(id="confirm", placeholder="type the name to confirm", compact=True)
            yield Label("enter: confirm   esc: cancel", classes="hint", id="keys")

    def on_mount(self) -> None:
        self._replan(self._initial)
        self.query_one("#param", Input).focus()

    @on(Input.Changed, "#param")
    def _param_changed(self, event: Input.Changed) -> None:
        self._replan(event.value)

    def _replan(self, value: str) -> None:
        try:
            self.plan = self._make_plan(value)
            self.error = ""
        except (ValueError, LookupError) as exc:
            self.plan = None
            self.error = str(exc).strip("'\"")
        self.remove_class("-confirm")
        self.query_one("#plan-body", Static).update(self._body())

    def _body(self) -> Group | Text:
        if self.plan is None:
            return Text(self.error or "…", "bold red")
        p = self.plan
        grid = Table.grid(padding=(0, 2))
        grid.add_column(style="bold", no_wrap=True)
        grid.add_column()
        for label, value in p.lines:
            grid.add_row(label, value)
        parts: list[Text | Table] = [Text(p.title, "bold cyan"), grid]
        parts += [Text(f"⚠ {w}", "yellow") for w in p.warnings]
        parts += [Text(f"✗ {b}", "bold red") for b in p.blockers]
        if p.ok:
            parts.append(Text("Will run as: " + self._who(), "dim"))
        return Group(*parts)

    def _who(self) -> str:
        ops = getattr(self.app, "ops", None)
        return f"{ops.actor.user} ({ops.actor.role.value}), audited" if ops is not None else "audited"

    @on(Input.Submitted, "#param")
    def _param_submitted(self) -> None:
        plan = self.plan
        if plan is None or not plan.ok:
            self.app.bell()
            return
        if plan.confirm_phrase:
            self.add_class("-confirm")
            self.query_one("#confirm-label", Label).update(
                Text.assemble(
                    "This needs a typed confirmation: type ",
                    (plan.confirm_phrase, "bold"),
                    " and press enter",
                )
            )
            confirm = self.query_one("#confirm", Input)
            confirm.value = ""
            confirm.focus()
            return
        self.dismiss(Confirmed(plan, None))

    @on(Input.Submitted, "#confirm")
    def _confirm_submitted(self, event: Input.Submitted) -> None:
        plan = self.plan
        if plan is None:
            return
        if event.value.strip() != plan.confirm_phrase:
            self.app.bell()
            self.query_one("#confirm-label", Label).update(
                Text.assemble(
                    ("That does not match. ", "bold red"), "Type ", (plan.confirm_phrase or "", "bold")
                )
            )
            return
        self.dismiss(Confirmed(plan, event.value.strip()))

    def action_cancel(self) -> None:
        self.dismiss(None)
