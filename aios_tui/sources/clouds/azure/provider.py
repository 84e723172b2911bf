"""Placeholder while the provider is written (it must not land as is)."""

from __future__ import annotations

from collections.abc import Iterable

from aios_tui.sources.base import SourceError

__all__ = ["AzureProvider"]


class AzureProvider:
    def __init__(
        self,
        *,
        subscriptions: Iterable[str] = (),
        regions: Iterable[str] = (),
        endpoint_url: str = "",
        timeout: float = 10.0,
        max_attempts: int = 3,
    ) -> None:
        raise SourceError("not built yet")
