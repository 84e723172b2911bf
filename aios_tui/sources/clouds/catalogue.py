"""A cloud's bundled catalogue of machine types: their accelerators, size and list price, so that nothing
needs the network to say what a machine has and costs.

Each provider package has one (``aws/prices.py``, ``gcp/prices.py``, ``azure/prices.py``): a dated list price
per machine type in the provider's home region, and per region where the provider's list differs and the
table knows it. A region the table does not know gets the home region's figure (a list price, not a quote:
the settings' ``[[<provider>.prices]]`` override any figure, for a region or for all).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from aios_tui.domain.units import NA, Metric

__all__ = ["Catalogue", "InstanceType"]


@dataclass(frozen=True)
class InstanceType:
    """One machine type: its accelerators, size and on-demand list price (USD per hour, home region)."""

    name: str
    gpu_model: str
    """Short accelerator model name ("H100", "L4", "Trainium"), "" for a CPU-only type."""
    gpus: int
    gpu_mem_mib: int
    """Memory of one GPU, MiB (0 for CPU-only types)."""
    vcpus: int
    mem_gib: int
    price_per_hour: float
    """NaN where no list price is bundled (the type shows, unpriced)."""
    spot_price_per_hour: float = math.nan
    """A dated spot list price where the provider publishes a fixed one (Google Cloud, Azure); NaN else."""
    region_prices: Mapping[str, float] = field(default_factory=dict, hash=False)
    """On-demand list price in other regions, where it differs from the home region's."""


@dataclass(frozen=True)
class Catalogue:
    """A provider's machine types by name, with where their prices come from."""

    provider: str
    """``aws``, ``gcp``, ``azure``."""
    home_region: str
    """The region ``InstanceType.price_per_hour`` is for."""
    as_of: str
    """When the list prices were read (``2025-06``)."""
    types: Mapping[str, InstanceType]

    @classmethod
    def of(cls, provider: str, home_region: str, as_of: str, types: Iterable[InstanceType]) -> Catalogue:
        return cls(provider, home_region, as_of, MappingProxyType({t.name: t for t in types}))

    def get(self, name: str) -> InstanceType | None:
        return self.types.get(name)

    def price(
        self,
        name: str,
        region: str = "",
        overrides: Mapping[tuple[str, str], float] | None = None,
        *,
        spot: bool = False,
    ) -> Metric:
        """USD per hour for ``name`` in ``region``: ``overrides`` first (keyed ``(type, region)``, region ""
        for every region), then the table's figure for that region, else the home region's; NA when unknown.
        ``spot``: the table's spot list price (NA where it has none)."""
        if overrides:
            for key in ((name, region), (name, "")):
                if key in overrides:
                    return overrides[key]
        known = self.types.get(name)
        if known is None:
            return NA
        price = known.spot_price_per_hour if spot else known.region_prices.get(region, known.price_per_hour)
        return NA if math.isnan(price) else price
