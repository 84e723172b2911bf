"""``aios-tui serve`` on 127.0.0.1 over the embedded fleet, and SSH clients that log in to it.

Keys: one each for a viewer, an operator and an admin in the authorized-keys file, and a stranger's that is
not. The clients verify the server's host key against a known_hosts file written from it (never skipped).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import re
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncssh
import pytest

from aios_tui.cli import make_poller
from aios_tui.config import ServeSettings, Settings, SimSettings, sim_only
from aios_tui.ops import AuditLog
from aios_tui.ui.serve import ConsoleServer, load_host_key, read_authorized_keys

ROLES = ("viewer", "operator", "admin")
_ESCAPES = re.compile(
    rb"\x1b\[[0-9;?<>=$]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(\x07|\x1b\\)|\x1b[()][0-9A-Za-z]|\x1b[=>78]"
)
_CUP = re.compile(rb"\x1b\[(\d+);(\d+)H")


def plain(out: bytes | bytearray) -> str:
    """What a terminal was sent, without its escape sequences."""
    return _ESCAPES.sub(b"", bytes(out)).decode("utf-8", errors="replace")


@dataclass
class Keys:
    viewer: asyncssh.SSHKey
    operator: asyncssh.SSHKey
    admin: asyncssh.SSHKey
    stranger: asyncssh.SSHKey

    def of(self, role: str) -> asyncssh.SSHKey:
        return getattr(self, role)  # type: ignore[no-any-return]


@pytest.fixture(scope="session")
def keys() -> Keys:
    return Keys(*(asyncssh.generate_private_key("ssh-ed25519") for _ in range(4)))


def write_authorized_keys(path: Path, keys: Keys) -> Path:
    lines = ["# the on-call team"]
    for role in ROLES:
        public = keys.of(role).export_public_key().decode().strip()
        lines.append(f'name="{role}-key",role="{role}" {public} {role}@laptop')
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@dataclass
class Served:
    """A running server and what the tests look at."""

    server: ConsoleServer
    settings: Settings
    known_hosts: Path
    audit: AuditLog
    keys: Keys
    fetches: list[float] = field(default_factory=list)
    """When the shared poller fetched the embedded fleet (loop time)."""

    @property
    def port(self) -> int:
        return self.server.port

    async def connect(self, role: str, **kwargs: Any) -> asyncssh.SSHClientConnection:
        kwargs.setdefault("username", "someone")
        return await asyncssh.connect(
            "127.0.0.1",
            self.port,
            client_keys=[self.keys.of(role)],
            known_hosts=str(self.known_hosts),
            agent_path=None,
            config=None,
            **kwargs,
        )

    async def console(self, role: str, size: tuple[int, int] = (120, 40), **kwargs: Any) -> Terminal:
        conn = await self.connect(role)
        proc = await conn.create_process(term_type="xterm-256color", term_size=size, encoding=None, **kwargs)
        return Terminal(conn, proc)


class Terminal:
    """One PTY session seen from the client: every byte the server sent, and the text in it."""

    def __init__(self, conn: asyncssh.SSHClientConnection, proc: asyncssh.SSHClientProcess[bytes]) -> None:
        self.conn = conn
        self.proc = proc
        self.out = bytearray()
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        while True:
            chunk = await self.proc.stdout.read(65536)
            if not chunk:
                return
            self.out.extend(chunk)

    @property
    def text(self) -> str:
        return plain(self.out)

    @property
    def rows_drawn(self) -> int:
        """The lowest row the server moved the cursor to (1-based)."""
        return max((int(m[1]) for m in _CUP.finditer(bytes(self.out))), default=0)

    @property
    def cols_drawn(self) -> int:
        return max((int(m[2]) for m in _CUP.finditer(bytes(self.out))), default=0)

    async def wait_for(self, what: str | Callable[[], bool], within: float = 10.0) -> None:
        check = (lambda: what in self.text) if isinstance(what, str) else what
        await until(check, within, f"{what!r} on the terminal; it shows {self.text[-600:]!r}")

    def press(self, keys: str | bytes) -> None:
        self.proc.stdin.write(keys.encode() if isinstance(keys, str) else keys)

    async def close(self) -> None:
        self.proc.close()
        self.conn.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.conn.wait_closed(), 5)
        self._reader.cancel()


async def until(check: Callable[[], bool], within: float = 10.0, what: str = "the condition") -> None:
    """Poll ``check`` until it holds; fail after ``within`` seconds (monotonic)."""
    deadline = time.monotonic() + within
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {within:g} s waiting for {what}")
        await asyncio.sleep(0.02)


@pytest.fixture
def serve_settings(tmp_path: Path) -> Settings:
    return sim_only(
        Settings(
            sim=SimSettings(nodes=20, interval=0.5),
            audit_path=tmp_path / "audit.jsonl",
            serve=ServeSettings(port=0, host_key=tmp_path / "host_key"),
        )
    )


@pytest.fixture
async def served(
    tmp_path: Path, keys: Keys, serve_settings: Settings, request: pytest.FixtureRequest
) -> AsyncIterator[Served]:
    """The server, with ``[serve]`` changed by ``@pytest.mark.parametrize("serve", [{...}])`` if given."""
    changes = getattr(request, "param", {})
    settings = dataclasses.replace(serve_settings, serve=dataclasses.replace(serve_settings.serve, **changes))
    authorized = write_authorized_keys(tmp_path / "authorized_keys", keys)
    host_key = load_host_key(tmp_path / "host_key")
    known_hosts = tmp_path / "known_hosts"
    known_hosts.write_text(f"127.0.0.1 {host_key.export_public_key().decode()}", encoding="utf-8")
    poller = make_poller(settings)
    audit = AuditLog(tmp_path / "audit.jsonl")
    server = ConsoleServer(
        settings,
        poller,
        read_authorized_keys(authorized),
        host_key,
        audit=audit,
        authorized_keys_path=authorized,
    )
    out = Served(server, settings, known_hosts, audit, keys)
    sim = poller.sources["sim"]
    fetch = sim.fetch

    async def counted() -> Any:
        out.fetches.append(asyncio.get_running_loop().time())
        return await fetch()

    sim.fetch = counted  # type: ignore[method-assign]
    await server.start()
    known_hosts.write_text(
        f"[127.0.0.1]:{server.port} {host_key.export_public_key().decode()}", encoding="utf-8"
    )
    try:
        yield out
    finally:
        await server.close()
