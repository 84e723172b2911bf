"""Bare-metal GPU hosts read over SSH (``asyncssh``) with ``nvidia-smi``.

One :class:`SshSource` serves the whole ``[[ssh_hosts]]`` inventory: one :class:`Node` per host (pool
``ssh``) and one :class:`Gpu` per device. Each poll of a host is one command in one SSH channel
(:func:`aios_tui.sources._smi_parse.poll_command`): the ``--query-gpu`` and ``--query-compute-apps`` queries,
the clock-event (throttle) reasons (older drivers without them give none), and ``ps`` for the users of the
compute processes. A GPU with compute processes is in use, and the host's node counts it as requested, so
placement never puts a job on a GPU a process already holds.

- Hosts are reached as OpenSSH would: ``~/.ssh/config`` (or ``[ssh] config``) gives ``Host`` aliases,
  ``HostName``, ``User``, ``Port``, ``IdentityFile``, ``ProxyJump`` and ``UserKnownHostsFile``; what a
  ``[[ssh_hosts]]`` entry sets wins over the file. With neither, the user is the login name.
- Host keys are always verified against known_hosts (the host's ``known_hosts``, else the file's
  ``UserKnownHostsFile``, else ``~/.ssh/known_hosts``), jump hosts' too: an unknown or changed key is an
  error on that host, never a prompt and never accepted. ``UserKnownHostsFile none`` does not turn checking
  off here, and ``StrictHostKeyChecking`` is not read. The jump hosts of ``ProxyJump`` are opened by this
  module, so that the same rule holds for them.
- At most ``max_connections`` hosts are polled at once; each host's connection is kept and reused across
  polls, and opened again when it has dropped (once within the same poll).
- The command runs under a time limit on the host (the host's ``timeout``), so that a hung ``nvidia-smi``
  is killed there instead of being left behind each poll; the client gives up after the same time and closes
  the channel. Its output is read up to :data:`MAX_OUTPUT` bytes, no more.
- A host that fails is left out of the fetch (the poller keeps its node and GPUs as lost, with their age):
  the source is partial, with one sentence per failed host in ``problems`` and one :class:`SourcePart` per
  host. Only when every host fails does the fetch raise a :class:`SourceError`.
- Identity: an SSH host is a machine of its own (its node name is in ``SourceData.separate``), unless its
  ``node`` setting names the cluster node it is.

Every string from a host is cleaned (:func:`aios_tui.domain.text.clean`) before it enters a domain object
or an error. Error messages name the host and what went wrong in plain words; they never hold key material
or passphrases (the settings hold none: keys are files or the agent).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import math
import os
import secrets
import socket
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

import asyncssh

from aios_tui.config import SshHostSettings
from aios_tui.domain import NA, Gpu, GpuProcess, Health, Metric, Node, SourcePart, SourceState
from aios_tui.domain.clock import now as wall_now
from aios_tui.domain.errors import plain_reason
from aios_tui.domain.text import clean
from aios_tui.sources._smi_parse import (
    SmiGpu,
    SmiParseError,
    SmiProcess,
    parse_apps,
    parse_events,
    parse_gpus,
    parse_users,
    poll_command,
    split_sections,
)
from aios_tui.sources.base import SourceData, SourceError

__all__ = ["MAX_OUTPUT", "SshHostDetail", "SshSource"]

log = logging.getLogger("aios_tui.sources.ssh")

MAX_OUTPUT = 1024 * 1024
"""Bytes read of one poll's output, at most. The H200 capture prints 180 bytes per GPU line and 86 per
process line; 16 GPUs with 48 MPS clients each (the most MPS allows) come to about 70 kB even with long
process names, so 1 MiB is some 15 times what a real host prints, and a runaway command costs little."""
MAX_STDERR = 64 * 1024
"""Bytes read of its standard error (only the first line is shown)."""
_CHUNK = 64 * 1024
_MAX_JUMP_DEPTH = 4


@dataclass(frozen=True, slots=True)
class SshHostDetail:
    """What one host's last good poll said beyond the :class:`Node` and :class:`Gpu` fields."""

    gpus: tuple[SmiGpu, ...] = ()
    processes: tuple[SmiProcess, ...] = ()
    polled_at: float = 0.0
    """Clock time of the last good poll (0: never)."""
    error: str = ""
    """Why the last poll failed ("" when it did not)."""


