"""Polls every source on its own interval and merges what they say into one :class:`FleetSnapshot`.

Each source gets one loop: fetch (abandoned after ``source.timeout``) → record → sleep ``source.interval``,
or a back-off that doubles after each failure up to ``max_backoff``. The next fetch is scheduled only after
the last one finished, and a per-source lock keeps :meth:`Poller.refresh` from overlapping a loop's fetch,
so a slow backend never has two requests in flight. A source that fails keeps its last good data in the
snapshot, marked stale with the error; nothing a source raises stops the loop or reaches the app.

Lost, not gone: a telemetry source (``keeps_lost = True``: Prometheus, SSH hosts, NVML) cannot tell a
machine that was removed from one it can no longer read — an exporter that stopped, a host that does not
answer. What such a source reported before and no longer does stays in the snapshot with its last readings,
marked lost since its last reading (``lost_since``): out of the means and the free capacity, still in the
health and cordon lists, until a reading clears it or ``lost_ttl`` passes. A source that is authoritative
about removal (Kubernetes, a cloud, the embedded fleet) is taken at its word.

Identity: a source may name nodes it cannot vouch are the cluster's node of that name (an SSH host not tied
to one): those (``SourceData.separate``) never merge with another source's node of the same name; they are
kept apart as ``name@source``.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import operator
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from operator import attrgetter
from types import MappingProxyType
from typing import Any

from aios_tui.alloc.prices import PriceRule, fill_prices
from aios_tui.alloc.slo import SloRule, fill_slos
from aios_tui.domain import Endpoint, FleetSnapshot, Node, SourceHealth, SourceState, errors
from aios_tui.domain.clock import now as wall_now
from aios_tui.domain.units import Metric
from aios_tui.poll.events import EventLog, changes
from aios_tui.poll.history import RingHistory, Series
from aios_tui.poll.idle import IdleTracker
from aios_tui.poll.slo import SloTracker
from aios_tui.sources.base import HistoryProvider, Source, SourceData, backoff_delay
from aios_tui.sources.clouds import list_price

__all__ = ["Poller", "backoff_delay", "describe_error", "fill_defaults"]

log = logging.getLogger("aios_tui.poll")


def describe_error(exc: BaseException, timeout: float | None = None) -> str:
    """A short, single-line message for the header: ``ConnectionRefusedError: …`` or ``timed out after 5s``,
    credentials masked."""
    return errors.describe_error(exc, limit=200, timeout=timeout)


@dataclass(eq=False)
class _Polled:
    """What the poller knows about one source."""

    source: Source
    health: SourceHealth
    history: RingHistory | None
    """None when the source gives its own history."""
    data: SourceData | None = None
    """Last good fetch."""
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    keys: dict[str, tuple[tuple[Any, ...], frozenset[str]]] = field(default_factory=dict)
    """Cache of key sets per kind, valid while ``keys[kind][0]`` is the tuple they came from."""
    fetched_at: float = 0.0
    """Wall-clock time of the last good fetch: what an object that vanishes since was last seen at."""


_KIND_FIELDS = ("nodes", "gpus", "pods", "jobs", "endpoints", "pools", "pdbs")
#: Identity of an object across sources: its ``key`` (strings cache their hash, tuples would not).
_KEY_OF: Mapping[str, Callable[[Any], str]] = {
    "nodes": attrgetter("name"),
    "gpus": attrgetter("slot"),
    "pods": attrgetter("key"),
    "jobs": attrgetter("key"),
    "endpoints": attrgetter("key"),
    "pools": attrgetter("name"),
    "pdbs": attrgetter("key"),
}
_HISTORY_KIND = {"gpu": "gpus", "node": "nodes", "endpoint": "endpoints"}
#: Kinds a telemetry source's vanished objects are kept of, marked lost.
_LOSABLE = ("nodes", "gpus", "endpoints")
LOST_TTL = 24 * 3600.0
"""Seconds a lost object stays (with no reading) before it is dropped."""
HISTORY_WINDOW_S = 900.0
"""How far back a chart reaches (``history_points`` readings spread over it, the newest the latest): long
enough that an incident fixed ten minutes ago is still on the chart."""


_WARM = ("totals", "verdicts", "gpus_by_node", "node_by_name", "failed_nodes")
"""A snapshot's indexes and figures that every repaint reads (:func:`_warm`)."""


