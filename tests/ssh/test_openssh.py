"""The SSH source against a real OpenSSH server on 127.0.0.1 (``openssh.py``): its command runs for real."""

from __future__ import annotations

import os
import pwd
import re
import time
from collections.abc import Iterator
from pathlib import Path

import asyncssh
import pytest

from aios_tui.config import SshHostSettings
from aios_tui.domain import GpuProcess
from aios_tui.sources._smi_parse import KILL_AFTER
from aios_tui.sources.base import SourceError
from aios_tui.sources.ssh import SshSource
from tests.ssh.openssh import OpenSshHost, start_or_fail

PYTHON = "/opt/torch/.venv/bin/python3"


@pytest.fixture
def sshd(tmp_path: Path) -> Iterator[OpenSshHost]:
    host = start_or_fail(tmp_path / "lab", asyncssh.generate_private_key("ssh-ed25519"))
    yield host
    host.stop()


def settings(h: OpenSshHost, **kw: object) -> SshHostSettings:
    base: dict[str, object] = {
        "name": "real",
        "host": "127.0.0.1",
        "port": h.port,
        "known_hosts": h.known_hosts,
        "identity_file": h.key_file,
        "nvidia_smi": h.nvidia_smi,
        "interval": 1.0,
        "timeout": 5.0,
    }
    base.update(kw)
    return SshHostSettings(**base)  # type: ignore[arg-type]


async def fetch(config: Path, *hosts: SshHostSettings) -> tuple[SshSource, object]:
    src = SshSource(hosts=hosts, clock=lambda: 1000.0, config=config)
    try:
        return src, await src.fetch()
    finally:
        await src.close()


def ssh_config(h: OpenSshHost, text: str) -> Path:
    path = h.dir / "ssh_config"
    path.write_text(text)
    return path


async def test_a_real_host_gives_its_gpu_and_the_process_with_its_user(sshd: OpenSshHost) -> None:
    src = SshSource(hosts=[settings(sshd)], clock=lambda: 1000.0, config=ssh_config(sshd, ""))
    try:
        data = await src.fetch()
    finally:
        await src.close()
    (gpu,) = data.gpus
    (node,) = data.nodes
    me = pwd.getpwuid(os.geteuid()).pw_name  # ps on the host names the owner of the process
    assert gpu.processes == (GpuProcess(pid=os.getpid(), user=me, used_mib=21482.0, command=PYTHON),)
    assert (gpu.util, gpu.power, gpu.in_use) == (100.0, 689.2, True)
    assert (node.name, node.gpus_requested, node.gpus_free) == ("real", 1, 0)
    assert sshd.logins() == 1


async def test_a_host_alias_of_the_openssh_config(sshd: OpenSshHost) -> None:
    config = ssh_config(
        sshd,
        f"Host gpu-box\n  HostName 127.0.0.1\n  Port {sshd.port}\n  User {sshd.user}\n"
        f"  IdentityFile {sshd.key_file}\n  UserKnownHostsFile {sshd.known_hosts}\n",
    )
    host = SshHostSettings(host="gpu-box", nvidia_smi=sshd.nvidia_smi, timeout=5.0)
    src = SshSource(hosts=[host], clock=lambda: 1000.0, config=config)
    try:
        data = await src.fetch()
    finally:
        await src.close()
    assert [n.name for n in data.nodes] == ["gpu-box"]
    assert data.gpus[0].model == "H200"
    assert sshd.logins() == 1


async def test_the_settings_win_over_the_openssh_config(sshd: OpenSshHost) -> None:
    config = ssh_config(sshd, "Host 127.0.0.1\n  Port 1\n  User nobody-here\n  IdentityFile /nonexistent\n")
    src = SshSource(hosts=[settings(sshd, user=sshd.user)], clock=lambda: 1000.0, config=config)
    try:
        data = await src.fetch()
    finally:
        await src.close()
    assert [n.name for n in data.nodes] == ["real"]
    assert sshd.logins() == 1


async def test_proxyjump_of_the_openssh_config_goes_through_the_jump_host(sshd: OpenSshHost) -> None:
    config = ssh_config(
        sshd,
        f"Host behind\n  HostName 127.0.0.1\n  ProxyJump jumpbox\n  UserKnownHostsFile {sshd.known_hosts}\n"
        f"Host behind jumpbox\n  Port {sshd.port}\n  User {sshd.user}\n  IdentityFile {sshd.key_file}\n"
        "Host jumpbox\n  HostName 127.0.0.1\n",
    )
    host = SshHostSettings(host="behind", nvidia_smi=sshd.nvidia_smi, timeout=5.0)
    src = SshSource(hosts=[host], clock=lambda: 1000.0, config=config)
    try:
        data = await src.fetch()
    finally:
        await src.close()
    assert [n.name for n in data.nodes] == ["behind"]
    assert sshd.logins() == 2  # the jump host, then the host through it


async def test_known_hosts_none_in_the_openssh_config_does_not_turn_checking_off(
    sshd: OpenSshHost, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = sshd.dir / "home"
    (home / ".ssh").mkdir(parents=True)
    monkeypatch.setenv("HOME", str(home))  # ~/.ssh/known_hosts: a file that does not know the host
    (home / ".ssh" / "known_hosts").write_text("")
    config = ssh_config(sshd, "Host 127.0.0.1\n  UserKnownHostsFile none\n")
    with pytest.raises(SourceError, match=r"host key for \[127\.0\.0\.1\]:\d+ is not in known_hosts .*home"):
        await fetch(config, settings(sshd, known_hosts=None))
    assert sshd.logins() == 0


async def test_nvidia_smi_missing_on_the_host(sshd: OpenSshHost) -> None:
    host = settings(sshd, nvidia_smi=str(sshd.dir / "no-such-nvidia-smi"))
    with pytest.raises(SourceError) as raised:
        await fetch(ssh_config(sshd, ""), host)
    assert re.fullmatch(
        r"every host failed: real: .*no-such-nvidia-smi not found on the host", str(raised.value)
    )


async def test_a_hung_nvidia_smi_is_killed_on_the_host(sshd: OpenSshHost) -> None:
    sshd.scene("hang")
    config = ssh_config(sshd, "")
    host = settings(sshd, timeout=1.0)
    src = SshSource(hosts=[host], clock=lambda: 1000.0, config=config)
    try:
        for _ in range(2):
            with pytest.raises(
                SourceError, match=r"^every host failed: real: (no answer within 1 s|.*stopped on the host)$"
            ):
                await src.fetch()
    finally:
        await src.close()
    assert len(sshd.hung()) == 2, "each poll started a real nvidia-smi that hung"
    # Killed on the host by the time limit (1 s, then KILL 2 s later at the latest), not left behind.
    assert wait_for_no_leftovers(sshd, 1.0 + KILL_AFTER + 3.0) == []


def wait_for_no_leftovers(h: OpenSshHost, seconds: float) -> list[int]:
    deadline = time.monotonic() + seconds
    while (left := h.leftovers()) and time.monotonic() < deadline:
        time.sleep(0.1)
    return left
