"""``aios-tui serve`` through asyncssh's client: roles from keys, one poller, the limits."""

from __future__ import annotations

import asyncio
import math
import os
import re
import stat
from pathlib import Path

import asyncssh
import pytest

from aios_tui.cli import main
from aios_tui.config import ConfigError
from aios_tui.ops import ActionRate, ActionRefused, AuditEntry, PermissionDenied, Role
from aios_tui.ui.screens.help import HelpScreen
from aios_tui.ui.screens.main import MainScreen
from aios_tui.ui.serve import ConsoleServer, Session, load_host_key, read_authorized_keys
from tests.serve.conftest import Keys, Served, Terminal, until, write_authorized_keys


def _session(served: Served, index: int = -1) -> Session:
    return served.server.sessions[index]


async def _ready(served: Served, term: Terminal, count: int = 1) -> Session:
    """Wait for the console to show the fleet and its session to be listed; returns the newest session."""
    await term.wait_for("Nodes")
    await until(lambda: len(served.server.sessions) >= count and served.server.sessions[-1].app is not None)
    session = _session(served)
    assert session.app is not None
    await until(lambda: session.app is not None and session.app.fleet is not None)
    return session


def _fingerprint(key: asyncssh.SSHKey) -> str:
    return key.get_fingerprint("sha256")


async def test_a_viewer_sees_the_console_and_cannot_act(served: Served) -> None:
    # The client says it is root, with an admin role in its environment: neither counts.
    conn = await served.connect("viewer", username="root")
    proc = await conn.create_process(
        term_type="xterm-256color",
        term_size=(120, 40),
        encoding=None,
        env={"AIOS_TUI_ROLE": "admin", "AIOS_TUI_USER": "root", "USER": "root"},
    )
    term = Terminal(conn, proc)
    session = await _ready(served, term)
    app = session.app
    assert app is not None
    assert app.ops.actor.user == "viewer-key" and app.ops.actor.role is Role.VIEWER
    assert app.ops.actor.fingerprint == _fingerprint(served.keys.viewer)
    assert "Cordon" not in term.text and "Drain" not in term.text  # no action key is offered
    term.press("c")  # cordon's key does nothing for a viewer
    await asyncio.sleep(0.3)
    assert isinstance(app.screen, MainScreen)
    node = next(n for n in app.fleet.nodes if not n.cordoned)  # type: ignore[union-attr]
    plan = app.ops.plan("cordon", nodes=[node.name])
    assert not plan.ok and "role viewer may not cordon" in " ".join(plan.blockers)
    with pytest.raises(PermissionDenied):
        await app.ops.execute(plan)
    (refused,) = served.audit.read()
    assert (refused.user, refused.role, refused.outcome) == ("viewer-key", "viewer", "refused")
    assert refused.fingerprint == _fingerprint(served.keys.viewer)
    assert not served.server.poller.snapshot.node_by_name[node.name].cordoned
    await term.close()


async def test_an_operator_scales_an_endpoint_audited_under_its_keys_name(served: Served) -> None:
    term = await served.console("operator")
    session = await _ready(served, term)
    await term.wait_for("Cordon")  # the operator's footer offers the action keys
    fleet = served.server.poller.snapshot
    endpoint = next(e for e in fleet.endpoints if e.hpa is None and "prod" not in e.namespace)
    before = endpoint.replicas_desired
    term.press(f":scale {endpoint.key} +1\r")
    await term.wait_for(f"Scale {endpoint.key}")
    await term.wait_for(f"{before} → {before + 1}")  # the plan, as the operator reads it
    # An Enter typed before the plan screen knows it is on screen is refused (PlanScreen.shown_at): wait for
    # that moment, as a person reading the plan would.
    await until(lambda: getattr(session.app.screen, "shown_at", math.inf) < math.inf)  # type: ignore[union-attr]
    term.press("\r")  # confirm
    # The end line, not the first "ok": a step's line is "ok" too, and is written before it.
    await until(lambda: any(e.phase == "end" for e in served.audit.read()), 10, "the audited scale")
    lines = [e for e in served.audit.read() if e.action == "scale"]
    assert (lines[0].phase, lines[-1].phase, lines[-1].outcome) == ("intent", "end", "ok")
    for entry in lines:
        assert (entry.user, entry.role) == ("operator-key", "operator")
        assert entry.fingerprint == _fingerprint(served.keys.operator)
        assert f'"fingerprint":"{entry.fingerprint}"' in entry.to_json()

    def scaled() -> bool:
        return served.server.poller.snapshot.endpoint_by_key[endpoint.key].replicas_desired == before + 1

    await until(scaled, 10, "the new replica count in the shared poller")
    assert session.app is not None and session.app.ops.actor.role is Role.OPERATOR
    await term.close()


