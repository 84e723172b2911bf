"""``aios-tui serve``: the console over SSH to the on-call team, one shared poller for every session.

Who logs in, and as what, is the authorized-keys file's to say and nobody else's: each key carries
``name="…"`` and ``role="viewer|operator|admin"`` options (:func:`read_authorized_keys`). The client's
environment, user name and flags are never read for it. Each session is its own console
(:class:`~aios_tui.ui.app.AiosApp` over :class:`~aios_tui.ui.ssh_driver.SSHDriver`, in its own asyncio
task) at its own terminal size, with its own :class:`~aios_tui.ops.Ops` acting as the key's name and role
(audit lines carry the key's fingerprint); the poller is one, started here, so N sessions cost the sources
what one does. Actions are limited per key (:class:`~aios_tui.ops.ActionRate`, enforced by ``Ops``).

Only interactive terminals are served: a shell request after a PTY request, or the one command
``follow NAME`` after a PTY request (below). Any other command, a shell without a PTY, subsystems (SFTP),
port forwarding, agent and X11 forwarding are refused; so are sessions past ``[serve] max_sessions``, and a
session idle past ``idle_timeout`` is closed, each with a sentence saying why. Unknown keys fail
authentication, with a banner naming the key's fingerprint and a line in the log.

**Followers** (the incident bridge): ``ssh -t -p 2222 host follow alice`` shows alice's console, read-only,
as tmate's and upterm's read-only links do. The login chooses it, not a key inside a console: a follower
never has a console of its own (no app, no ``Ops``), so there is nothing its keys could reach and its role
does not matter; ``q``, ``ctrl+c`` or ``ctrl+d`` stop following, every other key is dropped. What alice's
console sends her terminal is sent to each follower too (:attr:`SessionTerminal.mirrors
<aios_tui.ui.ssh_driver.SessionTerminal.mirrors>`, less clipboard writes), and her console repaints its whole
screen when one joins. The follower sees alice's size: a terminal at least that large shows it at the top
left; a smaller one shows a line saying how large it must be until it is (or hers shrinks). A name with
several consoles open is followed in its newest; a name with none is told so (exit 1). When alice's console
closes, each follower is told so and exits 0. A follower counts against ``max_sessions``, and idles only
when the console it follows does. Following is not an action: it is not audited, it is logged (who
follows whom, from where), and the leader's console says who joined and left.

Everyone sees who is connected: ``:who`` in any console lists every session (name and role from the key,
where from, its console or whom it follows) and, for a console running an action, the action; the app reads
it through a callback (:meth:`ConsoleServer.who`) and keeps no registry of its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import gc
import logging
import os
import re
import stat
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncssh

from aios_tui.config import ConfigError, Settings
from aios_tui.ops import ActionRate, Actor, AuditLog, Ops, Role
from aios_tui.ops.audit import private_dir
from aios_tui.poll import Poller
from aios_tui.ui.app import YOUNG_COLLECTION, AiosApp
from aios_tui.ui.ssh_driver import SessionTerminal, driver_for

__all__ = [
    "ConsoleServer",
    "Member",
    "default_authorized_keys_path",
    "default_host_key_path",
    "load_host_key",
    "read_authorized_keys",
]

log = logging.getLogger("aios_tui.serve")

LOGIN_TIMEOUT_S = 30.0
"""Seconds a connection has to authenticate."""
KEEPALIVE_S = 30.0
"""Seconds between two keepalives; three unanswered close the connection (a client gone without a word)."""
MAX_UNSENT = 8 * 1024 * 1024
"""Bytes of screen updates queued for a client that does not read them before its session is closed."""
DEFAULT_SIZE = (80, 24)
STOP_FOLLOWING = (b"q", b"Q", b"\x03", b"\x04")
"""Keys that end a follow: q, ctrl+c, ctrl+d (the follower's terminal is in no special input mode)."""
_FOLLOW_START = b"\x1b[?1049h\x1b[?25l\x1b[?7l"
"""A follower's terminal: the alternate screen, no cursor, no line wrap (no mouse, paste or kitty modes: its
keys stay plain)."""
_FOLLOW_END = b"\x1b[0m\x1b[?7h\x1b[?25h\x1b[?1049l"
_CLEAR = b"\x1b[0m\x1b[2J\x1b[H"
_CLIPBOARD = re.compile(rb"\x1b\]52;[^\x07\x1b]*(?:\x07|\x1b\\)")
"""OSC 52: the leader's ``Y`` sets the leader's clipboard, not the followers'."""

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@+-]{0,63}")
_HARMLESS = frozenset({"restrict", "no-port-forwarding", "no-agent-forwarding", "no-x11-forwarding"})
"""OpenSSH options accepted as they are: this server refuses all of it anyway."""


