"""Azure: virtual machines with GPUs, VM scale sets and AKS agent pools (see ``provider.py``), one source
over every subscription of ``[azure]`` on ``DefaultAzureCredential``."""

from __future__ import annotations

from functools import partial

from aios_tui.sources.clouds import CloudSpec, one_source
from aios_tui.sources.clouds.azure.prices import CATALOGUE

__all__ = ["SPEC"]

SPEC = CloudSpec(
    name="azure",
    catalogue=CATALOGUE,
    sources=partial(
        one_source,
        name="azure",
        label="Azure",
        scopes="subscriptions",
        provider="aios_tui.sources.clouds.azure.provider:AzureProvider",
    ),
)