class _HostError(Exception):
    """One host's poll failed; the message is shown as it is. ``drop``: the connection is no good."""

    def __init__(self, message: str, *, drop: bool = True) -> None:
        super().__init__(message)
        self.drop = drop


def parse_labels(labels: Sequence[str]) -> Mapping[str, str]:
    """``["rack=r12", "team=ml"]`` as a mapping; ValueError for an entry that is not ``key=value``."""
    out: dict[str, str] = {}
    for entry in labels:
        key, eq, value = entry.partition("=")
        if not eq or not key.strip():
            raise ValueError(f"expected key=value, got {entry!r}")
        out[key.strip()] = value.strip()
    return MappingProxyType(out)


@dataclass(slots=True)
class _Host:
    settings: SshHostSettings
    labels: Mapping[str, str]
    conn: asyncssh.SSHClientConnection | None = None
    jumps: list[asyncssh.SSHClientConnection] = dataclasses.field(default_factory=list)
    gpus: tuple[Gpu, ...] = ()
    detail: SshHostDetail = dataclasses.field(default_factory=SshHostDetail)
    polled_at: float = -math.inf
    latency_ms: Metric = NA

    @property
    def label(self) -> str:
        return self.settings.label

    @property
    def node(self) -> str:
        """The node name its GPUs are shown on: the cluster node it names, or its own label."""
        return self.settings.node or self.settings.label


