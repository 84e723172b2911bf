"""The embedded fleet as a source: :class:`SimSource` moves the fleet in time and carries out actions.

See the package's docstring (:mod:`aios_tui.sources.sim`) for what the fleet is and how it stays
deterministic.
"""

from __future__ import annotations

import asyncio
import math
import random
import threading
from collections import deque
from collections.abc import Callable, Sequence

from aios_tui.domain import JobState, Node, Pod
from aios_tui.domain.clock import now as wall_now
from aios_tui.sources.base import SourceData
from aios_tui.sources.sim.actions import PDB_VIOLATION, SimActions
from aios_tui.sources.sim.build import build_endpoints, build_jobs, build_nodes
from aios_tui.sources.sim.controllers import SimControllers
from aios_tui.sources.sim.events import EventKind, EventQueue
from aios_tui.sources.sim.inspect import SimInspect
from aios_tui.sources.sim.layout import build_fleet, draw_workers, job_duration, new_job
from aios_tui.sources.sim.scheduler import SimScheduler
from aios_tui.sources.sim.signals import mix
from aios_tui.sources.sim.telemetry import Telemetry, endpoint_values, gpu_state, gpu_states
from aios_tui.sources.sim.world import MAX_NODES, Fleet, SimJob, ready_replicas

__all__ = ["PDB_VIOLATION", "SimSource"]

MAX_CATCHUP = 3600.0
"""A clock jump longer than this is compressed: older events are applied as if they happened then."""
HPA_PERIOD = 30.0

_GPU_METRICS = {"util": 0, "mem_used": 1, "temp": 2, "power": 3, "sm_clock": 4}
_ENDPOINT_METRICS = ("qps", "p50_ms", "p99_ms", "error_rate", "replicas_ready")


