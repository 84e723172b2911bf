"""Parsing of ``nvidia-smi --query-…`` output (``--format=csv,noheader,nounits``) into domain objects, and
the one command the SSH source runs on a host to get it.

Pure functions, no I/O: the SSH source runs :func:`poll_command` and hands the text here. A value nvidia-smi
cannot give (``[N/A]``, ``[Not Supported]``, ``[Unknown Error]`` …) is NA; a GPU line that does not have the
fields asked for, or a number that is not one, is a :class:`SmiParseError` naming the line, so a host whose
``nvidia-smi`` prints something else (an error message, another version's fields) is an error on that
host rather than made-up readings. A process line that cannot be read is skipped and named, the others kept:
one odd process must not make a busy GPU look free.

Everything here is remote text: GPU names, uuids, process names and user names go through
:func:`aios_tui.domain.text.clean` before they enter a domain object. A process name is the process's own
``argv[0]``, which any user of the host chooses: it may hold ``", "`` (handled by splitting around it) and
even a line break, so a line that does not start a record (``GPU-…``/``MIG-…`` uuid, pid) continues the one
before it.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass

from aios_tui.domain import NA, Gpu, Metric, Throttle
from aios_tui.domain.model import short_gpu_model
from aios_tui.domain.text import clean

__all__ = [
    "APPS_FIELDS",
    "EVENTS_FIELDS",
    "GPU_FIELDS",
    "KILL_AFTER",
    "MAX_PIDS",
    "SECTIONS",
    "SmiGpu",
    "SmiParseError",
    "SmiProcess",
    "parse_apps",
    "parse_events",
    "parse_gpus",
    "parse_users",
    "poll_command",
    "query_command",
    "split_sections",
]

GPU_FIELDS = (
    "index",
    "uuid",
    "name",
    "pci.bus_id",
    "utilization.gpu",
    "utilization.memory",
    "memory.total",
    "memory.used",
    "memory.free",
    "temperature.gpu",
    "power.draw",
    "power.limit",
    "clocks.sm",
    "clocks.mem",
    "pstate",
    "ecc.errors.uncorrected.volatile.total",
)
"""What ``--query-gpu=`` asks for, in this order."""
APPS_FIELDS = ("gpu_uuid", "pid", "process_name", "used_memory")
"""What ``--query-compute-apps=`` asks for, in this order."""
EVENTS_FIELDS = ("index", "clocks_event_reasons.active")
"""The clock-event (throttle) reasons as one bit mask per GPU (``clocks_throttle_reasons`` before r535)."""

SECTIONS = ("gpus", "apps", "events", "users")
"""What :func:`poll_command` prints, in this order, each closed by a marker line with its exit status."""
MAX_PIDS = 1024
"""Processes whose user ``ps`` is asked for, at most (MPS allows 48 clients per GPU: 16 GPUs × 48 = 768)."""
KILL_AFTER = 2
"""Seconds between the polite stop (TERM) of a command past its time limit and the forced one (KILL)."""

_NA_VALUE = re.compile(r"^\[[^\]]*\]$|^N/A$")
_PSTATE = re.compile(r"^P(\d{1,2})$")
_APP_START = re.compile(r"^(?:GPU|MIG)-[^,\s]*, ")
_MARK = "--aios-tui"


class SmiParseError(ValueError):
    """The output is not what the query asks nvidia-smi to print."""


@dataclass(frozen=True, slots=True)
class SmiProcess:
    """A compute process on a GPU (``--query-compute-apps``)."""

    gpu_uuid: str
    pid: int
    name: str
    used_mib: Metric = NA
    user: str = ""
    """Its owner's name, where ``ps`` on the host said (:func:`parse_users`)."""


@dataclass(frozen=True, slots=True)
class SmiGpu:
    """One ``--query-gpu`` line: the :class:`Gpu` and what the domain model has no field for."""

    gpu: Gpu
    pci_bus_id: str
    pstate: int | None
    """Performance state, 0 (P0, fastest) to 15; None when unknown."""
    mem_util: Metric
    """Percent of time memory was read or written (``utilization.memory``)."""
    mem_clock: Metric


def query_command(nvidia_smi: str, what: str) -> str:
    """The command line for one query: ``what`` is ``gpus``, ``apps`` or ``events``."""
    if what == "apps":
        query = f"--query-compute-apps={','.join(APPS_FIELDS)}"
    else:
        query = f"--query-gpu={','.join(GPU_FIELDS if what == 'gpus' else EVENTS_FIELDS)}"
    return f"{nvidia_smi} {query} --format=csv,noheader,nounits"


