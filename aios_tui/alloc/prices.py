"""A small bundled table of EC2 instance types and their on-demand prices.

Prices are AWS us-east-1 (N. Virginia) Linux on-demand list prices in USD per instance-hour, as AWS
published them in 2024. AWS cut P4 and P5 prices by up to 45% in June 2025, so treat the GPU figures as a
dated list price, not a quote. p5e.48xlarge (8×H200) was sold mostly through Capacity Blocks; its figure
here is approximate: the p5 list price scaled by the 1.10 ratio between AWS's p5e and p5 Capacity Block
rates. GPU memory is what NVML reports as the total per GPU, in MiB.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from aios_tui.domain.units import NA, Metric

__all__ = ["INSTANCE_TYPES", "InstanceType", "price_per_hour"]


@dataclass(frozen=True)
class InstanceType:
    """One EC2 instance type: its accelerators, size and on-demand price (USD per hour)."""

    name: str
    gpu_model: str
    """Short GPU model name ("H100", "L4"), "" for a CPU-only type."""
    gpus: int
    gpu_mem_mib: int
    """Memory of one GPU, MiB (0 for CPU-only types)."""
    vcpus: int
    mem_gib: int
    price_per_hour: float


_TYPES = (
    InstanceType("p5.48xlarge", "H100", 8, 81559, 192, 2048, 98.32),
    InstanceType("p5e.48xlarge", "H200", 8, 143771, 192, 2048, 108.15),
    InstanceType("p4d.24xlarge", "A100", 8, 40960, 96, 1152, 32.77),
    InstanceType("p4de.24xlarge", "A100", 8, 81920, 96, 1152, 40.97),
    InstanceType("g6.12xlarge", "L4", 4, 23034, 48, 192, 4.60),
    InstanceType("g6.48xlarge", "L4", 8, 23034, 192, 768, 13.35),
    InstanceType("g5.12xlarge", "A10G", 4, 23028, 48, 192, 5.67),
    InstanceType("m7i.8xlarge", "", 0, 0, 32, 128, 1.61),
    InstanceType("m7i.4xlarge", "", 0, 0, 16, 64, 0.806),
)

#: Instance types by name.
INSTANCE_TYPES: Mapping[str, InstanceType] = MappingProxyType({t.name: t for t in _TYPES})


def price_per_hour(instance_type: str) -> Metric:
    """On-demand USD per hour for ``instance_type``, NA when the table does not know it."""
    known = INSTANCE_TYPES.get(instance_type)
    return NA if known is None else known.price_per_hour
