"""The embedded fleet's GPU telemetry: readings as DCGM would scrape them, refreshed a slice at a time.

A reading is a function of the GPU, what it runs and the time (:mod:`.signals`). Each fetch re-reads the
GPUs actions touched plus the next slice of a rotation (a staggered DCGM scrape) and keeps the others' last
readings: a tenth of the GPUs per fetch, 10 % of them at 5,000 nodes, 14 % at 500 and 34 % at 200
(docs/benchmarks.md).
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from aios_tui.domain import IDLE_UTIL_PCT, NA, Gpu, JobState, Metric, Throttle
from aios_tui.sources.sim.signals import gpu_physics, serving_stats, unit
from aios_tui.sources.sim.world import Fleet, SimEndpoint, SimJob, SimNode, demand, ready_replicas

__all__ = ["Telemetry", "endpoint_values", "gpu_state"]

_SLICE_MIN, _SLICE_MAX, _SLICE_SHARE = 512, 4096, 10
"""GPUs refreshed per fetch: a tenth of the fleet, at least 512 and at most 4096."""

Values = tuple[float, float, float, float, float, Throttle]
"""Utilisation, memory used, temperature, power, SM clock and throttle reasons."""


class Telemetry:
    """Every GPU's last reading (in the fleet's GPU order) and the rotation that refreshes them."""

    def __init__(self) -> None:
        self.objs: list[Gpu] = []
        self.uuid_pos: dict[str, int] = {}
        """GPU uuid → its position in the fleet's GPU list."""
        self.cursor = 0
        """Where the next fetch's slice of the rotation starts."""
        self.rho: dict[str, float] = {}
        """Endpoint key → its load at ``rho_t`` on the replicas ready then (set as endpoints are built)."""
        self.rho_t = math.nan

    def rho_at(self, fleet: Fleet, ep: SimEndpoint, t: float, ready: int | None = None) -> float:
        """Load at ``t`` on the replicas ready now (or on ``ready`` of them: the warm-up's, at the start)."""
        if ready is None and t == self.rho_t and ep.key in self.rho:
            return self.rho[ep.key]
        if ready is None:
            ready = ready_replicas(fleet, ep)
        return demand(ep, t, fleet.salt) / (ready * ep.kind.capacity) if ready else math.inf

    def gpu_values(
        self, fleet: Fleet, pos: int, t: float, ready: Mapping[str, int] | None = None
    ) -> Values | None:
        """Utilisation, memory used, temperature, power, SM clock and throttle reasons; None when unknown.
        ``ready``: each endpoint's ready replicas to take (the warm-up's, at the start) instead of now's."""
        g = fleet.gpus[pos]
        node = g.node
        spec = node.spec
        assert spec is not None
        if not node.ready or g.index == node.xid_gpu:
            return None
        u = unit(g.salt, int(t // 2.0))
        owner = node.owners[g.index]
        util, mem, intensity = 0.0, spec.mem_idle, 0.9
        if owner:
            work = fleet.work.get(owner)
            if isinstance(work, SimJob):
                if work.stuck:
                    util, mem = 3.0 * u, spec.mem_total * work.mem_frac
                elif work.state is JobState.RUNNING:
                    step = unit(work.salt, int(t // 2.0))  # synchronous steps: the gang moves together
                    util = min(99.0, max(85.0, work.util_base + 8.0 * (step - 0.5) + 2.0 * (u - 0.5)))
                    mem = spec.mem_total * work.mem_frac * (0.995 + 0.01 * u)
                    intensity = work.intensity
                elif fleet.pods[owner].ready:  # waiting at the rendezvous for a missing rank
                    util, mem = 2.0 * u, spec.mem_idle + 1800.0
            elif isinstance(work, SimEndpoint) and fleet.pods[owner].ready:
                rho = min(self.rho_at(fleet, work, t, None if ready is None else ready.get(work.key)), 1.0)
                util = max(0.0, min(100.0, 97.0 * rho + 2.0 * (u - 0.5)))
                mem = spec.mem_total * work.kind.mem_frac * (0.998 + 0.004 * u)
                intensity = 0.8
        util = float(round(util))
        power, temp, clock, reasons = gpu_physics(
            spec, util, intensity, node.inlet, g.index == node.hot_gpu, u
        )
        return util, float(round(mem)), temp, power, clock, reasons

    def read_gpu(self, fleet: Fleet, pos: int, t: float) -> Gpu:
        g = fleet.gpus[pos]
        node = g.node
        spec = node.spec
        assert spec is not None
        owner = node.owners[g.index]
        values = self.gpu_values(fleet, pos, t)
        ecc = g.salt % 11 if g.salt % 7 == 0 else 0
        if values is None:  # no reading: the node is down or the GPU fell off the bus
            return Gpu(
                node=node.name,
                index=g.index,
                uuid=g.uuid,
                model=spec.name,
                mem_total=spec.mem_total,
                power_limit=spec.power_limit,
                sm_clock_max=spec.sm_clock_max,
                xid=79 if g.index == node.xid_gpu else 0,
                xid_at=node.xid_at if g.index == node.xid_gpu else 0.0,
                ecc_corrected=ecc,
                pod=owner,
            )
        util, mem, temp, power, clock, reasons = values
        low_since: Metric = NA
        if owner and util < IDLE_UTIL_PCT:
            # What the signals know: a hung gang idles since it hung, an over-provisioned endpoint's first
            # replicas since long before; anything else is left to the poller to follow.
            work = fleet.work.get(owner)
            if isinstance(work, SimJob):
                if work.stuck and work.stuck_since:
                    low_since = work.stuck_since
            elif isinstance(work, SimEndpoint) and owner in work.idle_pods:
                low_since = work.idle_since
        return Gpu(
            node=node.name,
            index=g.index,
            uuid=g.uuid,
            model=spec.name,
            util=util,
            mem_used=mem,
            mem_total=spec.mem_total,
            temp=temp,
            power=power,
            power_limit=spec.power_limit,
            sm_clock=clock,
            sm_clock_max=spec.sm_clock_max,
            ecc_corrected=ecc,
            throttle=reasons,
            pod=owner,
            low_since=low_since,
            # As NVML reports them: a pending row remap asks for a reset; a healthy GPU needs nothing.
            recovery_action="reset" if g.index == node.remap_gpu else "none",
            remap_pending=g.index == node.remap_gpu,
            nvlink_errors=node.nvlink_errors if g.index == node.nvlink_gpu else 0,
        )

    def refresh_gpus(self, fleet: Fleet, t: float) -> tuple[Gpu, ...]:
        """Re-read the GPUs actions touched and the next slice of the rotation (a staggered scrape)."""
        n = len(fleet.gpus)
        if not n:
            return ()
        k = min(n, max(_SLICE_MIN, min(_SLICE_MAX, -(-n // _SLICE_SHARE))))
        positions = fleet.dirty_gpus
        first = self.cursor
        positions.update(range(first, min(n, first + k)))
        if first + k > n:
            positions.update(range(first + k - n))
        self.cursor = (first + k) % n
        objs, gpus = self.objs, fleet.gpus
        for pos in positions:
            objs[pos] = self.read_gpu(fleet, pos, t)
            g = gpus[pos]
            if g.index == g.node.hot_gpu:
                g.node.obj = None  # its health follows the GPU's temperature
        positions.clear()
        return tuple(objs)

    def node_util(self, fleet: Fleet, node: SimNode | None, t: float, ready: Mapping[str, int]) -> float:
        if node is None or not node.owners:
            return math.nan
        utils = []
        for i in range(len(node.owners)):
            values = self.gpu_values(fleet, node.gpu0 + i, t, ready)
            if values is not None:
                utils.append(values[0])
        return sum(utils) / len(utils) if utils else math.nan


def endpoint_values(fleet: Fleet, ep: SimEndpoint, ready: int, t: float) -> tuple[float, ...]:
    """qps, p50, p99, error rate, ready replicas and ρ for ``ep`` at ``t`` (NaN latency: none ready)."""
    d = demand(ep, t, fleet.salt)
    k = ep.kind
    rho, p50, p99, err = serving_stats(d, ready, k.capacity, k.p50, k.p99, unit(ep.salt, int(t // 5.0)))
    return d, p50, p99, err, float(ready), rho


def gpu_state(fleet: Fleet, pos: int) -> tuple[object, ...]:
    """What a GPU's readings depend on besides the time and its endpoint's replicas: what it runs and in
    which state. The warm-up draws a GPU whose state is still the start's, and no other."""
    g = fleet.gpus[pos]
    node = g.node
    owner = node.owners[g.index] if g.index < len(node.owners) else ""
    work = fleet.work.get(owner) if owner else None
    pod = fleet.pods.get(owner) if owner else None
    job = (work.state, work.stuck) if isinstance(work, SimJob) else None
    return (owner, node.ready, g.index == node.xid_gpu, job, pod is not None and pod.ready)
