"""Azure VM sizes with GPUs: placeholder until the Azure provider lands (filled by its author)."""

from __future__ import annotations

from aios_tui.sources.clouds.catalogue import Catalogue, InstanceType

__all__ = ["CATALOGUE"]

_TYPES: tuple[InstanceType, ...] = ()

CATALOGUE = Catalogue.of("azure", "eastus", "2025", _TYPES)
