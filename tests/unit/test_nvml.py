"""The NVML source against a replay of the real H200 capture (tests/fixtures/nvidia-h200/nvml.json).

The capture's compute process (pid 429, 21482 MiB) was on the machine it was recorded on: the tests read
``/proc`` from a folder that has no such pid, except where a test gives the captured process the pid of a
real process it started here, so that its owner and command line can be read: the only figure changed.
"""

from __future__ import annotations

import asyncio
import copy
import os
import pwd
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from aios_tui.config import AwsSettings, NvmlSettings, Settings, SimSettings
from aios_tui.domain import GpuProcess, Health, SourceState, Throttle, is_na
from aios_tui.domain.text import is_clean
from aios_tui.poll import Poller
from aios_tui.sources import build_sources
from aios_tui.sources.base import Source, SourceError
from aios_tui.sources.nvml import NvmlSource
from aios_tui.sources.sim import SimSource
from tests.unit.nvml_replay import NvmlReplay, load_capture

CAPTURE = load_capture()
UUID = CAPTURE["static"][0]["uuid"]["value"]
MIB = 1024 * 1024
NO_PROC = Path(__file__).resolve().parent / "no-such-proc"
"""A /proc without the captured pid: its owner and command are unknown here."""


def source(replay: NvmlReplay, proc: Path = NO_PROC, **settings: Any) -> NvmlSource:
    return NvmlSource(
        settings=NvmlSettings(enabled=True, **settings),
        nvml=replay,
        host="gpu-box",
        clock=lambda: 5.0,
        proc=proc,
    )


def reading(phase: str, sample: int, key: str) -> Any:
    return CAPTURE[phase][sample]["devices"][0][key]["value"]


async def test_it_is_a_source() -> None:
    src = source(NvmlReplay())
    assert isinstance(src, Source)
    assert (src.name, src.kind, src.interval, src.timeout, src.slow_every) == ("nvml", "nvml", 2.0, 5.0, 5)
    await src.close()


async def test_idle_reading_gives_the_captured_figures() -> None:
    replay = NvmlReplay(phase="idle", sample=0)
    src = source(replay)
    data = await src.fetch()
    (gpu,) = data.gpus
    mem = reading("idle", 0, "memory_info")
    assert (gpu.node, gpu.index, gpu.uuid, gpu.model) == ("gpu-box", 0, UUID, "H200")
    assert gpu.util == 0.0
    assert gpu.mem_used == pytest.approx(mem["used"] / MIB)
    assert gpu.mem_total == 143771.0  # what nvidia-smi prints as memory.total [MiB]
    assert gpu.temp == 34.0
    assert gpu.power == pytest.approx(112.786)
    assert gpu.power_limit == 700.0
    assert (gpu.sm_clock, gpu.sm_clock_max) == (375.0, 1980.0)
    assert gpu.throttle is Throttle.GPU_IDLE
    assert (gpu.ecc_uncorrected, gpu.ecc_corrected, gpu.pod) == (0, 0, "")
    assert gpu.health is Health.OK
    assert (gpu.processes, gpu.in_use) == ((), False)
    (node,) = data.nodes
    assert (node.name, node.source, node.pool, node.gpu_model) == ("gpu-box", "nvml", "local", "H200")
    assert (node.gpus_total, node.gpus_allocatable, node.health) == (1, 1, Health.OK)
    assert (node.gpus_requested, node.gpus_free) == (0, 1)
    assert data.context == "gpu-box"
    detail = src.details()[UUID]
    assert detail.pstate == 0
    assert (detail.pcie_tx_kbps, detail.pcie_rx_kbps, detail.pcie_at) == (802.0, 598.0, 5.0)
    await src.close()
    assert replay.initialised == 0


