"""The clouds: one package per provider, listed here, and what the rest of the console asks of them.

A provider package (``aws/``, ``gcp/``, ``azure/``) holds its SDK code (``provider.py``, imported only when
the provider is enabled), its bundled catalogue of machine types and list prices (``prices.py``) and, in its
``__init__``, a :class:`CloudSpec` that says how to build its sources from the settings. Its settings
section is a dataclass of :mod:`aios_tui.config` (the layer below, which reads the file) named in
``config.CLOUDS``. Everything else iterates :data:`PROVIDERS`: building the sources, the list prices of
Kubernetes nodes and of nodes no source priced, and :class:`~aios_tui.sources.clouds.base.CloudSource`,
which turns any provider into nodes, pools and prices.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from aios_tui.domain.units import NA, Metric
from aios_tui.sources.clouds.catalogue import Catalogue, InstanceType

if TYPE_CHECKING:
    from aios_tui.config import Settings
    from aios_tui.sources.base import Source

__all__ = ["PROVIDERS", "CloudSpec", "instance_type", "list_price", "one_source"]


@dataclass(frozen=True)
class CloudSpec:
    """One provider as the registry knows it."""

    name: str
    """Its settings section and source name (``aws``)."""
    catalogue: Catalogue
    sources: Callable[[Settings], list[Source]]
    """Its sources for these settings, not started (no network); raises ``ConfigError`` naming the key."""


def one_source(settings: Settings, *, name: str, label: str, scopes: str, provider: str) -> list[Source]:
    """The single source (``name``) of a cloud whose one credential chain reaches every scope of its section
    (Google Cloud projects, Azure subscriptions): ``provider`` is the class, as ``module:Class``, built with
    the section's scopes (the ``scopes`` key), regions, endpoint, timeout and tries. A missing SDK (the extra
    not installed) or a constructor's refusal is a ``ConfigError`` naming the key; no network here."""
    from aios_tui.config import ConfigError
    from aios_tui.sources.base import SourceError
    from aios_tui.sources.clouds.base import CloudSource, price_overrides

    section: Any = getattr(settings, name)
    module, _, cls = provider.partition(":")
    try:
        provider_cls = getattr(importlib.import_module(module), cls)
    except ImportError as exc:  # the extra is not installed
        raise ConfigError(
            settings.config_file,
            f"[{name}] enabled",
            detail=f"the {label} libraries are not installed ({exc.name}): pip install 'aios-tui[{name}]'",
        ) from None
    try:
        built = provider_cls(
            **{scopes: getattr(section, scopes)},
            regions=section.regions,
            endpoint_url=section.endpoint_url,
            timeout=section.timeout,
            max_attempts=section.max_attempts,
        )
    except SourceError as exc:
        raise ConfigError(settings.config_file, f"[{name}] {scopes}", detail=str(exc)) from None
    read_only = settings.read_only or section.read_only
    why = "read_only in the settings" if settings.read_only else f"{name} read_only in the settings"
    return [
        CloudSource(
            built,
            name=name,
            interval=section.interval,
            timeout=section.timeout,
            read_only=read_only,
            read_only_why=why,
            prices=price_overrides(section.prices),
        )
    ]


def _providers() -> tuple[CloudSpec, ...]:
    from aios_tui.sources.clouds import aws, azure, gcp

    return (aws.SPEC, gcp.SPEC, azure.SPEC)


PROVIDERS: tuple[CloudSpec, ...] = _providers()
"""Every provider, in the order their sources are built (after Kubernetes, whose nodes win the merge)."""

_BY_TYPE: dict[str, InstanceType] = {}
for _spec in PROVIDERS:
    for _name, _t in _spec.catalogue.types.items():
        _BY_TYPE.setdefault(_name, _t)
_OWNER = {name: spec.catalogue for spec in PROVIDERS for name in spec.catalogue.types}


def instance_type(name: str) -> InstanceType | None:
    """The machine type ``name`` in whichever cloud's catalogue has it (their names do not overlap)."""
    return _BY_TYPE.get(name)


def list_price(name: str, region: str = "", lifecycle: str = "") -> Metric:
    """The bundled list price of machine type ``name`` in ``region`` (its cloud's home region's where the
    table has no figure for it): on-demand, or the spot list price for ``lifecycle`` ``spot`` (NA where the
    table has none: an on-demand figure would overstate a spot machine about threefold); NA for a capacity
    block and for a type no catalogue knows."""
    catalogue = _OWNER.get(name)
    if catalogue is None or lifecycle == "capacity-block":
        return NA
    return catalogue.price(name, region, spot=lifecycle == "spot")
