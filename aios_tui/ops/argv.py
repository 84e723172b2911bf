"""An action's arguments as command-line words: the ``plan`` / ``act`` subcommands and the console's ``:``
commands read them with the same parser, made from the action's parameters."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from typing import Any, NoReturn

from aios_tui.ops.action import Action
from aios_tui.ops.grammar import ArgError, Kind, Param

__all__ = ["add_arguments", "parse_words"]


def _checked(param: Param) -> Callable[[str], Any]:
    """An argparse type: the parameter's own syntax check (a usage error before any source is asked)."""

    def check(text: str) -> Any:
        try:
            param.syntax(text)
        except ArgError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None
        return text

    check.__name__ = param.kind.value  # argparse names the type in its messages
    return check


def add_arguments(
    parser: argparse.ArgumentParser, action: Action[Any], *, targets_optional: bool = False
) -> None:
    """The action's parameters as argparse arguments: positionals, ``--options`` and flags. Values stay text
    (checked for form here); :meth:`~aios_tui.ops.engine.Ops.plan` reads them with the grammar.

    ``targets_optional``: the targets may be left out (a ``:`` command then acts on the selection)."""
    for param in action.params:
        option = param.option or f"--{param.name.replace('_', '-')}"
        if param.positional:
            if param.kind is Kind.NODES:
                nargs: str | None = "*" if targets_optional else "+"
            else:
                nargs = "?" if targets_optional and param.is_target else None
            parser.add_argument(
                param.name, metavar=param.metavar or None, nargs=nargs, type=_checked(param), help=param.help
            )
        elif param.kind is Kind.FLAG:
            parser.add_argument(option, dest=param.name, action="store_true", default=None, help=param.help)
        else:
            parser.add_argument(
                option,
                dest=param.name,
                metavar=param.metavar or None,
                type=_checked(param),
                default=None,
                help=param.help,
            )


class _Parser(argparse.ArgumentParser):
    """Raises :class:`ArgError` instead of printing usage and exiting."""

    def error(self, message: str) -> NoReturn:
        raise ArgError(f"{message} (usage: :{self.prog})")


def parse_words(
    action: Action[Any], words: Sequence[str], *, targets_optional: bool = True
) -> dict[str, Any]:
    """The values ``words`` give the action's parameters (text as typed, lists for nodes, True for flags);
    parameters not given are left out. Raises :class:`ArgError` saying what is wrong and the usage."""
    parser = _Parser(prog=action.usage, add_help=False, allow_abbrev=False)
    add_arguments(parser, action, targets_optional=targets_optional)
    namespace = parser.parse_args(list(words))
    return {k: v for k, v in vars(namespace).items() if v not in (None, [])}
