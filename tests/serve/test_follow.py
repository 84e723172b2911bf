"""``ssh -t host follow NAME``: a read-only follower of another session's console, and ``:who``."""

from __future__ import annotations

import asyncio
import logging

import pytest

from aios_tui.ops import CancelToken
from aios_tui.ui.app import Running
from aios_tui.ui.screens.help import HelpScreen
from aios_tui.ui.screens.main import MainScreen
from aios_tui.ui.serve import Session
from tests.serve.conftest import Served, Terminal, until


async def _console(served: Served, role: str, size: tuple[int, int] = (100, 30)) -> tuple[Terminal, Session]:
    term = await served.console(role, size)
    await term.wait_for("Nodes")
    await until(
        lambda: any(s.member.name == f"{role}-key" and s.app is not None for s in served.server.sessions)
    )
    session = next(s for s in served.server.sessions if s.member.name == f"{role}-key" and s.app is not None)
    await until(lambda: session.app is not None and session.app.fleet is not None)
    return term, session


async def _follow(served: Served, role: str, name: str, size: tuple[int, int] = (100, 30)) -> Terminal:
    conn = await served.connect(role)
    proc = await conn.create_process(
        f"follow {name}", term_type="xterm-256color", term_size=size, encoding=None
    )
    return Terminal(conn, proc)


async def test_a_follower_sees_the_leaders_screen_and_its_keys_change_nothing(
    served: Served, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="aios_tui.serve")
    leader_term, leader = await _console(served, "admin")
    app = leader.app
    assert app is not None
    # A viewer follows an admin: the follower's own role does not matter, it acts as nobody.
    follower = await _follow(served, "viewer", "admin-key")
    await follower.wait_for("Nodes")  # the whole screen, repainted when it joined
    await follower.wait_for("viewer-key (viewer) is following")  # said to both
    assert "is following" in leader_term.text
    (session,) = [s for s in served.server.sessions if s.following is leader]
    assert session.app is None and leader.followers == [session]
    assert any(
        "viewer-key (viewer" in r.getMessage() and "follows admin-key's console" in r.getMessage()
        for r in caplog.records
    )
    assert not served.audit.read()  # following is not an action

    leader_term.press("?")
    await until(lambda: isinstance(app.screen, HelpScreen), 5, "help in the leader's console")
    await follower.wait_for("free capacity per zone, rack and pool")  # the leader's help, on the follower
    # Byte for byte: since it joined, the follower was sent what the leader's terminal was (after its own
    # set-up and clearing).
    start = bytes(follower.out).index(b"\x1b[2J\x1b[H") + len(b"\x1b[2J\x1b[H")
    await until(lambda: bytes(leader_term.out).endswith(bytes(follower.out)[start:]), 5, "the same bytes")

    stack = list(app.screen_stack)
    follower.press("\x1b")  # esc would close help,
    follower.press(":cordon node-0\r")  # a command would open a plan,
    follower.press("a?c1")  # keys would switch screens
    await asyncio.sleep(0.4)
    assert list(app.screen_stack) == stack and isinstance(app.screen, HelpScreen)
    assert follower.proc.exit_status is None and leader.followers == [session]

    follower.press("q")  # q stops following, and only that
    await asyncio.wait_for(follower.proc.wait(), 5)
    assert follower.proc.exit_status == 0
    assert follower.out.rstrip().endswith(b"aios-tui serve: you stopped following admin-key")
    assert b"\x1b[?1049l" in follower.out  # its terminal left the alternate screen
    assert isinstance(app.screen, HelpScreen) and leader.followers == []
    assert served.server.sessions == [leader]
    await leader_term.wait_for("viewer-key stopped following")
    await follower.close()
    await leader_term.close()


async def test_following_a_name_with_no_console_is_refused(served: Served) -> None:
    nobody = await _follow(served, "operator", "bob")
    await asyncio.wait_for(nobody.proc.wait(), 5)
    assert nobody.proc.exit_status == 1
    await nobody.wait_for(
        "aios-tui serve: nobody named 'bob' has a console open here (no console is open now)"
    )
    await nobody.close()

    term, _ = await _console(served, "admin")
    again = await _follow(served, "operator", "bob")
    await asyncio.wait_for(again.proc.wait(), 5)
    await again.wait_for("nobody named 'bob' has a console open here (consoles open now: admin-key)")
    await again.close()

    conn = await served.connect("operator")
    result = await conn.run("follow admin-key", encoding="utf-8")  # no PTY
    assert result.exit_status == 1 and "following needs a terminal" in str(result.stderr)
    result = await conn.run("follow admin-key now", encoding="utf-8")  # exactly follow NAME
    assert result.exit_status == 1 and "runs no command" in str(result.stderr)
    conn.close()
    assert [s.member.name for s in served.server.sessions] == ["admin-key"]
    await term.close()


async def test_following_ends_with_a_sentence_when_the_leader_leaves(served: Served) -> None:
    leader_term, _ = await _console(served, "operator")
    follower = await _follow(served, "viewer", "operator-key")
    await follower.wait_for("is following")
    leader_term.press("q")
    await asyncio.wait_for(leader_term.proc.wait(), 10)
    await asyncio.wait_for(follower.proc.wait(), 5)
    assert follower.proc.exit_status == 0
    assert follower.out.rstrip().endswith(b"aios-tui serve: operator-key's console closed: following ended")
    # The leader's own leaving sequences (mouse, kitty keys) are its terminal's, not the follower's.
    assert b"\x1b[<u" not in follower.out and b"\x1b[?1000l" not in follower.out
    assert not served.server.sessions
    await follower.close()
    await leader_term.close()


async def test_a_smaller_follower_is_told_the_size_until_it_fits(served: Served) -> None:
    leader_term, _ = await _console(served, "admin", (120, 40))
    follower = await _follow(served, "viewer", "admin-key", (80, 24))
    await follower.wait_for("admin-key's console is 120x40, this terminal 80x24: make it at least 120x40")
    assert "Nodes" not in follower.text
    follower.proc.change_terminal_size(130, 45)
    await follower.wait_for("Nodes")
    assert follower.rows_drawn <= 40  # the leader's screen, at the leader's size
    await follower.close()
    await leader_term.close()


async def test_who_lists_everyone_with_roles_and_who_is_acting(served: Served) -> None:
    leader_term, leader = await _console(served, "admin")
    operator_term, operator = await _console(served, "operator")
    follower = await _follow(served, "viewer", "admin-key")
    await follower.wait_for("is following")
    leader_term.press(":who\r")
    await leader_term.wait_for("Who is connected")
    for line in (
        "3 connected to this aios-tui serve:",
        "admin-key        admin    console 100x30, followed by viewer-key, from 127.0.0.1:",
        "operator-key     operator console 100x30, from 127.0.0.1:",
        "viewer-key       viewer   follows admin-key (read-only), from 127.0.0.1:",
    ):
        await leader_term.wait_for(line)
        await follower.wait_for(line)  # the follower sees the list on the leader's screen
    assert leader.app is not None and not isinstance(leader.app.screen, MainScreen)

    # While an action runs, its console is listed with it.
    app = operator.app
    assert app is not None and app.fleet is not None
    plan = app.ops.plan("cordon", nodes=[app.fleet.nodes[0].name])
    app.running.append(Running(plan, CancelToken()))
    lines = served.server.who(operator)
    acting = next(line for line in lines if "operator-key" in line)
    assert acting.endswith(f"; ACTING: {plan.title}  (you)")
    app.running.clear()
    await asyncio.gather(follower.close(), operator_term.close(), leader_term.close())
