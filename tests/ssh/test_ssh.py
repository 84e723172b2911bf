"""The SSH source against a real asyncssh server on 127.0.0.1 (see ``sshd.py``)."""

from __future__ import annotations

import dataclasses
import logging
import re
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import asyncssh
import pytest

from aios_tui.config import ConfigError, Settings, SshHostSettings, SshSettings
from aios_tui.domain import Health, Throttle
from aios_tui.sources import build_sources
from aios_tui.sources.base import SourceError
from aios_tui.sources.ssh import SshSource
from tests.ssh.sshd import FakeGpuHost, start_or_skip

PASSPHRASE = "correct horse battery staple 7f3a"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@dataclasses.dataclass
class Lab:
    server: FakeGpuHost
    key_file: Path
    known_hosts: Path
    tmp: Path

    def host(self, user: str = "gpu", **kw: object) -> SshHostSettings:
        base: dict[str, object] = {
            "name": user,
            "host": "127.0.0.1",
            "port": self.server.port,
            "user": user,
            "known_hosts": self.known_hosts,
            "identity_file": self.key_file,
            "interval": 1.0,
            "timeout": 2.0,
        }
        base.update(kw)
        return SshHostSettings(**base)  # type: ignore[arg-type]


@pytest.fixture
async def lab(tmp_path: Path) -> AsyncIterator[Lab]:
    client_key = asyncssh.generate_private_key("ssh-ed25519")
    key_file = tmp_path / "id_ed25519"
    client_key.write_private_key(str(key_file))
    server = await start_or_skip(client_key)
    known_hosts = tmp_path / "known_hosts"
    known_hosts.write_text(server.known_hosts_line())
    yield Lab(server, key_file, known_hosts, tmp_path)
    await server.close()


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_a_host_is_one_node_with_its_gpus_from_nvidia_smi(lab: Lab) -> None:
    src = SshSource(hosts=[lab.host()], clock=Clock())
    try:
        data = await src.fetch()
    finally:
        await src.close()
    (node,) = data.nodes
    (gpu,) = data.gpus
    assert (node.name, node.source, node.pool, node.gpu_model) == ("gpu", "ssh", "ssh", "H200")
    assert (node.gpus_total, node.ready, node.conditions) == (1, True, ())
    assert gpu.node == "gpu"
    assert gpu.uuid == "GPU-bd0e6523-8cf2-155b-091e-05fdce84f39f"
    assert (gpu.util, gpu.mem_used, gpu.mem_total) == (100.0, 21491.0, 143771.0)
    assert (gpu.temp, gpu.power, gpu.power_limit, gpu.sm_clock) == (55.0, 689.2, 700.0, 1455.0)
    assert gpu.throttle == Throttle.SW_POWER_CAP
    assert gpu.health is Health.OK
    detail = src.details()["gpu"]
    assert [(p.pid, p.name, p.used_mib) for p in detail.processes] == [
        (429, "/opt/torch/.venv/bin/python3", 21482.0)
    ]
    assert (detail.gpus[0].pstate, detail.gpus[0].pci_bus_id) == (0, "00000000:00:06.0")
    assert data.context == "gpu"


async def test_the_connection_is_kept_and_reopened_when_it_drops(lab: Lab) -> None:
    clock = Clock()
    src = SshSource(hosts=[lab.host()], clock=clock)
    try:
        await src.fetch()
        clock.now += 0.5  # within the host's interval: not asked again
        await src.fetch()
        assert (lab.server.connections, len(lab.server.commands)) == (1, 3)
        clock.now += 1.0
        lab.server.scene = "idle"
        data = await src.fetch()
        assert (lab.server.connections, len(lab.server.commands)) == (1, 6)
        assert data.gpus[0].util == 0.0
        assert (data.gpus[0].throttle, src.details()["gpu"].processes) == (Throttle.GPU_IDLE, ())
        lab.server.drop_connections()
        clock.now += 1.0
        data = await src.fetch()
        assert lab.server.connections == 2
        assert data.nodes[0].ready
    finally:
        await src.close()


@pytest.mark.parametrize(
    ("kind", "message"),
    [
        ("refuse", r"^ssh: cannot connect to 127\.0\.0\.1:\d+: Connection refused$"),
        ("hang", r"^ssh: no answer within 0\.5 s$"),
        (
            "drop",
            r"^ssh: (nvidia-smi did not finish: the connection closed while it ran|connection lost: .+)$",
        ),
        (
            "garbage",
            r"^ssh: unexpected nvidia-smi output: line 1: expected 16 fields, got 1: 'Failed to initialize",
        ),
        ("nosmi", r"^ssh: nvidia-smi exited with status 127: bash: line 1: nvidia-smi: command not found$"),
        (
            "wrong-key",
            r"^ssh: host key for \[127\.0\.0\.1\]:\d+ changed: it does not match known_hosts .*_wrong",
        ),
        (
            "unknown",
            r"^ssh: host key for \[127\.0\.0\.1\]:\d+ is not in known_hosts .*_empty; not connecting$",
        ),
        ("no-known-hosts", r"^ssh: known_hosts file .*missing not found \(host keys are always verified\)$"),
    ],
)
async def test_a_failing_host_is_an_error_on_that_host_only(lab: Lab, kind: str, message: str) -> None:
    if kind == "refuse":
        bad = lab.host(kind, port=closed_port())
    elif kind == "hang":
        bad = lab.host("hang", timeout=0.5)
    elif kind == "wrong-key":
        wrong = lab.tmp / "known_hosts_wrong"
        wrong.write_text(lab.server.known_hosts_line(asyncssh.generate_private_key("ssh-ed25519")))
        bad = lab.host(kind, known_hosts=wrong)
    elif kind == "unknown":
        empty = lab.tmp / "known_hosts_empty"
        empty.write_text("")
        bad = lab.host(kind, known_hosts=empty)
    elif kind == "no-known-hosts":
        bad = lab.host(kind, known_hosts=lab.tmp / "missing")
    else:
        bad = lab.host(kind)
    src = SshSource(hosts=[lab.host(), bad], clock=Clock())
    try:
        data = await src.fetch()
    finally:
        await src.close()
    good, failed = data.nodes
    assert good.ready and not good.conditions
    assert [g.node for g in data.gpus] == ["gpu"]
    assert (failed.name, failed.ready, failed.gpus_total, failed.status) == (kind, False, 0, "NotReady")
    (cond,) = failed.conditions
    assert (cond.type, cond.status, cond.reason) == ("Ready", "False", "SshPollFailed")
    assert cond.message == f"ssh: {src.details()[kind].error}"
    assert re.search(message, cond.message), cond.message
    if kind in ("wrong-key", "unknown"):
        # Refused at the key exchange: the server never saw a command from that host.
        assert all(user == "gpu" for user, _ in lab.server.commands)