def poll_command(nvidia_smi: str, *, limit: float, token: str) -> str:
    """The one command line that reads a host: the ``gpus``, ``apps`` and ``events`` queries, then ``ps`` for
    the users of the compute processes (at most :data:`MAX_PIDS`), each section followed by a line
    ``--aios-tui TOKEN SECTION STATUS`` (:func:`split_sections`). ``token`` is new each poll, so that no
    process name can forge a marker.

    It runs on the host under a time limit of ``limit`` seconds, so that a hung ``nvidia-smi`` is killed
    there rather than left behind when the SSH channel closes (sshd does not stop a command without a
    terminal): coreutils ``timeout`` signals the whole process group (TERM, then KILL :data:`KILL_AFTER` s
    later; exit status 124 or 137). Where there is no ``timeout``, a watchdog in the shell does the same to
    the process group the command runs in, which sshd makes a session of its own. Everything runs in
    ``sh``, whatever the login shell."""
    q = {what: query_command(nvidia_smi, what) for what in ("gpus", "apps", "events")}
    # No single quote in the inner script: quoted once more for ``sh -c``, it stays readable in ``ps``.
    inner = "\n".join(
        (
            f'm() {{ printf "\\n{_MARK} {token} %s %s\\n" "$1" "$2"; }}',
            f"{q['gpus']}; m gpus $?",
            f'a=$({q["apps"]} 2>&1); r=$?; printf "%s\\n" "$a"; m apps $r',
            f"{q['events']} 2>&1; m events $?",
            'p=$(printf "%s\\n" "$a" | { n=0; while IFS=", " read -r u i x; do case $i in ""|*[!0-9]*) ;; '
            f'*) n=$((n+1)); [ $n -le {MAX_PIDS} ] && echo "$i";; esac; done; }})',
            "p=$(echo $p)",
            'if [ -n "$p" ]; then ps -o pid=,user= -p "$p" 2>&1; m users $?; else m users 0; fi',
        )
    )
    n = f"{limit:g}"
    outer = "\n".join(
        (
            f"s={shlex.quote(inner)}",
            f'if command -v timeout >/dev/null 2>&1; then exec timeout -k {KILL_AFTER} {n} sh -c "$s"; fi',
            'sh -c "$s" & p=$!',
            f'(sleep {n}; trap "" TERM; kill -TERM 0; sleep {KILL_AFTER}; kill -KILL 0) >/dev/null 2>&1 &',
            'wait $p; r=$?; trap "" TERM; kill -TERM 0 2>/dev/null; exit $r',
        )
    )
    return f"exec sh -c {shlex.quote(outer)}"


def split_sections(text: str, token: str) -> dict[str, tuple[int, str]]:
    """:func:`poll_command`'s output as section → (exit status, text); a section whose marker never came
    (the command was stopped, the connection closed) is missing. Only the first marker of a section
    counts, and only with this poll's ``token``."""
    out: dict[str, tuple[int, str]] = {}
    prefix = f"{_MARK} {token} "
    lines: list[str] = []
    for line in text.splitlines():
        name, _, status = line.removeprefix(prefix).partition(" ")
        if line.startswith(prefix) and name in SECTIONS and name not in out and status.isdigit():
            out[name] = (int(status), "\n".join(lines))
            lines = []
        else:
            lines.append(line)
    return out


def parse_gpus(text: str, *, node: str, throttle: Mapping[int, Throttle] | None = None) -> tuple[SmiGpu, ...]:
    """The GPUs in ``--query-gpu`` output (:data:`GPU_FIELDS`), shown on node ``node``.

    ``throttle`` gives each GPU index its clock-event reasons (from :func:`parse_events`)."""
    out: list[SmiGpu] = []
    for lineno, fields in _rows(text, len(GPU_FIELDS)):
        f = dict(zip(GPU_FIELDS, fields, strict=True))
        index = _int(f["index"], lineno, "index")
        if index is None:
            raise SmiParseError(f"line {lineno}: index is not a number: {f['index']!r}")
        uuid = "" if _is_na(f["uuid"]) else clean(f["uuid"])
        name = "" if _is_na(f["name"]) else clean(f["name"])
        pstate_m = _PSTATE.match(f["pstate"])
        if not pstate_m and not _is_na(f["pstate"]):
            raise SmiParseError(f"line {lineno}: pstate is not P0..P15: {f['pstate']!r}")
        ecc = _int(
            f["ecc.errors.uncorrected.volatile.total"], lineno, "ecc.errors.uncorrected.volatile.total"
        )
        gpu = Gpu(
            node=node,
            index=index,
            uuid=uuid or f"{node}/gpu{index}",
            model=short_gpu_model(name),
            util=_num(f["utilization.gpu"], lineno, "utilization.gpu"),
            mem_used=_num(f["memory.used"], lineno, "memory.used"),
            mem_total=_num(f["memory.total"], lineno, "memory.total"),
            temp=_num(f["temperature.gpu"], lineno, "temperature.gpu"),
            power=_num(f["power.draw"], lineno, "power.draw"),
            power_limit=_num(f["power.limit"], lineno, "power.limit"),
            sm_clock=_num(f["clocks.sm"], lineno, "clocks.sm"),
            ecc_uncorrected=ecc or 0,
            throttle=(throttle or {}).get(index, Throttle.NONE),
        )
        out.append(
            SmiGpu(
                gpu=gpu,
                pci_bus_id="" if _is_na(f["pci.bus_id"]) else clean(f["pci.bus_id"]),
                pstate=int(pstate_m[1]) if pstate_m else None,
                mem_util=_num(f["utilization.memory"], lineno, "utilization.memory"),
                mem_clock=_num(f["clocks.mem"], lineno, "clocks.mem"),
            )
        )
    return tuple(out)