class SshSource:
    """Every ``[[ssh_hosts]]`` host, read with ``nvidia-smi`` over SSH. ``config``: the OpenSSH client
    config file (None: ``~/.ssh/config`` when it exists)."""

    kind = "ssh"
    keeps_lost = True

    def __init__(
        self,
        *,
        hosts: Sequence[SshHostSettings],
        name: str = "ssh",
        clock: Callable[[], float] = wall_now,
        max_connections: int = 16,
        config: Path | None = None,
    ) -> None:
        if not hosts:
            raise ValueError("SshSource needs at least one host")
        if max_connections < 1:
            raise ValueError("max_connections must be at least 1")
        self.name = name
        self.max_connections = max_connections
        self.interval = min(h.interval for h in hosts)
        # Hosts wait for a free connection slot: the fetch may take as many host timeouts as there are
        # rounds of ``max_connections`` hosts, plus a reconnect each.
        rounds = math.ceil(len(hosts) / max_connections)
        self.timeout = max(h.timeout for h in hosts) * rounds + 1.0
        self.config = config
        self._clock = clock
        self._hosts = [_Host(h, parse_labels(h.labels)) for h in hosts]
        self._slots = asyncio.Semaphore(max_connections)

    # --- Source ----------------------------------------------------------------------------------------

    async def fetch(self) -> SourceData:
        now = self._clock()
        await asyncio.gather(*(self._poll(h, now) for h in self._hosts))
        good = [h for h in self._hosts if not h.detail.error]
        failed = [h for h in self._hosts if h.detail.error]
        if not good:
            first = failed[0]
            more = f" (and {len(failed) - 1} more)" if len(failed) > 1 else ""
            raise SourceError(f"every host failed: {first.label}: {first.detail.error}{more}")
        context = self._hosts[0].label if len(self._hosts) == 1 else f"{len(self._hosts)} hosts"
        return SourceData(
            nodes=tuple(self._node(h) for h in good),
            gpus=tuple(g for h in good for g in h.gpus),
            context=context,
            problems=tuple(f"{h.label}: {h.detail.error}" for h in failed),
            parts=tuple(self._part(h) for h in self._hosts),
            separate=frozenset(h.node for h in good if not h.settings.node),
        )

    async def close(self) -> None:
        """Close every connection."""
        for h in self._hosts:
            await _drop(h)

    def details(self) -> Mapping[str, SshHostDetail]:
        """Per host label, what its last poll said (pstate, PCI bus, processes, the last error)."""
        return MappingProxyType({h.label: h.detail for h in self._hosts})

    # --- one host --------------------------------------------------------------------------------------

    async def _poll(self, h: _Host, now: float) -> None:
        """Poll ``h`` if its interval has passed (or its last poll failed); never raises but cancellation."""
        if not h.detail.error and now - h.polled_at < h.settings.interval:
            return
        async with self._slots:
            loop = asyncio.get_running_loop()
            started = loop.time()
            try:
                async with asyncio.timeout(h.settings.timeout):
                    gpus, processes = await self._read(h)
            except TimeoutError:
                error = _HostError(f"no answer within {h.settings.timeout:g} s")
            except _HostError as exc:
                error = exc
            except (asyncssh.Error, OSError) as exc:  # what the cases in ``_read`` do not name
                error = _HostError(f"ssh error: {_reason(exc)}")
            else:
                h.gpus = _with_processes(gpus, processes)
                h.detail = SshHostDetail(gpus=gpus, processes=processes, polled_at=self._clock())
                h.polled_at = now
                h.latency_ms = (loop.time() - started) * 1000.0
                return
            if error.drop:
                await _drop(h)
            message = clean(str(error))
            if h.detail.error != message:
                log.warning("ssh host %s: %s", h.label, message)
            h.detail = dataclasses.replace(h.detail, error=message)

    async def _read(self, h: _Host) -> tuple[tuple[SmiGpu, ...], tuple[SmiProcess, ...]]:
        reused = h.conn is not None and not h.conn.is_closed()
        conn = await self._connection(h)
        try:
            return await self._query(h, conn)
        except (asyncssh.ChannelOpenError, asyncssh.ConnectionLost, ConnectionError) as exc:
            if not reused:
                raise _HostError(f"connection lost: {_reason(exc)}") from None
        # A kept connection that has dropped since the last poll: open a new one, once.
        log.info("ssh host %s: connection dropped; reconnecting", h.label)
        await _drop(h)
        conn = await self._connection(h)
        try:
            return await self._query(h, conn)
        except (asyncssh.ChannelOpenError, asyncssh.ConnectionLost, ConnectionError) as exc:
            raise _HostError(f"connection lost: {_reason(exc)}") from None

    async def _query(
        self, h: _Host, conn: asyncssh.SSHClientConnection
    ) -> tuple[tuple[SmiGpu, ...], tuple[SmiProcess, ...]]:
        smi = h.settings.nvidia_smi
        limit = h.settings.timeout
        token = secrets.token_hex(8)
        out, err, status, signal = await _run(conn, poll_command(smi, limit=limit, token=token))
        sections = split_sections(out, token)
        said = _first_line(err) or _first_line(out)
        if "gpus" not in sections or "apps" not in sections:  # stopped before it said which GPUs are busy
            if status in (124, 137) or signal in ("TERM", "KILL"):
                raise _HostError(f"{smi} did not finish within {limit:g} s; stopped on the host", drop=False)
            if status is None and signal is None:
                raise _HostError(f"{smi} did not finish: the connection closed while it ran")
            raise _HostError(f"the command failed (exit status {status}): {said}", drop=False)
        gpus_status, gpus_text = sections["gpus"]
        if gpus_status == 127:
            raise _HostError(f"{smi} not found on the host", drop=False)
        if gpus_status != 0:
            said = _first_line(err) or _first_line(gpus_text)
            raise _HostError(f"{smi} failed with exit status {gpus_status}: {said}", drop=False)
        throttle = {}
        events_status, events_text = sections.get("events", (1, ""))
        if events_status == 0:
            try:
                throttle = parse_events(events_text)
            except SmiParseError as exc:
                log.debug("ssh host %s: clock-event reasons: %s", h.label, exc)
        try:
            gpus = parse_gpus(gpus_text, node=h.node, throttle=throttle)
        except SmiParseError as exc:
            raise _HostError(f"unexpected {smi} output: {exc}", drop=False) from None
        processes: tuple[SmiProcess, ...] = ()
        apps_status, apps_text = sections.get("apps", (1, ""))
        if apps_status == 0:
            processes, skipped = parse_apps(apps_text)
            for why in skipped:
                log.debug("ssh host %s: a compute process skipped: %s", h.label, why)
        users = parse_users(sections.get("users", (1, ""))[1])
        processes = tuple(dataclasses.replace(p, user=users.get(p.pid, "")) for p in processes)
        return gpus, processes

    async def _connection(self, h: _Host) -> asyncssh.SSHClientConnection:
        if h.conn is not None and not h.conn.is_closed():
            return h.conn
        s = h.settings
        config = self._config_files()
        target = _Target(s.host, s.port, s.user, s.identity_file, s.timeout)
        options = await _resolve(target, config)
        known = _known_hosts(s.known_hosts, options.known_hosts)
        known_hosts = [str(p) for p in known if p.is_file()]
        if not known_hosts:
            files = ", ".join(str(p) for p in known)
            raise _HostError(f"known_hosts file {files} not found (host keys are always verified)")
        hops = s.jump_host or (options.tunnel if isinstance(options.tunnel, str) else "")
        tunnel = await self._jumps(h, hops, config, known_hosts)
        h.conn = await _open(target, config, options, tunnel, known_hosts, "")
        return h.conn

    async def _jumps(
        self, h: _Host, hops: str, config: list[str], known_hosts: list[str], depth: int = 0
    ) -> asyncssh.SSHClientConnection | None:
        """Open the jump hosts ``hops`` (``ProxyJump``'s ``[user@]host[:port],…``) in turn, each through the
        one before, each verified against ``known_hosts``; the first one's own ``ProxyJump`` is followed
        (a few levels deep), as OpenSSH does. None when there are none."""
        s = h.settings
        tunnel: asyncssh.SSHClientConnection | None = None
        for hop in (x.strip() for x in hops.split(",") if x.strip() and x.strip().lower() != "none"):
            user, host, port = _split_jump(hop)
            target = _Target(host, port, user, s.identity_file, s.timeout)
            options = await _resolve(target, config)
            if tunnel is None and isinstance(options.tunnel, str) and depth < _MAX_JUMP_DEPTH:
                tunnel = await self._jumps(h, options.tunnel, config, known_hosts, depth + 1)
            tunnel = await _open(target, config, options, tunnel, known_hosts, "jump host ")
            h.jumps.append(tunnel)
        return tunnel

    def _config_files(self) -> list[str]:
        """The OpenSSH client config to read: the one named (it must exist), else ``~/.ssh/config``."""
        if self.config is not None:
            path = self.config.expanduser()
            if not path.exists() or path.is_dir():
                raise _HostError(f"OpenSSH config file {path} not found ([ssh] config)", drop=False)
            return [str(path)]
        default = Path("~/.ssh/config").expanduser()
        return [str(default)] if default.is_file() else []

    def _node(self, h: _Host) -> Node:
        models = {g.model for g in h.gpus if g.model}
        labels = h.labels
        return Node(
            name=h.node,
            source=self.name,
            pool=labels.get("pool", "ssh"),
            zone=labels.get("zone", ""),
            instance_type=labels.get("instance_type", ""),
            labels=labels,
            rack=labels.get("rack", ""),
            gpu_model=models.pop() if len(models) == 1 else ", ".join(sorted(models)),
            gpus_total=len(h.gpus),
            gpus_allocatable=len(h.gpus),
            gpus_requested=sum(1 for g in h.gpus if g.in_use),
            health=max((g.health for g in h.gpus), default=Health.OK),
        )

    def _part(self, h: _Host) -> SourcePart:
        return SourcePart(
            name=h.label,
            state=SourceState.ERROR if h.detail.error else SourceState.OK,
            last_ok=h.detail.polled_at,
            error=h.detail.error,
            latency_ms=h.latency_ms,
        )


