"""The GPUs of the machine the console runs on, read through NVML (``nvidia-ml-py``, imported as ``pynvml``).

One :class:`Node` for the host (pool ``local``) and one :class:`Gpu` per device. A reading the GPU does not
support (or refuses) is NA, never an error; only NVML itself being absent (no library, no driver) fails a
fetch, with a :class:`SourceError` that says why, so the poller shows the source as unavailable while every
other source keeps working.

Every NVML call runs on one dedicated worker thread, never on the event loop: some calls are slow (one PCIe
throughput reading takes about 21 ms on an H200, most others microseconds), and NVML state stays on one
thread. The slow readings are taken only every ``slow_every`` fetches and reused in between. A fetch that
the poller abandons (its timeout) leaves the thread busy; the next fetch then fails at once rather than
queueing behind it.

Compute processes (``nvmlDeviceGetComputeRunningProcesses``: pid and GPU memory) fill :attr:`Gpu.processes`,
with the owner's name and the command line from ``/proc/<pid>`` where it can be read (not for another
container's processes, or without the rights): a GPU with processes is in use, and the node counts it as
requested, so placement never puts a job on it. Names and command lines are cleaned
(:func:`aios_tui.domain.text.clean`), as NVML's own strings are.

GPU health as NVIDIA's guidance reads it: the driver's recovery action (``nvmlDeviceGetFieldValues`` with
``NVML_FI_DEV_GET_GPU_RECOVERY_ACTION``, R575 drivers and later), the row remapper's pending and failed flags
(``nvmlDeviceGetRemappedRows``), NVLink CRC, replay and recovery errors counted since the source started
(the same field-values call; NotSupported on a GPU without NVLink, such as the captured H200), and XIDs as
they happen (an event set registered for ``nvmlEventTypeXidCriticalError``, drained without waiting at each
reading; the XID's time is when this source saw it). Any of them a driver or binding lacks is left unknown.

What the domain model has no field for (performance state, PCIe throughput) is kept per GPU in
:meth:`NvmlSource.details`, for a detail view.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import pwd
import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

from aios_tui.config import NvmlSettings
from aios_tui.domain import NA, Gpu, GpuProcess, Health, Metric, Node, Throttle
from aios_tui.domain.clock import now as wall_now
from aios_tui.domain.model import short_gpu_model
from aios_tui.domain.text import clean
from aios_tui.sources.base import SourceData, SourceError

__all__ = ["GpuDetail", "NvmlSource"]

log = logging.getLogger("aios_tui.sources.nvml")

_MIB = 1024 * 1024

# NVML return codes (nvml.h) that mean NVML as a whole cannot be used: the fetch fails and NVML is
# initialised again on the next one. Every other error on a reading makes that reading NA.
_ERROR_UNINITIALIZED = 1
_ERROR_DRIVER_NOT_LOADED = 9
_ERROR_LIBRARY_NOT_FOUND = 12
_ERROR_FUNCTION_NOT_FOUND = 13
_ERROR_LIB_RM_VERSION_MISMATCH = 18
_FATAL = frozenset(
    {_ERROR_UNINITIALIZED, _ERROR_DRIVER_NOT_LOADED, _ERROR_LIBRARY_NOT_FOUND, _ERROR_LIB_RM_VERSION_MISMATCH}
)
_ERROR_TIMEOUT = 10
_XID_EVENT = 0x8
"""``nvmlEventTypeXidCriticalError``."""
_EVENTS_PER_READ = 64
"""XID events taken per reading at most: a GPU in an XID storm does not hold the reading up."""
_RECOVERY = {0: "none", 1: "reset", 2: "reboot", 3: "drain_p2p", 4: "drain_and_reset"}
"""``nvmlGpuRecoveryAction_t``; later values (IMEX domain, bus reset, system reboot) read as a node reboot."""
_NVLINK_FIELDS = (
    "NVML_FI_DEV_NVLINK_CRC_FLIT_ERROR_COUNT_TOTAL",
    "NVML_FI_DEV_NVLINK_REPLAY_ERROR_COUNT_TOTAL",
    "NVML_FI_DEV_NVLINK_RECOVERY_ERROR_COUNT_TOTAL",
)
_VALUE_ATTR = ("dVal", "uiVal", "ulVal", "ullVal", "sllVal", "siVal", "usVal")
"""``c_nvmlValue_t``'s member for each ``NVML_VALUE_TYPE_*``."""


