"""``aios-tui act`` as a real process: the write-ahead audit survives kill -9, SIGTERM and SIGHUP (a dropped
SSH session), Ctrl-C at the prompt stops at once, and ``+N`` / ``-N`` mean the same as in the console."""

from __future__ import annotations

import json
import os
import pty
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from aios_tui import cli
from aios_tui.domain import clock
from aios_tui.sources.sim import SimSource
from aios_tui.ui.harness import START

A, B = "h100-a-0001", "h100-a-0002"

# A child that runs `act cordon A B --yes` on a 12-node fleet whose second cordon never answers: it says
# "waiting" once the first node is cordoned, then hangs until the test signals it.
CHILD = """
import asyncio, sys
from aios_tui import cli
from aios_tui.domain import clock
from aios_tui.sources.sim import SimSource

original = SimSource.set_cordon

async def stuck(self, node, cordoned):
    if node == sys.argv[2]:
        print("waiting", flush=True)
        await asyncio.Event().wait()
    await original(self, node, cordoned)

SimSource.set_cordon = stuck
with clock.use(clock.FrozenClock(float(sys.argv[3]))):
    sys.exit(cli.main(["--sim-nodes", "12", "act", "cordon", sys.argv[1], sys.argv[2], "--yes"]))
"""


@pytest.fixture
def state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    for var in [v for v in os.environ if v.startswith("AIOS_TUI_")]:
        monkeypatch.delenv(var)
    yield tmp_path / "state" / "aios-tui" / "audit.jsonl"


def lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


# `act cordon A` on a 12-node fleet laid out at the time every unit test reads (tests/unit/conftest.py pins
# it in-process; a child process needs its own pin), asking for confirmation. At the wall clock's time the
# fleet's NVSentinel quarantine fell on A at ~6 % of all instants: "already cordoned", no prompt.
ASKING_CHILD = """
import sys
from aios_tui import cli
from aios_tui.domain import clock

with clock.use(clock.FrozenClock(float(sys.argv[2]))):
    sys.exit(cli.main(["--sim-nodes", "12", "act", "cordon", sys.argv[1]]))
"""


def start_child(tmp_path: Path) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIOS_TUI_")}
    env |= {"XDG_CONFIG_HOME": str(tmp_path / "config"), "XDG_STATE_HOME": str(tmp_path / "state")}
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, A, B, str(START)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert child.stdout is not None
    for line in child.stdout:  # the plan, then "waiting" once the first cordon is done
        if line.strip() == "waiting":
            return child
    child.kill()
    raise AssertionError(
        f"the child never got to its second cordon: {child.stderr.read() if child.stderr else ''}"
    )


def test_kill_9_midway_leaves_the_intent_and_the_next_start_reports_it(
    state: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    child = start_child(tmp_path)
    child.send_signal(signal.SIGKILL)
    child.wait(timeout=30)
    intent, step = lines(state)  # nothing after: the process could write nothing more
    assert (intent["phase"], intent["action"], intent["steps"]) == (
        "intent",
        "cordon",
        [f"cordon {A}", f"cordon {B}"],
    )
    assert (step["phase"], step["step"], step["outcome"]) == ("step", f"cordon {A}", "ok")

    code = cli.main(["--sim-nodes", "12", "act", "cordon", A, "--yes"])  # a new embedded fleet each run
    err = capsys.readouterr().err
    assert code == 0, err
    note = f"aios-tui: note: Cordon 2 nodes ({A}, {B}): interrupted at "
    assert note in err and err.count("note:") == 1
    assert f"1 of 2 steps done (cordon {A})" in err
    closed = [ln for ln in lines(state) if ln["id"] == intent["id"] and ln.get("phase") == "end"]
    assert [ln["outcome"] for ln in closed] == ["interrupted"]
    cli.main(["--sim-nodes", "12", "act", "cordon", B, "--yes"])
    assert "note:" not in capsys.readouterr().err  # reported once


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGTERM, 143), (signal.SIGHUP, 129)])
def test_sigterm_and_sighup_stop_the_action_and_audit_what_was_done(
    state: Path, tmp_path: Path, signum: int, code: int
) -> None:
    child = start_child(tmp_path)
    child.send_signal(signum)
    assert child.wait(timeout=30) == code
    *_, end = lines(state)
    assert (end["phase"], end["outcome"]) == ("end", "interrupted")
    assert (
        end["message"]
        == f"Cordon 2 nodes ({A}, {B}): interrupted after 1 of 2 steps; run it again to continue"
    )


def test_ctrl_c_at_the_prompt_stops_at_once_and_is_audited(state: Path, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIOS_TUI_")}
    env |= {"XDG_CONFIG_HOME": str(tmp_path / "config"), "XDG_STATE_HOME": str(tmp_path / "state")}
    leader, follower = pty.openpty()  # a terminal, so that the command asks instead of refusing
    try:
        child = subprocess.Popen(
            [sys.executable, "-c", ASKING_CHILD, A, str(START)],
            env=env,
            stdin=follower,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert child.stderr is not None
        asked = ""
        while "Proceed? [y/N]" not in asked:
            chunk = child.stderr.read(1)
            assert chunk, f"no prompt; stderr so far: {asked!r}"
            asked += chunk
        child.send_signal(signal.SIGINT)  # what the terminal sends for ^C
        started = time.monotonic()
        assert child.wait(timeout=20) == 130
        waited = time.monotonic() - started
    finally:
        os.close(leader)
        os.close(follower)
    assert waited < 10  # at once, not after an Enter that never comes (the old prompt blocked the loop)
    [refused] = lines(state)
    assert (refused["action"], refused["outcome"]) == ("cordon", "refused")
    assert refused["message"] == "interrupted at the confirmation prompt"


# --- one grammar for amounts -------------------------------------------------------------------------------


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_plus_and_minus_are_relative_in_the_cli_as_in_the_console(
    state: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with clock.use(clock.FrozenClock(START)):
        snap = SimSource(seed=0, nodes=12).fetch_now()
    pool = next(p for p in snap.pools if p.gpu_model == "H100" and p.max_size >= p.desired_capacity + 2)
    endpoint = next(e for e in snap.endpoints if e.replicas_desired >= 2 and e.hpa is None)
    code, out, err = run(capsys, "--sim-nodes", "12", "plan", "scale-pool", pool.name, "+2", "--json")
    assert code == 0, err
    doc = json.loads(out)
    assert (doc["params"]["from"], doc["params"]["desired"]) == (
        pool.desired_capacity,
        pool.desired_capacity + 2,
    )
    code, out, err = run(capsys, "--sim-nodes", "12", "plan", "scale", endpoint.key, "-1", "--json")
    doc = json.loads(out)
    assert doc["params"]["replicas"] == endpoint.replicas_desired - 1, err
    assert doc["params"]["asked"] == "-1"
    code, out, err = run(capsys, "--sim-nodes", "12", "plan", "scale", endpoint.key, "3", "--json")
    assert json.loads(out)["params"]["replicas"] == 3
    code, _, err = run(capsys, "--sim-nodes", "12", "plan", "scale", endpoint.key, "2.5")
    assert code == 2 and "+N / -N" in err