def parse_apps(text: str) -> tuple[tuple[SmiProcess, ...], tuple[str, ...]]:
    """The compute processes in ``--query-compute-apps`` output (:data:`APPS_FIELDS`), and why each record
    that could not be read was skipped (``line 3: pid is not an integer: 'x'``).

    A process name may itself hold ", ": the first two fields and the last one are split off around it. A
    line that does not start a record (a ``GPU-…`` or ``MIG-…`` uuid and a comma) continues the record before
    it: a line break in a process name."""
    records: list[tuple[int, str]] = []
    for lineno, line in _lines(text):
        if records and not _APP_START.match(line):
            records[-1] = (records[-1][0], f"{records[-1][1]} {line}")
        else:
            records.append((lineno, line))
    out: list[SmiProcess] = []
    skipped: list[str] = []
    for lineno, line in records:
        try:
            out.append(_app(lineno, line))
        except SmiParseError as exc:
            skipped.append(str(exc))
    return tuple(out), tuple(skipped)


def _app(lineno: int, line: str) -> SmiProcess:
    head = line.split(", ", 2)
    tail = head[-1].rsplit(", ", 1) if len(head) == 3 else []
    if len(tail) != 2:
        raise SmiParseError(f"line {lineno}: expected {len(APPS_FIELDS)} fields: {_clip(line)!r}")
    pid = _int(head[1], lineno, "pid")
    if pid is None:
        raise SmiParseError(f"line {lineno}: pid is not a number: {head[1]!r}")
    return SmiProcess(clean(head[0]), pid, clean(tail[0]).strip(), _num(tail[1], lineno, "used_memory"))


def parse_users(text: str) -> dict[int, str]:
    """``ps -o pid=,user=`` output as pid → user name; lines that are not a pid and a name (an error from a
    ``ps`` without ``-p``) are left out."""
    out: dict[int, str] = {}
    for _, line in _lines(text):
        pid, _, user = line.partition(" ")
        if pid.isdigit() and user.strip():
            out[int(pid)] = clean(user.strip())
    return out


def parse_events(text: str) -> dict[int, Throttle]:
    """Per GPU index, the clock-event reasons in ``--query-gpu=index,clocks_event_reasons.active`` output
    (a hex bit mask, the NVML ``nvmlClocksEventReason*`` bits); NA reads as none."""
    out: dict[int, Throttle] = {}
    for lineno, (index_s, mask_s) in _rows(text, len(EVENTS_FIELDS)):
        index = _int(index_s, lineno, "index")
        if index is None:
            raise SmiParseError(f"line {lineno}: index is not a number: {index_s!r}")
        if _is_na(mask_s):
            continue
        try:
            mask = int(mask_s, 16)
        except ValueError:
            raise SmiParseError(
                f"line {lineno}: clock-event reasons are not a hex mask: {mask_s!r}"
            ) from None
        # Only the bits the model knows: newer drivers add ones (display clock, …) that mean nothing here.
        out[index] = Throttle(mask & 0xFF)
    return out


# --- helpers ----------------------------------------------------------------------------------------------


def _lines(text: str) -> list[tuple[int, str]]:
    return [(i, line.strip()) for i, line in enumerate(text.splitlines(), start=1) if line.strip()]


def _rows(text: str, width: int) -> list[tuple[int, list[str]]]:
    rows = []
    for lineno, line in _lines(text):
        fields = [f.strip() for f in line.split(",")]
        if len(fields) != width:
            raise SmiParseError(f"line {lineno}: expected {width} fields, got {len(fields)}: {_clip(line)!r}")
        rows.append((lineno, fields))
    return rows


def _is_na(value: str) -> bool:
    return not value or bool(_NA_VALUE.match(value))


def _num(value: str, lineno: int, field: str) -> Metric:
    if _is_na(value):
        return NA
    try:
        return float(value)
    except ValueError:
        raise SmiParseError(f"line {lineno}: {field} is not a number: {_clip(value)!r}") from None


def _int(value: str, lineno: int, field: str) -> int | None:
    if _is_na(value):
        return None
    try:
        return int(value)
    except ValueError:
        raise SmiParseError(f"line {lineno}: {field} is not an integer: {_clip(value)!r}") from None


def _clip(text: str, limit: int = 80) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