async def test_an_unknown_key_is_refused_with_a_message(
    served: Served, caplog: pytest.LogCaptureFixture
) -> None:
    banners: list[str] = []

    class Client(asyncssh.SSHClient):
        def auth_banner_received(self, msg: str, lang: str) -> None:
            banners.append(msg)

    with pytest.raises(asyncssh.PermissionDenied):
        await asyncssh.connect(
            "127.0.0.1",
            served.port,
            username="viewer-key",  # a member's name as the user name opens nothing either
            client_keys=[served.keys.stranger],
            known_hosts=str(served.known_hosts),
            agent_path=None,
            config=None,
            client_factory=Client,
        )
    fingerprint = _fingerprint(served.keys.stranger)
    assert banners and f"key {fingerprint} is not authorized here" in banners[0]
    assert any(f"refused key {fingerprint}" in r.getMessage() for r in caplog.records)
    assert not served.server.sessions


async def test_twenty_sessions_share_one_poller(served: Served) -> None:
    sizes = [(80 + i * 4, 24 + i) for i in range(20)]
    terms = await asyncio.gather(
        *(served.console(("viewer", "operator")[i % 2], size) for i, size in enumerate(sizes))
    )
    for term in terms:
        await term.wait_for("Nodes", within=30)
    assert len(served.server.sessions) == 20
    # Every session draws at its own size, from the one poller.
    for term, (width, height) in zip(terms, sizes, strict=True):
        await until(lambda t=term, h=height: t.rows_drawn == h, 10, f"a screen of {height} rows")
        assert term.cols_drawn <= width
    apps = [s.app for s in served.server.sessions]
    assert all(a is not None and a.poller is served.server.poller for a in apps)
    loop = asyncio.get_running_loop()
    start, count = loop.time(), len(served.fetches)
    await asyncio.sleep(2.0)
    elapsed, fetched = loop.time() - start, len(served.fetches) - count
    interval = served.settings.sim.interval
    # What one console costs the source: one fetch per interval (a fetch may be under way at each end).
    assert fetched <= elapsed / interval + 2, f"{fetched} fetches in {elapsed:.1f}s for 20 sessions"
    assert fetched >= 1  # and it still polls
    await asyncio.gather(*(t.close() for t in terms))
    await until(lambda: not served.server.sessions, 10, "every session closed")


async def test_two_sessions_draw_and_react_independently(served: Served) -> None:
    small = await served.console("viewer", (90, 28))
    first = await _ready(served, small)
    large = await served.console("viewer", (150, 45))
    second = await _ready(served, large, count=2)
    await until(lambda: small.rows_drawn == 28 and large.rows_drawn == 45)
    assert first.app is not None and second.app is not None and first.app is not second.app
    small.press("?")
    await until(lambda: isinstance(first.app.screen, HelpScreen), 5, "help in the first session")  # type: ignore[union-attr]
    assert isinstance(second.app.screen, MainScreen)
    large.proc.change_terminal_size(100, 30)
    await until(lambda: second.app.size == (100, 30), 5, "the second session resized")  # type: ignore[union-attr]
    assert first.app.size == (90, 28)
    small.press("q")  # quits the help screen, then the console
    await until(lambda: isinstance(first.app.screen, MainScreen), 5, "help closed")  # type: ignore[union-attr]
    small.press("q")
    await asyncio.wait_for(small.proc.wait(), 10)
    assert small.proc.exit_status == 0
    assert served.server.sessions == [second]
    await large.close()


async def test_commands_shells_without_a_pty_and_forwarding_are_refused(served: Served) -> None:
    conn = await served.connect("admin")
    result = await conn.run("aios-tui snapshot", encoding="utf-8")
    assert result.exit_status == 1 and "runs no command" in str(result.stderr)
    result = await conn.run(encoding="utf-8")  # a shell without a PTY
    assert result.exit_status == 1 and "in a terminal only" in str(result.stderr)
    with pytest.raises((asyncssh.ChannelOpenError, asyncssh.SFTPError)):
        await conn.start_sftp_client()
    with pytest.raises(asyncssh.ChannelOpenError):
        await conn.open_connection("127.0.0.1", served.port)
    with pytest.raises(asyncssh.ChannelListenError):
        await conn.forward_remote_port("127.0.0.1", 0, "127.0.0.1", 22)
    assert not served.server.sessions
    conn.close()


