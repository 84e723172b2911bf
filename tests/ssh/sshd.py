"""A real asyncssh server on 127.0.0.1 whose ``nvidia-smi`` prints the recorded H200 outputs.

The login name picks how the "host" behaves, so one server plays every kind of host:

- any other name: answers the three queries the SSH source runs with the recorded outputs (``load``, or
  ``idle`` after ``server.scene = "idle"``);
- ``garbage``: ``nvidia-smi`` prints something that is not its CSV;
- ``nosmi``: the command is not found (status 127);
- ``hang``: the command never answers;
- ``drop``: prints half a line, then the server drops the connection.

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

from aios_tui.sources._smi_parse import query_command

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "nvidia-h200"
_UNIT = re.compile(r" (%|MiB|W|MHz)$")


def noheader_nounits(text: str, columns: int | None = None) -> str:
    """A capture made with ``--format=csv`` as ``--format=csv,noheader,nounits`` prints it; ``columns``
    keeps only the first ones (for a query that asks for fewer fields)."""
    out = []
    for line in text.splitlines()[1:]:
        fields = [_UNIT.sub("", f.strip()) for f in line.split(", ")]
        out.append(", ".join(fields[:columns]))
    return "\n".join(out) + "\n"


def recorded(scene: str, smi: str = "nvidia-smi") -> dict[str, str]:
    """Command line → output, for the three queries, from the recorded ``scene`` (``idle`` or ``load``;
    idle has no compute process, so nvidia-smi prints none)."""
    read = (FIXTURES / f"smi_query_{scene}.csv").read_text(encoding="utf-8")
    apps = (FIXTURES / "smi_apps_load.csv").read_text(encoding="utf-8") if scene == "load" else "header\n"
    events = (FIXTURES / "smi_events_load.csv").read_text(encoding="utf-8")
    if scene != "load":
        events = events.replace("0x0000000000000004", "0x0000000000000001")  # idle: GPU_IDLE
    return {
        query_command(smi, "gpus"): noheader_nounits(read),
        query_command(smi, "apps"): noheader_nounits(apps),
        query_command(smi, "events"): noheader_nounits(events, columns=2),
    }


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
        if user == "nosmi":
            process.stderr.write(f"bash: line 1: {command.split()[0]}: command not found\n")
            process.exit(127)
            return
        answers = recorded(self.scene)
        if (user == "garbage" or user in self.broken) and "--query-gpu=index,uuid" in command:
            process.stdout.write(
                "Failed to initialize NVML: Driver/library version mismatch\nNVML version: 580\n"
            )
            process.exit(0)
            return
        if command not in answers:
            process.stderr.write(f"unknown command: {command}\n")
            process.exit(2)
            return
        process.stdout.write(answers[command])
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
