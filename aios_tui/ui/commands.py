"""Completion for the ``:`` prompt: command names (panes, views, the app's own, every registered action), then
each action's arguments — the endpoint, node or pool names of the fleet for its targets, its ``--options``,
the columns for ``:sort`` and the themes for ``:theme``. Tab (or →) accepts the grey completion."""

from __future__ import annotations

import shlex
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import ClassVar

from textual.binding import Binding, BindingType
from textual.suggester import Suggester

from aios_tui.domain import FleetSnapshot
from aios_tui.ops import all_actions, lookup
from aios_tui.ops.grammar import Kind, candidates
from aios_tui.render.kinds import REGISTRY
from aios_tui.ui.keys import KeyedInput

__all__ = ["APP_COMMANDS", "CommandSuggester", "PromptInput", "command_names"]

APP_COMMANDS: Mapping[str, str] = {
    "quit": "leave the console (also :q)",
    "help": "every key and command (also ?)",
    "audit": "the action log: every action taken, by whom, how it ended (also a)",
    "refresh": "fetch every source now (also ctrl+r)",
    "filter": "filter the pane: :filter WORDS (also /)",
    "sort": "sort the pane by a column: :sort COLUMN",
    "theme": "switch the colour theme: :theme NAME",
    "ctx": "the contexts and sources, and which context is watched",
    "who": "who is connected to this aios-tui serve, as what, following whom, acting on what",
}


def command_names(app_commands: Iterable[str]) -> list[str]:
    """Every ``:`` command, panes and views first."""
    names = [e.kind.aliases[0] if e.name == "cordon" and e.kind.aliases else e.name for e in REGISTRY]
    names += list(app_commands)
    names += [a.name for a in all_actions()]
    return list(dict.fromkeys(names))


class CommandSuggester(Suggester):
    """Suggests the rest of a ``:`` command line (see the module)."""

    def __init__(
        self,
        app_commands: Iterable[str],
        snapshot: Callable[[], FleetSnapshot | None],
        columns: Callable[[], Sequence[str]],
        themes: Callable[[], Iterable[str]],
    ) -> None:
        super().__init__(use_cache=False, case_sensitive=True)
        self._commands = command_names(app_commands)
        self._snapshot = snapshot
        self._columns = columns
        self._themes = themes

    async def get_suggestion(self, value: str) -> str | None:
        return self.complete(value)

    def complete(self, value: str) -> str | None:
        """The whole line with its last word completed, or None."""
        if not value.strip():
            return None
        try:
            words = shlex.split(value)
        except ValueError:
            return None
        ends_word = value.endswith(" ")
        if len(words) == 1 and not ends_word:
            return _first(value, words[0], self._commands)
        head = words[0].lower()
        done = words[1:] if ends_word else words[1:-1]
        typed = "" if ends_word else words[-1]
        return _first(value, typed, self._choices(head, done, typed))

    def _choices(self, head: str, done: Sequence[str], typed: str) -> Sequence[str]:
        if head == "sort":
            return list(self._columns()) if not done else ()
        if head == "theme":
            return sorted(self._themes()) if not done else ()
        action = lookup(head)
        snap = self._snapshot()
        if action is None or snap is None:
            return ()
        options = [p.option for p in action.params if p.option and p.option not in done]
        if typed.startswith("-"):
            return [o for o in options if o]
        if done and done[-1].startswith("--"):
            param = next((p for p in action.params if p.option == done[-1]), None)
            if param is not None and param.kind is not Kind.FLAG:
                return candidates(param.kind, snap)
        positionals = [p for p in action.params if p.positional]
        given = [w for w in done if not w.startswith("-")]
        for i, param in enumerate(positionals):
            if param.kind is Kind.NODES or i >= len(given):
                return [*candidates(param.kind, snap), *(o for o in options if o)]
        return [o for o in options if o]


def _first(line: str, typed: str, choices: Iterable[str]) -> str | None:
    """``line`` with ``typed`` (its last word) completed by the first choice that starts with it."""
    folded = typed.casefold()
    for choice in choices:
        if choice.casefold().startswith(folded) and choice != typed:
            return line[: len(line) - len(typed)] + choice
    return None


class PromptInput(KeyedInput):
    """The ``:`` and ``/`` prompt: tab accepts the completion instead of moving the focus."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("tab", "complete", "Complete", show=False)]

    def action_complete(self) -> None:
        # Computed here, not taken from the suggestion the input draws: that one comes from a worker and
        # may lag behind keys typed fast.
        suggester = self.suggester
        suggestion = suggester.complete(self.value) if isinstance(suggester, CommandSuggester) else None
        suggestion = suggestion or self._suggestion
        if suggestion and suggestion.casefold().startswith(self.value.casefold()):
            self.value = suggestion
            self.cursor_position = len(self.value)
