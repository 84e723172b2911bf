"""What an XID means and what to do about it, after NVIDIA's XID catalog.

The driver logs an XID (``NVRM: Xid (PCI:0000:b4:00): 79, …``) when something goes wrong on a GPU; NVML and
DCGM report the last one. A number alone tells an on-call engineer nothing, and the remedies differ by
orders of magnitude in cost: restarting one application, resetting one GPU (its pods drained first),
rebooting the whole node, or sending the board back. NVIDIA's catalog for Ampere and newer GPUs
(https://docs.nvidia.com/deploy/xid-errors/analyzing-xid-catalog.html, "Resolution Bucket (Immediate
Action)" and "(Investigatory Action)") gives both per XID; this module bundles the rows an operator meets,
in our own words, so that the console works offline and the verdicts (:mod:`aios_tui.domain.health`) do not
depend on a download. It is a copy at one date (:data:`CATALOG_DATE`): XIDs NVIDIA added later show as
"XID n (not in the table of <date>)", to be watched.

The catalog's "workflow" buckets (WORKFLOW_XID_48, WORKFLOW_NVLINK_ERR, WORKFLOW_NVLINK5_ERR) are folded
into their first step here (reset the GPU), with the rest of the workflow in ``investigate``.
"""

from __future__ import annotations

import datetime
import enum
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

__all__ = ["CATALOG_DATE", "CATALOG_URL", "XID_TABLE", "XidAction", "XidInfo", "xid_info"]

CATALOG_URL = "https://docs.nvidia.com/deploy/xid-errors/analyzing-xid-catalog.html"
CATALOG_DATE = datetime.date(2026, 12, 6)
"""When :data:`XID_TABLE` was checked against NVIDIA's catalog (whose newest rows then named CUDA 12.9 and
driver R575)."""


class XidAction(enum.IntEnum):
    """NVIDIA's immediate action for an XID, ordered by what it costs: ``max()`` gives the one to take."""

    NONE = 0
    """Nothing now (the catalog's IGNORE): the GPU is healthy; the XID is worth a look if it repeats."""
    RESTART_APP = 1
    """The application failed on its own (a bug, an illegal address); the GPU is fine."""
    RESET_GPU = 2
    """Drain the GPU's work and reset it (``nvidia-smi -r``), or reboot the node where a reset is not
    possible."""
    REBOOT_NODE = 3
    """Drain the node and reboot it (the catalog's RESTART_BM)."""
    CONTACT_SUPPORT = 4
    """The hardware needs replacing or NVIDIA's support: drain it and open an RMA."""

    @property
    def words(self) -> str:
        return ("none", "restart the app", "reset GPU", "reboot node", "contact support/RMA")[self]


@dataclass(frozen=True, slots=True)
class XidInfo:
    """One row of the table."""

    code: int
    mnemonic: str
    """The driver's name for it (``ROBUST_CHANNEL_GPU_HAS_FALLEN_OFF_THE_BUS``): what ``dmesg`` shows."""
    meaning: str
    """A few words: ``fallen off the bus``."""
    action: XidAction
    """What to do now."""
    investigate: str
    """What to look at afterwards, and when to escalate."""

    @property
    def known(self) -> bool:
        return bool(self.mnemonic)