@dataclass(frozen=True, slots=True)
class GpuDetail:
    """What NVML says about one GPU beyond the :class:`Gpu` fields."""

    uuid: str
    pstate: int | None = None
    """Performance state, 0 (P0, fastest) to 15; None when unknown."""
    pcie_tx_kbps: Metric = NA
    pcie_rx_kbps: Metric = NA
    pcie_at: float = 0.0
    """Clock time of the PCIe readings (0: never read); they are taken on the slow cadence."""


@dataclass(frozen=True, slots=True)
class _Device:
    """What does not change while NVML is up: read once at initialisation."""

    index: int
    handle: Any
    uuid: str
    model: str
    sm_clock_max: Metric


class NvmlSource:
    """Local GPUs through NVML. ``nvml`` is the module to call (``pynvml`` unless a test passes a replay);
    ``proc`` where processes' owners and command lines are read (``/proc``)."""

    kind = "nvml"
    keeps_lost = True

    def __init__(
        self,
        *,
        name: str = "nvml",
        settings: NvmlSettings,
        clock: Callable[[], float] = wall_now,
        nvml: Any = None,
        host: str | None = None,
        proc: Path = Path("/proc"),
    ) -> None:
        self.name = name
        self.interval = settings.interval
        self.timeout = settings.timeout
        self.slow_every = settings.slow_every
        self.host = host or socket.gethostname()
        """Name of the node the GPUs are shown on."""
        self._clock = clock
        self._nvml = nvml
        self._proc = proc
        self._executor = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="nvml")
        self._pending: asyncio.Future[SourceData] | None = None
        # State below is touched only on the worker thread.
        self._devices: tuple[_Device, ...] | None = None
        self._reads = 0
        self._slow: dict[str, tuple[Metric, Metric, Metric, float]] = {}
        """Per uuid: power limit, PCIe tx and rx, and when they were read."""
        self._reasons_fn = ""
        self._details: Mapping[str, GpuDetail] = MappingProxyType({})
        self._events: Any = None
        """The XID event set (None where the driver offers none)."""
        self._xid: dict[str, tuple[int, float]] = {}
        """Per uuid: the last XID seen and when."""
        self._nvlink_base: dict[str, int] = {}
        """Per uuid: the NVLink error total at the first reading (counts are shown from there)."""
        self._fields: tuple[int, ...] | None = None

    # --- Source ----------------------------------------------------------------------------------------

    async def fetch(self) -> SourceData:
        if self._pending is not None and not self._pending.done():
            raise SourceError("NVML is still busy with the previous reading")
        loop = asyncio.get_running_loop()
        self._pending = pending = loop.run_in_executor(self._executor, self._read)
        # Shielded: a fetch the poller abandons leaves the reading running, and ``_pending`` says so.
        pending.add_done_callback(_retrieve)
        return await asyncio.shield(pending)

    async def close(self) -> None:
        """Shut NVML down (after a reading still in progress, without waiting for one that hangs)."""
        if self._pending is None or self._pending.done():
            await asyncio.get_running_loop().run_in_executor(self._executor, self._shutdown)
        else:
            self._executor.submit(self._shutdown)
        self._executor.shutdown(wait=False)

    def details(self) -> Mapping[str, GpuDetail]:
        """Per GPU uuid, the latest :class:`GpuDetail` (empty before the first good fetch)."""
        return self._details

    # --- the worker thread -----------------------------------------------------------------------------

    def _module(self) -> Any:
        if self._nvml is None:
            try:
                import pynvml
            except ImportError as exc:
                raise SourceError(f"NVML not available: nvidia-ml-py is not installed ({exc})") from None
            self._nvml = pynvml
        return self._nvml

    def _read(self) -> SourceData:
        nv = self._module()
        try:
            if self._devices is None:
                self._devices = self._init(nv)
            slow = self._reads % self.slow_every == 0
            self._reads += 1
            now = self._clock()
            self._take_xids(nv, now)
            gpus: list[Gpu] = []
            details: dict[str, GpuDetail] = {}
            for dev in self._devices:
                gpu, detail = self._read_device(nv, dev, slow, now)
                gpus.append(gpu)
                details[dev.uuid] = detail
        except nv.NVMLError as exc:
            self._devices = None
            self._events = None  # gone with NVML; _init registers a new set
            self._reads = 0
            raise SourceError(f"NVML not available: {exc}") from None
        self._details = MappingProxyType(details)
        return SourceData(nodes=(self._node(gpus),), gpus=tuple(gpus), context=self.host)

    def _init(self, nv: Any) -> tuple[_Device, ...]:
        nv.nvmlInit()
        devices = []
        try:
            for i in range(nv.nvmlDeviceGetCount()):
                handle = nv.nvmlDeviceGetHandleByIndex(i)
                uuid = clean(_text(self._get(nv, nv.nvmlDeviceGetUUID, handle))) or f"{self.host}/gpu{i}"
                name = clean(_text(self._get(nv, nv.nvmlDeviceGetName, handle)))
                clock_max = self._get(nv, nv.nvmlDeviceGetMaxClockInfo, handle, nv.NVML_CLOCK_SM)
                devices.append(_Device(i, handle, uuid, short_gpu_model(name), _metric(clock_max)))
        except nv.NVMLError:
            nv.nvmlShutdown()  # NVML counts initialisations: leave none behind
            raise
        self._slow.clear()
        self._reasons_fn = ""
        self._events = self._event_set(nv, devices)
        self._fields = None
        log.info("NVML up on %s: %d GPU(s)", self.host, len(devices))
        return tuple(devices)

    def _event_set(self, nv: Any, devices: list[_Device]) -> Any:
        """An event set with every device registered for XIDs, or None where the driver or the binding
        cannot (a GPU that does not support it is left out; the others still report)."""
        if not hasattr(nv, "nvmlEventSetCreate"):
            return None
        events = self._get(nv, nv.nvmlEventSetCreate)
        if events is None:
            return None
        registered = [d for d in devices if self._registered(nv, d.handle, events)]
        if not registered:
            self._get(nv, nv.nvmlEventSetFree, events)
            return None
        return events

    def _registered(self, nv: Any, handle: Any, events: Any) -> bool:
        try:
            nv.nvmlDeviceRegisterEvents(handle, _XID_EVENT, events)
        except nv.NVMLError as exc:
            if getattr(exc, "value", None) in _FATAL:
                raise
            log.debug("nvmlDeviceRegisterEvents: %s", exc)
            return False
        return True

    def _take_xids(self, nv: Any, now: float) -> None:
        """The XIDs the driver reported since the last reading, each with the time this source saw it."""
        if self._events is None:
            return
        for _ in range(_EVENTS_PER_READ):
            try:
                event = nv.nvmlEventSetWait_v2(self._events, 0)
            except nv.NVMLError as exc:
                code = getattr(exc, "value", None)
                if code in _FATAL:
                    raise
                if code != _ERROR_TIMEOUT:  # timeout: nothing (more) waiting
                    log.debug("nvmlEventSetWait_v2: %s", exc)
                return
            if not int(event.eventType) & _XID_EVENT:
                continue
            uuid = clean(_text(self._get(nv, nv.nvmlDeviceGetUUID, event.device)))
            if uuid:
                self._xid[uuid] = (int(event.eventData), now)

    def _field_ids(self, nv: Any) -> tuple[int, ...]:
        """The recovery action and NVLink error fields this binding names (older ones lack some)."""
        if self._fields is None:
            names = ("NVML_FI_DEV_GET_GPU_RECOVERY_ACTION", *_NVLINK_FIELDS)
            self._fields = tuple(int(getattr(nv, n, -1)) for n in names)
        return self._fields

    def _health_fields(self, nv: Any, dev: _Device) -> tuple[str, int]:
        """The driver's recovery action ("" when not reported) and NVLink errors since the first reading."""
        ids = self._field_ids(nv)
        wanted = [i for i in ids if i >= 0]
        if not wanted or not hasattr(nv, "nvmlDeviceGetFieldValues"):
            return "", 0
        values = self._get(nv, nv.nvmlDeviceGetFieldValues, dev.handle, wanted)
        by_id: dict[int, int] = {}
        for v in values or ():
            if int(v.nvmlReturn) == 0 and 0 <= int(v.valueType) < len(_VALUE_ATTR):
                by_id[int(v.fieldId)] = int(getattr(v.value, _VALUE_ATTR[int(v.valueType)]))
        action = by_id.get(ids[0])
        recovery = "" if action is None else _RECOVERY.get(action, "reboot")
        counts = [by_id[i] for i in ids[1:] if i in by_id]
        if not counts:
            return recovery, 0
        total = sum(counts)
        base = self._nvlink_base.setdefault(dev.uuid, total)
        return recovery, max(0, total - base)

    def _shutdown(self) -> None:
        if self._devices is None or self._nvml is None:
            return
        self._devices = None
        if self._events is not None:
            self._get(self._nvml, self._nvml.nvmlEventSetFree, self._events)
            self._events = None
        try:
            self._nvml.nvmlShutdown()
        except self._nvml.NVMLError as exc:
            log.debug("nvmlShutdown: %s", exc)

    def _get(self, nv: Any, fn: Callable[..., Any], *args: Any) -> Any:
        """``fn(*args)``, or None when the GPU does not support or refuses the reading.

        An error that means NVML itself is gone propagates (the fetch fails)."""
        try:
            return fn(*args)
        except nv.NVMLError as exc:
            if getattr(exc, "value", None) in _FATAL:
                raise
            log.debug("%s: %s", getattr(fn, "__name__", fn), exc)
            return None

    def _reasons(self, nv: Any, handle: Any) -> Any:
        """Clock-event (throttle) reasons, through the current name or the older one (before 12.535)."""
        if not self._reasons_fn:
            current = "nvmlDeviceGetCurrentClocksEventReasons"
            self._reasons_fn = (
                current if hasattr(nv, current) else "nvmlDeviceGetCurrentClocksThrottleReasons"
            )
        try:
            return getattr(nv, self._reasons_fn)(handle)
        except nv.NVMLError as exc:
            legacy = "nvmlDeviceGetCurrentClocksThrottleReasons"
            if getattr(exc, "value", None) == _ERROR_FUNCTION_NOT_FOUND and self._reasons_fn != legacy:
                self._reasons_fn = legacy  # a driver older than the binding
                return self._get(nv, getattr(nv, legacy), handle)
            if getattr(exc, "value", None) in _FATAL:
                raise
            return None

    def _read_device(self, nv: Any, dev: _Device, slow: bool, now: float) -> tuple[Gpu, GpuDetail]:
        h = dev.handle
        get = self._get
        util = get(nv, nv.nvmlDeviceGetUtilizationRates, h)
        mem = get(nv, nv.nvmlDeviceGetMemoryInfo, h)
        power = get(nv, nv.nvmlDeviceGetPowerUsage, h)
        temp = get(nv, nv.nvmlDeviceGetTemperature, h, nv.NVML_TEMPERATURE_GPU)
        sm_clock = get(nv, nv.nvmlDeviceGetClockInfo, h, nv.NVML_CLOCK_SM)
        pstate = get(nv, nv.nvmlDeviceGetPerformanceState, h)
        reasons = self._reasons(nv, h)
        ecc = nv.NVML_MEMORY_ERROR_TYPE_UNCORRECTED, nv.NVML_VOLATILE_ECC
        ecc_unc = get(nv, nv.nvmlDeviceGetTotalEccErrors, h, *ecc)
        ecc_cor = get(nv, nv.nvmlDeviceGetTotalEccErrors, h, nv.NVML_MEMORY_ERROR_TYPE_CORRECTED, ecc[1])
        procs = get(nv, nv.nvmlDeviceGetComputeRunningProcesses, h)
        remapped = get(nv, nv.nvmlDeviceGetRemappedRows, h)  # (corrected, uncorrected, pending, failed)
        recovery, nvlink_errors = self._health_fields(nv, dev)
        xid, xid_at = self._xid.get(dev.uuid, (0, 0.0))
        if slow or dev.uuid not in self._slow:
            limit = get(nv, nv.nvmlDeviceGetEnforcedPowerLimit, h)
            tx = get(nv, nv.nvmlDeviceGetPcieThroughput, h, nv.NVML_PCIE_UTIL_TX_BYTES)
            rx = get(nv, nv.nvmlDeviceGetPcieThroughput, h, nv.NVML_PCIE_UTIL_RX_BYTES)
            self._slow[dev.uuid] = (_metric(limit, 1000.0), _metric(tx), _metric(rx), now)
        power_limit, pcie_tx, pcie_rx, pcie_at = self._slow[dev.uuid]
        processes = tuple(self._process(p) for p in procs or ())
        gpu = Gpu(
            node=self.host,
            index=dev.index,
            uuid=dev.uuid,
            model=dev.model,
            util=NA if util is None else float(util.gpu),
            mem_used=NA if mem is None else mem.used / _MIB,
            mem_total=NA if mem is None else mem.total / _MIB,
            temp=_metric(temp),
            power=_metric(power, 1000.0),
            power_limit=power_limit,
            sm_clock=_metric(sm_clock),
            sm_clock_max=dev.sm_clock_max,
            ecc_uncorrected=int(ecc_unc or 0),
            ecc_corrected=int(ecc_cor or 0),
            throttle=Throttle(int(reasons or 0)),
            processes=processes,
            xid=xid,
            xid_at=xid_at,
            recovery_action=recovery,
            remap_pending=bool(remapped and remapped[2]),
            remap_failed=bool(remapped and remapped[3]),
            nvlink_errors=nvlink_errors,
        )
        detail = GpuDetail(
            uuid=dev.uuid,
            pstate=None if pstate is None else int(pstate),
            pcie_tx_kbps=pcie_tx,
            pcie_rx_kbps=pcie_rx,
            pcie_at=pcie_at,
        )
        return gpu, detail

    def _node(self, gpus: list[Gpu]) -> Node:
        models = {g.model for g in gpus if g.model}
        return Node(
            name=self.host,
            source=self.name,
            pool="local",
            zone="",
            instance_type="",
            gpu_model=models.pop() if len(models) == 1 else ", ".join(sorted(models)),
            gpus_total=len(gpus),
            gpus_allocatable=len(gpus),
            gpus_requested=sum(1 for g in gpus if g.in_use),
            health=max((g.health for g in gpus), default=Health.OK),
        )

    def _process(self, p: Any) -> GpuProcess:
        """One of NVML's compute processes, with its owner and command line from ``/proc`` where readable
        ("" where not: another container's pid namespace, a process gone since, no rights)."""
        pid = int(p.pid)
        used = _metric(getattr(p, "usedGpuMemory", None), _MIB)
        where = self._proc / str(pid)
        try:
            uid = where.stat().st_uid
            argv = (where / "cmdline").read_bytes()
        except OSError:
            return GpuProcess(pid, used_mib=used)
        try:
            user = pwd.getpwuid(uid).pw_name
        except KeyError:
            user = str(uid)  # a uid with no name here (another container's user)
        command = argv.rstrip(b"\0").replace(b"\0", b" ").decode(errors="replace")
        return GpuProcess(pid, clean(user), used, clean(command))


def _retrieve(future: asyncio.Future[SourceData]) -> None:
    """Mark the outcome of a reading as seen, so that an abandoned one that failed logs no warning."""
    if not future.cancelled():
        future.exception()


def _text(value: Any) -> str:
    """A string from NVML: ``str`` in current bindings, ``bytes`` in older ones; "" for None."""
    if value is None:
        return ""
    return value.decode(errors="replace") if isinstance(value, bytes) else str(value)


def _metric(value: Any, divisor: float = 1.0) -> Metric:
    """A number from NVML scaled down by ``divisor``, or NA for a reading that was not there."""
    return NA if value is None else float(value) / divisor
