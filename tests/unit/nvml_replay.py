"""A replay of the real H200 NVML capture (``tests/fixtures/nvidia-h200/nvml.json``) behind pynvml's API.

:class:`NvmlReplay` implements the part of ``pynvml`` that :class:`aios_tui.sources.nvml.NvmlSource` calls.
Each call answers with the captured reading of the current sample (``use("load", 5)`` picks one), raises the
real ``pynvml.NVMLError`` subclass where the capture recorded an error, and can sleep the recorded cost.
Every call is recorded with the thread it ran on.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pynvml

CAPTURE_PATH = Path(__file__).resolve().parents[1] / "fixtures" / "nvidia-h200" / "nvml.json"


def load_capture(path: Path = CAPTURE_PATH) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


def nvml_error(name: str) -> pynvml.NVMLError:
    """The pynvml exception a capture names: ``NVMLError_NotSupported: Not Supported`` or just the class."""
    cls = getattr(pynvml, name.split(":", 1)[0].strip())
    assert isinstance(cls, type) and issubclass(cls, pynvml.NVMLError), name
    return cls()


class NvmlReplay:
    """pynvml, answering from the capture. ``devices`` copies of the captured GPU (distinct uuids)."""

    NVMLError = pynvml.NVMLError
    NVML_TEMPERATURE_GPU = pynvml.NVML_TEMPERATURE_GPU
    NVML_CLOCK_SM = pynvml.NVML_CLOCK_SM
    NVML_CLOCK_MEM = pynvml.NVML_CLOCK_MEM
    NVML_MEMORY_ERROR_TYPE_UNCORRECTED = pynvml.NVML_MEMORY_ERROR_TYPE_UNCORRECTED
    NVML_MEMORY_ERROR_TYPE_CORRECTED = pynvml.NVML_MEMORY_ERROR_TYPE_CORRECTED
    NVML_VOLATILE_ECC = pynvml.NVML_VOLATILE_ECC
    NVML_PCIE_UTIL_TX_BYTES = pynvml.NVML_PCIE_UTIL_TX_BYTES
    NVML_PCIE_UTIL_RX_BYTES = pynvml.NVML_PCIE_UTIL_RX_BYTES
    NVML_FI_DEV_GET_GPU_RECOVERY_ACTION = pynvml.NVML_FI_DEV_GET_GPU_RECOVERY_ACTION
    NVML_FI_DEV_NVLINK_CRC_FLIT_ERROR_COUNT_TOTAL = pynvml.NVML_FI_DEV_NVLINK_CRC_FLIT_ERROR_COUNT_TOTAL
    NVML_FI_DEV_NVLINK_REPLAY_ERROR_COUNT_TOTAL = pynvml.NVML_FI_DEV_NVLINK_REPLAY_ERROR_COUNT_TOTAL
    NVML_FI_DEV_NVLINK_RECOVERY_ERROR_COUNT_TOTAL = pynvml.NVML_FI_DEV_NVLINK_RECOVERY_ERROR_COUNT_TOTAL

    def __init__(
        self,
        capture: Mapping[str, Any] | None = None,
        *,
        phase: str = "idle",
        sample: int = 0,
        devices: int = 1,
        sleep: bool = False,
        init_error: str | None = None,
        errors: Mapping[str, str] | None = None,
        old_driver: bool = False,
        health: Mapping[str, Any] | None = None,
    ) -> None:
        """``init_error``: the NVMLError class ``nvmlInit`` raises (no driver). ``errors``: reading name →
        error class, over the capture (``{"temperature_c": "NVMLError_NotSupported"}``). ``old_driver``: the
        clock-event-reasons call is missing from the driver (``NVMLError_FunctionNotFound``).

        ``health``: the GPU-health readings, which the capture does not hold (it predates them), over
        :data:`HEALTHY`: values in the capture's style for a healthy H200 of its driver (580) — no remapped
        rows, recovery action none, NVLink NotSupported (as the capture's ``nvlink_state`` says) — with
        per-device overrides ``{"recovery_action": {1: 2}}`` and ``xids``, the XID events waiting."""
        self.capture = capture if capture is not None else load_capture()
        self.devices = devices
        self.sleep = sleep
        self.init_error = init_error
        self.errors = dict(errors or {})
        self.old_driver = old_driver
        self.health: dict[str, Any] = {**HEALTHY, **(health or {})}
        self.xids: list[tuple[int, int]] = list(self.health["xids"])
        """XID events waiting in the event set: ``(device, xid)``, oldest first."""
        self.calls: list[tuple[str, str]] = []
        """``(function, thread name)`` for every call, in order."""
        self.initialised = 0
        self._lock = threading.Lock()
        self.use(phase, sample)

    def use(self, phase: str, sample: int) -> None:
        """Answer from ``capture[phase][sample]`` from now on."""
        self._sample: Mapping[str, Any] = self.capture[phase][sample]["devices"][0]

    def count(self, function: str) -> int:
        return sum(1 for name, _ in self.calls if name == function)

    def threads(self) -> set[str]:
        return {thread for _, thread in self.calls}

    # --- plumbing --------------------------------------------------------------------------------------

    def _record(self, function: str) -> None:
        with self._lock:
            self.calls.append((function, threading.current_thread().name))

    def _reading(self, function: str, handle: int | None, key: str, static: bool = False) -> Any:
        self._record(function)
        if handle is not None and not 0 <= handle < self.devices:
            raise nvml_error("NVMLError_InvalidArgument")
        reading = (self.capture["static"][0] if static else self._sample)[key]
        if self.sleep and reading.get("us"):
            time.sleep(reading["us"] / 1e6)
        error = self.errors.get(key) or reading["error"]
        if error:
            raise nvml_error(error)
        return reading["value"]

    def _need_init(self) -> None:
        if not self.initialised:
            raise nvml_error("NVMLError_Uninitialized")

    # --- the API ---------------------------------------------------------------------------------------

    def nvmlInit(self) -> None:
        self._record("nvmlInit")
        if self.init_error:
            raise nvml_error(self.init_error)
        self.initialised += 1

    def nvmlShutdown(self) -> None:
        self._record("nvmlShutdown")
        self._need_init()
        self.initialised -= 1

    def nvmlDeviceGetCount(self) -> int:
        self._record("nvmlDeviceGetCount")
        self._need_init()
        return self.devices

    def nvmlDeviceGetHandleByIndex(self, index: int) -> int:
        self._record("nvmlDeviceGetHandleByIndex")
        self._need_init()
        if not 0 <= index < self.devices:
            raise nvml_error("NVMLError_InvalidArgument")
        return index

    def nvmlDeviceGetName(self, handle: int) -> str:
        return str(self._reading("nvmlDeviceGetName", handle, "name", static=True))

    def nvmlDeviceGetUUID(self, handle: int) -> str:
        uuid = str(self._reading("nvmlDeviceGetUUID", handle, "uuid", static=True))
        return uuid if handle == 0 else f"{uuid[:-2]}{handle:02x}"

    def nvmlDeviceGetMaxClockInfo(self, handle: int, clock: int) -> int:
        key = {self.NVML_CLOCK_SM: "max_clock_sm_mhz", self.NVML_CLOCK_MEM: "max_clock_mem_mhz"}[clock]
        return int(self._reading("nvmlDeviceGetMaxClockInfo", handle, key, static=True))

    def nvmlDeviceGetEnforcedPowerLimit(self, handle: int) -> int:
        return int(self._reading("nvmlDeviceGetEnforcedPowerLimit", handle, "enforced_power_limit_mw", True))

    def nvmlDeviceGetUtilizationRates(self, handle: int) -> SimpleNamespace:
        return SimpleNamespace(**self._reading("nvmlDeviceGetUtilizationRates", handle, "utilization"))

    def nvmlDeviceGetMemoryInfo(self, handle: int) -> SimpleNamespace:
        return SimpleNamespace(**self._reading("nvmlDeviceGetMemoryInfo", handle, "memory_info"))

    def nvmlDeviceGetPowerUsage(self, handle: int) -> int:
        return int(self._reading("nvmlDeviceGetPowerUsage", handle, "power_usage_mw"))

    def nvmlDeviceGetTemperature(self, handle: int, sensor: int) -> int:
        assert sensor == self.NVML_TEMPERATURE_GPU
        return int(self._reading("nvmlDeviceGetTemperature", handle, "temperature_c"))

    def nvmlDeviceGetClockInfo(self, handle: int, clock: int) -> int:
        key = {self.NVML_CLOCK_SM: "clock_sm_mhz", self.NVML_CLOCK_MEM: "clock_mem_mhz"}[clock]
        return int(self._reading("nvmlDeviceGetClockInfo", handle, key))

    def nvmlDeviceGetPerformanceState(self, handle: int) -> int:
        return int(self._reading("nvmlDeviceGetPerformanceState", handle, "pstate"))

    def nvmlDeviceGetCurrentClocksEventReasons(self, handle: int) -> int:
        if self.old_driver:
            self._record("nvmlDeviceGetCurrentClocksEventReasons")
            raise nvml_error("NVMLError_FunctionNotFound")
        return int(self._reading("nvmlDeviceGetCurrentClocksEventReasons", handle, "clocks_event_reasons"))

    def nvmlDeviceGetCurrentClocksThrottleReasons(self, handle: int) -> int:
        return int(self._reading("nvmlDeviceGetCurrentClocksThrottleReasons", handle, "clocks_event_reasons"))

    def nvmlDeviceGetTotalEccErrors(self, handle: int, error_type: int, counter: int) -> int:
        assert counter == self.NVML_VOLATILE_ECC
        kind = "uncorrected" if error_type == self.NVML_MEMORY_ERROR_TYPE_UNCORRECTED else "corrected"
        return int(self._reading("nvmlDeviceGetTotalEccErrors", handle, f"ecc_volatile_{kind}"))

    def nvmlDeviceGetComputeRunningProcesses(self, handle: int) -> list[SimpleNamespace]:
        procs: Iterable[Mapping[str, Any]] = self._reading(
            "nvmlDeviceGetComputeRunningProcesses", handle, "compute_processes"
        )
        return [SimpleNamespace(**p) for p in procs]

    def nvmlDeviceGetPcieThroughput(self, handle: int, counter: int) -> int:
        key = "pcie_tx_kbps" if counter == self.NVML_PCIE_UTIL_TX_BYTES else "pcie_rx_kbps"
        return int(self._reading("nvmlDeviceGetPcieThroughput", handle, key))

    # --- GPU health (not in the capture: see ``health``) -------------------------------------------------

    def _health(self, function: str, handle: int | None, key: str, default: Any) -> Any:
        self._record(function)
        self._need_init()
        if handle is not None and not 0 <= handle < self.devices:
            raise nvml_error("NVMLError_InvalidArgument")
        error = self.errors.get(key)
        if error:
            raise nvml_error(error)
        value = self.health.get(key, default)
        return value.get(handle, default) if isinstance(value, Mapping) else value

    def nvmlDeviceGetRemappedRows(self, handle: int) -> tuple[int, int, int, int]:
        rows = self._health("nvmlDeviceGetRemappedRows", handle, "remapped_rows", (0, 0, 0, 0))
        return tuple(rows)  # type: ignore[return-value]

    def nvmlDeviceGetFieldValues(self, handle: int, field_ids: list[int]) -> list[SimpleNamespace]:
        self._health("nvmlDeviceGetFieldValues", handle, "field_values", None)
        out = []
        for fid in field_ids:
            if fid == self.NVML_FI_DEV_GET_GPU_RECOVERY_ACTION:
                action = self._value(handle, "recovery_action")
                out.append(_field(fid, pynvml.NVML_VALUE_TYPE_UNSIGNED_INT, "uiVal", action))
            else:  # the CRC count carries the errors, replay and recovery count none
                errors = self._value(handle, "nvlink_errors")  # None: NotSupported, as captured
                if errors is not None and fid != self.NVML_FI_DEV_NVLINK_CRC_FLIT_ERROR_COUNT_TOTAL:
                    errors = 0
                out.append(_field(fid, pynvml.NVML_VALUE_TYPE_UNSIGNED_LONG_LONG, "ullVal", errors))
        return out

    def _value(self, handle: int, key: str) -> Any:
        value = self.health[key]
        return value.get(handle, HEALTHY[key]) if isinstance(value, Mapping) else value

    def nvmlEventSetCreate(self) -> str:
        self._health("nvmlEventSetCreate", None, "events", None)
        return "event-set"

    def nvmlDeviceRegisterEvents(self, handle: int, event_types: int, event_set: str) -> None:
        self._health("nvmlDeviceRegisterEvents", handle, "events", None)
        assert event_set == "event-set" and event_types == pynvml.nvmlEventTypeXidCriticalError

    def nvmlEventSetWait_v2(self, event_set: str, timeout_ms: int) -> SimpleNamespace:
        self._health("nvmlEventSetWait_v2", None, "events", None)
        assert event_set == "event-set" and timeout_ms == 0
        if not self.xids:
            raise nvml_error("NVMLError_Timeout")
        device, xid = self.xids.pop(0)
        return SimpleNamespace(device=device, eventType=pynvml.nvmlEventTypeXidCriticalError, eventData=xid)

    def nvmlEventSetFree(self, event_set: str) -> None:
        self._record("nvmlEventSetFree")


HEALTHY: Mapping[str, Any] = {
    "remapped_rows": (0, 0, 0, 0),
    "recovery_action": 0,
    "nvlink_errors": None,
    "xids": (),
}
"""GPU-health readings for a healthy H200 on driver 580 (not captured: see :class:`NvmlReplay`)."""


def _field(field_id: int, value_type: int, member: str, value: int | None) -> SimpleNamespace:
    """One ``c_nvmlFieldValue_t``: NotSupported (``nvmlReturn`` 3) where ``value`` is None."""
    if value is None:
        return SimpleNamespace(
            fieldId=field_id, valueType=value_type, nvmlReturn=3, value=SimpleNamespace(**{member: 0})
        )
    return SimpleNamespace(
        fieldId=field_id, valueType=value_type, nvmlReturn=0, value=SimpleNamespace(**{member: value})
    )
