"""A real OpenSSH server (Debian's ``openssh-server``) on 127.0.0.1, whose ``nvidia-smi`` replays the H200
captures or hangs.

The SSH source's command runs here for real: sshd starts the login shell, which runs the ``sh`` script of
:func:`aios_tui.sources._smi_parse.poll_command`, which runs ``timeout``, the ``nvidia-smi`` below and
``ps``. So the tests see what a real host does: a hung ``nvidia-smi`` left running or killed, the login
name, ``~/.ssh/config`` aliases and ``ProxyJump`` through a real server.

- ``sshd`` is ``$AIOS_TUI_SSHD_BIN``, else ``sshd`` on PATH, else ``/usr/sbin/sshd``; without one the test
  skips, or fails under ``CI=true`` (``scripts/test.sh`` installs the package).
- Each server gets a temporary host key, an ``authorized_keys`` with the test's client key (``StrictModes
  no``: the files live in a temporary folder), no passwords and no PAM, and logs to ``sshd.log``
  (``LogLevel VERBOSE``: one ``Accepted publickey`` line per login).
- The login is the user running the tests (sshd not run as root can log in only as itself).
- ``nvidia-smi`` is ``bin/nvidia-smi`` in the lab folder: a ``sh`` script that prints the capture of the
  scene named in ``scene`` (``load``, ``idle``) as ``--format=csv,noheader,nounits`` prints it, or, for
  ``hang``, writes its pid to ``hung.pids`` and sleeps. The load capture's compute process (pid 429 on the
  machine it was recorded on) is given the pid of the test process instead, so that ``ps`` here finds a
  real owner: the only figure changed.
"""

from __future__ import annotations

import contextlib
import getpass
import os
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import asyncssh
import pytest

from tests.ssh.sshd import recorded

ENV_BIN = "AIOS_TUI_SSHD_BIN"

FAKE_SMI = """#!/bin/sh
# nvidia-smi for the tests: the recorded H200 outputs of the scene in ../scene, or a hang.
lab=$(dirname "$0")/..
scene=$(cat "$lab/scene")
if [ "$scene" = hang ]; then
    echo $$ >>"$lab/hung.pids"
    exec sleep 300
fi
case "$*" in
    *--query-compute-apps=*) exec cat "$lab/$scene.apps" ;;
    *--query-gpu=index,clocks_event_reasons.active*) exec cat "$lab/$scene.events" ;;
    *--query-gpu=*) exec cat "$lab/$scene.gpus" ;;
esac
echo "nvidia-smi (test): unknown arguments: $*" >&2
exit 2
"""


def sshd_binary() -> str | None:
    env = os.environ.get(ENV_BIN, "")
    if env:
        return env if os.access(env, os.X_OK) else None
    found = shutil.which("sshd")
    if found:
        return found
    return "/usr/sbin/sshd" if os.access("/usr/sbin/sshd", os.X_OK) else None


def require_sshd() -> str:
    """The binary; when there is none the test skips, or fails under ``CI=true``."""
    binary = sshd_binary()
    if binary is None:
        why = f"no sshd (${ENV_BIN}={os.environ.get(ENV_BIN, '')!r}, none on PATH or in /usr/sbin)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{why} (CI=true: scripts/test.sh installs Debian's openssh-server)")
        pytest.skip(f"{why}: apt-get install openssh-server, or run scripts/test.sh")
    return binary


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class OpenSshHost:
    """One running sshd and its lab folder."""

    dir: Path
    port: int
    user: str
    key_file: Path
    known_hosts: Path
    process: subprocess.Popen[bytes]

    @property
    def nvidia_smi(self) -> str:
        return str(self.dir / "bin" / "nvidia-smi")

    def scene(self, name: str) -> None:
        (self.dir / "scene").write_text(name)

    def logins(self) -> int:
        """Public-key logins so far (sshd's ``Accepted publickey`` lines)."""
        log = (self.dir / "sshd.log").read_text(errors="replace")
        return log.count("Accepted publickey for ")

    def leftovers(self) -> list[int]:
        """Processes still running that a poll of this lab started: anything whose command line names the
        lab folder (the shells of the poll's command, ``timeout``, the fake ``nvidia-smi``), and the
        ``sleep`` each hung ``nvidia-smi`` became."""
        hung = set()
        pids_file = self.dir / "hung.pids"
        if pids_file.exists():
            hung = {int(p) for p in pids_file.read_text().split()}
        marker = str(self.dir).encode()
        out = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            pid = int(entry.name)
            try:
                cmdline = (entry / "cmdline").read_bytes()
                state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
            except OSError:
                continue
            if state == "Z" or b"sshd" in cmdline.split(b"\0", 1)[0]:
                continue  # a zombie is gone but for its parent's wait; the sshd itself is not a leftover
            if pid in hung or marker in cmdline:
                out.append(pid)
        return sorted(out)

    def hung(self) -> list[int]:
        """Pids the hung ``nvidia-smi`` had (whether still running or not)."""
        pids_file = self.dir / "hung.pids"
        return [int(p) for p in pids_file.read_text().split()] if pids_file.exists() else []

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(5)


