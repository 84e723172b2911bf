"""Azure VM sizes with GPUs: GPUs, size and pay-as-you-go price.

Prices are Azure's pay-as-you-go Linux list prices in USD per VM-hour in East US (``eastus``), as Azure's
public Linux virtual machines pricing page (azure.microsoft.com/pricing/details/virtual-machines/linux) and
its Retail Prices API (prices.azure.com) listed them in the first half of 2025. They were transcribed, not
fetched at run time, and were not read again when this table was written (no network then): a dated list
price, not a quote. ND A100 v4 (27.197), NDm A100 v4 (32.77), NC A100 v4 (3.673 per GPU), NCasT4_v3, NCv3
and ND H100 v5 (98.32) are the list's figures as remembered and cross-checked against other published
tables; the NC H100 v5 and NVadsA10 v5 figures may be off by a few cents. ND H200 v5 had no East US list
price to read: its figure is an estimate, the ND H100 v5 price scaled by 1.10 (the method and ratio the AWS
table uses for its H200 instances). No regional figures are bundled: every region gets East US's, and
Azure's list is often 5-25 % higher elsewhere (West Europe, say). Override any figure, for a region or for
all, with ``[[azure.prices]]``.

Spot prices are not bundled: Azure's spot prices change by region and over time (the Retail Prices API lists
the current ones), and none could be read for a date when this table was written; a spot VM shows no price
unless ``[[azure.prices]]`` gives one. Reservations and savings plans are not modelled.

GPU counts and models are Azure's size specifications (learn.microsoft.com/azure/virtual-machines/sizes); GPU
memory is what NVML reports as the total per GPU, in MiB (approximate for V100, T4, A10 and the H100 NVL of
NC H100 v5). A size with a share of one GPU (NVadsA10 v5 below NV36ads, GPU partitioning) shows that GPU
with the share in its model (``A10 (1/6 GPU)``) and one GPU, as AWS's g6f does, and the share's memory.
"""

from __future__ import annotations

from aios_tui.sources.clouds.catalogue import Catalogue, InstanceType

__all__ = ["CATALOGUE"]

_H100 = 81559  # H100 80 GB SXM
_H100_NVL = 95830  # H100 NVL 94 GB
_H200 = 143771
_A100_40 = 40960
_A100_80 = 81920
_T4 = 15360
_V100 = 16160
_A10 = 23028

_TYPES = (
    # ND H100 v5 / ND H200 v5: 8 GPUs over NVLink, InfiniBand between VMs.
    InstanceType("Standard_ND96isr_H100_v5", "H100", 8, _H100, 96, 1900, 98.32),
    InstanceType("Standard_ND96isr_H200_v5", "H200", 8, _H200, 96, 1850, 108.15),
    # ND A100 v4 (40 GB) and NDm A100 v4 (80 GB).
    InstanceType("Standard_ND96asr_v4", "A100", 8, _A100_40, 96, 900, 27.197),
    InstanceType("Standard_ND96amsr_A100_v4", "A100", 8, _A100_80, 96, 1900, 32.77),
    # NC A100 v4: A100 80 GB PCIe.
    InstanceType("Standard_NC24ads_A100_v4", "A100", 1, _A100_80, 24, 220, 3.673),
    InstanceType("Standard_NC48ads_A100_v4", "A100", 2, _A100_80, 48, 440, 7.346),
    InstanceType("Standard_NC96ads_A100_v4", "A100", 4, _A100_80, 96, 880, 14.692),
    # NC H100 v5: H100 NVL.
    InstanceType("Standard_NC40ads_H100_v5", "H100", 1, _H100_NVL, 40, 320, 6.98),
    InstanceType("Standard_NC80adis_H100_v5", "H100", 2, _H100_NVL, 80, 640, 13.96),
    # NCasT4_v3.
    InstanceType("Standard_NC4as_T4_v3", "T4", 1, _T4, 4, 28, 0.526),
    InstanceType("Standard_NC8as_T4_v3", "T4", 1, _T4, 8, 56, 0.752),
    InstanceType("Standard_NC16as_T4_v3", "T4", 1, _T4, 16, 110, 1.204),
    InstanceType("Standard_NC64as_T4_v3", "T4", 4, _T4, 64, 440, 4.352),
    # NCv3: V100 16 GB.
    InstanceType("Standard_NC6s_v3", "V100", 1, _V100, 6, 112, 3.06),
    InstanceType("Standard_NC12s_v3", "V100", 2, _V100, 12, 224, 6.12),
    InstanceType("Standard_NC24s_v3", "V100", 4, _V100, 24, 448, 12.24),
    InstanceType("Standard_NC24rs_v3", "V100", 4, _V100, 24, 448, 13.464),
    # NVadsA10 v5: a share of an A10 below NV36ads (GPU partitioning), whole A10s from NV36ads up.
    InstanceType("Standard_NV6ads_A10_v5", "A10 (1/6 GPU)", 1, 4096, 6, 55, 0.454),
    InstanceType("Standard_NV12ads_A10_v5", "A10 (1/3 GPU)", 1, 8192, 12, 110, 0.908),
    InstanceType("Standard_NV18ads_A10_v5", "A10 (1/2 GPU)", 1, 12288, 18, 220, 1.60),
    InstanceType("Standard_NV36ads_A10_v5", "A10", 1, _A10, 36, 440, 3.20),
    InstanceType("Standard_NV36adms_A10_v5", "A10", 1, _A10, 36, 880, 4.52),
    InstanceType("Standard_NV72ads_A10_v5", "A10", 2, _A10, 72, 880, 6.52),
)

CATALOGUE = Catalogue.of("azure", "eastus", "2025-H1", _TYPES)
"""Azure VM sizes with GPUs by name (``Standard_ND96isr_H100_v5``)."""
