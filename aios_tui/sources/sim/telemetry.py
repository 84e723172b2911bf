"""The embedded fleet's GPU telemetry: readings as DCGM would scrape them, refreshed a slice at a time.

A reading is a function of the GPU, what it runs and the time (:mod:`.signals`). A real exporter does not
re-read every GPU at every poll either (dcgm-exporter collects every 30 s by default, and NVIDIA's guide
scrapes it every 30 s), so each GPU is re-read once per ``[sim] telemetry_period`` (30 s by default),
staggered across fetches, plus every GPU an action touched, and at least 512 GPUs per fetch so that a small
fleet stays lively; the others keep their last reading. A GPU whose reading did not change keeps its object
(identity tells the poller so). ``telemetry_period = 0`` re-reads every GPU at every fetch
(docs/benchmarks.md gives both costs).
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from aios_tui.domain import IDLE_UTIL_PCT, NA, Gpu, JobState, Metric, Throttle
from aios_tui.sources.sim.construct import new_gpu, positional
from aios_tui.sources.sim.signals import _GOLDEN, _M64, _TWO64, gpu_physics, serving_stats, unit
from aios_tui.sources.sim.world import Fleet, SimEndpoint, SimGpu, SimJob, SimNode, demand, ready_replicas

__all__ = ["Telemetry", "endpoint_values", "gpu_state", "gpu_states"]

SLICE_MIN = 512
"""GPUs re-read per fetch at the least (all of them in a fleet this small)."""

Values = tuple[float, float, float, float, float, Throttle]
"""Utilisation, memory used, temperature, power, SM clock and throttle reasons."""

_reading = positional(
    Gpu,
    *("node", "index", "uuid", "model", "util", "mem_used", "mem_total", "temp", "power", "power_limit"),
    *("sm_clock", "sm_clock_max", "ecc_corrected", "throttle", "pod", "low_since", "recovery_action"),
    *("remap_pending", "nvlink_errors"),
)
"""A reading as :meth:`Telemetry.read_gpu` makes one at every fetch, its values in this order."""


class Telemetry:
    """Every GPU's last reading (in the fleet's GPU order) and the rotation that refreshes them."""

    def __init__(self, period: float = 30.0, interval: float = 2.0) -> None:
        self.period = period
        """Seconds in which every GPU is re-read once; 0: every GPU at every fetch."""
        self.interval = interval
        """Seconds between two fetches (the poller's interval)."""
        self.objs: list[Gpu] = []
        self.uuid_pos: dict[str, int] = {}
        """GPU uuid → its position in the fleet's GPU list."""
        self.cursor = 0
        """Where the next fetch's slice of the rotation starts."""
        self.rho: dict[str, float] = {}
        """Endpoint key → its load at ``rho_t`` on the replicas ready then (set as endpoints are built)."""
        self.rho_t = math.nan
        self.read_t = math.nan
        """When every GPU was read at once (:meth:`read_all`), until the next refresh: a refresh at that
        time re-reads only the GPUs actions touched."""
        self._bucket = -1
        """The 2-second time bucket the readings' noise was last drawn in, its hash term, and each running
        job's step noise in it (a gang's GPUs share it)."""
        self._gold = 0
        self._steps: dict[SimJob, float] = {}

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
        if not node.ready or g.index == node.xid_gpu:
            return None
        return self._values(fleet, g, node, t, ready)

    def _values(
        self, fleet: Fleet, g: SimGpu, node: SimNode, t: float, ready: Mapping[str, int] | None
    ) -> Values:
        spec = node.spec
        assert spec is not None
        b = int(t // 2.0)
        if b != self._bucket:
            self._bucket, self._gold = b, b * _GOLDEN & _M64
            self._steps.clear()
        # unit(g.salt, b), written out: this runs for every GPU at every fetch (~0.3 µs saved of ~3).
        x = (g.salt ^ self._gold) + _GOLDEN & _M64
        x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9 & _M64
        x = (x ^ (x >> 27)) * 0x94D049BB133111EB & _M64
        u = (x ^ (x >> 31)) / _TWO64
        owner = node.owners[g.index]
        util, mem, intensity = 0.0, spec.mem_idle, 0.9
        if owner:
            work = fleet.work.get(owner)
            if type(work) is SimJob:
                if work.stuck:
                    util, mem = 3.0 * u, spec.mem_total * work.mem_frac
                elif work.state is JobState.RUNNING:
                    step = self._steps.get(work)
                    if step is None:  # synchronous steps: the gang moves together
                        step = self._steps[work] = unit(work.salt, b)
                    util = min(99.0, max(85.0, work.util_base + 8.0 * (step - 0.5) + 2.0 * (u - 0.5)))
                    mem = spec.mem_total * work.mem_frac * (0.995 + 0.01 * u)
                    intensity = work.intensity
                elif fleet.pods[owner].ready:  # waiting at the rendezvous for a missing rank
                    util, mem = 2.0 * u, spec.mem_idle + 1800.0
            elif type(work) is SimEndpoint and fleet.pods[owner].ready:
                rho = min(self.rho_at(fleet, work, t, None if ready is None else ready.get(work.key)), 1.0)
                util = max(0.0, min(100.0, 97.0 * rho + 2.0 * (u - 0.5)))
                mem = spec.mem_total * work.kind.mem_frac * (0.998 + 0.004 * u)
                intensity = 0.8
        util = float(round(util))
        power, temp, clock, reasons = gpu_physics(
            spec, util, intensity, node.inlet, g.index == node.hot_gpu, u
        )
        return util, float(round(mem)), temp, power, clock, reasons

    def read_gpu(self, fleet: Fleet, pos: int, t: float, old: Gpu | None = None) -> Gpu:
        """GPU ``pos`` as read at ``t``; ``old`` itself when the reading equals it (identity: unchanged)."""
        g = fleet.gpus[pos]
        node = g.node
        spec = node.spec
        assert spec is not None
        index = g.index
        owner = node.owners[index]
        ecc = g.salt % 11 if g.salt % 7 == 0 else 0
        if not node.ready or index == node.xid_gpu:  # no reading: the node is down or the GPU fell off
            xid = index == node.xid_gpu
            gpu = new_gpu(
                node=node.name,
                index=index,
                uuid=g.uuid,
                model=spec.name,
                mem_total=spec.mem_total,
                power_limit=spec.power_limit,
                sm_clock_max=spec.sm_clock_max,
                xid=79 if xid else 0,
                xid_at=node.xid_at if xid else 0.0,
                ecc_corrected=ecc,
                pod=owner,
            )
            return old if old is not None and old == gpu else gpu
        util, mem, temp, power, clock, reasons = self._values(fleet, g, node, t, None)
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
        remap = index == node.remap_gpu
        # In _reading's order. As NVML reports them: a pending row remap asks for a reset; a healthy GPU
        # needs nothing.
        gpu = _reading(
            node.name, index, g.uuid, spec.name, util, mem, spec.mem_total, temp, power, spec.power_limit,
            clock, spec.sm_clock_max, ecc, reasons, owner, low_since,
            "reset" if remap else "none", remap, node.nvlink_errors if index == node.nvlink_gpu else 0,
        )  # fmt: skip
        # Power and memory move with each reading's noise: both equal is rare, and then worth the compare.
        if old is not None and old.power == power and old.mem_used == mem and old == gpu:
            return old
        return gpu

    def read_all(self, fleet: Fleet, t: float) -> None:
        """Read every GPU at ``t`` (the start), the endpoints' loads first (each GPU would count them)."""
        self.rho = {key: self.rho_at(fleet, ep, t) for key, ep in fleet.endpoints.items()}
        self.rho_t = t
        read = self.read_gpu
        self.objs = [read(fleet, i, t) for i in range(len(fleet.gpus))]
        self.read_t = t

    def refresh_gpus(self, fleet: Fleet, t: float) -> tuple[Gpu, ...]:
        """Re-read the GPUs actions touched and the next slice of the rotation (a staggered scrape)."""
        n = len(fleet.gpus)
        if not n:
            return ()
        k = self.per_fetch(n)
        positions = fleet.dirty_gpus
        first = self.cursor
        if t != self.read_t:  # else (the first fetch, at the start) the slice's readings were just taken
            positions.update(range(first, min(n, first + k)))
            if first + k > n:
                positions.update(range(first + k - n))
        self.cursor = (first + k) % n
        self.read_t = math.nan
        objs, gpus, read = self.objs, fleet.gpus, self.read_gpu
        for pos in positions:
            old = objs[pos]
            gpu = objs[pos] = read(fleet, pos, t, old)
            if gpu is not old:
                g = gpus[pos]
                if g.index == g.node.hot_gpu:
                    g.node.obj = None  # its health follows the GPU's temperature
        positions.clear()
        return tuple(objs)

    def per_fetch(self, n: int) -> int:
        """How many of ``n`` GPUs the rotation re-reads at each fetch."""
        if not self.period:
            return n
        return min(n, max(SLICE_MIN, math.ceil(n * self.interval / self.period)))

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


def gpu_states(fleet: Fleet) -> dict[str, tuple[object, ...]]:
    """:func:`gpu_state` of every GPU, by uuid: node by node (37,588 GPUs in ~30 ms instead of ~80)."""
    gpus, work_of, pods = fleet.gpus, fleet.work, fleet.pods
    out: dict[str, tuple[object, ...]] = {}
    for node in fleet.nodes:
        ready, xid, gpu0 = node.ready, node.xid_gpu, node.gpu0
        for i, owner in enumerate(node.owners):
            if owner:
                work = work_of.get(owner)
                pod = pods.get(owner)
                job = (work.state, work.stuck) if isinstance(work, SimJob) else None
                out[gpus[gpu0 + i].uuid] = (owner, ready, i == xid, job, pod is not None and pod.ready)
            else:
                out[gpus[gpu0 + i].uuid] = (owner, ready, i == xid, None, False)
    return out
