"""Azure: see provider.py for what is read and how."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aios_tui.config import ConfigError
from aios_tui.sources.clouds import CloudSpec
from aios_tui.sources.clouds.azure.prices import CATALOGUE

if TYPE_CHECKING:
    from aios_tui.config import Settings
    from aios_tui.sources.base import Source

__all__ = ["SPEC"]


def _sources(settings: Settings) -> list[Source]:
    """One cloud source, ``azure``, over every configured subscriptions (no network until the first fetch)."""
    from aios_tui.sources.base import SourceError
    from aios_tui.sources.clouds.azure.provider import AzureProvider
    from aios_tui.sources.clouds.base import CloudSource, price_overrides

    s = settings.azure
    read_only = settings.read_only or s.read_only
    why = "read_only in the settings" if settings.read_only else "azure read_only in the settings"
    try:
        provider = AzureProvider(
            subscriptions=s.subscriptions,
            regions=s.regions,
            endpoint_url=s.endpoint_url,
            timeout=s.timeout,
            max_attempts=s.max_attempts,
        )
    except SourceError as exc:
        raise ConfigError(settings.config_file, "[azure] subscriptions", detail=str(exc)) from None
    return [
        CloudSource(
            provider,
            name="azure",
            interval=s.interval,
            timeout=s.timeout,
            read_only=read_only,
            read_only_why=why,
            prices=price_overrides(s.prices),
        )
    ]


SPEC = CloudSpec(name="azure", catalogue=CATALOGUE, sources=_sources)
