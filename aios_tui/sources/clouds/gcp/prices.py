"""Compute Engine's machine types with GPUs, and the GPUs an N1 machine can carry: GPUs, size, list prices.

Where the figures come from: Google's public pricing pages, cloud.google.com/compute/vm-instance-pricing
(the accelerator-optimized machine types: A2, A3, A4, G2, which are priced whole, GPUs included) and
cloud.google.com/compute/gpus-pricing (the GPUs attached to N1 machines, priced per GPU), as they listed
us-central1 (Iowa) in 2024, before Google's 2025 cuts to A3 prices; transcribed by hand, never fetched at run
time, and not re-checked against the live pages for this table. They are a dated list price in USD per hour,
not a quote; how exact each one is:

- A2 (A100 40GB and 80GB), G2 (L4) and a3-highgpu-8g (8×H100, about $11 per GPU-hour) on-demand: the 2024
  list figures as transcribed, rounded to a tenth of a cent; unverified since, so take them as ±5 %.
  a3-highgpu-1g/2g/4g, sold later and mostly as spot or flex-start, are the 8g price pro rata: approximate.
- a3-megagpu-8g (H100 Mega), a3-ultragpu-8g (H200) and a4-highgpu-8g (B200): no figure (NaN, shown as
  unpriced). Google sold them mostly through reservations, the Dynamic Workload Scheduler and spot, and this
  table has no list price for them it can vouch for: set one with ``[[gcp.prices]]``.
- Spot: Google changes spot prices up to once a day, per region, so any bundled figure is approximate: about
  30 % of on-demand for A2 and A3 High and 40 % for G2 (the discounts the spot page showed in 2024), and
  for the N1 GPUs their long-standing preemptible prices. Within perhaps a third of what you pay today.
- Regions: none bundled. Google's list differs by region (europe-west4 and asia-southeast1 cost more than
  us-central1 for most GPUs), but this table knows no regional figure well enough to bundle it: every region
  gets us-central1's, and ``[[gcp.prices]]`` with a ``region`` sets yours.

N1 GPUs (``nvidia-tesla-t4``, ``-v100``, ``-p100``, ``-p4``) are entries of their own, one GPU each, priced
per GPU, named as Compute Engine names the accelerator type. The N1 machine they are attached to
(``n1-standard-8``) is billed for its vCPUs and memory too, which this table leaves out: at most such a
machine is priced by its GPUs (count × per-GPU price, an underestimate). The source prices a machine by its
own type's entry, so today an N1 machine with GPUs shows unpriced unless ``[[gcp.prices]]`` prices its type.

GPU counts and models are Google's machine-type specifications (cloud.google.com/compute/docs/gpus); GPU
memory is what NVML reports as one GPU's total, in MiB (approximate for B200, GB200, P100 and P4).
"""

from __future__ import annotations

import math

from aios_tui.sources.clouds.catalogue import Catalogue, InstanceType

__all__ = ["ACCELERATORS", "CATALOGUE"]

_NAN = math.nan

ACCELERATORS: dict[str, tuple[str, int]] = {
    "nvidia-h100-80gb": ("H100", 81559),
    "nvidia-h100-mega-80gb": ("H100", 81559),
    "nvidia-h200-141gb": ("H200", 143771),
    "nvidia-b200": ("B200", 183359),
    "nvidia-gb200": ("GB200", 189471),
    "nvidia-tesla-a100": ("A100", 40960),
    "nvidia-a100-80gb": ("A100", 81920),
    "nvidia-l4": ("L4", 23034),
    "nvidia-tesla-t4": ("T4", 15360),
    "nvidia-tesla-v100": ("V100", 16160),
    "nvidia-tesla-p100": ("P100", 16280),
    "nvidia-tesla-p4": ("P4", 7611),
}
"""Compute Engine's accelerator type names → (short GPU model, MiB of one GPU)."""


def _t(
    name: str, accelerator: str, gpus: int, vcpus: int, mem_gib: int, price: float, spot: float
) -> InstanceType:
    model, mib = ACCELERATORS[accelerator]
    return InstanceType(name, model, gpus, mib, vcpus, mem_gib, price, spot)


