"""A real asyncssh server on 127.0.0.1 whose "host" answers the SSH source's poll with the recorded H200
outputs.

This server runs no command: it answers the one command the source sends
(:func:`aios_tui.sources._smi_parse.poll_command`) with what that command prints on a host whose
``nvidia-smi`` gives the captures, in its sections and markers, with the token taken from the command. The
command itself runs for real against Debian's OpenSSH server in ``tests/ssh/openssh.py`` (and under ``sh``
in ``tests/unit/test_smi_parse.py``); this server is for what needs no shell and must be quick: key
exchange, host keys, logins, connections kept and dropped, and hostile output.

The login name picks how the "host" behaves, so one server plays every kind of host:

- any other name: the recorded outputs (``load``, or ``idle`` after ``server.scene = "idle"``); ``ps`` finds
  no owner for the recorded pid (the capture does not say who ran it);
- ``garbage``: ``nvidia-smi`` prints something that is not its CSV;
- ``nosmi``: the command is not found (status 127);
- ``hang``: the command never answers;
- ``drop``: prints half a line, then the server drops the connection;
- ``hostile``: terminal escapes, bidi controls and a line break in the GPU and process names, and a forged
  marker line;
- ``flood``: more output than the source reads (2 MiB).

``CI=true`` turns a server that cannot start into a failure (see :func:`start_or_skip`).
"""

from __future__ import annotations

import asyncio
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import asyncssh
import pytest

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "nvidia-h200"
UUID = "GPU-bd0e6523-8cf2-155b-091e-05fdce84f39f"
_UNIT = re.compile(r" (%|MiB|W|MHz)$")


def noheader_nounits(text: str, columns: int | None = None) -> str:
    """A capture made with ``--format=csv`` as ``--format=csv,noheader,nounits`` prints it; ``columns``
    keeps only the first ones (for a query that asks for fewer fields)."""
    out = []
    for line in text.splitlines()[1:]:
        fields = [_UNIT.sub("", f.strip()) for f in line.split(", ")]
        out.append(", ".join(fields[:columns]))
    return "\n".join(out) + "\n"


def recorded(scene: str) -> dict[str, str]:
    """Section → text, as ``--format=csv,noheader,nounits`` prints the ``scene`` (``idle`` or ``load``;
    idle has no compute process, so nvidia-smi prints none)."""
    read = (FIXTURES / f"smi_query_{scene}.csv").read_text(encoding="utf-8")
    apps = (FIXTURES / "smi_apps_load.csv").read_text(encoding="utf-8") if scene == "load" else "header\n"
    events = (FIXTURES / "smi_events_load.csv").read_text(encoding="utf-8")
    if scene != "load":
        events = events.replace("0x0000000000000004", "0x0000000000000001")  # idle: GPU_IDLE
    return {
        "gpus": noheader_nounits(read),
        "apps": noheader_nounits(apps),
        "events": noheader_nounits(events, columns=2),
    }


def answer(token: str, sections: dict[str, tuple[int, str]]) -> str:
    """What :func:`poll_command` prints: each section's text, then its marker line with the status."""
    return "".join(
        f"{text}\n--aios-tui {token} {name} {status}\n" for name, (status, text) in sections.items()
    )


HOSTILE_NAME = "NVIDIA H200\x1b]0;pwned\x07\x1b[2J"
"""A GPU name with an OSC that sets the window title and a CSI that clears the screen."""
HOSTILE_APPS = (
    f"{UUID}, 429, /opt/\u202etxt.exe\x1b[31m\nrm -rf ~, 100\n"
    f"{UUID}, 431, evil\n--aios-tui 0123456789abcdef gpus 0\n, 5\n"
    f"{UUID}, 430, python, 200\n"
)
"""Three processes: a name with a bidi override, a colour escape and a line break; a name with a line break
and a marker line whose token is not the poll's (a guess); and a plain one."""
_TOKEN = re.compile(r"--aios-tui ([0-9a-f]+) ")