@pytest.mark.parametrize("served", [{"max_sessions": 2}], indirect=True)
async def test_sessions_past_the_maximum_are_told_and_closed(served: Served) -> None:
    one = await served.console("viewer")
    await _ready(served, one)
    two = await served.console("operator")
    await _ready(served, two, count=2)
    three = await served.console("admin")
    await asyncio.wait_for(three.proc.wait(), 10)
    assert three.proc.exit_status == 1
    await three.wait_for("aios-tui serve: 2 sessions are open already, the most this server allows")
    await one.close()
    await until(lambda: len(served.server.sessions) == 1, 5, "a place freed")
    four = await served.console("admin")
    await _ready(served, four, count=2)
    await two.close()
    await four.close()


@pytest.mark.parametrize("served", [{"idle_timeout": 0.6}], indirect=True)
async def test_an_idle_session_is_closed_with_a_message(served: Served) -> None:
    term = await served.console("viewer")
    await _ready(served, term)
    await asyncio.wait_for(term.proc.wait(), 10)
    assert term.proc.exit_status == 1
    await term.wait_for("aios-tui serve: no key pressed for 0.6 s: the session is closed")
    assert term.out.rstrip().endswith(b"the session is closed")  # said after the screen was restored
    assert not served.server.sessions
    await term.close()


@pytest.mark.parametrize("served", [{"actions_per_minute": 1}], indirect=True)
async def test_actions_per_minute_are_counted_per_key_over_its_sessions(served: Served) -> None:
    one = await served.console("operator")
    first = await _ready(served, one)
    two = await served.console("operator")
    second = await _ready(served, two, count=2)
    assert first.app is not None and second.app is not None
    nodes = [n.name for n in served.server.poller.snapshot.nodes if n.schedulable][:2]
    await first.app.ops.execute(first.app.ops.plan("cordon", nodes=[nodes[0]]))
    with pytest.raises(ActionRefused, match="operator-key ran 1 action in the last minute"):
        await second.app.ops.execute(second.app.ops.plan("cordon", nodes=[nodes[1]]))
    last = served.audit.read()[-1]
    assert (last.outcome, last.user, last.fingerprint) == (
        "refused",
        "operator-key",
        _fingerprint(served.keys.operator),
    )
    await one.close()
    await two.close()


def test_action_rate_is_a_sliding_minute() -> None:
    now = [0.0]
    rate = ActionRate(2, clock=lambda: now[0])
    assert rate.take() is None
    now[0] = 30.0
    assert rate.take() is None
    now[0] = 45.0
    assert rate.take() == pytest.approx(15.0)  # refused, and not counted
    now[0] = 60.0
    assert rate.take() is None  # the first one is a minute old
    assert rate.take() == pytest.approx(30.0)


def test_audit_lines_without_a_fingerprint_stay_as_they_were() -> None:
    entry = AuditEntry("t", "u", "h", "operator", "cordon", "n", "sim", "Cordon n", "ok", "done")
    assert "fingerprint" not in entry.to_json()
    keyed = AuditEntry.from_json(entry.to_json().replace('"user":"u"', '"user":"u","fingerprint":"SHA256:x"'))
    assert keyed.fingerprint == "SHA256:x"


# --- the authorized keys and the host key -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "says"),
    [
        ('role="viewer" {key}', "line 2: each key needs name="),
        ('name="a",role="root" {key}', 'line 2 role: expected "viewer", "operator" or "admin", got "root"'),
        ('name="a b",role="viewer" {key}', "line 2 name: expected letters"),
        (
            'name="a",role="viewer",from="10.0.0.0/8" {key}',
            "line 2: option 'from=10.0.0.0/8' is not supported",
        ),
        ('command="sh",name="a",role="viewer" {key}', "line 2: option 'command=sh' is not supported"),
        ('name="a",role="viewer" ssh-ed25519 AAAAnotakey', "line 2: not a public key"),
        ('name="a,role="viewer" {key}', "line 2: options: a quote is not closed"),
        ('name="viewer-key",role="admin" {viewer}', "line 2: this key is already viewer-key's"),
    ],
)
def test_a_bad_authorized_keys_line_names_the_file_and_line(
    tmp_path: Path, keys: Keys, line: str, says: str
) -> None:
    path = tmp_path / "authorized_keys"
    viewer = keys.viewer.export_public_key().decode().strip()
    other = keys.stranger.export_public_key().decode().strip()
    path.write_text(
        f'name="viewer-key",role="viewer" {viewer}\n' + line.format(key=other, viewer=viewer) + "\n"
    )
    with pytest.raises(ConfigError) as caught:
        read_authorized_keys(path)
    assert str(caught.value).startswith(f"{path}: {says}"), str(caught.value)


