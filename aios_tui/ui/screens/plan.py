"""The plan screen every action goes through: parameters, the plan and its consequences, then confirm.

Generic over actions: it is given the action's fields and a function that turns their values into a
:class:`~aios_tui.ops.Plan`. Planning is pure and fast, so it re-plans as the user types. Enter on the last
field confirms (or asks for the typed confirmation the plan requires); the screen returns the confirmed plan
and the confirmation, or ``None`` when cancelled.

An Enter confirms only the plan that was on screen when it was typed: a key typed ahead (in a burst, during
an SSH stall) before the plan was drawn is refused with a word, and the plan stays open. A plan that cannot
run says why on Enter and, where the action knows some, offers what would (a launch: another GPU model or
zone, fewer workers, or queueing it); choosing one fills the fields in.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text
from textual import events, on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Input, Label, OptionList, Static

from aios_tui.ops import Alternative, Plan


@dataclass(frozen=True)
class Field:
    key: str
    label: str
    initial: str = ""
    placeholder: str = ""


@dataclass(frozen=True)
class Confirmed:
    plan: Plan[Any]
    confirmation: str | None


Values = Mapping[str, str]


class PlanScreen(ModalScreen[Confirmed | None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Cancel"),
        Binding("enter", "confirm", "Confirm", show=False),
        # The plan scrolls from any field: a drain's pod table at 80x24 without tabbing past the fields.
        Binding("pageup", "scroll_plan(-1)", "Scroll up", show=False, priority=True),
        Binding("pagedown", "scroll_plan(1)", "Scroll down", show=False, priority=True),
    ]

    DEFAULT_CSS = """
    PlanScreen { align: center middle; }
    PlanScreen > Vertical {
        width: 94%; max-width: 110; height: auto; max-height: 100%;
        border: round $accent; background: $surface; padding: 0 1;
    }
    PlanScreen .row { height: 1; }
    PlanScreen .row Label { padding: 0 1 0 0; color: $text-muted; }
    PlanScreen Input { width: 1fr; }
    PlanScreen #plan-scroll { height: auto; margin: 1 0 0 0; }
    PlanScreen #plan-body { height: auto; }
    PlanScreen #verify { height: auto; display: none; }
    PlanScreen.-verifying #verify { display: block; }
    PlanScreen .hint { color: $text-muted; }
    PlanScreen #confirm-row { display: none; height: auto; margin-top: 1; }
    PlanScreen.-confirm #confirm-row { display: block; }
    PlanScreen #alternatives { display: none; height: auto; max-height: 8; margin-top: 1; }
    PlanScreen.-alternatives #alternatives { display: block; }
    PlanScreen #said { height: auto; color: $warning; }
    """

    def __init__(
        self,
        title: str,
        fields: Sequence[Field],
        make_plan: Callable[[Values], Plan[Any]],
        *,
        details: Callable[[Plan[Any]], RenderableType | None] | None = None,
        verify: Callable[[Plan[Any]], Awaitable[Sequence[str]]] | None = None,
    ) -> None:
        super().__init__()
        self._title = title
        self._fields = list(fields)
        self._make_plan = make_plan
        self._details = details
        self._verify = verify
        self.verified: tuple[str, ...] = ()
        """What the backend said when asked about the current plan (a drain's server-side dry run)."""
        self.plan: Plan[Any] | None = None
        self.error: str = ""
        self.shown_at = float("inf")
        """When the current plan was first drawn (monotonic, as key timestamps): an Enter typed earlier does
        not confirm it."""
        self._last_key_time = 0.0

    def action_scroll_plan(self, pages: int) -> None:
        plan = self.query_one("#plan-scroll", VerticalScroll)
        plan.scroll_to(y=plan.scroll_y + pages * max(1, plan.size.height - 1), animate=False)

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(Text(self._title, "bold"))
            label_width = max((len(f.label) for f in self._fields), default=0) + 1
            for f in self._fields:
                with Horizontal(classes="row"):
                    label = Label(f.label)
                    label.styles.width = label_width
                    yield label
                    yield Input(
                        f.initial,
                        id=f"field-{f.key}",
                        placeholder=f.placeholder,
                        select_on_focus=True,
                        compact=True,
                    )
            with VerticalScroll(id="plan-scroll"):
                yield Static(id="verify")
                yield Static(id="plan-body")
            yield Static(id="said")
            yield OptionList(id="alternatives")
            with Vertical(id="confirm-row"):
                yield Label("", id="confirm-label")
                yield Input(id="confirm", placeholder="type it to confirm", compact=True)
            hint = "enter: confirm   esc: cancel   pgup/pgdn: scroll"
            if len(self._fields) > 1:
                hint = "tab: next field   " + hint
            yield Label(hint, classes="hint", id="keys")

    def on_mount(self) -> None:
        self._fit()
        self._replan()
        if self._fields:
            # At once, not deferred: the keys typed after the one that opened this screen are its own.
            self.set_focus(self.query_one(f"#field-{self._fields[0].key}", Input))

    def on_resize(self) -> None:
        self._fit()

    def _fit(self) -> None:
        """Give the plan what the screen has left after the fields, the confirmation and the key hints, so
        those stay visible however long the plan is (it scrolls)."""
        confirm = 3 if self.has_class("-confirm") else 0
        offered = 9 if self.has_class("-alternatives") else 0
        said = 1 if str(self.query_one("#said", Static).render()) else 0
        fixed = 2 + 2 + 1 + len(self._fields) + 1 + confirm + offered + said + 1  # title, fields, gap, keys
        self.query_one("#plan-scroll").styles.max_height = max(3, self.app.size.height - fixed)

    @property
    def values(self) -> dict[str, str]:
        return {f.key: self.query_one(f"#field-{f.key}", Input).value for f in self._fields}

    def _is_field(self, widget: Input) -> bool:
        return bool(widget.id and widget.id.startswith("field-"))

    @on(Input.Changed)
    def _field_changed(self, event: Input.Changed) -> None:
        if self._is_field(event.input):
            self._replan()

    def _replan(self) -> None:
        try:
            self.plan = self._make_plan(self.values)
            self.error = ""
        except (ValueError, LookupError) as exc:
            self.plan = None
            self.error = str(exc).strip("'\"")
        self.remove_class("-confirm")
        self.remove_class("-alternatives")
        self.query_one("#said", Static).update("")
        self._fit()
        self.query_one("#plan-body", Static).update(self._body())
        self.shown_at = float("inf")
        shown = self.plan

        def drawn() -> None:
            if self.plan is shown:
                self.shown_at = time.monotonic()

        self.call_after_refresh(drawn)
        self.verified = ()
        self.query_one("#verify", Static).update("")
        self.remove_class("-verifying")
        if self._verify is not None and self.plan is not None and self.plan.ok:
            self.add_class("-verifying")
            self.query_one("#verify", Static).update(Text("asking the backend for a dry run …", "dim"))
            plan = self.plan

            async def check() -> None:  # a callable, not a coroutine: a worker cancelled before it starts
                await self._check(plan)  # leaves nothing un-awaited

            self.run_worker(check, group="verify", exclusive=True, exit_on_error=False)  # type: ignore[arg-type]

    async def _check(self, plan: Plan[Any]) -> None:
        assert self._verify is not None
        try:
            lines = tuple(await self._verify(plan))
        except Exception as exc:  # a failed check is shown, the plan stays usable
            lines = (f"dry run failed: {exc}",)
        if plan is not self.plan:
            return  # the user changed a field meanwhile; that plan gets its own check
        self.verified = lines
        self.set_class(bool(lines), "-verifying")
        refused = any("refused" in line for line in lines[:1])
        style = "yellow" if refused else "dim"
        self.query_one("#verify", Static).update(Text("\n".join(lines), style))

    def _body(self) -> RenderableType:
        if self.plan is None:
            return Text(self.error or "…", "bold red")
        p = self.plan
        grid = Table.grid(padding=(0, 2))
        grid.add_column(style="bold", no_wrap=True)
        grid.add_column()
        for label, value in p.lines:
            grid.add_row(label, value)
        # The plan's own title where it says more than the screen's (a scale plan's "from 3 to 5"), once.
        parts: list[RenderableType] = [Text(p.title, "bold cyan"), grid] if p.title != self._title else [grid]
        parts += [Text(f"⚠ {w}", "yellow") for w in p.warnings]
        parts += [Text(f"✗ {b}", "bold red") for b in p.blockers]
        if p.ok:
            parts.append(Text("Will run as: " + self._who(), "dim"))
        # The long part (a drain's pod-by-pod table) last, so the verdict above stays in view.
        extra = self._details(p) if self._details is not None else None
        if extra is not None:
            parts += [Text(""), extra]
        return Group(*parts)

    def _who(self) -> str:
        ops = getattr(self.app, "ops", None)
        return f"{ops.actor.user} ({ops.actor.role.value}), audited" if ops is not None else "audited"

    def on_key(self, event: events.Key) -> None:
        """Remember when the latest key was typed (its own timestamp): the confirmation checks it."""
        self._last_key_time = event.time

    def _typed_before_plan(self) -> bool:
        """The Enter being handled was typed before the current plan was on screen."""
        if self._last_key_time >= self.shown_at:
            return False
        self.app.bell()
        self._say(
            "Enter was typed before this plan was on screen: read it, then press enter to go on.",
        )
        return True

    def _say(self, text: str) -> None:
        self.query_one("#said", Static).update(Text(text, "bold yellow"))
        self._fit()

    @on(Input.Submitted)
    def _field_submitted(self, event: Input.Submitted) -> None:
        if self._is_field(event.input):
            self.action_confirm()

    def action_confirm(self) -> None:
        """Run the plan, or first ask for the typed confirmation it needs; a plan that cannot run says why
        and offers what would."""
        plan = self.plan
        if plan is None:
            self.app.bell()
            self._say(self.error or "No plan yet.")
            return
        if self._typed_before_plan():
            return
        if not plan.ok:
            self.app.bell()
            self._offer(plan)
            return
        if plan.confirm_phrase:
            self.add_class("-confirm")
            self._fit()
            self.query_one("#confirm-label", Label).update(
                Text.assemble(
                    "This needs a typed confirmation: type ",
                    (plan.confirm_phrase, "bold"),
                    " and press enter",
                )
            )
            confirm = self.query_one("#confirm", Input)
            confirm.value = ""
            self.set_focus(confirm)
            return
        self.dismiss(Confirmed(plan, None))

    def _offer(self, plan: Plan[Any]) -> None:
        """Why the plan cannot run, and what would, to choose from."""
        self._say(f"Cannot {plan.action}: {plan.blockers[0]}")
        if not plan.alternatives:
            return
        options = self.query_one("#alternatives", OptionList)
        options.clear_options()
        options.add_options([a.label for a in plan.alternatives])
        options.border_title = "What would work instead (enter chooses, esc goes back)"
        self.add_class("-alternatives")
        self._fit()
        options.highlighted = 0
        self.set_focus(options)

    @on(OptionList.OptionSelected, "#alternatives")
    def _alternative_chosen(self, event: OptionList.OptionSelected) -> None:
        plan = self.plan
        if plan is None or not 0 <= event.option_index < len(plan.alternatives):
            return
        self.apply(plan.alternatives[event.option_index])

    def apply(self, alternative: Alternative) -> None:
        """Type an alternative's arguments into the fields, plan anew, and give the fields the keys back."""
        with self.prevent(Input.Changed):
            for key, value in alternative.args.items():
                self.query_one(f"#field-{key}", Input).value = value
        self._replan()
        if self._fields:
            self.set_focus(self.query_one(f"#field-{self._fields[0].key}", Input))

    @on(Input.Submitted, "#confirm")
    def _confirm_submitted(self, event: Input.Submitted) -> None:
        plan = self.plan
        if plan is None:
            return
        if self._typed_before_plan():
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
        if self.has_class("-alternatives"):
            self.remove_class("-alternatives")
            self._fit()
            if self._fields:
                self.set_focus(self.query_one(f"#field-{self._fields[0].key}", Input))
            return
        self.dismiss(None)