# --- connecting -------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Target:
    """What the settings (or a jump spec) say about a host; empty values are left to the OpenSSH config."""

    host: str
    port: int
    user: str
    identity_file: Path | None
    timeout: float
    """Seconds to connect within."""


def _kwargs(t: _Target, config: list[str]) -> dict[str, Any]:
    """asyncssh's options for ``t``: what it sets, over the OpenSSH config's ``Host`` entries (the files in
    ``config`` only: an empty list reads none)."""
    kw: dict[str, Any] = {"config": config, "connect_timeout": t.timeout}
    if t.port:
        kw["port"] = t.port
    if t.user:
        kw["username"] = t.user
    if t.identity_file is not None:
        kw["client_keys"] = [str(t.identity_file.expanduser())]
    return kw


async def _resolve(t: _Target, config: list[str]) -> asyncssh.SSHClientConnectionOptions:
    """What asyncssh will use for ``t`` (host name, port, user, ProxyJump, known_hosts files), read on a
    thread: asyncssh reads the config and the keys from disk."""
    kw = _kwargs(t, config)
    try:
        return await asyncio.to_thread(lambda: asyncssh.SSHClientConnectionOptions(host=t.host, **kw))
    except asyncssh.KeyImportError as exc:
        which = (
            f"identity file {t.identity_file}"
            if t.identity_file
            else f"the OpenSSH config's key for {t.host}"
        )
        raise _HostError(f"cannot use {which}: {clean(exc)}", drop=False) from None
    except (asyncssh.ConfigParseError, OSError, ValueError) as exc:
        raise _HostError(f"cannot read the OpenSSH config for {t.host}: {clean(exc)}", drop=False) from None