_TYPES = (
    # A3 High: 8×H100 80GB; the 1/2/4-GPU shapes pro rata (approximate).
    _t("a3-highgpu-1g", "nvidia-h100-80gb", 1, 26, 234, 11.032, 3.31),
    _t("a3-highgpu-2g", "nvidia-h100-80gb", 2, 52, 468, 22.063, 6.62),
    _t("a3-highgpu-4g", "nvidia-h100-80gb", 4, 104, 936, 44.127, 13.24),
    _t("a3-highgpu-8g", "nvidia-h100-80gb", 8, 208, 1872, 88.254, 26.48),
    # A3 Mega, A3 Ultra, A4: no list price bundled (see above).
    _t("a3-megagpu-8g", "nvidia-h100-mega-80gb", 8, 208, 1872, _NAN, _NAN),
    _t("a3-ultragpu-8g", "nvidia-h200-141gb", 8, 224, 2952, _NAN, _NAN),
    _t("a4-highgpu-8g", "nvidia-b200", 8, 224, 3968, _NAN, _NAN),
    # A2 Standard: A100 40GB.
    _t("a2-highgpu-1g", "nvidia-tesla-a100", 1, 12, 85, 3.673, 1.10),
    _t("a2-highgpu-2g", "nvidia-tesla-a100", 2, 24, 170, 7.347, 2.20),
    _t("a2-highgpu-4g", "nvidia-tesla-a100", 4, 48, 340, 14.694, 4.41),
    _t("a2-highgpu-8g", "nvidia-tesla-a100", 8, 96, 680, 29.387, 8.82),
    _t("a2-megagpu-16g", "nvidia-tesla-a100", 16, 96, 1360, 55.740, 16.72),
    # A2 Ultra: A100 80GB.
    _t("a2-ultragpu-1g", "nvidia-a100-80gb", 1, 12, 170, 5.069, 1.52),
    _t("a2-ultragpu-2g", "nvidia-a100-80gb", 2, 24, 340, 10.138, 3.04),
    _t("a2-ultragpu-4g", "nvidia-a100-80gb", 4, 48, 680, 20.275, 6.08),
    _t("a2-ultragpu-8g", "nvidia-a100-80gb", 8, 96, 1360, 40.550, 12.17),
    # G2: L4.
    _t("g2-standard-4", "nvidia-l4", 1, 4, 16, 0.707, 0.28),
    _t("g2-standard-8", "nvidia-l4", 1, 8, 32, 0.854, 0.34),
    _t("g2-standard-12", "nvidia-l4", 1, 12, 48, 1.000, 0.40),
    _t("g2-standard-16", "nvidia-l4", 1, 16, 64, 1.147, 0.46),
    _t("g2-standard-24", "nvidia-l4", 2, 24, 96, 2.001, 0.80),
    _t("g2-standard-32", "nvidia-l4", 1, 32, 128, 1.735, 0.69),
    _t("g2-standard-48", "nvidia-l4", 4, 48, 192, 4.002, 1.60),
    _t("g2-standard-96", "nvidia-l4", 8, 96, 384, 8.003, 3.20),
    # GPUs attached to N1 machines: per GPU, the machine's vCPUs and memory left out.
    _t("nvidia-tesla-t4", "nvidia-tesla-t4", 1, 0, 0, 0.35, 0.11),
    _t("nvidia-tesla-v100", "nvidia-tesla-v100", 1, 0, 0, 2.48, 0.74),
    _t("nvidia-tesla-p100", "nvidia-tesla-p100", 1, 0, 0, 1.46, 0.43),
    _t("nvidia-tesla-p4", "nvidia-tesla-p4", 1, 0, 0, 0.60, 0.216),
)

CATALOGUE = Catalogue.of("gcp", "us-central1", "2024", _TYPES)
"""Compute Engine machine types with GPUs (and N1's attachable GPUs) by name."""