# --- who may log in ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Member:
    """One authorized key: who it is, what they may do, and the key's ``SHA256:`` fingerprint."""

    name: str
    role: Role
    fingerprint: str


def default_authorized_keys_path(env: Mapping[str, str] | None = None) -> Path:
    """``$XDG_CONFIG_HOME/aios-tui/authorized_keys``."""
    environ = os.environ if env is None else env
    base = environ.get("XDG_CONFIG_HOME", "")
    root = Path(base) if base and Path(base).is_absolute() else Path.home() / ".config"
    return root / "aios-tui" / "authorized_keys"


def default_host_key_path(env: Mapping[str, str] | None = None) -> Path:
    """``$XDG_STATE_HOME/aios-tui/ssh_host_ed25519_key``."""
    environ = os.environ if env is None else env
    base = environ.get("XDG_STATE_HOME", "")
    root = Path(base) if base and Path(base).is_absolute() else Path.home() / ".local" / "state"
    return root / "aios-tui" / "ssh_host_ed25519_key"


def _split_options(line: str) -> tuple[list[str], str]:
    """An authorized_keys line's options (``name="a b",role=viewer``) and the rest (the key, a comment).
    Commas and spaces inside double quotes belong to the value; ``\\"`` is a quote."""
    options: list[str] = []
    current: list[str] = []
    quoted = escaped = False
    for i, ch in enumerate(line):
        if escaped:
            current.append(ch)
            escaped = False
        elif ch == "\\" and quoted:
            escaped = True
        elif ch == '"':
            quoted = not quoted
        elif quoted:
            current.append(ch)
        elif ch == ",":
            options.append("".join(current))
            current = []
        elif ch in " \t":
            options.append("".join(current))
            return options, line[i:].strip()
        else:
            current.append(ch)
    if quoted:
        raise ValueError("a quote is not closed")
    options.append("".join(current))
    return options, ""


