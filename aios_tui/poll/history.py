"""A cheap in-memory history of readings, for sources that cannot give their own (no ``HistoryProvider``).

One :class:`RingHistory` per source keeps ``points`` readings, one per ``step`` seconds: a fetch within the
step of the newest point replaces it (the newest point is always the latest reading), a later one starts a
new point. So a chart reaches back ``points × step`` (the poller makes that 15 minutes) whatever the
source's interval, and an incident stays on it for that long after it was fixed.

Each point is stored column-wise: one ``array('f')`` per metric holding that metric for every object, plus
a key → index map that all ticks share until the set of keys changes. Recording 40,000 GPUs × 4 metrics is
therefore four list builds and four array conversions (a few ms), and reading one key's series walks at most
``points`` ticks.

Node series are not recorded: a node's reading is derived, when asked, from its GPUs' readings of the same
fetch (mean utilisation and temperature, total memory used and power).
"""

from __future__ import annotations

import math
from array import array
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from operator import attrgetter
from typing import Any

from aios_tui.domain.blocks import blocks
from aios_tui.sources.base import SourceData

__all__ = ["ENDPOINT_METRICS", "GPU_METRICS", "NODE_METRICS", "RingHistory", "Series"]


class Series(list[float]):
    """Readings oldest first, as a plain list, with ``step``: the seconds between two of them (0 when not
    known), so that a chart can say how far back it reaches (``−4m … now``)."""

    __slots__ = ("step",)

    def __init__(self, values: Iterable[float] = (), step: float = 0.0) -> None:
        super().__init__(values)
        self.step = step


#: Metrics recorded per GPU (field names of :class:`~aios_tui.domain.Gpu`).
GPU_METRICS: tuple[str, ...] = ("util", "mem_used", "temp", "power")
#: Metrics recorded per endpoint (field names of :class:`~aios_tui.domain.Endpoint`).
ENDPOINT_METRICS: tuple[str, ...] = ("qps", "p50_ms", "p99_ms", "replicas_ready", "error_rate")


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values)


#: Node metrics and how they are derived from the node's GPUs at one fetch.
NODE_METRICS: Mapping[str, Callable[[Sequence[float]], float]] = {
    "util": _mean,
    "temp": max,
    "mem_used": sum,
    "power": sum,
}

_NAN = math.nan


def _floats(values: list[Any]) -> array[float]:
    """The readings as ``array('f')``: NA converts through its ``__float__`` to NaN."""
    return array("f", values)


@dataclass(slots=True)
class _Tick:
    index: Mapping[str, int]
    columns: Mapping[str, array[float]]


