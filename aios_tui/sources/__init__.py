"""Sources: one module per backend (see ``base.py`` for the interface), and the factory that builds them."""

from __future__ import annotations

from collections.abc import Callable

from aios_tui.config import CLOUDS, ConfigError, Settings
from aios_tui.domain.clock import now as wall_now
from aios_tui.sources.base import Source, SourceError

__all__ = ["build_sources"]


def build_sources(settings: Settings, *, clock: Callable[[], float] = wall_now) -> list[Source]:
    """The sources the settings ask for, not yet started.

    ``[kubernetes] enabled`` gives one source per context (``k8s:<context>``); ``[nvml] enabled`` the local
    GPUs (``nvml``, which reports NVML being absent as a fetch error, not here); ``[[ssh_hosts]]`` one
    ``ssh`` source for every host (an unreachable host is a problem of that source, not here). The embedded
    fleet runs when ``[sim] enabled`` or when no real source is. Each cloud of the registry
    (:data:`aios_tui.sources.clouds.PROVIDERS`) whose section is enabled gives its sources: ``[aws]`` one
    per profile (``aws:<profile>``, or ``aws`` on the default credential chain), ``[gcp]`` one (``gcp``) over
    its projects, ``[azure]`` one (``azure``) over its subscriptions; they are listed after Kubernetes so that
    the cluster's own nodes win the merge. A kubeconfig that cannot be used, or an AWS profile that does not
    exist, is a :class:`ConfigError` naming the setting (``--sim`` clears them all
    first: see :func:`aios_tui.config.sim_only`).
    """
    sources: list[Source] = []
    if settings.kubernetes.enabled:
        from aios_tui.sources.kubernetes import sources_from_settings

        try:
            sources.extend(sources_from_settings(settings.kubernetes, clock=clock))
        except SourceError as exc:
            raise ConfigError(settings.config_file, "[kubernetes]", detail=str(exc)) from None
    several_contexts = len(sources) > 1
    if any(getattr(settings, name).enabled for name in CLOUDS):
        from aios_tui.sources.clouds import PROVIDERS

        for spec in PROVIDERS:  # after Kubernetes: the cluster's own node wins the merge on provider_id
            if getattr(settings, spec.name).enabled:
                sources.extend(spec.sources(settings))
    if settings.prometheus.enabled:
        sources.append(_prometheus(settings, several_contexts=several_contexts, clock=clock))
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
        ssh = settings.ssh
        sources.append(
            SshSource(
                hosts=settings.ssh_hosts, clock=clock, max_connections=ssh.max_connections, config=ssh.config
            )
        )
    if settings.sim.enabled or not sources:
        from aios_tui.sources.sim import SimSource

        sim = settings.sim
        sources.append(
            SimSource(
                seed=sim.seed,
                nodes=sim.nodes,
                interval=sim.interval,
                clock=clock,
                telemetry_period=sim.telemetry_period,
            )
        )
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