def read_authorized_keys(path: Path) -> dict[bytes, Member]:
    """The members of an OpenSSH authorized_keys file, by public key (its wire form).

    Each line is ``name="alice",role="operator" ssh-ed25519 AAAA… comment``; ``#`` starts a comment line.
    A line without a name or a role, with a role that is not one, with an option this server does not
    honour (``from=``, ``command=``, ``cert-authority``: refused rather than ignored), a key that cannot be
    read or one listed twice raises :class:`ConfigError` naming the file and the line.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise ConfigError(path, "", detail=f"not UTF-8 text ({e.reason} at byte {e.start})") from None
    except OSError as e:
        raise ConfigError(path, "", detail=f"cannot read the authorized keys: {e.strerror or e}") from None
    members: dict[bytes, Member] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        where = f"line {number}"
        try:
            options, rest = _split_options(line)
        except ValueError as e:
            raise ConfigError(path, where, detail=f"options: {e}") from None
        values: dict[str, str] = {}
        for option in options:
            key, eq, value = option.partition("=")
            key = key.strip().lower()
            if key in ("name", "role") and eq:
                if key in values:
                    raise ConfigError(path, where, detail=f"{key} is given twice")
                values[key] = value
            elif not eq and key in _HARMLESS:
                continue
            else:
                raise ConfigError(
                    path,
                    where,
                    detail=f"option {option!r} is not supported here: each key takes "
                    'name="…" and role="viewer|operator|admin" (and no other option)',
                )
        name, role = values.get("name"), values.get("role")
        if name is None or role is None:
            raise ConfigError(
                path, where, detail='each key needs name="…" and role="viewer|operator|admin" in front of it'
            )
        if not _NAME.fullmatch(name):
            raise ConfigError(path, f"{where} name", "letters, digits and ._@+- (at most 64)", name)
        if role not in {r.value for r in Role}:
            raise ConfigError(path, f"{where} role", '"viewer", "operator" or "admin"', role)
        try:
            public = asyncssh.import_public_key(rest)
        except (asyncssh.KeyImportError, ValueError) as e:
            raise ConfigError(path, where, detail=f"not a public key: {e}") from None
        wire = public.public_data
        if wire in members:
            raise ConfigError(path, where, detail=f"this key is already {members[wire].name}'s")
        members[wire] = Member(name, Role(role), public.get_fingerprint("sha256"))
    if not members:
        raise ConfigError(path, "", detail="no key in it: nobody could log in")
    return members


def load_host_key(path: Path) -> asyncssh.SSHKey:
    """The server's private host key, made (ed25519, ``0600`` in a ``0700`` folder) when missing. One that
    others may read, or that is not a private key, raises :class:`ConfigError`."""
    if not path.exists():
        private_dir(path.parent)
        key = asyncssh.generate_private_key("ssh-ed25519")
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(key.export_private_key())
        log.info("made a new host key %s (%s)", path, key.get_fingerprint("sha256"))
        return key
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
        if mode & 0o077:
            raise ConfigError(path, "", detail=f"others may read this private key ({mode:04o}): chmod 600 it")
        return asyncssh.read_private_key(path)
    except (OSError, asyncssh.KeyImportError, ValueError) as e:
        raise ConfigError(path, "", detail=f"cannot read the host key: {e}") from None


# --- the server -------------------------------------------------------------------------------------------


class ConsoleServer:
    """Serves one console per SSH session over one shared ``poller``.

    :meth:`start` starts the poller and listens; :meth:`close` ends every session, stops listening and
    stops the poller. ``ascii_for`` says, from a session's terminal type, whether it draws in ASCII only.
    """

    def __init__(
        self,
        settings: Settings,
        poller: Poller,
        members: Mapping[bytes, Member],
        host_key: asyncssh.SSHKey,
        *,
        audit: AuditLog,
        ascii_for: Callable[[str], bool] | None = None,
        authorized_keys_path: Path | None = None,
    ) -> None:
        self.settings = settings
        self.serve = settings.serve
        self.poller = poller
        self.members = dict(members)
        self.host_key = host_key
        self.audit = audit
        self.ascii_for = ascii_for
        self.authorized_keys_path = authorized_keys_path
        self.sessions: list[Session] = []
        """The consoles open now, oldest first."""
        self._rates: dict[str, ActionRate] = {}
        self._acceptor: asyncssh.SSHAcceptor | None = None
        self._streams = (sys.stdout, sys.stderr)
        self._gc_threshold = gc.get_threshold()
        self.port = 0

    async def start(self) -> None:
        # The server owns the process: its youngest generation is collected every YOUNG_COLLECTION
        # allocations, as a console's is (each session's app leaves the collector alone). At Python's 700, 20
        # sessions spent 41 % of a core collecting (bench/bench_serve.py, docs/benchmarks.md).
        self._gc_threshold = gc.get_threshold()
        gc.set_threshold(YOUNG_COLLECTION, *self._gc_threshold[1:])
        self.poller.start()
        self._acceptor = await asyncssh.create_server(
            lambda: _Connection(self),
            self.serve.listen,
            self.serve.port,
            server_host_keys=[self.host_key],
            line_editor=False,  # the console reads keys, not lines: asyncssh must not echo or edit
            encoding=None,
            agent_forwarding=False,
            x11_forwarding=False,
            allow_scp=False,
            gss_host=None,
            password_auth=False,
            kbdint_auth=False,
            host_based_auth=False,
            rdns_lookup=False,
            login_timeout=LOGIN_TIMEOUT_S,
            keepalive_interval=KEEPALIVE_S,
            keepalive_count_max=3,
        )
        self.port = self._acceptor.get_port()

    async def close(self) -> None:
        """Close every session (each is told), stop listening, then stop the poller (and give the process
        its collector's threshold back)."""
        gc.set_threshold(*self._gc_threshold)
        if self._acceptor is not None:
            self._acceptor.close()
        for session in list(self.sessions):
            session.end("the server is shutting down", status=1)
        tasks = [s.task for s in self.sessions if s.task is not None]
        if tasks:
            await asyncio.wait(tasks, timeout=5)
        if self._acceptor is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._acceptor.wait_closed(), 5)
        await self.poller.stop()
        self._restore_streams()

    def rate_for(self, member: Member) -> ActionRate | None:
        """The action budget of ``member``'s key, shared by all its sessions (None: no limit)."""
        if not self.serve.actions_per_minute:
            return None
        return self._rates.setdefault(member.fingerprint, ActionRate(self.serve.actions_per_minute))

    def ops_for(self, member: Member) -> Ops:
        """A session's actions: as the key's name and role (the settings' role and user are the local
        console's, not this), under the global read-only switch, the key's action rate."""
        return Ops(
            self.poller.sources,
            lambda: self.poller.snapshot,
            self.audit,
            actor=Actor(member.name, member.role, member.fingerprint),
            read_only=self.settings.read_only,
            after_action=self.poller.poke,
            rate=self.rate_for(member),
            audit_hook=False,  # the server's own Ops audits what a backend does on its own
        )

    def who(self, asking: Session | None = None) -> list[str]:
        """Who is connected, a line each, oldest first: name and role (from the key), where from, the
        console's size or whom they follow, and the actions their console is running (``:who``)."""
        lines = [f"{len(self.sessions)} connected to this aios-tui serve:"]
        for s in self.sessions:
            leader = s.following
            if leader is not None:
                what = f"follows {leader.member.name} (read-only)"
            else:
                width, height = s.terminal.size if s.terminal is not None else DEFAULT_SIZE
                what = f"console {width}x{height}"
                if s.followers:
                    what += f", followed by {', '.join(f.member.name for f in s.followers)}"
            line = f"  {s.member.name:<16} {s.member.role.value:<8} {what}, from {s.peer}"
            running = [r.plan.title for r in s.app.running] if s.app is not None else []
            if running:
                line += f"; ACTING: {'; '.join(running)}"
            lines.append(line + ("  (you)" if s is asking else ""))
        return lines

    def console_of(self, name: str) -> Session | None:
        """The newest console open under ``name`` (a follower has none), or None."""
        consoles = [s for s in self.sessions if s.member.name == name and s.app is not None]
        return consoles[-1] if consoles else None

    def settings_for(self, term_type: str) -> Settings:
        if self.ascii_for is None:
            return self.settings
        return dataclasses.replace(self.settings, ascii=self.ascii_for(term_type))

    def _restore_streams(self) -> None:
        """Textual redirects sys.stdout and sys.stderr while an app runs and puts back what it found: with
        apps ending in another order than they started, the last one out may leave a finished app's."""
        if not self.sessions:
            sys.stdout, sys.stderr = self._streams

    def _ended(self, session: Session) -> None:
        with contextlib.suppress(ValueError):
            self.sessions.remove(session)
        self._restore_streams()


