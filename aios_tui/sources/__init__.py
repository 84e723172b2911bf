"""Sources: one module per backend (see ``base.py`` for the interface), and the factory that builds them."""

from __future__ import annotations

import time
from collections.abc import Callable

from aios_tui.config import ConfigError, Settings, real_sources_enabled
from aios_tui.sources.base import Source, SourceError

__all__ = ["build_sources"]


def build_sources(settings: Settings, *, clock: Callable[[], float] = time.time) -> list[Source]:
    """The sources the settings ask for, not yet started.

    ``[kubernetes] enabled`` gives one source per context (``k8s:<context>``); ``[nvml] enabled`` the local
    GPUs (``nvml``, which reports NVML being absent as a fetch error, not here); ``[[ssh_hosts]]`` one
    ``ssh`` source for every host (an unreachable host is an error on its node, not here). The embedded
    fleet runs when ``[sim] enabled`` or when no real source is. A real source that this version cannot yet
    run, or a kubeconfig that cannot be used, is a :class:`ConfigError` naming the setting (``--sim`` clears
    them all first: see :func:`aios_tui.config.sim_only`).
    """
    enabled = real_sources_enabled(settings)
    runnable = ("Kubernetes", "Prometheus", "NVML", "SSH hosts")
    unavailable = [(where, what) for where, what in enabled if what not in runnable]
    if unavailable:
        where, what = unavailable[0]
        raise ConfigError(
            settings.config_file,
            where,
            detail=f"the {what} source is not available in this version yet; use --sim or disable it",
        )
    sources: list[Source] = []
    if settings.kubernetes.enabled:
        from aios_tui.sources.kubernetes import sources_from_settings

        try:
            sources.extend(sources_from_settings(settings.kubernetes, clock=clock))
        except SourceError as exc:
            raise ConfigError(settings.config_file, "[kubernetes]", detail=str(exc)) from None
    if settings.prometheus.enabled:
        sources.append(_prometheus(settings, several_contexts=len(sources) > 1, clock=clock))
    if settings.nvml.enabled:
        from aios_tui.sources.nvml import NvmlSource

        sources.append(NvmlSource(settings=settings.nvml, clock=clock))
    if settings.ssh_hosts:
        from aios_tui.sources.ssh import SshSource, parse_labels

        for i, host in enumerate(settings.ssh_hosts, start=1):
            try:
                parse_labels(host.labels)
            except ValueError as exc:
                raise ConfigError(
                    settings.config_file, f"[[ssh_hosts]] #{i} labels", detail=str(exc)
                ) from None
        max_connections = settings.ssh.max_connections
        sources.append(SshSource(hosts=settings.ssh_hosts, clock=clock, max_connections=max_connections))
    if settings.sim.enabled or not sources:
        from aios_tui.sources.sim import SimSource

        sim = settings.sim
        sources.append(SimSource(seed=sim.seed, nodes=sim.nodes, interval=sim.interval, clock=clock))
    return sources


def _prometheus(settings: Settings, *, several_contexts: bool, clock: Callable[[], float]) -> Source:
    """The Prometheus source; with several Kubernetes contexts it must say which one its series describe."""
    from aios_tui.sources.prometheus import PrometheusSource

    prom = settings.prometheus
    if several_contexts and not prom.context:
        raise ConfigError(
            settings.config_file,
            "[prometheus] context",
            detail="several Kubernetes contexts are watched: name the one these series describe",
        )
    try:
        return PrometheusSource(
            settings=prom, idle_window=settings.idle_window, qualify=several_contexts, clock=clock
        )
    except SourceError as exc:
        raise ConfigError(settings.config_file, "[prometheus] bearer_token_env", detail=str(exc)) from None