@pytest.mark.parametrize("sample", [5, 14])
async def test_load_reading_shows_full_use_and_the_power_cap(sample: int) -> None:
    replay = NvmlReplay(phase="load", sample=sample)
    src = source(replay)
    data = await src.fetch()
    (gpu,) = data.gpus
    assert gpu.util == float(reading("load", sample, "utilization")["gpu"]) == 100.0
    assert 685 < float(gpu.power) < 700 == gpu.power_limit
    assert gpu.power == reading("load", sample, "power_usage_mw") / 1000
    assert gpu.throttle is Throttle.SW_POWER_CAP
    assert gpu.throttle.describe() == "power cap"
    assert gpu.temp == reading("load", sample, "temperature_c") >= 55
    assert gpu.mem_used == pytest.approx(22105.9, abs=0.1)  # ~21 GiB held by the matmul loop
    assert gpu.sm_clock == reading("load", sample, "clock_sm_mhz")
    assert gpu.health is Health.OK  # a power cap is not a fault
    # The matmul's process holds the GPU: in use, and no GPU of the node is free for a launch.
    assert gpu.processes == (GpuProcess(pid=429, used_mib=22525509632 / MIB),)
    assert gpu.processes[0].used_mib == 21482.0  # what nvidia-smi prints for it
    assert gpu.in_use
    assert (data.nodes[0].gpus_requested, data.nodes[0].gpus_free) == (1, 0)
    await src.close()


@pytest.fixture
def sleeper() -> Iterator[subprocess.Popen[bytes]]:
    """A real process here, whose argv[0] holds a terminal title escape and a bidi override."""
    argv0 = "train\x1b]0;pwned\x07\u202e.py"
    child = subprocess.Popen(
        [argv0, "-c", "import time; time.sleep(60)", "--lr=3e-4"], executable=sys.executable
    )
    yield child
    child.kill()
    child.wait()


async def test_a_process_gets_its_owner_and_command_line_from_proc(sleeper: subprocess.Popen[bytes]) -> None:
    capture = copy.deepcopy(CAPTURE)
    capture["load"][5]["devices"][0]["compute_processes"]["value"][0]["pid"] = sleeper.pid
    src = source(NvmlReplay(capture, phase="load", sample=5), proc=Path("/proc"))
    data = await src.fetch()
    await src.close()
    (proc,) = data.gpus[0].processes
    me = pwd.getpwuid(os.geteuid()).pw_name
    assert (proc.pid, proc.user, proc.used_mib) == (sleeper.pid, me, 21482.0)
    assert proc.command == "train.py -c import time; time.sleep(60) --lr=3e-4"  # escapes and bidi removed
    assert is_clean(proc.command)


async def test_nvml_strings_are_cleaned() -> None:
    capture = copy.deepcopy(CAPTURE)
    static = capture["static"][0]
    static["name"]["value"] = "NVIDIA H200\x1b[2J\x1b]52;c;cm0gLXJmIH4=\x07"
    static["uuid"]["value"] = UUID + "\u200b"
    (gpu,) = (await (src := source(NvmlReplay(capture))).fetch()).gpus
    await src.close()
    assert (gpu.model, gpu.uuid) == ("H200", UUID)


async def test_unsupported_readings_are_na_not_errors() -> None:
    unsupported = "NVMLError_NotSupported"
    errors = {
        key: unsupported
        for key in (
            "utilization",
            "memory_info",
            "temperature_c",
            "power_usage_mw",
            "enforced_power_limit_mw",
            "clock_sm_mhz",
            "max_clock_sm_mhz",
            "pstate",
            "clocks_event_reasons",
            "ecc_volatile_uncorrected",
            "compute_processes",
            "pcie_tx_kbps",
        )
    }
    errors["pcie_rx_kbps"] = "NVMLError_NoPermission"
    src = source(NvmlReplay(phase="load", sample=5, errors=errors))
    data = await src.fetch()
    (gpu,) = data.gpus
    for name in ("util", "mem_used", "mem_total", "temp", "power", "power_limit", "sm_clock", "sm_clock_max"):
        assert is_na(getattr(gpu, name)), name
    assert gpu.throttle is Throttle.NONE
    assert gpu.ecc_uncorrected == 0
    assert gpu.uuid == UUID and gpu.model == "H200"
    assert gpu.processes == ()
    detail = src.details()[UUID]
    assert detail.pstate is None
    assert is_na(detail.pcie_tx_kbps) and is_na(detail.pcie_rx_kbps)
    assert data.nodes[0].gpus_total == 1
    await src.close()


