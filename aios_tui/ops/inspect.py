"""Reading what a backend holds about one object: a pod's log (tailed, its previous run, or followed) and the
object itself as YAML, for the console's ``l`` and ``y`` and for the CLI.

An endpoint's replica and a job's rank are pods: :func:`pods_of` gives the pods behind an endpoint (ready
ones first), a job (in rank order), a node or a GPU, and the caller reads the log of the one it picks. The
source is the one that reported the object (its ``source`` field) and must have the capability
(:class:`~aios_tui.sources.base.LogReader`, :class:`~aios_tui.sources.base.ObjectReader`); anything else
is a :class:`~aios_tui.sources.base.SourceError` in words ("prometheus:dcgm has no logs: …").

Reading changes nothing, so neither read-only mode nor a role blocks it: what a user may read is the
backend's to say (Kubernetes' RBAC on ``pods/log``), and its refusal comes back as the source words it.
Lines and YAML are cleaned and bounded by the source, at its boundary; nothing here holds more than one
read's worth.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import Final

from aios_tui.domain import FleetSnapshot, Pod, PodPhase
from aios_tui.domain.text import clean
from aios_tui.sources.base import LogReader, ObjectReader, Source, SourceError

__all__ = ["OBJECT_KINDS", "follow_log", "pods_of", "read_log", "read_object"]

OBJECT_KINDS: Final = ("node", "pod", "job", "endpoint")
"""The kinds a source shows as YAML."""
_NO_LOGS: Final = "logs come from Kubernetes or the embedded fleet"
_NO_YAML: Final = "objects as YAML come from Kubernetes or the embedded fleet"


def _sources(ops_or_sources: object) -> Mapping[str, Source]:
    sources = getattr(ops_or_sources, "sources", ops_or_sources)
    if not isinstance(sources, Mapping):
        raise TypeError("expected Ops or a mapping of source name to source")
    return sources


def _pod(snapshot: FleetSnapshot, key: str) -> Pod:
    pod = next((p for p in snapshot.pods if p.key == key), None)
    if pod is None:
        raise SourceError(f"pod {clean(key)} is not in the fleet (gone, or not seen yet)")
    return pod


def pods_of(snapshot: FleetSnapshot, kind: str, key: str) -> tuple[Pod, ...]:
    """The pods behind an object: an endpoint's replicas (running and ready first, then by name), a job's
    ranks (rank order), a node's pods (by namespace and name), a GPU's pod, a pod itself; () for any other
    kind or an object with none."""
    if kind == "pod":
        return tuple(p for p in snapshot.pods if p.key == key)[:1]
    if kind == "endpoint":
        replicas = [p for p in snapshot.pods_by_owner.get(key, ()) if p.owner_kind != "Job"]
        replicas.sort(key=lambda p: (not (p.phase is PodPhase.RUNNING and p.ready), p.name))
        return tuple(replicas)
    if kind == "job":
        ranks = [p for p in snapshot.pods_by_owner.get(key, ()) if p.owner_kind == "Job"]
        ranks.sort(key=lambda p: (p.rank if p.rank >= 0 else 1 << 30, p.name))
        return tuple(ranks)
    if kind == "node":
        return tuple(sorted(snapshot.pods_by_node.get(key, ()), key=lambda p: (p.namespace, p.name)))
    if kind == "gpu":
        gpu = snapshot.gpu_by_uuid.get(key)
        return pods_of(snapshot, "pod", gpu.pod) if gpu is not None and gpu.pod else ()
    return ()


def _log_reader(sources: Mapping[str, Source], pod: Pod) -> LogReader:
    src = sources.get(pod.source)
    if src is None:
        raise SourceError(f"pod {pod.key}: its source {pod.source or '(none)'} is not open in this console")
    if not isinstance(src, LogReader):
        raise SourceError(f"{pod.source} has no logs: {_NO_LOGS}")
    return src


async def read_log(
    ops_or_sources: object,
    snapshot: FleetSnapshot,
    pod_key: str,
    container: str = "",
    previous: bool = False,
    tail: int = 500,
) -> list[str]:
    """The last ``tail`` lines of the pod's container (its only or first one when not named; ``previous``:
    the run before its last restart), cleaned. Raises :class:`SourceError` in words."""
    pod = _pod(snapshot, pod_key)
    reader = _log_reader(_sources(ops_or_sources), pod)
    return await reader.read_log(pod.namespace, pod.name, container=container, previous=previous, tail=tail)


def follow_log(
    ops_or_sources: object, snapshot: FleetSnapshot, pod_key: str, container: str = "", tail: int = 100
) -> AsyncIterator[str]:
    """The last ``tail`` lines, then each new one as the container writes it, until the caller stops
    iterating (``aclose``). Raises :class:`SourceError` at once when the pod or its source cannot; the
    iterator raises it when the read fails later."""
    pod = _pod(snapshot, pod_key)
    reader = _log_reader(_sources(ops_or_sources), pod)
    return reader.follow_log(pod.namespace, pod.name, container=container, tail=tail)


def _owner_source(snapshot: FleetSnapshot, kind: str, key: str) -> tuple[str, ...]:
    """The sources that may hold the object, the one that reported it first; () when it is not in the
    fleet. A node merged from several sources (Kubernetes, Prometheus, AWS) names the first in config
    order: the sources of its pods follow, so that a Kubernetes node shows as Kubernetes holds it."""
    if kind == "node":
        node = snapshot.node_by_name.get(key)
        if node is None:
            return ()
        return tuple(dict.fromkeys([node.source, *(p.source for p in snapshot.pods_by_node.get(key, ()))]))
    if kind == "pod":
        return tuple(p.source for p in pods_of(snapshot, "pod", key))
    if kind == "job":
        job = snapshot.job_by_key.get(key)
        return (job.source,) if job is not None else ()
    if kind == "endpoint":
        endpoint = snapshot.endpoint_by_key.get(key)
        return (endpoint.source,) if endpoint is not None else ()
    return ()


async def read_object(ops_or_sources: object, snapshot: FleetSnapshot, kind: str, key: str) -> str:
    """The object (``node``, ``pod``, ``job``, ``endpoint``) as its backend holds it, as YAML. Raises
    :class:`SourceError` in words."""
    if kind not in OBJECT_KINDS:
        raise SourceError(f"no YAML for a {clean(kind, 40)}: only for {', '.join(OBJECT_KINDS)}")
    names = _owner_source(snapshot, kind, key)
    if not names:
        raise SourceError(f"{kind} {clean(key)} is not in the fleet (gone, or not seen yet)")
    sources = _sources(ops_or_sources)
    for name in names:
        reader = sources.get(name)
        if isinstance(reader, ObjectReader):
            return await reader.read_object(kind, key)
    raise SourceError(f"{names[0]} does not hold {kind} {key} as an object: {_NO_YAML}")
