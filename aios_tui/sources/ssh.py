"""Bare-metal GPU hosts read over SSH (``asyncssh``) with ``nvidia-smi``.

One :class:`SshSource` serves the whole ``[[ssh_hosts]]`` inventory: one :class:`Node` per host (pool
``ssh``) and one :class:`Gpu` per device, parsed from ``nvidia-smi --query-gpu=…`` and
``--query-compute-apps=…`` (``--format=csv,noheader,nounits``) by :mod:`aios_tui.sources._smi_parse`; the
clock-event (throttle) reasons come from a third, optional query (older drivers without it give none).

- At most ``max_connections`` hosts are polled at once (a semaphore); each host's connection is kept and
  reused across polls, and opened again when it has dropped (once within the same poll).
- Each host has its own timeout (connect and commands); a host whose interval has not yet passed keeps
  its last readings without being asked.
- Host keys are always verified against the host's ``known_hosts`` file (``~/.ssh/known_hosts`` when unset):
  an unknown or changed key is an error on that host, never a prompt and never accepted. The user's
  ``~/.ssh/config`` is not read, so what is verified and how is exactly what the settings say.
- A host that fails does not fail the fetch: its node is shown NotReady with a ``Ready`` condition whose
  message is ``ssh: <why>``, and its GPUs keep their last readings. Only when every host fails does the fetch
  raise a :class:`SourceError` (the poller then shows the source as failing, with the first reason).

Error messages name the host and what went wrong; they never hold key material or passphrases (the settings
hold none: keys are files or the agent).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import math
import os
import socket
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

import asyncssh

from aios_tui.config import SshHostSettings
from aios_tui.domain import Condition, Gpu, Health, Node
from aios_tui.domain.clock import now as wall_now
from aios_tui.sources._smi_parse import (
    SmiGpu,
    SmiParseError,
    SmiProcess,
    parse_apps,
    parse_events,
    parse_gpus,
    query_command,
)
from aios_tui.sources.base import SourceData, SourceError

__all__ = ["SshHostDetail", "SshSource"]

log = logging.getLogger("aios_tui.sources.ssh")


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
    known_hosts: Path
    labels: Mapping[str, str]
    conn: asyncssh.SSHClientConnection | None = None
    jump: asyncssh.SSHClientConnection | None = None
    gpus: tuple[Gpu, ...] = ()
    detail: SshHostDetail = dataclasses.field(default_factory=SshHostDetail)
    polled_at: float = -math.inf

    @property
    def label(self) -> str:
        return self.settings.label


class SshSource:
    """Every ``[[ssh_hosts]]`` host, read with ``nvidia-smi`` over SSH."""

    kind = "ssh"

    def __init__(
        self,
        *,
        hosts: Sequence[SshHostSettings],
        name: str = "ssh",
        clock: Callable[[], float] = wall_now,
        max_connections: int = 16,
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
        self._clock = clock
        self._hosts = [_Host(h, _known_hosts_path(h), parse_labels(h.labels)) for h in hosts]
        self._slots = asyncio.Semaphore(max_connections)

    # --- Source ----------------------------------------------------------------------------------------

    async def fetch(self) -> SourceData:
        now = self._clock()
        await asyncio.gather(*(self._poll(h, now) for h in self._hosts))
        failed = [h for h in self._hosts if h.detail.error]
        if len(failed) == len(self._hosts):
            first = failed[0]
            more = f" (and {len(failed) - 1} more)" if len(failed) > 1 else ""
            raise SourceError(f"every host failed: {first.label}: ssh: {first.detail.error}{more}")
        nodes = tuple(self._node(h) for h in self._hosts)
        gpus = tuple(g for h in self._hosts for g in h.gpus)
        context = self._hosts[0].label if len(self._hosts) == 1 else f"{len(self._hosts)} hosts"
        return SourceData(nodes=nodes, gpus=gpus, context=context)

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
                h.gpus = tuple(g.gpu for g in gpus)
                h.detail = SshHostDetail(gpus=gpus, processes=processes, polled_at=self._clock())
                h.polled_at = now
                return
            if error.drop:
                await _drop(h)
            if h.detail.error != str(error):
                log.warning("ssh host %s: %s", h.label, error)
            h.detail = dataclasses.replace(h.detail, error=str(error))

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
        results = await asyncio.gather(
            *(conn.run(query_command(smi, what), check=False) for what in ("gpus", "apps", "events")),
            return_exceptions=True,
        )
        for result in results:
            if isinstance(result, BaseException):
                raise result
        gpus_r, apps_r, events_r = (r for r in results if not isinstance(r, BaseException))
        if gpus_r.exit_status is None:
            raise _HostError(f"{smi} did not finish: the connection closed while it ran")
        if gpus_r.exit_status != 0:
            said = _first_line(gpus_r.stderr) or _first_line(gpus_r.stdout)
            raise _HostError(f"{smi} exited with status {gpus_r.exit_status}: {said}", drop=False)
        throttle = {}
        if events_r.exit_status == 0:
            try:
                throttle = parse_events(_text(events_r.stdout))
            except SmiParseError as exc:
                log.debug("ssh host %s: clock-event reasons: %s", h.label, exc)
        processes: tuple[SmiProcess, ...] = ()
        if apps_r.exit_status == 0:
            try:
                processes = parse_apps(_text(apps_r.stdout))
            except SmiParseError as exc:
                log.debug("ssh host %s: compute apps: %s", h.label, exc)
        try:
            gpus = parse_gpus(_text(gpus_r.stdout), node=h.label, throttle=throttle)
        except SmiParseError as exc:
            raise _HostError(f"unexpected {smi} output: {exc}", drop=False) from None
        return gpus, processes

    async def _connection(self, h: _Host) -> asyncssh.SSHClientConnection:
        if h.conn is not None and not h.conn.is_closed():
            return h.conn
        s = h.settings
        if not h.known_hosts.is_file():
            raise _HostError(f"known_hosts file {h.known_hosts} not found (host keys are always verified)")
        options: dict[str, Any] = {
            "known_hosts": str(h.known_hosts),
            "config": None,
            "connect_timeout": s.timeout,
        }
        if s.identity_file is not None:
            options["client_keys"] = [str(s.identity_file.expanduser())]
        target = f"{s.host}:{s.port}"
        try:
            if s.jump_host:
                jump_host, jump_port, jump_user = _split_jump(s.jump_host)
                if h.jump is None or h.jump.is_closed():
                    target = f"jump host {jump_host}:{jump_port}"
                    h.jump = await asyncssh.connect(
                        jump_host, jump_port, username=jump_user or s.user or None, **options
                    )
                options["tunnel"] = h.jump
                target = f"{s.host}:{s.port}"
            h.conn = await asyncssh.connect(s.host, s.port, username=s.user or None, **options)
        except asyncssh.HostKeyNotVerifiable:
            host, port = target.rsplit(":", 1)
            raise _HostError(_host_key_problem(host, int(port), h.known_hosts)) from None
        except asyncssh.PermissionDenied:
            raise _HostError(f"login refused for user {s.user or '(current user)'} on {target}") from None
        except asyncssh.KeyImportError as exc:
            raise _HostError(f"cannot use identity file {s.identity_file}: {exc}") from None
        except (asyncssh.Error, OSError) as exc:
            raise _HostError(f"cannot connect to {target}: {_reason(exc)}") from None
        return h.conn

    def _node(self, h: _Host) -> Node:
        models = {g.model for g in h.gpus if g.model}
        conditions: tuple[Condition, ...] = ()
        if h.detail.error:
            conditions = (Condition("Ready", "False", "SshPollFailed", f"ssh: {h.detail.error}"),)
        labels = h.labels
        return Node(
            name=h.label,
            source=self.name,
            pool=labels.get("pool", "ssh"),
            zone=labels.get("zone", ""),
            instance_type=labels.get("instance_type", ""),
            labels=labels,
            rack=labels.get("rack", ""),
            gpu_model=models.pop() if len(models) == 1 else ", ".join(sorted(models)),
            gpus_total=len(h.gpus),
            gpus_allocatable=len(h.gpus),
            ready=not h.detail.error,
            conditions=conditions,
            health=max((g.health for g in h.gpus), default=Health.OK),
        )


# --- helpers ----------------------------------------------------------------------------------------------


def _known_hosts_path(s: SshHostSettings) -> Path:
    return (s.known_hosts or Path("~/.ssh/known_hosts")).expanduser()


def _host_key_problem(host: str, port: int, known_hosts: Path) -> str:
    """Why ``host``'s key was refused: no entry for it (unknown) or entries with other keys (changed)."""
    try:
        known = asyncssh.match_known_hosts(str(known_hosts), host, host, port)[0]
    except (OSError, ValueError, asyncssh.Error):
        known = []
    where = host if port == 22 else f"[{host}]:{port}"
    if known:
        return (
            f"host key for {where} changed: it does not match known_hosts {known_hosts} "
            "(the host was reinstalled, or someone is intercepting the connection); not connecting"
        )
    return f"host key for {where} is not in known_hosts {known_hosts}; not connecting"