async def test_uncorrected_ecc_fails_the_gpu_and_the_node() -> None:
    capture = load_capture()
    capture["load"][5]["devices"][0]["ecc_volatile_uncorrected"]["value"] = 2
    src = source(NvmlReplay(capture, phase="load", sample=5, devices=2))
    data = await src.fetch()
    assert [g.ecc_uncorrected for g in data.gpus] == [2, 2]
    assert data.gpus[0].health is Health.FAIL
    assert data.nodes[0].health is Health.FAIL
    await src.close()


async def test_eight_gpus_have_distinct_uuids_and_indexes() -> None:
    src = source(NvmlReplay(devices=8))
    data = await src.fetch()
    assert [g.index for g in data.gpus] == list(range(8))
    assert len({g.uuid for g in data.gpus}) == 8
    assert data.nodes[0].gpus_total == 8
    await src.close()


async def test_an_older_driver_falls_back_to_the_throttle_reasons_call() -> None:
    replay = NvmlReplay(phase="load", sample=5, old_driver=True)
    src = source(replay)
    for _ in range(2):
        (gpu,) = (await src.fetch()).gpus
        assert gpu.throttle is Throttle.SW_POWER_CAP
    assert replay.count("nvmlDeviceGetCurrentClocksEventReasons") == 1  # tried once, then not again
    assert replay.count("nvmlDeviceGetCurrentClocksThrottleReasons") == 2
    await src.close()


async def test_slow_readings_come_every_nth_fetch_and_are_reused_between() -> None:
    replay = NvmlReplay(phase="idle", sample=0, devices=2)
    times = iter(range(100, 200))
    src = NvmlSource(settings=NvmlSettings(slow_every=3), nvml=replay, host="h", clock=lambda: next(times))
    pcie = []
    for i in range(7):
        replay.use("load", i)
        await src.fetch()
        pcie.append(src.details()[UUID].pcie_tx_kbps)
    # 2 GPUs × (tx, rx) on fetches 0, 3 and 6 only.
    assert replay.count("nvmlDeviceGetPcieThroughput") == 3 * 2 * 2
    assert replay.count("nvmlDeviceGetEnforcedPowerLimit") == 3 * 2
    assert replay.count("nvmlDeviceGetUtilizationRates") == 7 * 2
    tx = [reading("load", i, "pcie_tx_kbps") for i in (0, 3, 6)]
    assert pcie == [tx[0]] * 3 + [tx[1]] * 3 + [tx[2]]
    assert src.details()[UUID].pcie_at == 106
    assert replay.count("nvmlInit") == 1 and replay.count("nvmlDeviceGetMaxClockInfo") == 2
    await src.close()


async def test_nvml_calls_run_off_the_event_loop_on_one_thread() -> None:
    replay = NvmlReplay(devices=2)
    src = source(replay, slow_every=1)
    await src.fetch()
    await src.fetch()
    await src.close()
    assert replay.calls, "the replay recorded no call"
    threads = replay.threads()
    assert len(threads) == 1
    assert threading.current_thread().name not in threads
    assert threads.pop().startswith("nvml")
    assert replay.calls[-1][0] == "nvmlShutdown" and replay.initialised == 0


async def test_the_event_loop_keeps_running_during_a_slow_fetch() -> None:
    # With the recorded costs, one fetch of 8 GPUs sleeps ~0.4 s on its thread; the loop ticks meanwhile.
    src = source(NvmlReplay(devices=8, sleep=True), slow_every=1)
    ticks = 0

    async def tick() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0)
            ticks += 1

    ticker = asyncio.create_task(tick())
    try:
        await src.fetch()
    finally:
        ticker.cancel()
        await src.close()
    assert ticks > 10


@pytest.mark.parametrize(
    ("error", "reason"),
    [
        ("NVMLError_LibraryNotFound", "NVML Shared Library Not Found"),
        ("NVMLError_DriverNotLoaded", "Driver Not Loaded"),
    ],
)
async def test_no_driver_is_a_source_error_with_the_reason(error: str, reason: str) -> None:
    replay = NvmlReplay(init_error=error)
    src = source(replay)
    with pytest.raises(SourceError, match=f"^NVML not available: {reason}$"):
        await src.fetch()
    replay.init_error = None  # the driver is loaded later: the next fetch works
    assert len((await src.fetch()).gpus) == 1
    await src.close()
    assert replay.initialised == 0