# fmt: off
_ROWS: tuple[XidInfo, ...] = (
    XidInfo(8, "ROBUST_CHANNEL_FIFO_ERROR_IDLE_TIMEOUT", "GPU stopped processing", XidAction.RESTART_APP,
            "contact NVIDIA support if it repeats"),
    XidInfo(13, "ROBUST_CHANNEL_GR_EXCEPTION", "graphics engine exception", XidAction.RESTART_APP,
            "usually the application (out-of-bounds access): run it under compute-sanitizer or cuda-gdb; "
            "a bug report if that finds nothing"),
    XidInfo(31, "ROBUST_CHANNEL_FIFO_ERROR_MMU_ERR_FLT", "GPU memory page fault", XidAction.RESTART_APP,
            "usually an illegal address in the application: compute-sanitizer or cuda-gdb"),
    XidInfo(32, "ROBUST_CHANNEL_PBDMA_ERROR", "corrupted push buffer stream", XidAction.RESTART_APP,
            "mostly PCIe signal quality, not the application: check the PCIe link and its errors"),
    XidInfo(43, "ROBUST_CHANNEL_RESETCHANNEL_VERIF_ERROR", "GPU stopped processing (application fault)",
            XidAction.NONE, "the GPU stays healthy; the application hit a fault and must end"),
    XidInfo(45, "ROBUST_CHANNEL_PREEMPTIVE_REMOVAL", "preemptive cleanup after earlier errors",
            XidAction.NONE, "follow the XID logged before it; alone: an application killed, a GPU reset"),
    XidInfo(46, "ROBUST_CHANNEL_GPU_TIMEOUT_ERROR", "GPU stopped processing", XidAction.RESET_GPU,
            "contact NVIDIA support if it repeats"),
    XidInfo(48, "ROBUST_CHANNEL_GPU_ECC_DBE", "double-bit ECC error", XidAction.RESET_GPU,
            "a reset or reboot clears it; check the ECC counts and SRAM thresholds (nvidia-smi -q -d ECC) "
            "and follow the RMA process if exceeded"),
    XidInfo(61, "PMU_BREAKPOINT", "micro-controller breakpoint", XidAction.RESET_GPU,
            "contact NVIDIA support if it repeats"),
    XidInfo(62, "PMU_HALT_ERROR", "micro-controller halt", XidAction.RESET_GPU,
            "contact NVIDIA support if it repeats"),
    XidInfo(63, "INFOROM_DRAM_RETIREMENT_EVENT", "memory row remapped", XidAction.NONE,
            "the remap takes effect at the next GPU reset (see remap pending)"),
    XidInfo(64, "INFOROM_DRAM_RETIREMENT_FAILURE", "memory row remap failed", XidAction.RESET_GPU,
            "contact support: a failed remap means the board should be replaced"),
    XidInfo(68, "ROBUST_CHANNEL_NVDEC0_ERROR", "video decoder exception", XidAction.RESTART_APP,
            "contact NVIDIA support if it repeats"),
    XidInfo(69, "ROBUST_CHANNEL_GR_CLASS_ERROR", "graphics engine class error", XidAction.RESTART_APP,
            "check the application and its CUDA version"),
    XidInfo(74, "NVLINK_ERROR", "NVLink error", XidAction.RESET_GPU,
            "the GPU at the other end may be the cause (nvidia-smi nvlink -e); if a reset or reboot does not "
            "clear it, contact the hardware vendor"),
    XidInfo(79, "ROBUST_CHANNEL_GPU_HAS_FALLEN_OFF_THE_BUS", "fallen off the bus", XidAction.REBOOT_NODE,
            "the PCIe link went down: read the system event log and kernel PCIe errors; contact support if "
            "it repeats"),
    XidInfo(92, "EXCESSIVE_SBE_INTERRUPTS", "high single-bit ECC rate", XidAction.NONE,
            "contact support if the rate stays high"),
    XidInfo(94, "ROBUST_CHANNEL_CONTAINED_ERROR", "contained memory error", XidAction.RESTART_APP,
            "only the one application is hit; reset the GPU when convenient"),
    XidInfo(95, "ROBUST_CHANNEL_UNCONTAINED_ERROR", "uncontained memory error", XidAction.RESET_GPU,
            "every application on the GPU is hit; it must be reset before they restart"),
    XidInfo(109, "ROBUST_CHANNEL_CTXSW_TIMEOUT_ERROR", "context switch timeout", XidAction.RESET_GPU,
            "contact NVIDIA support if it repeats"),
    XidInfo(110, "SEC_FAULT_ERROR", "security fault", XidAction.RESET_GPU,
            "undo recent hardware changes and cold-reset the node; then the hardware vendor"),
    XidInfo(119, "GSP_RPC_TIMEOUT", "GSP RPC timeout", XidAction.RESET_GPU,
            "if it comes back after a power cycle, follow NVIDIA's GPU debug guidelines"),
    XidInfo(120, "GSP_ERROR", "GSP error", XidAction.RESET_GPU,
            "if it comes back after a power cycle, follow NVIDIA's GPU debug guidelines"),
    XidInfo(121, "C2C_ERROR", "C2C link error (corrected)", XidAction.NONE,
            "no impact now; reset the GPU in a service window to retrain the link"),
    XidInfo(136, "ALI_TRAINING_FAIL", "NVLink training failed", XidAction.RESET_GPU,
            "check the link's signal integrity"),
    XidInfo(137, "NVLINK_PRIV_ERR", "NVLink privilege error", XidAction.NONE,
            "usually an illegal peer access by the application: compute-sanitizer or cuda-gdb"),
    XidInfo(140, "UNRECOVERABLE_ECC_ERROR_ESCAPE", "unrecovered ECC error", XidAction.RESET_GPU,
            "contact the hardware vendor if it persists after the reset"),
    XidInfo(143, "GPU_INIT_ERROR", "GPU initialisation failed", XidAction.RESET_GPU,
            "contact NVIDIA support if it repeats"),
    *(
        XidInfo(code, f"NVLINK_{unit}_ERROR", f"NVLink {unit} error", XidAction.RESET_GPU,
                "NVLink5 workflow: reset the GPU; if the error returns, check the link and NVSwitch tray, "
                "then contact support")
        for code, unit in ((144, "SAW"), (145, "RLW"), (146, "TLW"), (147, "TREX"), (148, "NVLPW_CTRL"),
                           (149, "NETIR"), (150, "MSE"))
    ),
    XidInfo(154, "GPU_RECOVERY_ACTION_CHANGED", "recovery action changed", XidAction.NONE,
            "follows another XID: the GPU's recovery action says what it needs"),
    XidInfo(155, "NVLINK_SW_DEFINED_ERROR", "NVLink link down (intended)", XidAction.RESET_GPU,
            "check whether someone took the link down"),
    XidInfo(156, "RESOURCE_RETIREMENT_EVENT", "resource retired", XidAction.RESET_GPU,
            "the retirement takes effect at the reset"),
    XidInfo(157, "RESOURCE_RETIREMENT_FAILURE", "resource retirement failed", XidAction.NONE,
            "nothing left to repair with; the XID may return: contact support"),
    XidInfo(158, "GPU_FATAL_TIMEOUT", "GPU fatal timeout", XidAction.RESET_GPU,
            "contact NVIDIA support if it repeats"),
)
# fmt: on

XID_TABLE: Mapping[int, XidInfo] = MappingProxyType({row.code: row for row in _ROWS})
"""The bundled catalog rows, by XID."""


def xid_info(code: int) -> XidInfo:
    """The row for ``code``; an XID not in the table gets a row saying so, with no immediate action: it is
    worth a look (the node's verdict says "watch"), not a drain on a guess."""
    row = XID_TABLE.get(code)
    if row is not None:
        return row
    return XidInfo(
        code,
        "",
        f"not in the table of {CATALOG_DATE.isoformat()}",
        XidAction.NONE,
        f"look it up in NVIDIA's catalog ({CATALOG_URL})",
    )