@dataclass
class FakeGpuHost:
    """The running server: its port, host key, and what it saw."""

    host_key: asyncssh.SSHKey
    server: asyncssh.SSHAcceptor | None = None
    scene: str = "load"
    connections: int = 0
    commands: list[tuple[str, str]] = field(default_factory=list)
    broken: set[str] = field(default_factory=set)
    """Login names that get garbage from now on, as ``garbage`` does."""
    scenes: dict[str, str] = field(default_factory=dict)
    """Login name → its own scene, over ``scene``."""
    live: list[asyncssh.SSHServerConnection] = field(default_factory=list)

    def drop_connections(self) -> None:
        """Abort every connection from the server's side (a reboot, a network blip)."""
        for conn in self.live:
            conn.abort()
        self.live.clear()

    @property
    def port(self) -> int:
        assert self.server is not None
        return int(self.server.get_port())

    def known_hosts_line(self, key: asyncssh.SSHKey | None = None) -> str:
        public = (key or self.host_key).export_public_key().decode().strip()
        return f"[127.0.0.1]:{self.port} {public}\n"

    async def close(self) -> None:
        assert self.server is not None
        self.server.close()
        await self.server.wait_closed()

    async def handle(self, process: asyncssh.SSHServerProcess[str]) -> None:
        user = str(process.get_extra_info("username"))
        command = process.command or ""
        self.commands.append((user, command))
        if user == "hang":
            await asyncio.Event().wait()
        if user == "drop":
            process.stdout.write("0, GPU-bd0e6523")
            await process.stdout.drain()
            process.channel.get_connection().abort()
            return
        found = _TOKEN.search(command)
        if found is None:
            process.stderr.write(f"unknown command: {command}\n")
            process.exit(2)
            return
        token = found[1]
        rec = recorded(self.scenes.get(user, self.scene))
        sections = {name: (0, rec[name]) for name in ("gpus", "apps", "events")}
        sections["users"] = (1, "")  # ps: no such process here
        if user == "nosmi":
            missing = (127, "sh: 1: nvidia-smi: not found")
            sections = {"gpus": (127, ""), "apps": missing, "events": missing, "users": (0, "")}
            process.stderr.write("sh: 1: nvidia-smi: not found\n")
        elif user == "garbage" or user in self.broken:
            sections["gpus"] = (
                0,
                "Failed to initialize NVML: Driver/library version mismatch\nNVML version: 580",
            )
        elif user == "hostile":
            sections["gpus"] = (0, rec["gpus"].replace("NVIDIA H200", HOSTILE_NAME))
            sections["apps"] = (0, HOSTILE_APPS)
        elif user == "flood":
            sections["gpus"] = (0, rec["gpus"] * (2 * 1024 * 1024 // len(rec["gpus"]) + 1))
        process.stdout.write(answer(token, sections))
        process.exit(0)


class _Server(asyncssh.SSHServer):
    def __init__(self, owner: FakeGpuHost) -> None:
        self._owner = owner

    def connection_made(self, conn: asyncssh.SSHServerConnection) -> None:
        self._owner.connections += 1
        self._owner.live.append(conn)

    def connection_requested(self, dest_host: str, dest_port: int, orig_host: str, orig_port: int) -> bool:
        return dest_host == "127.0.0.1"  # lets the server be its own jump host, to loopback only


async def start(client_public_key: asyncssh.SSHKey) -> FakeGpuHost:
    """Start a server on an ephemeral port that lets ``client_public_key`` log in under any name."""
    host_key = asyncssh.generate_private_key("ssh-ed25519")
    authorized = asyncssh.import_authorized_keys(client_public_key.export_public_key().decode())
    fake = FakeGpuHost(host_key)
    fake.server = await asyncssh.create_server(
        lambda: _Server(fake),
        "127.0.0.1",
        0,
        server_host_keys=[host_key],
        authorized_client_keys=authorized,
        process_factory=fake.handle,
        encoding="utf-8",
    )
    return fake


async def start_or_skip(client_public_key: asyncssh.SSHKey) -> FakeGpuHost:
    """:func:`start`; a server that cannot start skips the test, or fails it under ``CI=true``."""
    try:
        return await start(client_public_key)
    except (OSError, asyncssh.Error) as exc:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"the asyncssh test server could not start (CI=true): {exc}")
        pytest.skip(f"the asyncssh test server could not start: {exc}")
