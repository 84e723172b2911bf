"""Parsing of ``nvidia-smi --query-…`` output (``--format=csv,noheader,nounits``) into domain objects.

Pure functions, no I/O: the SSH source runs the commands and hands the text here. A value nvidia-smi cannot
give (``[N/A]``, ``[Not Supported]``, ``[Unknown Error]`` …) is NA; a line that does not have the fields
asked for, or a number that is not one, is a :class:`SmiParseError` naming the line, so a host whose
``nvidia-smi`` prints something else (an error message, another version's fields) is an error on that
host rather than made-up readings.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from aios_tui.domain import NA, Gpu, Metric, Throttle
from aios_tui.domain.model import short_gpu_model

__all__ = [
    "APPS_FIELDS",
    "EVENTS_FIELDS",
    "GPU_FIELDS",
    "SmiGpu",
    "SmiParseError",
    "SmiProcess",
    "parse_apps",
    "parse_events",
    "parse_gpus",
    "query_command",
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

_NA_VALUE = re.compile(r"^\[[^\]]*\]$|^N/A$")
_PSTATE = re.compile(r"^P(\d{1,2})$")


class SmiParseError(ValueError):
    """The output is not what the query asks nvidia-smi to print."""


@dataclass(frozen=True, slots=True)
class SmiProcess:
    """A compute process on a GPU (``--query-compute-apps``)."""

    gpu_uuid: str
    pid: int
    name: str
    used_mib: Metric = NA


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


def parse_gpus(text: str, *, node: str, throttle: Mapping[int, Throttle] | None = None) -> tuple[SmiGpu, ...]:
    """The GPUs in ``--query-gpu`` output (:data:`GPU_FIELDS`), shown on node ``node``.

    ``throttle`` gives each GPU index its clock-event reasons (from :func:`parse_events`)."""
    out: list[SmiGpu] = []
    for lineno, fields in _rows(text, len(GPU_FIELDS)):
        f = dict(zip(GPU_FIELDS, fields, strict=True))
        index = _int(f["index"], lineno, "index")
        if index is None:
            raise SmiParseError(f"line {lineno}: index is not a number: {f['index']!r}")
        uuid = "" if _is_na(f["uuid"]) else f["uuid"]
        name = "" if _is_na(f["name"]) else f["name"]
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
                pci_bus_id="" if _is_na(f["pci.bus_id"]) else f["pci.bus_id"],
                pstate=int(pstate_m[1]) if pstate_m else None,
                mem_util=_num(f["utilization.memory"], lineno, "utilization.memory"),
                mem_clock=_num(f["clocks.mem"], lineno, "clocks.mem"),
            )
        )
    return tuple(out)


def parse_apps(text: str) -> tuple[SmiProcess, ...]:
    """The compute processes in ``--query-compute-apps`` output (:data:`APPS_FIELDS`).

    A process name may itself hold ", ": the first two fields and the last one are split off around it."""
    out: list[SmiProcess] = []
    for lineno, line in _lines(text):
        head = line.split(", ", 2)
        tail = head[-1].rsplit(", ", 1) if len(head) == 3 else []
        if len(tail) != 2:
            raise SmiParseError(f"line {lineno}: expected {len(APPS_FIELDS)} fields: {_clip(line)!r}")
        pid = _int(head[1], lineno, "pid")
        if pid is None:
            raise SmiParseError(f"line {lineno}: pid is not a number: {head[1]!r}")
        out.append(SmiProcess(head[0], pid, tail[0], _num(tail[1], lineno, "used_memory")))
    return tuple(out)


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