async def test_without_the_binding_the_fetch_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "pynvml", None)  # import pynvml raises ImportError
    src = NvmlSource(settings=NvmlSettings(), host="h")
    with pytest.raises(SourceError, match=r"^NVML not available: nvidia-ml-py is not installed"):
        await src.fetch()
    await src.close()


async def test_nvml_lost_mid_run_fails_the_fetch_and_initialises_again() -> None:
    replay = NvmlReplay()
    src = source(replay)
    await src.fetch()
    replay.errors["utilization"] = "NVMLError_Uninitialized"
    with pytest.raises(SourceError, match=r"^NVML not available: Uninitialized$"):
        await src.fetch()
    del replay.errors["utilization"]
    await src.fetch()
    assert replay.count("nvmlInit") == 2
    await src.close()


async def test_poller_marks_nvml_error_while_the_sim_next_to_it_stays_ok() -> None:
    nvml = source(NvmlReplay(init_error="NVMLError_DriverNotLoaded"))
    sim = SimSource(seed=1, nodes=3, clock=lambda: 1_700_000_000.0)
    poller = Poller([nvml, sim], clock=lambda: 1_700_000_000.0)
    snap = await poller.refresh()
    health = snap.source("nvml")
    assert health is not None and health.state is SourceState.ERROR
    assert health.error == "NVML not available: Driver Not Loaded"  # words, no class name
    assert snap.source("sim").state is SourceState.OK  # type: ignore[union-attr]
    assert len(snap.nodes) == 3 and snap.gpus
    await poller.stop()


async def test_a_fetch_the_poller_abandons_leaves_the_next_one_refused_until_it_ends() -> None:
    gate = threading.Event()

    class Stuck(NvmlReplay):
        def nvmlDeviceGetUtilizationRates(self, handle: int) -> Any:
            gate.wait(5)
            return super().nvmlDeviceGetUtilizationRates(handle)

    src = source(Stuck())
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.05):
            await src.fetch()
    with pytest.raises(SourceError, match="still busy"):
        await src.fetch()
    gate.set()
    for _ in range(100):
        try:
            data = await src.fetch()
            break
        except SourceError:
            await asyncio.sleep(0.01)
    assert len(data.gpus) == 1
    await src.close()


def test_build_sources_runs_nvml_and_aws() -> None:
    (only,) = build_sources(Settings(nvml=NvmlSettings(enabled=True, interval=1.0, slow_every=4)))
    assert isinstance(only, NvmlSource)
    assert (only.name, only.interval, only.slow_every) == ("nvml", 1.0, 4)
    both = build_sources(Settings(nvml=NvmlSettings(enabled=True), sim=SimSettings(enabled=True, nodes=3)))
    assert [s.kind for s in both] == ["nvml", "sim"]
    with_aws = build_sources(Settings(nvml=NvmlSettings(enabled=True), aws=AwsSettings(enabled=True)))
    assert [s.kind for s in with_aws] == ["aws", "nvml"]


# --- the real binding -------------------------------------------------------------------------------------


def _real_nvml_error() -> str | None:
    """Why the real NVML cannot start here (no library, no driver), or None when it can."""
    import pynvml

    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError as exc:
        return str(exc)
    pynvml.nvmlShutdown()
    return None


REAL_NVML_ERROR = _real_nvml_error()


@pytest.mark.skipif(REAL_NVML_ERROR is None, reason="this machine has NVML and a driver")
async def test_real_pynvml_without_a_driver_is_a_source_error() -> None:
    src = NvmlSource(settings=NvmlSettings(enabled=True), host="h")
    with pytest.raises(SourceError, match=f"^NVML not available: {REAL_NVML_ERROR}$"):
        await src.fetch()
    await src.close()