class _Series:
    """The last ``points`` fetches of one kind of object (GPUs or endpoints) of one source."""

    __slots__ = (
        "_getters",
        "_key",
        "_keys",
        "_objs",
        "_started",
        "_step",
        "index",
        "node_gpus",
        "ticks",
        "with_nodes",
    )

    def __init__(
        self,
        key: Callable[[Any], str],
        metrics: Iterable[str],
        points: int,
        *,
        with_nodes: bool,
        step: float = 0.0,
    ):
        self._step = step
        self._started = -math.inf
        """When the newest point was started (a fetch before ``_started + _step`` replaces it)."""
        self._key = key
        self._getters = {m: attrgetter(m) for m in metrics}
        self._keys: list[str] = []
        self._objs: Sequence[Any] = ()
        """The objects recorded last: a source hands over the same object for a reading that did not change
        (the sim re-reads a slice of its GPUs per fetch), so only the others are read again."""
        self.index: Mapping[str, int] = {}
        self.with_nodes = with_nodes
        self.node_gpus: Mapping[str, tuple[str, ...]] = {}
        """Node name → keys of its GPUs, as of the latest key set (GPUs only)."""
        self.ticks: deque[_Tick] = deque(maxlen=points)

    def record(self, objs: Sequence[Any], now: float = math.inf) -> None:
        columns = self._patched(objs)
        if columns is None:
            self._rekey(objs)
            columns = {m: _floats(list(map(get, objs))) for m, get in self._getters.items()}
        self._objs = objs
        if self.ticks and now < self._started + self._step:
            self.ticks[-1] = _Tick(self.index, columns)
        else:
            self.ticks.append(_Tick(self.index, columns))
            self._started = now

    def _patched(self, objs: Sequence[Any]) -> dict[str, array[float]] | None:
        """The newest point's columns with only the changed objects read again, when the objects are the
        last fetch's in the same order and at most a quarter of them changed; else None. 37,588 GPUs with a
        tenth re-read: 4.0 ms against 9.0 for all of them (median of 20 records, this machine)."""
        old = self._objs
        if not self.ticks or len(old) != len(objs):
            return None
        sample = sum(1 for a, b in zip(old[:512], objs[:512], strict=True) if a is not b)
        if sample * 4 > min(512, len(objs)):  # most of them re-read (every GPU a fetch): read them all
            return None
        # Compared in blocks first (a source re-reads a slice at a time): one by one only in the blocks where
        # something changed.
        changed: list[int] = []
        for start, part, same in blocks(objs, old, 256):
            if not same:
                changed += [start + i for i, x in enumerate(part) if x is not old[start + i]]
        if len(changed) * 4 > len(objs):
            return None
        key = self._key
        if any(key(old[i]) != key(objs[i]) for i in changed):
            return None
        out: dict[str, array[float]] = {}
        last = self.ticks[-1].columns
        for m, get in self._getters.items():
            col = array("f", last[m])
            for i in changed:
                col[i] = float(get(objs[i]))  # NA is NaN, as in _floats
            out[m] = col
        return out

    def _rekey(self, objs: Sequence[Any]) -> None:
        keys = list(map(self._key, objs))
        if keys != self._keys:
            self._keys = keys
            self.index = {k: i for i, k in enumerate(keys)}
            if self.with_nodes:
                by_node: dict[str, list[str]] = {}
                for obj, k in zip(objs, keys, strict=True):
                    by_node.setdefault(obj.node, []).append(k)
                self.node_gpus = {n: tuple(ks) for n, ks in by_node.items()}

    def series(self, key: str, metric: str, points: int) -> list[float]:
        out: list[float] = []
        for tick in list(self.ticks)[-points:]:
            i = tick.index.get(key)
            col = tick.columns.get(metric)
            out.append(_NAN if i is None or col is None else col[i])
        return out

    def aggregate(
        self, keys: Sequence[str], metric: str, how: Callable[[Sequence[float]], float], points: int
    ) -> list[float]:
        out: list[float] = []
        for tick in list(self.ticks)[-points:]:
            col = tick.columns.get(metric)
            vals: list[float] = []
            if col is not None:
                for k in keys:
                    i = tick.index.get(k)
                    if i is not None and not math.isnan(v := col[i]):
                        vals.append(v)
            out.append(how(vals) if vals else _NAN)
        return out


class RingHistory:
    """The last ``points`` readings, ``step`` seconds apart, of one source's GPUs, nodes (derived) and
    endpoints (``step`` 0: one point per fetch)."""

    __slots__ = ("_endpoints", "_gpus", "step")

    def __init__(self, points: int, step: float = 0.0) -> None:
        if points < 1:
            raise ValueError(f"history needs at least one point, got {points}")
        self.step = step
        self._gpus = _Series(attrgetter("uuid"), GPU_METRICS, points, with_nodes=True, step=step)
        self._endpoints = _Series(attrgetter("key"), ENDPOINT_METRICS, points, with_nodes=False, step=step)

    def record(self, data: SourceData, now: float = math.inf) -> None:
        """Add one fetch's readings, taken at ``now``: a new point, or the newest one replaced when it was
        started less than ``step`` ago."""
        self._gpus.record(data.gpus, now)
        self._endpoints.record(data.endpoints, now)

    def has(self, kind: str, key: str) -> bool:
        """True when the latest fetch had this object (a node counts when it has GPUs)."""
        if kind == "gpu":
            return key in self._gpus.index
        if kind == "node":
            return key in self._gpus.node_gpus
        if kind == "endpoint":
            return key in self._endpoints.index
        return False

    def series(self, kind: str, key: str, metric: str, points: int) -> list[float]:
        """Up to ``points`` readings, oldest first, one per recorded fetch; NaN where there was none.

        Shorter than ``points`` until that many fetches were recorded; empty for an unknown kind or metric.
        """
        if kind == "gpu" and metric in GPU_METRICS:
            return self._gpus.series(key, metric, points)
        if kind == "endpoint" and metric in ENDPOINT_METRICS:
            return self._endpoints.series(key, metric, points)
        if kind == "node" and (how := NODE_METRICS.get(metric)) is not None:
            gpus = self._gpus.node_gpus.get(key, ())
            return self._gpus.aggregate(gpus, metric, how, points)
        return []