async def _open(
    t: _Target,
    config: list[str],
    resolved: asyncssh.SSHClientConnectionOptions,
    tunnel: asyncssh.SSHClientConnection | None,
    known_hosts: list[str],
    what: str,
) -> asyncssh.SSHClientConnection:
    """Connect to ``t`` (through ``tunnel``), verifying its key against ``known_hosts``, and name a failure
    in plain words. ``resolved`` says where the config sends it, for those words."""
    host, port, user = resolved.host, resolved.port, resolved.username
    where = f"{what}{host}:{port}"
    try:
        return await asyncssh.connect(
            t.host,
            tunnel=tunnel,  # None, not (): asyncssh must not follow the config's ProxyJump on its own
            known_hosts=known_hosts,
            **_kwargs(t, config),
        )
    except asyncssh.HostKeyNotVerifiable:
        raise _HostError(_host_key_problem(host, port, known_hosts)) from None
    except asyncssh.PermissionDenied:
        raise _HostError(f"authentication failed for user {user} on {where}") from None
    except asyncssh.KeyImportError as exc:
        raise _HostError(f"cannot use identity file {t.identity_file}: {clean(exc)}", drop=False) from None
    except (asyncssh.Error, OSError) as exc:
        raise _HostError(f"cannot connect to {where}: {_reason(exc)}") from None


def _known_hosts(setting: Path | None, from_config: object) -> list[Path]:
    """The known_hosts files to verify against: the setting, else the OpenSSH config's
    ``UserKnownHostsFile`` (never "none": checking stays on), else ``~/.ssh/known_hosts``."""
    if setting is not None:
        return [setting.expanduser()]
    if isinstance(from_config, list) and from_config:
        return [Path(str(p)).expanduser() for p in from_config]
    return [Path("~/.ssh/known_hosts").expanduser()]


