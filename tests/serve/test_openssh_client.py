"""``aios-tui serve`` through the OpenSSH client (``ssh -tt``), host key checked against known_hosts.

``ssh`` is ``$AIOS_TUI_SSH_BIN``, else ``ssh`` on PATH; without one these tests skip, or fail under
``CI=true`` (``scripts/test.sh`` installs Debian's openssh-client with the server).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
from pathlib import Path

import asyncssh
import pytest

from tests.serve.conftest import Served, plain, until

ENV_BIN = "AIOS_TUI_SSH_BIN"


def _ssh() -> str:
    binary = os.environ.get(ENV_BIN) or shutil.which("ssh")
    if binary is None or not os.access(binary, os.X_OK):
        why = f"no OpenSSH client (${ENV_BIN}={os.environ.get(ENV_BIN, '')!r}, none on PATH)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{why} (CI=true: scripts/test.sh installs openssh-client)")
        pytest.skip(f"{why}: apt-get install openssh-client")
    return binary


def _identity(tmp_path: Path, key: asyncssh.SSHKey, name: str) -> Path:
    path = tmp_path / name
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(key.export_private_key())
    return path


async def _ssh_to(served: Served, identity: Path) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        _ssh(),
        "-tt",
        "-F",
        "/dev/null",  # none of the user's configuration
        "-i",
        str(identity),
        "-o",
        "IdentitiesOnly=yes",
        "-o",
        "IdentityAgent=none",
        "-o",
        "BatchMode=yes",
        "-o",
        "StrictHostKeyChecking=yes",
        "-o",
        f"UserKnownHostsFile={served.known_hosts}",
        "-o",
        "GlobalKnownHostsFile=/dev/null",
        "-o",
        "SetEnv=AIOS_TUI_ROLE=admin",  # sent, and never read
        "-p",
        str(served.port),
        "someone@127.0.0.1",
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "TERM": "xterm-256color"},
    )


async def test_openssh_logs_in_and_sees_the_console(served: Served, tmp_path: Path) -> None:
    proc = await _ssh_to(served, _identity(tmp_path, served.keys.operator, "id_operator"))
    assert proc.stdout is not None and proc.stdin is not None
    out = bytearray()

    async def read() -> None:
        assert proc.stdout is not None
        while chunk := await proc.stdout.read(65536):
            out.extend(chunk)

    reader = asyncio.create_task(read())
    try:
        await until(lambda: "aios-tui sim" in plain(out) and "Nodes" in plain(out), 15, "the header over ssh")
        (session,) = served.server.sessions
        assert session.app is not None and session.app.ops.actor.user == "operator-key"
        assert session.app.ops.actor.role.value == "operator"
        proc.stdin.write(b"q")
        await proc.stdin.drain()
        assert await asyncio.wait_for(proc.wait(), 10) == 0
    finally:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        await proc.wait()
        reader.cancel()


async def test_openssh_with_an_unknown_key_is_refused(served: Served, tmp_path: Path) -> None:
    proc = await _ssh_to(served, _identity(tmp_path, served.keys.stranger, "id_stranger"))
    _, err = await asyncio.wait_for(proc.communicate(), 15)
    assert proc.returncode == 255
    fingerprint = served.keys.stranger.get_fingerprint("sha256")
    assert f"key {fingerprint} is not authorized here".encode() in err
    assert b"Permission denied (publickey)" in err
    assert not served.server.sessions