class _Connection(asyncssh.SSHServer):
    """One client connection: public-key authentication against the members, and nothing but sessions."""

    def __init__(self, server: ConsoleServer) -> None:
        self.server = server
        self.conn: asyncssh.SSHServerConnection | None = None
        self.peer = "?"
        self._validated: Member | None = None
        self.member: Member | None = None
        self._bannered = False

    def connection_made(self, conn: asyncssh.SSHServerConnection) -> None:
        self.conn = conn
        peer = conn.get_extra_info("peername")
        self.peer = f"{peer[0]}:{peer[1]}" if peer else "?"

    def connection_lost(self, exc: Exception | None) -> None:
        if self.member is not None:
            log.info("%s (%s) from %s disconnected", self.member.name, self.member.fingerprint, self.peer)

    def begin_auth(self, username: str) -> bool:
        return True

    def public_key_auth_supported(self) -> bool:
        return True

    def validate_public_key(self, username: str, key: asyncssh.SSHKey) -> bool:
        # asyncssh calls this for the key of each request, the signed one last; auth_completed follows
        # the signed request at once (asyncssh keeps its own key options the same way).
        member = self.server.members.get(key.public_data)
        self._validated = member
        if member is not None:
            return True
        fingerprint = key.get_fingerprint("sha256")
        where = self.server.authorized_keys_path or "the authorized keys"
        log.warning(
            "refused key %s (%s) from %s: not in %s", fingerprint, key.get_algorithm(), self.peer, where
        )
        if not self._bannered and self.conn is not None:
            self._bannered = True
            with contextlib.suppress(OSError):
                self.conn.send_auth_banner(
                    f"aios-tui serve: key {fingerprint} is not authorized here; "
                    "ask an admin to add it to the server's authorized keys.\r\n"
                )
        return False

    def auth_completed(self) -> None:
        self.member = self._validated
        if self.member is not None:
            log.info(
                "%s (%s, %s) logged in from %s",
                self.member.name,
                self.member.role,
                self.member.fingerprint,
                self.peer,
            )

    def session_requested(self) -> asyncssh.SSHServerSession[bytes] | bool:
        if self.member is None:  # pragma: no cover - asyncssh opens no channel before authentication
            return False
        return Session(self.server, self.member, self.peer)

    # Nothing else: no port forwarding either way, no Unix sockets.
    def connection_requested(self, dest_host: str, dest_port: int, orig_host: str, orig_port: int) -> bool:
        log.warning("%s: refused a port forwarding to %s:%s", self.peer, dest_host, dest_port)
        return False

    def server_requested(self, listen_host: str, listen_port: int) -> bool:
        log.warning("%s: refused a remote port forwarding from %s:%s", self.peer, listen_host, listen_port)
        return False

    def unix_connection_requested(self, dest_path: str) -> bool:
        return False

    def unix_server_requested(self, listen_path: str) -> bool:
        return False