def _warm(snapshot: FleetSnapshot) -> None:
    """Compute :data:`_WARM` on a snapshot nobody has seen yet (in a worker thread: nothing else holds it)."""
    for name in _WARM:
        getattr(snapshot, name)


def _step(interval: float, window: float, points: int) -> float:
    """Seconds between two history points: ``window`` spread over ``points``, never finer than the source's
    own ``interval``; 0 (a point per fetch) when there is no window."""
    return max(interval, window / points) if window > 0 else 0.0


#: The key a sparkline asks history for (a GPU's uuid, not the slot it is merged by).
_HISTORY_KEY_OF: Mapping[str, Callable[[Any], str]] = {
    "gpus": attrgetter("uuid"),
    "nodes": attrgetter("name"),
    "endpoints": attrgetter("key"),
}
#: Kinds whose repeated objects are combined field by field rather than the first one winning whole.
_FILLED = frozenset({"gpus", "endpoints"})
_IDENTITY = frozenset({"source", "node", "index", "uuid", "namespace", "name"})
#: Flags that say whether a field is known: True is not "left at the default", so they are or-ed instead.
_KNOWN_FLAGS = frozenset({"replicas_known"})
_FILLABLE: dict[type, tuple[tuple[str, Any], ...]] = {}


#: For nodes only what a cloud or telemetry source adds: readiness, cordons, taints, GPU counts and health
#: are the cluster's own (a default ``ready=True`` must not be "filled" with a cloud's "not in a cluster").
_NODE_FILLED = frozenset(
    {"instance_type", "zone", "gpu_model", "rack", "provider_id", "price_per_hour", "lifecycle"}
    | {"launched_at", "instance_state"}
)


def fill_defaults(first: Any, later: Any) -> Any:
    """``first`` with each field it left at its default (NA, "", 0, none) taken from ``later`` where that
    one knows it. Identity fields (name, namespace, node, index, uuid, source) are never taken; for a
    :class:`Node`, only what a cloud adds (instance type, zone, price, lifecycle …)."""
    cls = type(first)
    fields = _FILLABLE.get(cls)
    if fields is None:
        fields = tuple(
            (f.name, f.default)
            for f in dataclasses.fields(cls)
            if f.name not in _IDENTITY
            and f.name not in _KNOWN_FLAGS
            and f.default is not dataclasses.MISSING
            and (cls is not Node or f.name in _NODE_FILLED)
        )
        _FILLABLE[cls] = fields
    changes = {}
    for name, default in fields:
        mine = getattr(first, name)
        if (mine is default or mine == default) and not (
            (theirs := getattr(later, name)) is default or theirs == default
        ):
            changes[name] = theirs
    if cls is Endpoint and not first.replicas_known and later.replicas_known:
        changes["replicas_known"] = True
    return dataclasses.replace(first, **changes) if changes else first


def _merge_nodes(parts: Sequence[tuple[Node, ...]]) -> tuple[Node, ...]:
    """Several sources' nodes as one list: a node is the same machine as an earlier one when it has the
    same ``provider_id`` (Kubernetes' ``spec.providerID`` and the cloud's instance), or the same name where
    one of the two has no provider ID; the earlier one stays, and a later one fills in what the cloud knows
    (:func:`fill_defaults`). Two machines of one name and different provider IDs (VMs of one name in two
    resource groups or projects) are two rows: the later one's name says its source (``gpu-vm (azure)``)."""
    kept: list[Node] = []
    at: dict[str, int] = {}
    for objs in parts:
        for n in objs:
            key = _machine_key(n.provider_id)
            i = at.get(key) if key else None
            if i is None and (j := at.get(n.name)) is not None:
                theirs = _machine_key(kept[j].provider_id)
                if key and theirs and theirs != key:  # the same name, another machine
                    n = dataclasses.replace(n, name=f"{n.name} ({n.source})")  # noqa: PLW2901
                else:
                    i = j
            if i is None:
                i = len(kept)
                kept.append(n)
            else:
                kept[i] = fill_defaults(kept[i], n)
            at.setdefault(n.name, i)
            if key:
                at.setdefault(key, i)
    return tuple(kept)


