"""The SSH source against a real asyncssh server on 127.0.0.1 (see ``sshd.py``); the real OpenSSH server's
tests are in ``test_openssh.py``."""

from __future__ import annotations

import dataclasses
import getpass
import logging
import re
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import asyncssh
import pytest

from aios_tui.config import ConfigError, Settings, SshHostSettings, SshSettings
from aios_tui.domain import GpuProcess, Health, SourcePart, SourceState, Throttle
from aios_tui.domain.text import is_clean
from aios_tui.poll import Poller
from aios_tui.sources import build_sources
from aios_tui.sources.base import SourceError
from aios_tui.sources.ssh import SshSource
from tests.ssh.sshd import FakeGpuHost, start_or_skip

UUID = "GPU-bd0e6523-8cf2-155b-091e-05fdce84f39f"
PYTHON = "/opt/torch/.venv/bin/python3"

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
    ssh_config: Path
    """An empty OpenSSH config: the tests do not read the machine's ~/.ssh/config."""

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

    def source(self, *hosts: SshHostSettings, clock: Clock | None = None, **kw: object) -> SshSource:
        return SshSource(hosts=hosts, clock=clock or Clock(), config=self.ssh_config, **kw)  # type: ignore[arg-type]


@pytest.fixture
async def lab(tmp_path: Path) -> AsyncIterator[Lab]:
    client_key = asyncssh.generate_private_key("ssh-ed25519")
    key_file = tmp_path / "id_ed25519"
    client_key.write_private_key(str(key_file))
    server = await start_or_skip(client_key)
    known_hosts = tmp_path / "known_hosts"
    known_hosts.write_text(server.known_hosts_line())
    ssh_config = tmp_path / "ssh_config"
    ssh_config.write_text("")
    yield Lab(server, key_file, known_hosts, tmp_path, ssh_config)
    await server.close()


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_a_host_is_one_node_with_its_gpus_and_processes_from_nvidia_smi(lab: Lab) -> None:
    src = lab.source(lab.host())
    try:
        data = await src.fetch()
    finally:
        await src.close()
    (node,) = data.nodes
    (gpu,) = data.gpus
    assert (node.name, node.source, node.pool, node.gpu_model) == ("gpu", "ssh", "ssh", "H200")
    assert (node.gpus_total, node.ready, node.conditions) == (1, True, ())
    assert gpu.node == "gpu"
    assert gpu.uuid == UUID
    assert (gpu.util, gpu.mem_used, gpu.mem_total) == (100.0, 21491.0, 143771.0)
    assert (gpu.temp, gpu.power, gpu.power_limit, gpu.sm_clock) == (55.0, 689.2, 700.0, 1455.0)
    assert gpu.throttle == Throttle.SW_POWER_CAP
    assert gpu.health is Health.OK
    # The python process holds the GPU: it is in use, and the node has no GPU free for a launch.
    assert gpu.processes == (GpuProcess(pid=429, user="", used_mib=21482.0, command=PYTHON),)
    assert gpu.in_use
    assert (node.gpus_requested, node.gpus_free) == (1, 0)
    detail = src.details()["gpu"]
    assert [(p.pid, p.name, p.used_mib) for p in detail.processes] == [(429, PYTHON, 21482.0)]
    assert (detail.gpus[0].pstate, detail.gpus[0].pci_bus_id) == (0, "00000000:00:06.0")
    assert (data.context, data.problems, data.separate) == ("gpu", (), frozenset({"gpu"}))
    (part,) = data.parts
    assert (part.name, part.state, part.last_ok, part.error) == ("gpu", SourceState.OK, 1000.0, "")
    assert 0 < float(part.latency_ms) < 2000
    # One command per poll, in one channel.
    assert len(lab.server.commands) == 1


async def test_the_header_counts_a_gpu_with_a_process_as_used(lab: Lab) -> None:
    poller = Poller([lab.source(lab.host())], clock=lambda: 1000.0)
    try:
        snap = await poller.refresh()
    finally:
        await poller.stop()
    totals = snap.totals
    assert (totals.gpus, totals.gpus_used, totals.gpus_free) == (1, 1, 0)


async def test_an_idle_gpu_is_free(lab: Lab) -> None:
    lab.server.scene = "idle"
    src = lab.source(lab.host())
    try:
        data = await src.fetch()
    finally:
        await src.close()
    assert (data.gpus[0].processes, data.gpus[0].in_use) == ((), False)
    assert (data.nodes[0].gpus_requested, data.nodes[0].gpus_free) == (0, 1)