class Session(asyncssh.SSHServerSession[bytes]):
    """One SSH session: a console of its own, over the shared poller, as its key's member."""

    def __init__(self, server: ConsoleServer, member: Member, peer: str) -> None:
        self.server = server
        self.member = member
        self.peer = peer
        self.chan: asyncssh.SSHServerChannel[bytes] | None = None
        self.term_type = ""
        self.terminal: SessionTerminal | None = None
        self.app: AiosApp | None = None
        """The session's console once it runs."""
        self.task: asyncio.Task[None] | None = None
        self._refusal = ""
        self._goodbye = ""
        self._status = 0
        self._idle: asyncio.TimerHandle | None = None
        self._last_input = 0.0
        self.following: Session | None = None
        """The console this session follows, read-only (``follow NAME``); None for a console."""
        self.followers: list[Session] = []
        """The sessions following this console."""
        self._follow = ""
        """The name asked for by ``follow NAME``."""
        self._fits = False
        """This follower's terminal is at least as large as the console it follows."""

    # --- what the client asks for ---------------------------------------------------------------------

    def connection_made(self, chan: asyncssh.SSHServerChannel[bytes]) -> None:  # type: ignore[override]
        self.chan = chan

    def pty_requested(self, term_type: str, term_size: tuple[int, int, int, int], term_modes: Any) -> bool:
        width, height = term_size[0], term_size[1]
        self.term_type = term_type
        self.terminal = SessionTerminal(
            self._send, (width, height) if width > 0 and height > 0 else DEFAULT_SIZE
        )
        return True

    def shell_requested(self) -> bool:
        if self.terminal is None:
            self._refusal = "this server opens the console in a terminal only: log in with ssh -t"
        return True

    def exec_requested(self, command: str) -> bool:
        words = command.split()
        if len(words) == 2 and words[0] == "follow":
            self._follow = words[1]
            return True
        log.warning("%s from %s: refused a command", self.member.name, self.peer)
        self._refusal = (
            "this server runs no command: log in with ssh -t and no command for the console "
            "(or ssh -t … follow NAME to follow someone's, read-only)"
        )
        return True

    def subsystem_requested(self, subsystem: str) -> bool:
        log.warning("%s from %s: refused the subsystem %r", self.member.name, self.peer, subsystem[:40])
        return False

    def session_started(self) -> None:
        assert self.chan is not None
        if self._follow and self.terminal is None:
            self._refusal = f"following needs a terminal: ssh -t … follow {self._follow}"
        if self._refusal:
            self._say(self._refusal)
            self.chan.exit(1)
            return
        limit = self.server.serve.max_sessions
        if len(self.server.sessions) >= limit:
            log.warning("%s from %s: refused, %d sessions open already", self.member.name, self.peer, limit)
            self._say(f"{limit} sessions are open already, the most this server allows: try again later")
            self.chan.exit(1)
            return
        leader = self.server.console_of(self._follow) if self._follow else None
        if self._follow and leader is None:
            log.info("%s from %s: nobody named %r to follow", self.member.name, self.peer, self._follow[:64])
            open_now = sorted({s.member.name for s in self.server.sessions if s.app is not None})
            listed = f"consoles open now: {', '.join(open_now)}" if open_now else "no console is open now"
            self._say(f"nobody named {self._follow!r} has a console open here ({listed})")
            self.chan.exit(1)
            return
        self.server.sessions.append(self)
        loop = asyncio.get_running_loop()
        self._last_input = loop.time()
        idle = self.server.serve.idle_timeout
        if idle:
            self._idle = loop.call_later(idle, self._check_idle)
        if leader is not None:
            self._start_following(leader)
        else:
            self.task = asyncio.create_task(self._run(), name=f"console:{self.member.name}")

    def data_received(self, data: bytes, datatype: asyncssh.DataType) -> None:
        self._last_input = asyncio.get_running_loop().time()
        if self._follow:  # a follower's keys reach no console: only the ones that stop following count
            leader = self.following
            if leader is not None and any(key in data for key in STOP_FOLLOWING):
                self._stop_following(f"you stopped following {leader.member.name}")
            return
        if self.terminal is not None:
            self.terminal.feed(data)

    def terminal_size_changed(self, width: int, height: int, pixwidth: int, pixheight: int) -> None:
        if self.terminal is not None and width > 0 and height > 0:
            self.terminal.resize(width, height)
            if self.following is not None:
                self._fit()
            for follower in list(self.followers):
                follower._fit()

    def eof_received(self) -> bool:
        self.end("")
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.chan = None
        self.end("")

    # --- the console ----------------------------------------------------------------------------------

    async def _run(self) -> None:
        assert self.terminal is not None
        log.info("%s (%s) opened a console from %s", self.member.name, self.member.role, self.peer)
        try:
            app = AiosApp(
                self.server.poller,
                self.server.ops_for(self.member),
                self.server.settings_for(self.term_type),
                owns_poller=False,
                who=lambda: self.server.who(self),
            )
            app.driver_class = driver_for(self.terminal)
            self.app = app
            await app.run_async(size=self.terminal.size)
        except Exception:
            log.exception("%s: the console failed", self.member.name)
            self._goodbye, self._status = self._goodbye or "the console failed (see the server's log)", 1
        finally:
            if self._idle is not None:
                self._idle.cancel()
            for follower in list(self.followers):
                follower._stop_following(f"{self.member.name}'s console closed: following ended")
            self.server._ended(self)
            chan = self.chan
            if chan is not None:
                if self._goodbye:
                    self._say(self._goodbye)
                with contextlib.suppress(OSError):
                    chan.exit(self._status)

    def end(self, why: str, status: int = 0) -> None:
        """Close the console (or the follow); ``why`` is said on the terminal once it is restored."""
        if self._follow:
            self._stop_following(why, status)
            return
        if why and not self._goodbye:
            self._goodbye, self._status = why, status
        if self.terminal is not None:
            self.terminal.end_input()
        if self.app is not None:
            self.app.exit()
        elif self.task is not None and not self.task.done():
            self.task.cancel()

    def _check_idle(self) -> None:
        idle = self.server.serve.idle_timeout
        loop = asyncio.get_running_loop()
        last = self._last_input
        if self.following is not None:  # a follower watches: it idles when the console it follows does
            last = max(last, self.following._last_input)
        left = last + idle - loop.time()
        if left > 0:
            self._idle = loop.call_later(left, self._check_idle)
            return
        log.info("%s from %s: idle for %g s, closing", self.member.name, self.peer, idle)
        self.end(f"no key pressed for {idle:g} s: the session is closed", status=1)

    # --- following ------------------------------------------------------------------------------------

    def _start_following(self, leader: Session) -> None:
        assert leader.terminal is not None
        self.following = leader
        leader.followers.append(self)
        leader.terminal.mirrors.append(self._mirror)
        log.info(
            "%s (%s, %s) from %s follows %s's console (read-only)",
            self.member.name,
            self.member.role,
            self.member.fingerprint,
            self.peer,
            leader.member.name,
        )
        self._send(_FOLLOW_START)
        self._fit()
        leader._notify(f"{self.member.name} ({self.member.role}) is following", "Read-only follower")

    def _fit(self) -> None:
        """Show the leader's screen if this terminal is large enough for it, else a line saying how large
        it must be (called on joining and on either one's resize)."""
        leader = self.following
        if leader is None or leader.terminal is None or self.terminal is None:
            return
        (width, height), (mine_w, mine_h) = leader.terminal.size, self.terminal.size
        self._fits = mine_w >= width and mine_h >= height
        self._send(_CLEAR)
        if self._fits:
            leader.terminal.repaint()
        else:
            line = (
                f"aios-tui serve: {leader.member.name}'s console is {width}x{height}, this terminal "
                f"{mine_w}x{mine_h}: make it at least {width}x{height} to follow it (q stops following)"
            )
            self._send(line.encode())

    def _mirror(self, data: bytes) -> None:
        """What the followed console sends its own terminal."""
        if self._fits:
            self._send(_CLIPBOARD.sub(b"", data) if b"\x1b]52;" in data else data)

    def _stop_following(self, why: str, status: int = 0) -> None:
        """End the follow (the follower left, pressed q, or the console it follows closed); ``why`` is
        said once its terminal is restored."""
        leader = self.following
        if self._idle is not None:
            self._idle.cancel()
        if leader is None:  # not following (yet, or any more)
            self.server._ended(self)
            return
        self.following = None
        with contextlib.suppress(ValueError):
            leader.followers.remove(self)
        if leader.terminal is not None:
            with contextlib.suppress(ValueError):
                leader.terminal.mirrors.remove(self._mirror)
        self.server._ended(self)
        log.info("%s from %s stopped following %s", self.member.name, self.peer, leader.member.name)
        leader._notify(f"{self.member.name} stopped following", "Read-only follower")
        chan = self.chan
        if chan is not None and not chan.is_closing():
            self._send(_FOLLOW_END)
            if why:
                self._say(why)
            with contextlib.suppress(OSError):
                chan.exit(status)

    def _notify(self, sentence: str, title: str) -> None:
        """A note on this console's screen (and so on its followers')."""
        app = self.app
        if app is not None and app.is_running:
            app.call_later(app.notify, sentence, title=title, timeout=6)

    def _send(self, data: bytes) -> None:
        chan = self.chan
        if chan is None or chan.is_closing():
            return
        if chan.get_write_buffer_size() > MAX_UNSENT:
            log.warning("%s from %s: the client reads too slowly, closing", self.member.name, self.peer)
            self.chan = None
            chan.close()
            self.end("")
            return
        chan.write(data)

    def _say(self, sentence: str) -> None:
        """One line for the client: on its terminal (a PTY has no separate stderr), else on stderr."""
        chan = self.chan
        if chan is not None and not chan.is_closing():
            line = f"aios-tui serve: {sentence}\r\n".encode()
            if self.terminal is not None:
                chan.write(line)
            else:
                chan.write_stderr(line)
