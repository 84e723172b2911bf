"""ASCII for terminals that cannot draw more: the detection (environment in, yes or no out) and who wins when
the flag, the settings file and the detection disagree."""

from __future__ import annotations

from pathlib import Path

import pytest

from aios_tui import cli
from aios_tui.cli import ascii_terminal


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"TERM": "xterm-256color", "LANG": "en_US.UTF-8"}, False),
        ({"TERM": "xterm-256color", "LANG": "C.utf8"}, False),
        ({"TERM": "tmux-256color", "LC_ALL": "de_DE.UTF-8", "LANG": "C"}, False),  # LC_ALL wins over LANG
        ({"TERM": "xterm", "LC_CTYPE": "en_US.UTF-8", "LANG": "C"}, False),  # LC_CTYPE wins over LANG
        ({"TERM": "xterm"}, False),  # no locale variable at all: unknown, Unicode stays
        ({"TERM": "xterm", "LANG": "", "LC_ALL": ""}, False),  # empty ones count as unset
        ({"TERM": "linux", "LANG": "en_US.UTF-8"}, True),
        ({"TERM": "vt100", "LANG": "en_US.UTF-8"}, True),
        ({"TERM": "vt220"}, True),
        ({"TERM": "dumb"}, True),
        ({"TERM": "xterm-256color", "LANG": "C"}, True),
        ({"TERM": "xterm-256color", "LANG": "POSIX"}, True),
        ({"TERM": "xterm-256color", "LANG": "en_US.UTF-8", "LC_ALL": "C"}, True),
        ({"TERM": "xterm", "LC_CTYPE": "en_US.ISO-8859-1", "LANG": "en_US.UTF-8"}, True),
        ({}, False),
    ],
)
def test_ascii_terminal(env: dict[str, str], expected: bool) -> None:
    assert ascii_terminal(env) is expected


def _ascii(argv: list[str], env: dict[str, str]) -> bool:
    return cli.settings_from_args(cli.build_parser().parse_args(argv), env=env).ascii


def test_flag_then_file_then_detection(tmp_path: Path) -> None:
    base = {"XDG_CONFIG_HOME": str(tmp_path / "none")}  # no settings file
    linux, xterm = {**base, "TERM": "linux"}, {**base, "TERM": "xterm", "LANG": "en_US.UTF-8"}
    assert (_ascii([], linux), _ascii([], xterm)) == (True, False)
    assert (_ascii(["--no-ascii"], linux), _ascii(["--ascii"], xterm)) == (False, True)
    assert _ascii(["snapshot", "--ascii"], xterm) is True  # after the subcommand too
    off, on = tmp_path / "off.toml", tmp_path / "on.toml"
    off.write_text("ascii = false\n")
    on.write_text("ascii = true\n")
    assert _ascii(["--config", str(off)], linux) is False  # the file's word wins over the detection
    assert _ascii(["--config", str(on)], xterm) is True
    assert _ascii(["--config", str(off), "--ascii"], linux) is True  # the flag wins over the file
    assert _ascii([], {**linux, "AIOS_TUI_ASCII": "false"}) is False
    other = tmp_path / "other.toml"
    other.write_text("read_only = true\n")
    assert _ascii(["--config", str(other)], linux) is True  # a file that does not say: detection