async def test_a_host_without_user_logs_in_with_your_login_name(lab: Lab) -> None:
    host = SshHostSettings(
        name="nouser",
        host="127.0.0.1",
        port=lab.server.port,
        known_hosts=lab.known_hosts,
        identity_file=lab.key_file,
    )
    src = lab.source(host)
    try:
        data = await src.fetch()
    finally:
        await src.close()
    assert [n.name for n in data.nodes] == ["nouser"]
    assert [user for user, _ in lab.server.commands] == [getpass.getuser()]


async def test_the_connection_is_kept_and_reopened_when_it_drops(lab: Lab) -> None:
    clock = Clock()
    src = lab.source(lab.host(), clock=clock)
    try:
        await src.fetch()
        clock.now += 0.5  # within the host's interval: not asked again
        await src.fetch()
        assert (lab.server.connections, len(lab.server.commands)) == (1, 1)
        clock.now += 1.0
        lab.server.scene = "idle"
        data = await src.fetch()
        assert (lab.server.connections, len(lab.server.commands)) == (1, 2)
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
        ("refuse", r"^cannot connect to 127\.0\.0\.1:\d+: connection refused$"),
        ("dns", r"^cannot connect to no-such-host\.invalid:22: DNS: cannot resolve the host name \(.+\)$"),
        ("hang", r"^no answer within 0\.5 s$"),
        (
            "drop",
            r"^(nvidia-smi did not finish: the connection closed while it ran|connection lost: .+)$",
        ),
        (
            "garbage",
            r"^unexpected nvidia-smi output: line 1: expected 16 fields, got 1: 'Failed to initialize",
        ),
        ("nosmi", r"^nvidia-smi not found on the host$"),
        (
            "flood",
            r"^the command printed more than 1024 KiB; stopped reading \(is nvidia_smi the right "
            r"command\?\)$",
        ),
        ("auth", r"^authentication failed for user auth on 127\.0\.0\.1:\d+$"),
        (
            "wrong-key",
            r"^host key changed for \[127\.0\.0\.1\]:\d+ \(possible man-in-the-middle\): it does not match "
            r"known_hosts .*_wrong; not connecting",
        ),
        (
            "unknown",
            r"^host key for \[127\.0\.0\.1\]:\d+ is not in known_hosts .*_empty; not connecting$",
        ),
        ("no-known-hosts", r"^known_hosts file .*missing not found \(host keys are always verified\)$"),
    ],
)
async def test_a_failing_host_leaves_the_fetch_and_says_why(lab: Lab, kind: str, message: str) -> None:
    if kind == "refuse":
        bad = lab.host(kind, port=closed_port())
    elif kind == "dns":
        bad = lab.host(kind, host="no-such-host.invalid", port=0)
    elif kind == "hang":
        bad = lab.host("hang", timeout=0.5)
    elif kind == "auth":
        stranger = lab.tmp / "id_stranger"
        asyncssh.generate_private_key("ssh-ed25519").write_private_key(str(stranger))
        bad = lab.host(kind, identity_file=stranger)
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
    src = lab.source(lab.host(), bad)
    try:
        data = await src.fetch()
    finally:
        await src.close()
    # The failed host is not reported: the poller keeps what it said before, marked lost.
    (good,) = data.nodes
    assert (good.name, good.ready, good.conditions) == ("gpu", True, ())
    assert [g.node for g in data.gpus] == ["gpu"]
    error = src.details()[kind].error
    assert re.search(message, error), error
    assert is_clean(error) and "SshPollFailed" not in error
    assert data.problems == (f"{kind}: {error}",)
    ok, failed = data.parts
    assert (ok.name, ok.state, ok.error) == ("gpu", SourceState.OK, "")
    assert failed == SourcePart(name=kind, state=SourceState.ERROR, last_ok=0.0, error=error)
    assert data.separate == frozenset({"gpu"})
    if kind in ("wrong-key", "unknown", "auth"):
        # Refused before any command: the server never saw one from that host.
        assert all(user == "gpu" for user, _ in lab.server.commands)


async def test_hostile_output_is_cleaned_and_a_line_break_in_a_name_hides_no_process(lab: Lab) -> None:
    src = lab.source(lab.host("hostile"))
    try:
        data = await src.fetch()
    finally:
        await src.close()
    (gpu,) = data.gpus
    assert gpu.model == "H200"  # "NVIDIA H200" with an OSC title and a clear-screen removed
    assert src.details()["hostile"].gpus[0].gpu.model == "H200"
    assert [(p.pid, p.command, p.used_mib) for p in gpu.processes] == [
        (429, "/opt/txt.exe rm -rf ~", 100.0),
        (431, "evil --aios-tui 0123456789abcdef gpus 0", 5.0),
        (430, "python", 200.0),
    ]
    assert all(is_clean(p.command) for p in gpu.processes)
    assert data.nodes[0].gpus_requested == 1