def _host_key_problem(host: str, port: int, known_hosts: Sequence[str]) -> str:
    """Why ``host``'s key was refused: no entry for it (unknown) or entries with other keys (changed)."""
    known: list[object] = []
    for file in known_hosts:
        try:
            known.extend(asyncssh.match_known_hosts(file, host, host, port)[0])
        except (OSError, ValueError, asyncssh.Error):
            continue
    where = host if port == 22 else f"[{host}]:{port}"
    files = ", ".join(known_hosts)
    if known:
        return (
            f"host key changed for {where} (possible man-in-the-middle): it does not match known_hosts "
            f"{files}; not connecting (check with the host's owner, then update known_hosts)"
        )
    return f"host key for {where} is not in known_hosts {files}; not connecting"


def _split_jump(spec: str) -> tuple[str, str, int]:
    """``[user@]host[:port]`` → user, host, port (0: from the OpenSSH config, else 22)."""
    user, _, rest = spec.rpartition("@")
    host, sep, port = rest.rpartition(":")
    if sep and port.isdigit() and not host.endswith(":"):
        return user, host.strip("[]"), int(port)
    return user, rest.strip("[]"), 0


async def _drop(h: _Host) -> None:
    for conn in (h.conn, *reversed(h.jumps)):
        if conn is not None:
            conn.abort()
            await conn.wait_closed()
    h.conn = None
    h.jumps = []


# --- running the command ----------------------------------------------------------------------------------


async def _run(conn: asyncssh.SSHClientConnection, command: str) -> tuple[str, str, int | None, str | None]:
    """Run ``command`` (no terminal, whatever the OpenSSH config says): its output, standard error, exit
    status and exit signal. At most :data:`MAX_OUTPUT` bytes are read; more is an error, and the channel is
    closed whatever happens."""
    proc = await conn.create_process(command, encoding=None, request_pty=False)
    try:
        results = await asyncio.gather(
            _read(proc, proc.stdout, MAX_OUTPUT), _read(proc, proc.stderr, MAX_STDERR), return_exceptions=True
        )
        for result in results:
            if isinstance(result, BaseException):
                raise result
        out, err = (r for r in results if isinstance(r, bytes))
        await proc.wait_closed()
    finally:
        proc.close()
    signal = proc.exit_signal[0] if proc.exit_signal else None
    return out.decode(errors="replace"), err.decode(errors="replace"), proc.exit_status, signal


async def _read(proc: asyncssh.SSHClientProcess[bytes], stream: asyncssh.SSHReader[bytes], cap: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while chunk := await stream.read(_CHUNK):
        size += len(chunk)
        if size > cap:
            proc.close()
            raise _HostError(
                f"the command printed more than {cap // 1024} KiB; stopped reading (is nvidia_smi the right "
                "command?)",
                drop=False,
            )
        chunks.append(chunk)
    return b"".join(chunks)


# --- helpers ----------------------------------------------------------------------------------------------


def _with_processes(gpus: tuple[SmiGpu, ...], processes: tuple[SmiProcess, ...]) -> tuple[Gpu, ...]:
    """Each GPU with the compute processes nvidia-smi listed on it (matched by uuid)."""
    by_uuid: dict[str, list[GpuProcess]] = {}
    for p in processes:
        by_uuid.setdefault(p.gpu_uuid, []).append(GpuProcess(p.pid, p.user, p.used_mib, p.name))
    return tuple(
        dataclasses.replace(g.gpu, processes=tuple(by_uuid[g.gpu.uuid])) if g.gpu.uuid in by_uuid else g.gpu
        for g in gpus
    )


def _reason(exc: BaseException) -> str:
    said = plain_reason(exc)
    if said is not None:
        return said
    if isinstance(exc, asyncssh.Error):
        return clean(exc.reason or type(exc).__name__)
    if isinstance(exc, OSError) and exc.errno and not isinstance(exc, socket.gaierror):
        return os.strerror(exc.errno)  # "Connection refused", not asyncio's "Connect call failed (…)"
    return clean(str(exc) or type(exc).__name__)


def _first_line(value: str, limit: int = 200) -> str:
    lines = value.strip().splitlines()
    return clean(lines[0].strip(), limit) if lines else ""