def _split_jump(spec: str) -> tuple[str, int, str]:
    """``[user@]host[:port]`` → host, port, user."""
    user, _, rest = spec.rpartition("@")
    host, sep, port = rest.rpartition(":")
    if sep and port.isdigit() and not host.endswith(":"):
        return host.strip("[]"), int(port), user
    return rest.strip("[]"), 22, user


async def _drop(h: _Host) -> None:
    for conn in (h.conn, h.jump):
        if conn is not None:
            conn.abort()
            await conn.wait_closed()
    h.conn = h.jump = None


def _reason(exc: BaseException) -> str:
    if isinstance(exc, asyncssh.Error):
        return exc.reason or type(exc).__name__
    if isinstance(exc, OSError) and exc.errno and not isinstance(exc, socket.gaierror):
        return os.strerror(exc.errno)  # "Connection refused", not asyncio's "Connect call failed (…)"
    return str(exc) or type(exc).__name__


def _text(value: object) -> str:
    if isinstance(value, bytes):
        return value.decode(errors="replace")
    return value if isinstance(value, str) else ""


def _first_line(value: object, limit: int = 200) -> str:
    lines = _text(value).strip().splitlines()
    line = lines[0].strip() if lines else ""
    return line if len(line) <= limit else line[: limit - 1] + "…"