async def test_a_host_that_fails_later_keeps_its_last_readings(lab: Lab) -> None:
    clock = Clock()
    src = SshSource(hosts=[lab.host("a"), lab.host("b")], clock=clock)
    try:
        first = await src.fetch()
        lab.server.broken.add("b")
        clock.now += 2
        second = await src.fetch()
    finally:
        await src.close()
    assert second.gpus == first.gpus
    a, b = second.nodes
    assert a.ready and not b.ready
    assert b.gpus_total == 1
    assert b.conditions[0].message.startswith("ssh: unexpected nvidia-smi output: line 1")


async def test_every_host_failing_fails_the_fetch(lab: Lab) -> None:
    src = SshSource(hosts=[lab.host("garbage"), lab.host("x", port=closed_port())], clock=Clock())
    try:
        with pytest.raises(
            SourceError, match=r"^every host failed: garbage: ssh: unexpected .* \(and 1 more\)$"
        ):
            await src.fetch()
    finally:
        await src.close()


async def test_connections_are_bounded(lab: Lab) -> None:
    hosts = [lab.host("gpu", name=f"h{i}") for i in range(6)]
    src = SshSource(hosts=hosts, clock=Clock(), max_connections=2)
    try:
        data = await src.fetch()
        assert len(data.nodes) == 6 and all(n.ready for n in data.nodes)
        assert data.context == "6 hosts"
    finally:
        await src.close()
    assert lab.server.connections == 6
    assert src.timeout == pytest.approx(2.0 * 3 + 1.0)


async def test_through_a_jump_host(lab: Lab) -> None:
    host = lab.host("gpu", jump_host=f"jump@127.0.0.1:{lab.server.port}")
    src = SshSource(hosts=[host], clock=Clock())
    try:
        data = await src.fetch()
    finally:
        await src.close()
    assert data.nodes[0].ready and len(data.gpus) == 1
    assert lab.server.connections == 2  # the jump host, and the host through it


async def test_no_secret_in_errors_or_logs(lab: Lab, caplog: pytest.LogCaptureFixture) -> None:
    locked = asyncssh.generate_private_key("ssh-ed25519")
    locked_file = lab.tmp / "id_locked"
    # PKCS#8 (PBES2): encrypting in the OpenSSH format would need bcrypt, not installed here.
    locked.write_private_key(str(locked_file), "pkcs8-pem", passphrase=PASSPHRASE)
    secrets = [PASSPHRASE, lab.key_file.read_text().splitlines()[1], locked_file.read_text().splitlines()[1]]
    caplog.set_level(logging.DEBUG)
    src = SshSource(hosts=[lab.host("gpu"), lab.host("locked", identity_file=locked_file)], clock=Clock())
    try:
        data = await src.fetch()
    finally:
        await src.close()
    error = data.nodes[1].conditions[0].message
    assert error.startswith(f"ssh: cannot use identity file {locked_file}: ")
    shown = error + "\n" + caplog.text
    assert "locked" in caplog.text  # the failure was logged ...
    for secret in secrets:
        assert secret not in shown  # ... without the passphrase or any key material


async def test_build_sources_gives_one_ssh_source_for_all_hosts(lab: Lab) -> None:
    labels = ("rack=r12", "zone=dc1-a", "team = ml")
    settings = Settings(
        ssh=SshSettings(max_connections=3), ssh_hosts=(lab.host("a", labels=labels), lab.host("b"))
    )
    (src,) = build_sources(settings)
    assert isinstance(src, SshSource) and src.kind == "ssh" and src.max_connections == 3
    try:
        data = await src.fetch()
    finally:
        await src.close()
    assert [n.name for n in data.nodes] == ["a", "b"]
    a, b = data.nodes
    assert (a.rack, a.zone, a.pool, dict(a.labels)) == (
        "r12",
        "dc1-a",
        "ssh",
        {"rack": "r12", "zone": "dc1-a", "team": "ml"},
    )
    assert (b.rack, b.zone, dict(b.labels)) == ("", "", {})
    bad = dataclasses.replace(settings, ssh_hosts=(lab.host("a"), lab.host("b", labels=("rack",))))
    with pytest.raises(ConfigError, match=r"^\[\[ssh_hosts\]\] #2 labels: expected key=value, got 'rack'$"):
        build_sources(bad)
    with_aws = build_sources(
        dataclasses.replace(settings, aws=dataclasses.replace(settings.aws, enabled=True))
    )
    assert [s.kind for s in with_aws] == ["aws", "ssh"]