def _write_captures(lab: Path) -> None:
    for scene in ("load", "idle"):
        sections = recorded(scene)
        apps = sections["apps"].replace(", 429, ", f", {os.getpid()}, ")
        (lab / f"{scene}.gpus").write_text(sections["gpus"])
        (lab / f"{scene}.apps").write_text(apps)
        (lab / f"{scene}.events").write_text(sections["events"])


def start(binary: str, lab: Path, client_key: asyncssh.SSHKey) -> OpenSshHost:
    """An sshd on 127.0.0.1 (a free port) that lets ``client_key`` log in as the current user."""
    lab.mkdir(parents=True, exist_ok=True)
    host_key = asyncssh.generate_private_key("ssh-ed25519")
    host_key.write_private_key(str(lab / "host_key"))
    (lab / "host_key").chmod(0o600)
    key_file = lab / "id_client"
    client_key.write_private_key(str(key_file))
    (lab / "authorized_keys").write_text(client_key.export_public_key().decode())
    (lab / "bin").mkdir(exist_ok=True)
    smi = lab / "bin" / "nvidia-smi"
    smi.write_text(FAKE_SMI)
    smi.chmod(0o755)
    _write_captures(lab)
    (lab / "scene").write_text("load")
    if os.geteuid() == 0:
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # sshd's privilege separation directory
    for _ in range(5):
        port = _free_port()
        config = lab / "sshd_config"
        config.write_text(
            f"ListenAddress 127.0.0.1\nPort {port}\nHostKey {lab / 'host_key'}\n"
            f"AuthorizedKeysFile {lab / 'authorized_keys'}\nPidFile {lab / 'sshd.pid'}\n"
            "StrictModes no\nPasswordAuthentication no\nKbdInteractiveAuthentication no\nUsePAM no\n"
            "PermitRootLogin prohibit-password\nAllowTcpForwarding yes\nLogLevel VERBOSE\n"
        )
        log = lab / "sshd.log"
        process = subprocess.Popen(
            [binary, "-D", "-f", str(config), "-E", str(log)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and process.poll() is None:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
                known_hosts = lab / "known_hosts"
                public = host_key.export_public_key().decode().strip()
                known_hosts.write_text(f"[127.0.0.1]:{port} {public}\n")
                return OpenSshHost(lab, port, getpass.getuser(), key_file, known_hosts, process)
            time.sleep(0.05)
        if process.poll() is None:
            process.kill()
        process.wait(5)
    said = (lab / "sshd.log").read_text(errors="replace") if (lab / "sshd.log").exists() else ""
    raise OSError(f"sshd did not start: {said.strip()[-300:]}")


def start_or_fail(lab: Path, client_key: asyncssh.SSHKey) -> OpenSshHost:
    binary = require_sshd()
    try:
        return start(binary, lab, client_key)
    except OSError as exc:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"sshd could not start (CI=true): {exc}")
        pytest.skip(f"sshd could not start: {exc}")
