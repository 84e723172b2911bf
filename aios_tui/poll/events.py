"""The console's event log: what the sources told (Kubernetes events, XIDs, restarts) and what the poller saw
change between two snapshots (a node going NotReady or cordoned, a GPU's new XID, a source failing), kept
bounded across fetches.

Pure: snapshots and events in, events out. The poller owns one :class:`EventLog` and puts its newest-first
tuple in every snapshot.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Final

from aios_tui.domain import Event, FleetSnapshot, Gpu, SourceState

__all__ = ["SEEN_BY", "EventLog", "changes"]

SEEN_BY: Final = "aios-tui"
"""The ``source`` of an event the poller derived from two snapshots."""


class EventLog:
    """The newest ``limit`` events, one per :attr:`Event.identity` and time: a repeat the backend folds
    (Kubernetes' ``count``) replaces the older report of the same event."""

    def __init__(self, limit: int = 5000) -> None:
        self._limit = limit
        self._by_id: dict[tuple[str, str, str, str, float], Event] = {}
        self._latest: dict[tuple[str, str, str, str], float] = {}
        self._cached: tuple[Event, ...] | None = ()

    def add(self, events: Iterable[Event]) -> None:
        for e in events:
            ident = e.identity
            first = self._latest.get(ident)
            if first is not None and e.count > 1 and e.time >= first:
                # The same event seen again: Kubernetes moved its lastTimestamp and count.
                self._by_id.pop((*ident, first), None)
            self._by_id[(*ident, e.time)] = e
            self._latest[ident] = e.time
            self._cached = None
        if len(self._by_id) > self._limit:
            keep = sorted(self._by_id.items(), key=lambda kv: kv[1].time, reverse=True)[: self._limit]
            self._by_id = dict(keep)
            self._latest = {}
            for e in self._by_id.values():
                self._latest[e.identity] = max(e.time, self._latest.get(e.identity, e.time))

    def newest_first(self) -> tuple[Event, ...]:
        if self._cached is None:
            self._cached = tuple(sorted(self._by_id.values(), key=lambda e: e.time, reverse=True))
        return self._cached

    def __len__(self) -> int:
        return len(self._by_id)


def _changed_pairs(
    old: tuple[Gpu, ...], new: tuple[Gpu, ...], by_uuid: Callable[[], Mapping[str, Gpu]]
) -> Iterator[tuple[Gpu, Gpu]]:
    """(before, after) for each GPU whose object changed. The fleet's GPUs usually come in the same order
    as last time: compared position by position, and by uuid where they do not line up (a node came or
    went). 37,588 GPUs: 1 ms, against 6 ms for an index by uuid and a lookup per GPU."""
    lookup: Mapping[str, Gpu] | None = None
    pairs: list[tuple[Gpu | None, Gpu]]
    if len(old) == len(new):
        pairs = [(w, g) for w, g in zip(old, new, strict=True) if w is not g]
    else:
        pairs = [(None, g) for g in new]
    for w, g in pairs:
        was: Gpu | None = w
        if was is None or was.uuid != g.uuid:
            lookup = by_uuid() if lookup is None else lookup
            was = lookup.get(g.uuid)
            if was is None or was is g:
                continue
        yield was, g


def changes(before: FleetSnapshot | None, after: FleetSnapshot, now: float) -> list[Event]:
    """What changed from ``before`` to ``after`` that an on-call engineer wants in the log: nodes going
    NotReady / Ready, cordoned / uncordoned (and by whom), a GPU's new XID or uncorrectable ECC errors, a
    source failing or coming back. Nothing on the first snapshot (there is no before)."""
    if before is None:
        return []
    out: list[Event] = []
    # Sources hand over the same object for what did not change (the sim re-reads a slice of its GPUs,
    # Kubernetes rebuilds only what a watch event touched): those are skipped before any comparison.
    old_nodes = before.node_by_name
    for n in after.nodes:
        was = old_nodes.get(n.name)
        if was is None or was is n:
            continue
        if was.ready and not n.ready:
            said = "the node stopped reporting Ready"
            out.append(Event(now, "node", n.name, "NotReady", said, True, 1, SEEN_BY))
        elif not was.ready and n.ready:
            out.append(Event(now, "node", n.name, "Ready", "the node is Ready again", False, 1, SEEN_BY))
        if n.cordoned and not was.cordoned:
            by = f" by {n.cordoned_by}" if n.cordoned_by else ""
            out.append(Event(now, "node", n.name, "Cordoned", f"cordoned{by}", True, 1, SEEN_BY))
        elif was.cordoned and not n.cordoned:
            out.append(Event(now, "node", n.name, "Uncordoned", "schedulable again", False, 1, SEEN_BY))
    for was_g, g in _changed_pairs(before.gpus, after.gpus, lambda: before.gpu_by_uuid):
        if g.xid and (g.xid != was_g.xid or g.xid_at != was_g.xid_at):
            at = g.xid_at or now
            what = ", ".join(p for p in g.problems if p.startswith("XID")) or f"XID {g.xid}"
            out.append(Event(at, "gpu", g.uuid, f"XID {g.xid}", f"{g.slot}: {what}", True, 1, SEEN_BY))
        if g.ecc_uncorrected > was_g.ecc_uncorrected:
            out.append(
                Event(
                    now,
                    "gpu",
                    g.uuid,
                    "ECC",
                    f"{g.slot}: {g.ecc_uncorrected} uncorrectable ECC errors (was {was_g.ecc_uncorrected})",
                    True,
                    1,
                    SEEN_BY,
                )
            )
    old_sources = {s.name: s for s in before.sources}
    bad = (SourceState.ERROR, SourceState.STALE)
    for s in after.sources:
        was_s = old_sources.get(s.name)
        if was_s is None:
            continue
        if s.state in bad and was_s.state not in bad:
            out.append(Event(now, "source", s.name, "SourceDown", s.error or s.state.value, True, 1, SEEN_BY))
        elif s.state not in bad and was_s.state in bad:
            out.append(Event(now, "source", s.name, "SourceBack", "answering again", False, 1, SEEN_BY))
    return out
