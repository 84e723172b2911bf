"""Sources: one module per backend (see ``base.py`` for the interface), and the factory that builds them."""

from __future__ import annotations

import time
from collections.abc import Callable

from aios_tui.config import ConfigError, Settings, real_sources_enabled
from aios_tui.sources.base import Source

__all__ = ["build_sources"]


def build_sources(settings: Settings, *, clock: Callable[[], float] = time.time) -> list[Source]:
    """The sources the settings ask for, not yet started.

    The embedded fleet runs when ``[sim] enabled`` or when no real source is. A real source that this
    version cannot yet run is a :class:`ConfigError` naming the setting that enabled it (``--sim`` clears
    them all first: see :func:`aios_tui.config.sim_only`).
    """
    unavailable = real_sources_enabled(settings)
    if unavailable:
        where, what = unavailable[0]
        raise ConfigError(
            settings.config_file,
            where,
            detail=f"the {what} source is not available in this version yet; use --sim or disable it",
        )
    from aios_tui.sources.sim import SimSource

    sim = settings.sim
    return [SimSource(seed=sim.seed, nodes=sim.nodes, interval=sim.interval, clock=clock)]
