"""Google Cloud: Compute Engine instances with GPUs, managed instance groups and GKE node pools (see
``provider.py``), one source over every project of ``[gcp]`` on Application Default Credentials."""

from __future__ import annotations

from functools import partial

from aios_tui.sources.clouds import CloudSpec, one_source
from aios_tui.sources.clouds.gcp.prices import CATALOGUE

__all__ = ["SPEC"]

SPEC = CloudSpec(
    name="gcp",
    catalogue=CATALOGUE,
    sources=partial(
        one_source,
        name="gcp",
        label="Google Cloud",
        scopes="projects",
        provider="aios_tui.sources.clouds.gcp.provider:GcpProvider",
    ),
)