class SimSource(SimActions, SimControllers, SimScheduler, SimInspect):
    """A simulated GPU fleet of ``nodes`` nodes; the same ``seed`` and clock readings give the same fleet.

    ``start`` is the simulated time at which the fleet is laid out (default: the clock at construction);
    each fetch advances it to ``clock()``. ``telemetry_period``: seconds in which every GPU is re-read once,
    staggered across fetches (0: every GPU at every fetch; :mod:`.telemetry`).
    """

    kind = "sim"

    def __init__(
        self,
        *,
        seed: int = 0,
        nodes: int = 200,
        name: str = "sim",
        interval: float = 2.0,
        timeout: float = 5.0,
        clock: Callable[[], float] = wall_now,
        start: float | None = None,
        telemetry_period: float = 30.0,
    ) -> None:
        if isinstance(nodes, bool) or not isinstance(nodes, int) or not 1 <= nodes <= MAX_NODES:
            raise ValueError(f"nodes must be a whole number from 1 to {MAX_NODES}, got {nodes!r}")
        if not interval > 0 or not timeout > 0:
            raise ValueError(f"interval and timeout must be positive, got {interval!r} and {timeout!r}")
        if not telemetry_period >= 0:
            raise ValueError(f"telemetry_period must be 0 or more seconds, got {telemetry_period!r}")
        self.name = name
        self.interval = interval
        self.timeout = timeout
        self._seed = seed
        self._size = nodes
        self._clock = clock
        self._start = float(clock() if start is None else start)
        self._t = self._start
        self._lock = threading.Lock()
        self._fleet: Fleet | None = None
        self._events = EventQueue()
        self._cap_dirty = False
        self._finished: deque[tuple[str, SimJob]] = deque()
        self._tel = Telemetry(telemetry_period, interval)
        self._nodes_tuple: tuple[Node, ...] = ()
        self._pods_tuple: tuple[Pod, ...] = ()
        self._state_at_start: dict[str, tuple[object, ...]] = {}
        """GPU uuid → what it ran at the start (:func:`.telemetry.gpu_state`); a node added since has none."""
        self._ready_at_start: dict[str, int] = {}
        self._start_untaken = False
        """The fleet is as it was laid out and the two maps above are not taken yet (:meth:`_take_start`)."""
        self._init_inspect()

    # --- the Source protocol ----------------------------------------------------------------------------

    async def fetch(self) -> SourceData:
        return await asyncio.to_thread(self.fetch_now)

    def fetch_now(self) -> SourceData:
        """Advance the fleet to ``clock()`` and return all of it."""
        with self._lock:
            fleet = self._ensure()
            self._advance(self._clock())
            t = self._t
            endpoints, pdbs = build_endpoints(fleet, t, self.name, self._tel)
            jobs = build_jobs(fleet, t, self.name)
            gpus = self._tel.refresh_gpus(fleet, t)
            nodes = self._build_nodes(fleet)
            self._mark_facts(fleet, t)  # OOM kills, crash loops
            if fleet.pods_dirty:
                self._pods_tuple = tuple(fleet.pods.values())
                fleet.pods_dirty = False
            return SourceData(
                nodes=nodes,
                gpus=gpus,
                pods=self._pods_tuple,
                jobs=jobs,
                endpoints=endpoints,
                pools=fleet.pools,
                pdbs=pdbs,
                context=f"{self.name} (simulated, seed {self._seed}, {self._size} nodes)",
                events=self._events_now(fleet, jobs, t),
            )

    async def close(self) -> None:
        """Nothing to release: the fleet lives in memory."""

    # --- history ------------------------------------------------------------------------------------------

    def warmup(self, kind: str, key: str, metric: str, points: int, step: float) -> Sequence[float]:
        """Readings for the ``points`` steps before the fleet was laid out (before the console opened),
        oldest first, from the same functions as the live ones and the fleet as it stood then.

        The fleet is not a history provider: the poller keeps what each fetch returned (the history it
        lived, an incident included after it was fixed) and asks this only for the time before the first
        fetch. Endpoints are drawn with their replicas at the start; a GPU (or a node with one) whose work
        changed since (given to another pod, freed, its job hung or ended, its node down) has none: NaN, as
        today's work would be a made-up past. An unknown key gives NaNs; an unknown kind or metric raises
        ValueError.
        """
        if not step > 0:
            raise ValueError(f"step must be positive, got {step!r}")
        with self._lock:
            fleet = self._ensure()
            self._take_start()
            times = [self._start - (points - i) * step for i in range(max(0, points))]
            if kind == "gpu":
                if metric not in _GPU_METRICS:
                    raise ValueError(f"unknown GPU metric {metric!r}; known: {', '.join(_GPU_METRICS)}")
                pos = self._tel.uuid_pos.get(key)
                if pos is None or self._state_at_start.get(key) != gpu_state(fleet, pos):
                    return [math.nan] * len(times)
                i = _GPU_METRICS[metric]
                out = []
                for t in times:
                    values = self._tel.gpu_values(fleet, pos, t, self._ready_at_start)
                    out.append(math.nan if values is None else float(values[i]))
                return out
            if kind == "node":
                if metric != "util":
                    raise ValueError(f"unknown node metric {metric!r}; known: util")
                node = fleet.node_by_name.get(key)
                at_start = self._state_at_start
                if node is None or any(
                    at_start.get(fleet.gpus[node.gpu0 + i].uuid) != gpu_state(fleet, node.gpu0 + i)
                    for i in range(len(node.owners))
                ):
                    return [math.nan] * len(times)
                return [self._tel.node_util(fleet, node, t, self._ready_at_start) for t in times]
            if kind == "endpoint":
                if metric not in _ENDPOINT_METRICS:
                    raise ValueError(
                        f"unknown endpoint metric {metric!r}; known: {', '.join(_ENDPOINT_METRICS)}"
                    )
                ep = fleet.endpoints.get(key)
                ready = self._ready_at_start.get(key)
                if ep is None or ready is None:
                    return [math.nan] * len(times)
                j = _ENDPOINT_METRICS.index(metric)
                return [endpoint_values(fleet, ep, ready, t)[j] for t in times]
            raise ValueError(f"unknown history kind {kind!r}; known: gpu, node, endpoint")

    # --- model time ---------------------------------------------------------------------------------------

    def _ensure(self) -> Fleet:
        if self._fleet is not None:
            return self._fleet
        fleet = self._fleet = build_fleet(self.name, self._seed, self._size, self._start)
        for key, job in fleet.jobs.items():
            if job.state is JobState.RUNNING and math.isfinite(job.duration):
                self._events.push(job.started_at + job.duration, EventKind.FINISH, key)
            elif job.state is JobState.SUCCEEDED:
                self._finished.append((key, job))
        if any(ep.hpa for ep in fleet.endpoints.values()):
            self._events.push(self._start + HPA_PERIOD, EventKind.HPA, "")
        self._tel.uuid_pos = {g.uuid: i for i, g in enumerate(fleet.gpus)}
        self._tel.read_all(fleet, self._start)
        fleet.dirty_gpus.clear()
        self._schedule(self._start)  # after the readings: the engine sees nodes, whose health they give
        self._start_untaken = True
        return fleet

    def _take_start(self) -> None:
        """Take what the warm-up history (the time before the start) is drawn from, the fleet as it was laid
        out, if not yet: before the first event or action changes it, or when the warm-up is asked for.
        Not in the first fetch: ~50 ms at 5,000 nodes that the first frame with data need not wait for.
        What is taken (who runs what, ready or not) changes only through :meth:`_handle`, the scheduler
        and the actions, each of which calls this first."""
        if self._start_untaken:
            self._start_untaken = False
            fleet = self._f
            self._state_at_start = gpu_states(fleet)
            self._ready_at_start = {k: ready_replicas(fleet, ep) for k, ep in fleet.endpoints.items()}

    def _advance(self, now: float) -> None:
        """Apply every event up to ``now`` in time order; a clock that goes back leaves the fleet as it is."""
        if now <= self._t:
            return
        floor = now - MAX_CATCHUP
        while (due := self._events.pop_due(now)) is not None:
            when, kind, key = due
            self._t = self._f.now = max(when, floor, self._t)
            self._take_start()
            self._handle(kind, key, self._t)
            if self._cap_dirty:
                self._schedule(self._t)
        self._t = self._f.now = now
        if self._cap_dirty:
            self._take_start()
            self._schedule(now)

    def _handle(self, kind: EventKind, key: str, t: float) -> None:
        fleet = self._f
        if kind is EventKind.READY:
            self._pod_ready(key)
        elif kind is EventKind.FINISH:
            job = fleet.jobs.get(key)
            if job is None or job.state not in (JobState.RUNNING, JobState.STARTING):
                return
            if job.started_at + job.duration - job.done > t:  # set for a run that a restart ended
                return
            if job.state is JobState.STARTING:  # ranks still starting: finish once they run
                self._events.push(t + 60.0, EventKind.FINISH, key)
                return
            self._finish(job, t)
        elif kind is EventKind.SUBMIT:
            rng = random.Random(mix(fleet.salt ^ (0x5B << 48) ^ fleet.job_seq))
            workers, duration, priority = draw_workers(rng), job_duration(rng), rng.choice((0, 0, 0, 100))
            job = new_job(
                fleet, rng, model=key, workers=workers, submitted_at=t, duration=duration, priority=priority
            )
            job.pods = [""] * job.workers
            self._cap_dirty = True
        elif kind is EventKind.HPA:
            self._hpa_tick(t)
            self._events.push(t + HPA_PERIOD, EventKind.HPA, "")
        elif kind is EventKind.NODE_UP:
            self._node_up(key, t)

    # --- readings -----------------------------------------------------------------------------------------

    def _build_nodes(self, fleet: Fleet) -> tuple[Node, ...]:
        self._nodes_tuple = build_nodes(fleet, self._tel.objs, self.name, self._nodes_tuple)
        return self._nodes_tuple