async def test_a_host_that_fails_later_leaves_the_fetch_with_its_last_good_time(lab: Lab) -> None:
    clock = Clock()
    src = lab.source(lab.host("a"), lab.host("b"), clock=clock)
    try:
        first = await src.fetch()
        lab.server.broken.add("b")
        clock.now += 2
        second = await src.fetch()
    finally:
        await src.close()
    assert [n.name for n in first.nodes] == ["a", "b"] and len(first.gpus) == 2
    assert [n.name for n in second.nodes] == ["a"]
    assert [g.node for g in second.gpus] == ["a"]
    (problem,) = second.problems
    assert problem.startswith("b: unexpected nvidia-smi output: line 1")
    a, b = second.parts
    assert (a.state, a.last_ok) == (SourceState.OK, 1002.0)
    assert (b.state, b.last_ok) == (SourceState.ERROR, 1000.0)
    assert b.error == problem.removeprefix("b: ")


async def test_the_poller_keeps_a_failed_hosts_gpu_as_lost_out_of_the_mean(lab: Lab) -> None:
    clock = Clock()
    lab.server.scenes = {"a": "idle", "b": "load"}
    poller = Poller([lab.source(lab.host("a"), lab.host("b"), clock=clock)], clock=clock)
    try:
        snap = await poller.refresh()
        assert (snap.totals.avg_util, snap.totals.gpus_free) == (50.0, 1)
        lab.server.broken.add("b")
        clock.now += 2
        snap = await poller.refresh()
    finally:
        await poller.stop()
    health = snap.source("ssh")
    assert health is not None and health.state is SourceState.PARTIAL
    assert health.error.startswith("b: unexpected nvidia-smi output: line 1")
    assert [(part.name, part.state) for part in health.parts] == [
        ("a", SourceState.OK),
        ("b", SourceState.ERROR),
    ]
    lost = {g.node: g.lost_since for g in snap.gpus}
    assert lost == {"a": 0.0, "b": 1000.0}  # b: lost since its last reading, still shown
    assert {g.node: g.util for g in snap.gpus} == {"a": 0.0, "b": 100.0}
    assert "SshPollFailed" not in repr(snap.nodes)
    assert (snap.totals.avg_util, snap.totals.gpus_free) == (0.0, 1)  # b's last 100 % no longer counts


async def test_every_host_failing_fails_the_fetch(lab: Lab) -> None:
    src = lab.source(lab.host("garbage"), lab.host("x", port=closed_port()))
    try:
        with pytest.raises(
            SourceError,
            match=r"^every host failed: garbage: unexpected nvidia-smi output: .* \(and 1 more\)$",
        ):
            await src.fetch()
    finally:
        await src.close()


async def test_a_host_named_as_a_cluster_node_joins_it(lab: Lab) -> None:
    src = lab.source(lab.host("a", node="ip-10-0-1-11.ec2.internal"), lab.host("b"))
    try:
        data = await src.fetch()
    finally:
        await src.close()
    assert [n.name for n in data.nodes] == ["ip-10-0-1-11.ec2.internal", "b"]
    assert [g.node for g in data.gpus] == ["ip-10-0-1-11.ec2.internal", "b"]
    assert data.separate == frozenset({"b"})  # only b is a machine of its own
    assert [p.name for p in data.parts] == ["a", "b"]


async def test_connections_are_bounded(lab: Lab) -> None:
    hosts = [lab.host("gpu", name=f"h{i}") for i in range(6)]
    src = lab.source(*hosts, max_connections=2)
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
    src = lab.source(host)
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
    src = lab.source(lab.host("gpu"), lab.host("locked", identity_file=locked_file))
    try:
        data = await src.fetch()
    finally:
        await src.close()
    (problem,) = data.problems
    assert problem.startswith(f"locked: cannot use identity file {locked_file}: ")
    error = problem
    shown = error + "\n" + caplog.text
    assert "locked" in caplog.text  # the failure was logged ...
    for secret in secrets:
        assert secret not in shown  # ... without the passphrase or any key material


async def test_build_sources_gives_one_ssh_source_for_all_hosts(lab: Lab) -> None:
    labels = ("rack=r12", "zone=dc1-a", "team = ml")
    settings = Settings(
        ssh=SshSettings(max_connections=3, config=lab.ssh_config),
        ssh_hosts=(lab.host("a", labels=labels), lab.host("b")),
    )
    (src,) = build_sources(settings)
    assert isinstance(src, SshSource) and src.kind == "ssh" and src.max_connections == 3
    assert src.config == lab.ssh_config
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