def _machine_key(provider_id: str) -> str:
    """What two sources' provider IDs of one machine share: Azure resource IDs are case-insensitive, and
    AKS writes a node's resource group in lower case where the API answers it as created
    (``MC_rg_cluster_eastus``)."""
    return provider_id.lower() if provider_id.startswith("azure://") else provider_id


class Poller:
    """Runs the sources and keeps the latest merged :class:`FleetSnapshot`.

    Use :meth:`start`/:meth:`stop` in the app (one task per source) and iterate :meth:`updates`; a headless
    command calls :meth:`refresh` once instead. ``clock`` stamps snapshots and ``last_ok`` (inject a fake
    one in tests); latencies and sleeps use the event loop's monotonic clock. ``idle_window``: seconds an
    allocated GPU must stay under 5 % utilisation before the snapshot counts it as idle (0: at once); the
    poller follows since when each one has been low (:class:`IdleTracker`) where its source does not say.
    ``slos``: objectives for the endpoints whose source gave none (``[[slo]]``); the poller follows since
    when each endpoint has been past them (:class:`SloTracker`) and logs when a breach starts and ends.
    """

    def __init__(
        self,
        sources: Sequence[Source],
        *,
        clock: Callable[[], float] = wall_now,
        max_backoff: float = 60.0,
        history_points: int = 120,
        history_window: float = HISTORY_WINDOW_S,
        idle_window: float = 600.0,
        lost_ttl: float = LOST_TTL,
        prices: Sequence[PriceRule] = (),
        slos: Sequence[SloRule] = (),
    ) -> None:
        names = [s.name for s in sources]
        if len(set(names)) != len(names):
            dupes = sorted({n for n in names if names.count(n) > 1})
            raise ValueError(f"source names must be unique; repeated: {', '.join(dupes)}")
        self._clock = clock
        self._lost_ttl = lost_ttl
        self._prices = tuple(prices)
        self._priced: tuple[tuple[Node, ...], tuple[Node, ...]] = ((), ())
        """The last nodes priced and the result, reused while the nodes are the same tuple."""
        self._slos = tuple(slos)
        self._with_slos: tuple[tuple[Endpoint, ...], tuple[Endpoint, ...]] = ((), ())
        """The last endpoints given objectives and the result, reused while they are the same tuple."""
        self._slo = SloTracker()
        self._max_backoff = max_backoff
        self._history_points = history_points
        self._idle_window = idle_window
        self._idle = IdleTracker()
        self._events = EventLog()
        self._polled = [
            _Polled(
                source=s,
                health=SourceHealth(name=s.name, kind=s.kind),
                history=None
                if isinstance(s, HistoryProvider)
                else RingHistory(history_points, _step(s.interval, history_window, history_points)),
            )
            for s in sources
        ]
        self._by_name = {p.source.name: p for p in self._polled}
        self.sources: Mapping[str, Source] = MappingProxyType({p.source.name: p.source for p in self._polled})
        self._snapshot = FleetSnapshot(
            timestamp=clock(), sources=tuple(p.health for p in self._polled), idle_window=idle_window
        )
        self._version = 0
        self._changed = asyncio.Event()
        self._publishing = asyncio.Lock()
        self._tasks: list[asyncio.Task[None]] = []
        self._merged: dict[str, tuple[tuple[tuple[Any, ...], ...], tuple[Any, ...]]] = {}
        """Per kind: the source tuples of the last multi-source merge, and its result."""
        self._closed = False

    # --- reading -------------------------------------------------------------------------------------

    @property
    def snapshot(self) -> FleetSnapshot:
        """The latest merged snapshot (before any fetch: empty, every source STARTING)."""
        return self._snapshot

    async def updates(self) -> AsyncIterator[FleetSnapshot]:
        """Each new merged snapshot, as it comes; ends after :meth:`stop`.

        A consumer slower than the sources skips to the latest snapshot: nothing queues up.
        """
        seen = self._version
        while not self._closed:
            if self._version == seen:
                await self._changed.wait()
                continue
            seen = self._version
            yield self._snapshot

    def history(self, kind: str, key: str, metric: str, points: int | None = None) -> list[float]:
        """Past readings of one object for a sparkline, oldest first; NaN where there was no reading.

        ``kind`` is ``gpu``, ``node`` or ``endpoint``. The first source (in config order) that reported the
        object answers: through its own :class:`HistoryProvider` (``step`` = its interval), or from the
        poller's ring buffer of its good fetches, one value per fetch (fewer than ``points`` until that many
        were recorded, unless the source tells the time before its first fetch through a ``warmup`` like
        ``history``'s; failed fetches add nothing). Empty when no source knows the object or the metric.
        The list is a :class:`Series`: its ``step`` is the answering source's interval.
        """
        n = points or self._history_points
        field_name = _HISTORY_KIND.get(kind)
        if field_name is None:
            return []
        for p in self._polled:
            if p.data is None:
                continue
            if p.history is None:
                if key not in self._keys(p, field_name, history=True):
                    continue
                src = p.source
                assert isinstance(src, HistoryProvider)
                try:
                    return Series(src.history(kind, key, metric, n, src.interval), src.interval)
                except Exception as exc:
                    log.warning(
                        "source %s: history(%s, %s, %s) failed: %s",
                        src.name,
                        kind,
                        key,
                        metric,
                        describe_error(exc),
                    )
                    return []
            if p.history.has(kind, key):
                lived = p.history.series(kind, key, metric, n)
                if not lived:  # a metric not recorded
                    return []
                step = p.history.step
                return Series(self._warmup(p, kind, key, metric, n - len(lived), step) + lived, step)
        return []

    @staticmethod
    def _warmup(p: _Polled, kind: str, key: str, metric: str, missing: int, step: float) -> list[float]:
        """The readings before ``p``'s first fetch from a source that can tell them (``warmup``, the
        embedded fleet's), so that a chart is full from the start; [] otherwise."""
        warmup = getattr(p.source, "warmup", None)
        if missing <= 0 or warmup is None:
            return []
        try:
            return list(warmup(kind, key, metric, missing, step))
        except Exception as exc:
            said = describe_error(exc)
            log.debug("source %s: warmup(%s, %s, %s) failed: %s", p.source.name, kind, key, metric, said)
            return []

    # --- running -------------------------------------------------------------------------------------

    async def refresh(self) -> FleetSnapshot:
        """Fetch every source once, concurrently (each with its timeout), merge, and return the snapshot."""
        await asyncio.gather(*(self._fetch(p) for p in self._polled))
        self._publish()
        return self._snapshot

    def start(self) -> None:
        """Start one polling task per source on the running event loop."""
        if self._tasks:
            raise RuntimeError("the poller is already running")
        if self._closed:
            raise RuntimeError("the poller was stopped; make a new one")
        self._tasks = [asyncio.create_task(self._loop(p), name=f"poll:{p.source.name}") for p in self._polled]

    async def stop(self) -> None:
        """Cancel the polling tasks, wait for them, close every source and end :meth:`updates`."""
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        await asyncio.gather(*(self._close(p.source) for p in self._polled))
        self._closed = True
        self._changed.set()

    def poke(self, source: str | None = None) -> None:
        """Fetch that source (or all) now instead of at the end of its sleep, e.g. right after an action.

        A poke during a fetch makes the loop fetch again as soon as that one ends. Unknown names are ignored.
        """
        targets = self._polled if source is None else [p for p in (self._by_name.get(source),) if p]
        for p in targets:
            p.wake.set()

    # --- internals -----------------------------------------------------------------------------------

    async def _loop(self, p: _Polled) -> None:
        while True:
            p.wake.clear()
            ok = await self._fetch(p)
            # A source whose failing fetch is cheap (Kubernetes: one bounded GET /readyz) caps its own
            # back-off, so that a server back from a hang shows fresh within seconds, not a minute later.
            cap = min(self._max_backoff, getattr(p.source, "max_backoff", self._max_backoff))
            delay = backoff_delay(p.source.interval, 0 if ok else p.health.failures, cap)
            p.health = dataclasses.replace(p.health, next_try=self._clock() + delay)
            async with self._publishing:  # one at a time: an older snapshot is never published after a newer
                snapshot = self._next()
                # What every repaint reads of a snapshot (the header's totals, the health verdicts, GPUs by
                # node) is computed here, off the event loop: at 5,000 nodes ~20 ms that a key pressed
                # meanwhile waited out (the thread yields the interpreter to the loop every 5 ms).
                await asyncio.to_thread(_warm, snapshot)
                self._publish(snapshot)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(delay):
                    await p.wake.wait()

    async def _fetch(self, p: _Polled) -> bool:
        """One fetch of one source; records the outcome in ``p`` and never raises (except cancellation)."""
        src = p.source
        async with p.lock:
            loop = asyncio.get_running_loop()
            started = loop.time()
            try:
                async with asyncio.timeout(src.timeout):
                    data = await src.fetch()
            except Exception as exc:
                message = describe_error(exc, timeout=src.timeout)
                failures = p.health.failures + 1
                if failures == 1:  # the traceback only at DEBUG: the log's formatter redacts it there too
                    log.warning("source %s: %s", src.name, message)
                    log.debug("source %s: failed", src.name, exc_info=not isinstance(exc, TimeoutError))
                else:
                    log.debug("source %s: failure %d: %s", src.name, failures, message)
                state = SourceState.STALE if p.data is not None else SourceState.ERROR
                p.health = dataclasses.replace(
                    p.health,
                    state=state,
                    error=message,
                    failures=failures,
                    last_error=message,
                    last_error_at=self._clock(),
                )
                return False
            latency_ms = (loop.time() - started) * 1000.0
            if p.health.failures:
                log.info("source %s: back after %d failures", src.name, p.health.failures)
            now = self._clock()
            if p.history is not None:
                p.history.record(data, now)
            if getattr(src, "keeps_lost", False):
                data = self._keep_lost(p, data, now)
            p.data = data
            if data.events:
                self._events.add(data.events)
            p.fetched_at = now
            problems = "; ".join(data.problems)
            if problems and problems != p.health.error:
                log.warning("source %s: partial: %s", src.name, problems)
            p.health = SourceHealth(
                name=src.name,
                kind=src.kind,
                state=SourceState.PARTIAL if data.problems else SourceState.OK,
                last_ok=now,
                error=problems,
                latency_ms=latency_ms,
                last_error=problems or p.health.last_error,
                last_error_at=now if problems else p.health.last_error_at,
                parts=data.parts,
            )
            return True

    def _keep_lost(self, p: _Polled, data: SourceData, now: float) -> SourceData:
        """``data`` with what ``p``'s source reported before and not now, kept and marked lost (see the
        module). Costs a subset test per kind when nothing vanished, which is the normal case."""
        if p.data is None:
            return data
        changes: dict[str, Any] = {}
        for kind in _LOSABLE:
            before: tuple[Any, ...] = getattr(p.data, kind)
            if not before:
                continue
            objs: tuple[Any, ...] = getattr(data, kind)
            key_of = _KEY_OF[kind]
            now_keys = frozenset(map(key_of, objs))
            if self._keys(p, kind) <= now_keys:
                continue
            kept = []
            for o in before:
                if key_of(o) in now_keys:
                    continue
                since = o.lost_since or p.fetched_at
                if now - since < self._lost_ttl:
                    kept.append(o if o.lost_since else dataclasses.replace(o, lost_since=since))
            if kept:
                changes[kind] = objs + tuple(kept)
        lost = [n.name for n in changes.get("nodes", ()) if n.lost_since]
        if lost:
            said = f"{len(lost)} node{'s' if len(lost) > 1 else ''} no longer reported, kept as lost"
            changes["problems"] = (*data.problems, f"{said} (e.g. {lost[0]})")
        return dataclasses.replace(data, **changes) if changes else data

    def _next(self) -> FleetSnapshot:
        """The merged snapshot of what the sources said last, with the events derived since the last one."""
        before = self._snapshot if self._version else None
        snapshot = self._merge()
        seen = changes(before, snapshot, snapshot.timestamp)
        seen.extend(self._slo.take_events())
        if seen:
            self._events.add(seen)
        return dataclasses.replace(snapshot, events=self._events.newest_first())

    def _publish(self, snapshot: FleetSnapshot | None = None) -> None:
        self._snapshot = self._next() if snapshot is None else snapshot
        self._version += 1
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    def _merge(self) -> FleetSnapshot:
        present = [p for p in self._polled if p.data is not None]
        datas = self._kept_apart(present)
        merged: dict[str, tuple[Any, ...]] = {}
        for kind in _KIND_FIELDS:
            parts = [(p, objs) for p in present if (objs := getattr(datas[p.source.name], kind))]
            if not parts:
                merged[kind] = ()
            elif len(parts) == 1:
                merged[kind] = parts[0][1]
            else:
                merged[kind] = self._concat(kind, parts)
        merged["nodes"] = self._price(merged["nodes"])
        merged["endpoints"] = self._objectives(merged["endpoints"])
        contexts = [p.data.context for p in present if p.data is not None and p.data.context]
        now = self._clock()
        return FleetSnapshot(
            timestamp=now,
            sources=tuple(p.health for p in self._polled),
            context=", ".join(dict.fromkeys(contexts)),
            idle_window=self._idle_window,
            gpu_low_since=self._idle.update(merged["gpus"], now),
            slo_breached_since=self._slo.update(merged["endpoints"], now),
            **merged,
        )

    def _price(self, nodes: tuple[Node, ...]) -> tuple[Node, ...]:
        """Prices for the nodes no source priced: ``[[prices]]`` rules, then the bundled list prices."""
        if self._priced[0] is nodes:
            return self._priced[1]
        priced = fill_prices(nodes, self._prices, _list_price)
        self._priced = (nodes, priced)
        return priced

    def _objectives(self, endpoints: tuple[Endpoint, ...]) -> tuple[Endpoint, ...]:
        """Objectives for the endpoints no source gave one: the ``[[slo]]`` rules (``alloc.slo``)."""
        if self._with_slos[0] is endpoints:
            return self._with_slos[1]
        filled = fill_slos(endpoints, self._slos)
        self._with_slos = (endpoints, filled)
        return filled

    def _kept_apart(self, present: Sequence[_Polled]) -> dict[str, SourceData]:
        """Each source's data, where a node it cannot join by name (``SourceData.separate``) shares its name
        with another source's node: that node and its GPUs renamed ``name@source``."""
        out = {p.source.name: p.data for p in present if p.data is not None}
        if not any(d.separate for d in out.values()):
            return out
        for p in present:
            data = out[p.source.name]
            if not data.separate:
                continue
            others = {n for q in present if q is not p and q.data is not None for n in self._keys(q, "nodes")}
            clash = data.separate & others
            if not clash:
                continue
            suffix = f"@{p.source.name}"
            out[p.source.name] = dataclasses.replace(
                data,
                nodes=tuple(
                    dataclasses.replace(n, name=n.name + suffix) if n.name in clash else n for n in data.nodes
                ),
                gpus=tuple(
                    dataclasses.replace(g, node=g.node + suffix) if g.node in clash else g for g in data.gpus
                ),
            )
        return out

    def _concat(self, kind: str, parts: list[tuple[_Polled, tuple[Any, ...]]]) -> tuple[Any, ...]:
        """Concatenate several sources' objects; where keys repeat, the earlier source's object wins, and
        for GPUs and endpoints a later source fills what it left unknown (:func:`fill_defaults`): Kubernetes
        knows an endpoint's replicas, Prometheus its traffic.

        The result is reused while no part changed. Otherwise each source's key set (computed once per
        fetch, then cached) is tested against the earlier ones; without overlap, which is the normal case,
        the merge is a tuple concatenation with no per-object work.
        """
        tuples = tuple(objs for _, objs in parts)
        cached = self._merged.get(kind)
        if cached is not None and len(cached[0]) == len(tuples) and all(map(operator.is_, cached[0], tuples)):
            return cached[1]
        if kind == "nodes":
            nodes = _merge_nodes(tuples)
            self._merged[kind] = (tuples, nodes)
            return nodes
        key_sets = [self._keys(p, kind, objs) for p, objs in parts]
        if all(b.isdisjoint(a) for i, b in enumerate(key_sets) for a in key_sets[:i]):
            out: tuple[Any, ...] = sum(tuples, ())
        else:
            key_of = _KEY_OF[kind]
            fills = kind in _FILLED
            at: dict[str, int] = {}
            kept: list[Any] = []
            for keys, objs in zip(key_sets, tuples, strict=True):
                if at.keys().isdisjoint(keys):
                    at.update((key_of(o), i) for i, o in enumerate(objs, start=len(kept)))
                    kept.extend(objs)
                    continue
                for o in objs:
                    k = key_of(o)
                    i = at.get(k)
                    if i is None:
                        at[k] = len(kept)
                        kept.append(o)
                    elif fills:
                        first = kept[i]
                        if kind == "gpus" and not first.measured and o.measured:
                            # A counted GPU and the measured one in its slot: the measurement wins (its
                            # uuid, readings, and the pod the exporter saw), the count fills its gaps.
                            kept[i] = fill_defaults(dataclasses.replace(o, node=first.node), first)
                        else:
                            kept[i] = fill_defaults(first, o)
            out = tuple(kept)
        self._merged[kind] = (tuples, out)
        return out

    def _keys(
        self, p: _Polled, kind: str, objs: tuple[Any, ...] | None = None, *, history: bool = False
    ) -> frozenset[str]:
        """The keys of one source's objects of ``kind`` (``objs``, by default its last data's): merge keys,
        or with ``history`` the keys a sparkline asks for."""
        if objs is None:
            objs = getattr(p.data, kind) if p.data is not None else ()
        name = f"history:{kind}" if history else kind
        cached = p.keys.get(name)
        if cached is not None and cached[0] is objs:
            return cached[1]
        keys = frozenset(map((_HISTORY_KEY_OF if history else _KEY_OF)[kind], objs))
        p.keys[name] = (objs, keys)
        return keys

    @staticmethod
    async def _close(src: Source) -> None:
        try:
            async with asyncio.timeout(max(src.timeout, 1.0)):
                await src.close()
        except Exception as exc:
            log.warning("source %s: close failed: %s", src.name, describe_error(exc, max(src.timeout, 1.0)))


def _list_price(node: Node) -> Metric:
    """A cloud catalogue's list price for the node's machine type, in its region where a label says it, for
    its lifecycle (a spot machine's spot list price, or none)."""
    region = node.labels.get("topology.kubernetes.io/region", "")
    return list_price(node.instance_type, region, node.lifecycle)