@pytest.mark.skipif(REAL_NVML_ERROR is not None, reason=f"no NVML here: {REAL_NVML_ERROR}")
async def test_real_gpus_read_sanely() -> None:
    src = NvmlSource(settings=NvmlSettings(enabled=True, slow_every=1))
    data = await src.fetch()
    await src.close()
    assert data.gpus and data.nodes[0].gpus_total == len(data.gpus)
    for gpu in data.gpus:
        assert gpu.uuid.startswith(("GPU-", "MIG-")) and gpu.model
        assert 0 <= float(gpu.util) <= 100
        assert 0 < float(gpu.mem_used) <= float(gpu.mem_total)
        assert 0 < float(gpu.temp) < 120
        assert 0 < float(gpu.power) <= 1.2 * float(gpu.power_limit)
        assert 0 < float(gpu.sm_clock) <= float(gpu.sm_clock_max)
        # A lent test GPU is healthy: the driver asks for nothing (or, before R575, does not say).
        assert gpu.recovery_action in ("none", "")
        assert (gpu.remap_pending, gpu.remap_failed, gpu.nvlink_errors) == (False, False, 0)


# --- GPU health: recovery action, row remapping, NVLink errors, XIDs ------------------------------------
# The capture predates these readings: the replay answers them with values in its style for a healthy H200
# (no remapped rows, recovery action none, NVLink NotSupported as captured); the tests below override them.


async def test_a_healthy_gpu_reports_recovery_none_and_no_remap() -> None:
    replay = NvmlReplay()
    src = source(replay)
    (gpu,) = (await src.fetch()).gpus
    assert (gpu.recovery_action, gpu.remap_pending, gpu.remap_failed, gpu.nvlink_errors) == (
        "none",
        False,
        False,
        0,
    )
    assert (gpu.xid, gpu.xid_at) == (0, 0.0)
    assert replay.count("nvmlDeviceRegisterEvents") == 1 and replay.count("nvmlEventSetWait_v2") == 1
    await src.close()
    assert replay.count("nvmlEventSetFree") == 1


async def test_recovery_action_row_remap_nvlink_and_xid_with_its_time() -> None:
    replay = NvmlReplay(
        devices=3,
        health={
            "recovery_action": {1: 2, 2: 1},  # node reboot, GPU reset
            "remapped_rows": {1: (0, 1, 0, 1), 2: (2, 1, 1, 0)},  # failed; pending
            "nvlink_errors": {0: 1200},
            "xids": [(1, 48), (1, 79)],
        },
    )
    t = [100.0]
    src = NvmlSource(
        settings=NvmlSettings(enabled=True), nvml=replay, host="gpu-box", clock=lambda: t[0], proc=NO_PROC
    )
    g0, g1, g2 = (await src.fetch()).gpus
    assert (g1.xid, g1.xid_at, g1.recovery_action, g1.remap_failed) == (79, 100.0, "reboot", True)
    assert (g2.recovery_action, g2.remap_pending, g2.remap_failed, g2.xid) == ("reset", True, False, 0)
    # NVLink errors count from the source's first reading: 1,200 since the driver loaded are history.
    assert (g0.nvlink_errors, g0.recovery_action) == (0, "none")
    replay.health["nvlink_errors"] = {0: 1337}
    t[0] = 130.0
    g0, g1, _ = (await src.fetch()).gpus
    assert g0.nvlink_errors == 137
    assert (g1.xid, g1.xid_at) == (79, 100.0)  # no new XID: the last one and when it was seen stay
    replay.xids.append((0, 13))
    t[0] = 160.0
    g0, g1, _ = (await src.fetch()).gpus
    assert (g0.xid, g0.xid_at, g1.xid) == (13, 160.0, 79)
    await src.close()


async def test_a_driver_without_the_health_readings_leaves_them_unknown() -> None:
    replay = NvmlReplay(
        errors={
            "remapped_rows": "NVMLError_NotSupported",
            "field_values": "NVMLError_FunctionNotFound",
            "events": "NVMLError_NotSupported",
        }
    )
    src = source(replay)
    data = await src.fetch()
    (gpu,) = data.gpus
    assert (gpu.recovery_action, gpu.remap_pending, gpu.nvlink_errors, gpu.xid) == ("", False, 0, 0)
    assert gpu.util == 0.0 and gpu.health is Health.OK  # the rest of the reading is there
    assert replay.count("nvmlEventSetWait_v2") == 0
    await src.close()