def test_authorized_keys_take_quoted_names_and_harmless_options(tmp_path: Path, keys: Keys) -> None:
    path = write_authorized_keys(tmp_path / "authorized_keys", keys)
    with path.open("a") as f:
        f.write(f'restrict,role="admin",name="ops@site" {keys.stranger.export_public_key().decode()}')
    members = read_authorized_keys(path)
    assert {m.name: m.role for m in members.values()} == {
        "viewer-key": Role.VIEWER,
        "operator-key": Role.OPERATOR,
        "admin-key": Role.ADMIN,
        "ops@site": Role.ADMIN,
    }


def test_the_host_key_is_made_private_once_and_kept(tmp_path: Path) -> None:
    path = tmp_path / "state" / "host_key"
    made = load_host_key(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert load_host_key(path).public_data == made.public_data
    path.chmod(0o644)
    with pytest.raises(ConfigError, match="others may read this private key"):
        load_host_key(path)


def test_serve_with_a_bad_authorized_keys_file_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    bad = tmp_path / "authorized_keys"
    bad.write_text("# nobody yet\nssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIG\n")
    code = main(["serve", "--sim", "--port", "0", "--authorized-keys", str(bad)])
    assert code == 2
    assert f"aios-tui: {bad}: line 2" in capsys.readouterr().err


def test_the_console_server_is_built_from_the_settings(tmp_path: Path, keys: Keys) -> None:
    """The server's role for a session comes from the key alone: the settings' role and user do not count."""
    from aios_tui.cli import make_poller
    from aios_tui.config import Settings, sim_only
    from aios_tui.ops import AuditLog

    settings = sim_only(Settings(role="admin", user="root", read_only=True))
    members = read_authorized_keys(write_authorized_keys(tmp_path / "ak", keys))
    server = ConsoleServer(
        settings,
        make_poller(settings),
        members,
        load_host_key(tmp_path / "hk"),
        audit=AuditLog(tmp_path / "a"),
    )
    member = next(m for m in members.values() if m.role is Role.VIEWER)
    ops = server.ops_for(member)
    assert (ops.actor.user, ops.actor.role, ops.read_only) == ("viewer-key", Role.VIEWER, True)


async def test_the_serve_command_listens_serves_and_stops_on_sigterm(tmp_path: Path, keys: Keys) -> None:
    """``aios-tui serve`` as the README starts it: the port and host key printed, a console served, and
    SIGTERM closing the session with a sentence."""
    import signal
    import sys

    authorized = write_authorized_keys(tmp_path / "authorized_keys", keys)
    env = {
        **os.environ,
        "XDG_STATE_HOME": str(tmp_path / "state"),
        "XDG_CONFIG_HOME": str(tmp_path / "config"),
        "AIOS_TUI_AUDIT_PATH": str(tmp_path / "audit.jsonl"),
    }
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "aios_tui.cli",
        "serve",
        "--sim",
        "--sim-nodes",
        "20",
        "--port",
        "0",
        "--authorized-keys",
        str(authorized),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
    )
    try:
        assert proc.stdout is not None and proc.stderr is not None
        line = (await asyncio.wait_for(proc.stdout.readline(), 30)).decode()
        found = re.search(
            r"port (\d+), host key (SHA256:\S+); 3 keys \(admin-key, operator-key, viewer-key\)", line
        )
        assert found, line
        port = int(found[1])
        host_key = load_host_key(tmp_path / "state" / "aios-tui" / "ssh_host_ed25519_key")
        assert host_key.get_fingerprint("sha256") == found[2]
        known = tmp_path / "known_hosts"
        known.write_text(f"[127.0.0.1]:{port} {host_key.export_public_key().decode()}")
        conn = await asyncssh.connect(
            "127.0.0.1",
            port,
            username="x",
            client_keys=[keys.viewer],
            known_hosts=str(known),
            agent_path=None,
            config=None,
        )
        client = await conn.create_process(term_type="xterm", term_size=(100, 30), encoding=None)
        term = Terminal(conn, client)
        await term.wait_for("Nodes", within=20)
        proc.send_signal(signal.SIGTERM)
        await term.wait_for("aios-tui serve: the server is shutting down")
        assert await asyncio.wait_for(proc.wait(), 15) == 128 + signal.SIGTERM
        log = (await proc.stderr.read()).decode()
        assert "viewer-key (viewer, SHA256:" in log and "logged in from 127.0.0.1" in log
        await term.close()
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
