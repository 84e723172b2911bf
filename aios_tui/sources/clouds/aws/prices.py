"""EC2's instance types with GPUs (and the CPU types the embedded fleet uses): GPUs, size and on-demand price.

Prices are AWS us-east-1 (N. Virginia) Linux on-demand list prices in USD per instance-hour, as AWS's public
EC2 on-demand pricing page listed them in 2024 (source: aws.amazon.com/ec2/pricing/on-demand, read for
2024; not fetched at run time). They are a dated list price, not a quote: AWS cut P4 and P5 prices by up to
45% in June 2025, other regions differ (no regional figures are bundled: every region gets us-east-1's), and
the G4dn/G5/G6/G6e/P3 figures were transcribed from that page and may be off by a few cents. p5e.48xlarge and
p5en.48xlarge (8×H200) were sold mostly through Capacity Blocks; their figure is approximate: the p5 list
price scaled by the 1.10 ratio between AWS's p5e and p5 Capacity Block rates. Override any figure with
``[[aws.prices]]`` in the settings. GPU counts and models are AWS's instance-type specifications; GPU memory
is what NVML reports as the total per GPU, in MiB (approximate for V100, T4 and L40S). Spot prices are not
bundled: the source asks EC2 for the current ones.
"""

from __future__ import annotations

from aios_tui.sources.clouds.catalogue import Catalogue, InstanceType

__all__ = ["CATALOGUE"]

_TYPES = (
    InstanceType("p5.48xlarge", "H100", 8, 81559, 192, 2048, 98.32),
    InstanceType("p5e.48xlarge", "H200", 8, 143771, 192, 2048, 108.15),
    InstanceType("p5en.48xlarge", "H200", 8, 143771, 192, 2048, 108.15),
    InstanceType("p4d.24xlarge", "A100", 8, 40960, 96, 1152, 32.77),
    InstanceType("p4de.24xlarge", "A100", 8, 81920, 96, 1152, 40.97),
    InstanceType("p3.2xlarge", "V100", 1, 16160, 8, 61, 3.06),
    InstanceType("p3.8xlarge", "V100", 4, 16160, 32, 244, 12.24),
    InstanceType("p3.16xlarge", "V100", 8, 16160, 64, 488, 24.48),
    InstanceType("p3dn.24xlarge", "V100", 8, 32510, 96, 768, 31.212),
    InstanceType("g4dn.xlarge", "T4", 1, 15360, 4, 16, 0.526),
    InstanceType("g4dn.2xlarge", "T4", 1, 15360, 8, 32, 0.752),
    InstanceType("g4dn.4xlarge", "T4", 1, 15360, 16, 64, 1.204),
    InstanceType("g4dn.8xlarge", "T4", 1, 15360, 32, 128, 2.176),
    InstanceType("g4dn.12xlarge", "T4", 4, 15360, 48, 192, 3.912),
    InstanceType("g4dn.16xlarge", "T4", 1, 15360, 64, 256, 4.352),
    InstanceType("g4dn.metal", "T4", 8, 15360, 96, 384, 7.824),
    InstanceType("g5.xlarge", "A10G", 1, 23028, 4, 16, 1.006),
    InstanceType("g5.2xlarge", "A10G", 1, 23028, 8, 32, 1.212),
    InstanceType("g5.4xlarge", "A10G", 1, 23028, 16, 64, 1.624),
    InstanceType("g5.8xlarge", "A10G", 1, 23028, 32, 128, 2.448),
    InstanceType("g5.12xlarge", "A10G", 4, 23028, 48, 192, 5.67),
    InstanceType("g5.16xlarge", "A10G", 1, 23028, 64, 256, 4.096),
    InstanceType("g5.24xlarge", "A10G", 4, 23028, 96, 384, 8.144),
    InstanceType("g5.48xlarge", "A10G", 8, 23028, 192, 768, 16.288),
    InstanceType("g6.xlarge", "L4", 1, 23034, 4, 16, 0.805),
    InstanceType("g6.2xlarge", "L4", 1, 23034, 8, 32, 0.978),
    InstanceType("g6.4xlarge", "L4", 1, 23034, 16, 64, 1.323),
    InstanceType("g6.8xlarge", "L4", 1, 23034, 32, 128, 2.014),
    InstanceType("g6.12xlarge", "L4", 4, 23034, 48, 192, 4.6),
    InstanceType("g6.16xlarge", "L4", 1, 23034, 64, 256, 3.397),
    InstanceType("g6.24xlarge", "L4", 4, 23034, 96, 384, 6.676),
    InstanceType("g6.48xlarge", "L4", 8, 23034, 192, 768, 13.35),
    InstanceType("g6e.xlarge", "L40S", 1, 46068, 4, 32, 1.861),
    InstanceType("g6e.2xlarge", "L40S", 1, 46068, 8, 64, 2.242),
    InstanceType("g6e.4xlarge", "L40S", 1, 46068, 16, 128, 3.004),
    InstanceType("g6e.8xlarge", "L40S", 1, 46068, 32, 256, 4.529),
    InstanceType("g6e.12xlarge", "L40S", 4, 46068, 48, 384, 10.493),
    InstanceType("g6e.16xlarge", "L40S", 1, 46068, 64, 512, 7.577),
    InstanceType("g6e.24xlarge", "L40S", 4, 46068, 96, 768, 15.066),
    InstanceType("g6e.48xlarge", "L40S", 8, 46068, 192, 1536, 30.131),
    InstanceType("m7i.8xlarge", "", 0, 0, 32, 128, 1.61),
    InstanceType("m7i.4xlarge", "", 0, 0, 16, 64, 0.806),
)

CATALOGUE = Catalogue.of("aws", "us-east-1", "2024", _TYPES)
"""EC2 instance types by name."""
