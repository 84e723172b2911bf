"""The console in a real terminal (tmux), keys sent in one ``tmux send-keys`` call each: a command, a filter
and a pane switch typed in one burst act on their prompt and nothing else, whatever the pane had under its
cursor. (Pilot tests cover the same in-process; this is the terminal path: the xterm parser, the driver.)"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

TMUX = shutil.which("tmux")
pytestmark = pytest.mark.skipif(
    TMUX is None and os.environ.get("CI") != "true",
    reason="tmux is not installed (scripts/test.sh installs it)",
)


@pytest.fixture
def console(tmp_path: Path) -> Iterator[tuple[Callable[..., None], Callable[[], str], Path]]:
    assert TMUX is not None, "tmux is missing: under CI=true the terminal tests must run"
    socket = str(tmp_path / "tmux.sock")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIOS_TUI_", "TMUX"))}
    env |= {
        "XDG_CONFIG_HOME": str(tmp_path / "c"),
        "XDG_STATE_HOME": str(tmp_path / "s"),
        "TERM": "xterm-256color",
    }
    command = f"{sys.executable} -m aios_tui.cli --sim-nodes 40; sleep 5"
    subprocess.run(
        [TMUX, "-S", socket, "new-session", "-d", "-s", "t", "-x", "120", "-y", "40", command],
        check=True,
        env=env,
    )

    def keys(*args: str) -> None:
        subprocess.run([TMUX, "-S", socket, "send-keys", "-t", "t", *args], check=True)

    def screen() -> str:
        done = subprocess.run(
            [TMUX, "-S", socket, "capture-pane", "-p", "-t", "t"], check=True, capture_output=True, text=True
        )
        return done.stdout

    try:
        deadline = time.monotonic() + 60
        while "1 Nodes 40" not in screen():
            assert time.monotonic() < deadline, f"the console did not open:\n{screen()}"
            time.sleep(0.2)
        yield keys, screen, tmp_path / "s" / "aios-tui" / "audit.jsonl"
    finally:
        subprocess.run([TMUX, "-S", socket, "kill-server"], check=False, capture_output=True)


def wait_for(screen: Callable[[], str], text: str, timeout: float = 20.0) -> str:
    deadline = time.monotonic() + timeout
    while True:
        shown = screen()
        if text in shown:
            return shown
        assert time.monotonic() < deadline, f"{text!r} never showed:\n{shown}"
        time.sleep(0.1)


def test_bursts_typed_into_tmux_reach_only_their_prompt(
    console: tuple[Callable[..., None], Callable[[], str], Path],
) -> None:
    keys, screen, audit = console
    first = next(line for line in screen().splitlines() if "h100-a-0001" in line)
    assert "Ready" in first
    # The cursor is on the first node of the Nodes pane: the "c" of "scale" used to cordon it.
    keys(":scale ml-prod/llama-3-70b-chat 3", "Enter")
    shown = wait_for(screen, "Scale ml-prod/llama-3-70b-chat from")
    assert "Replicas (now" in shown and "Cordon h100" not in shown and not audit.exists()
    keys("Escape")
    shown = wait_for(screen, "⏎ Detail")
    row = next(line for line in shown.splitlines() if "h100-a-0001" in line)
    assert "Ready" in row and "Cordoned" not in row

    keys("/h100")  # used to open the cordon plan of the node under the cursor
    shown = wait_for(screen, " h100")
    assert "Cordon h100" not in shown and not audit.exists()
    keys("Escape", "Escape")

    keys(":ep", "Enter")  # used to open the node pools (its "p")
    shown = wait_for(screen, "s Scale")
    assert "Node pools" not in shown and not audit.exists()
    keys("q")
