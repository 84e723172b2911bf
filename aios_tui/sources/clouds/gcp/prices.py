"""Compute Engine machine types with GPUs: placeholder until the GCP provider lands (filled by its author)."""

from __future__ import annotations

from aios_tui.sources.clouds.catalogue import Catalogue, InstanceType

__all__ = ["CATALOGUE"]

_TYPES: tuple[InstanceType, ...] = ()

CATALOGUE = Catalogue.of("gcp", "us-central1", "2025", _TYPES)
