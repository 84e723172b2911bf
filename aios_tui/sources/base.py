"""The source interface: what every backend gives, and the capabilities that decide which actions exist.

A source turns one backend (Kubernetes, AWS, Prometheus, NVML, SSH hosts, the embedded fleet) into domain
objects. ``fetch()`` returns everything it knows in one :class:`SourceData`; the poller calls it on the
source's interval with a timeout and merges the results. Actions are small capability protocols
(after k9s's ``Scalable``/``Restartable``/``NodeMaintainer``): ``ops`` asks ``isinstance(src, Scalable)``
and an action exists only where a source can carry it out.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from aios_tui.domain import Endpoint, Event, Gpu, Job, Node, NodePool, Pdb, Pod, SourcePart
from aios_tui.domain.errors import PlainError


@dataclass(frozen=True, slots=True)
class SourceData:
    """Everything one source knew at one fetch."""

    nodes: tuple[Node, ...] = ()
    gpus: tuple[Gpu, ...] = ()
    pods: tuple[Pod, ...] = ()
    jobs: tuple[Job, ...] = ()
    endpoints: tuple[Endpoint, ...] = ()
    pools: tuple[NodePool, ...] = ()
    pdbs: tuple[Pdb, ...] = ()
    context: str = ""
    """What the source is connected to (cluster, account, host), for the header."""
    problems: tuple[str, ...] = ()
    """Parts the source could not read this time (access denied on one API, one region down), each a short
    sentence; the rest of the data is good. The source shows as partial, with these, not as failed."""
    parts: tuple[SourcePart, ...] = ()
    """Its hosts, targets or regions and how each fared, for the sources view (empty: it has none)."""
    events: tuple[Event, ...] = ()
    """What happened lately as the backend tells it (Kubernetes events, XIDs with their time, restarts); the
    poller keeps a bounded log of them across fetches."""
    separate: frozenset[str] = frozenset()
    """Node names that must not be merged with another source's node of the same name: a machine this
    source knows only by a name another source may use for a different machine (an SSH host not tied to a
    cluster node with ``node = …``). The poller keeps such a node apart, qualified by the source's name."""


def backoff_delay(interval: float, failures: int, max_backoff: float) -> float:
    """Seconds to wait after ``failures`` consecutive failures: 2×, 4×, 8× … ``interval``, capped.

    No failures means the plain ``interval``. The cap never goes below ``interval`` itself. The one back-off
    of the project: the poller between fetches, the Kubernetes source between reconnections.
    """
    if failures <= 0:
        return interval
    return min(max(max_backoff, interval), interval * 2.0 ** min(failures, 62))


class SourceError(PlainError):
    """A backend answered with an error worth showing as it is (no secrets in the message)."""


class EvictionBlocked(SourceError):
    """An eviction was refused because a PodDisruptionBudget has no headroom now (HTTP 429 on Kubernetes).

    Retrying later may succeed, as the budget's pods become healthy again."""

    def __init__(self, message: str, *, pdb: str = "") -> None:
        super().__init__(message)
        self.pdb = pdb


@runtime_checkable
class Source(Protocol):
    """One backend. ``name`` is unique in a session (``sim``, ``k8s:prod``); ``kind`` names the backend."""

    name: str
    kind: str
    interval: float
    """Seconds between the end of one fetch and the start of the next."""
    timeout: float
    """A fetch that takes longer is abandoned and counts as a failure."""

    async def fetch(self) -> SourceData: ...

    async def close(self) -> None: ...


# --- capabilities ---------------------------------------------------------------------------------------


@runtime_checkable
class Scalable(Protocol):
    """Can set an endpoint's replica count."""

    async def scale_endpoint(self, namespace: str, name: str, replicas: int) -> None: ...


@runtime_checkable
class Restartable(Protocol):
    """Can roll an endpoint's pods (a rolling restart, or a new image)."""

    async def redeploy_endpoint(self, namespace: str, name: str, image: str | None = None) -> None: ...


@runtime_checkable
class NodeMaintainer(Protocol):
    """Can cordon, uncordon and evict pods from nodes."""

    async def set_cordon(self, node: str, cordoned: bool) -> None: ...

    async def evict_pod(self, namespace: str, name: str) -> None: ...


@runtime_checkable
class PermissionChecker(Protocol):
    """Knows, ahead of time, whether the backend would refuse an action (RBAC, a read-only context)."""

    def permission(self, action: str, target: str | None = None) -> str | None:
        """None when ``action`` on ``target`` (an endpoint key, a node name, a job key; None: any) looks
        allowed, else the reason it is not. Answers from what the source already knows: never blocks."""
        ...


DEFAULT_TRAINING_IMAGE = "nvcr.io/nvidia/pytorch:24.08-py3"
"""What a launch runs when nobody names an image (the console's form and ``plan launch`` both offer it)."""


@dataclass(frozen=True, slots=True)
class LaunchSpec:
    """A training job to start: ``workers`` × ``gpus_per_worker`` GPUs, optionally pinned to nodes."""

    namespace: str
    name: str
    image: str
    workers: int
    gpus_per_worker: int
    gpu_model: str = ""
    zone: str = ""
    priority: int = 0
    priority_class: str = ""
    """A named priority (Kubernetes' PriorityClass, whose value the cluster holds); "" for none."""
    placement: tuple[str, ...] = ()
    """Node per rank as planned; empty to let the backend's scheduler decide."""

    def check_shape(self) -> None:
        """ValueError unless it has at least one worker and one GPU per worker, and a placement (if any)
        names one node per worker: what every launcher checks before it changes anything."""
        if self.workers < 1 or self.gpus_per_worker < 1:
            shape = f"{self.workers}×{self.gpus_per_worker}"
            raise ValueError(f"a job needs at least 1 worker and 1 GPU per worker, got {shape}")
        if self.placement and len(self.placement) != self.workers:
            raise ValueError(f"placement names {len(self.placement)} nodes for {self.workers} workers")


@runtime_checkable
class NamedPriorities(Protocol):
    """A launcher whose jobs take their priority from a named class (Kubernetes' PriorityClass): a bare
    number cannot reach the job, a class name must be given."""

    def priority_classes(self) -> Mapping[str, int] | None:
        """Known classes (name → value), or None when the launcher does not know them."""
        ...


@runtime_checkable
class EvictionDryRun(Protocol):
    """Can ask its backend whether an eviction would be accepted now, without doing it (``dryRun=All``):
    raises as ``evict_pod`` would (``EvictionBlocked`` for a PodDisruptionBudget), changes nothing."""

    async def evict_pod_dry_run(self, namespace: str, name: str) -> None: ...


@runtime_checkable
class JobLauncher(Protocol):
    """Can start training jobs."""

    async def launch_job(self, spec: LaunchSpec) -> None: ...


@runtime_checkable
class JobQueue(Protocol):
    """Can hold a training job that does not fit now and start it whole once it fits (the embedded fleet's
    scheduler; Kubernetes with Kueue). A launch with no placement is then queued, not scattered."""

    def queues_jobs(self) -> bool:
        """Whether a job launched with no placement waits, whole, for room (False: it would be left to a
        scheduler that may start part of the gang)."""
        ...


@runtime_checkable
class PoolScaler(Protocol):
    """Can set a node pool's desired capacity (an Auto Scaling group, an EKS node group)."""

    async def scale_pool(self, name: str, desired: int) -> None: ...


@runtime_checkable
class PoolScaleNotes(Protocol):
    """Knows, from its last listing, why a new desired capacity would not take effect as asked (scaling
    processes suspended, lifecycle hooks that hold terminating machines: warnings) or cannot be set at all
    (a count the pool cannot take: blockers)."""

    def scale_notes(self, name: str, current: int, desired: int) -> tuple[str, ...]: ...

    def scale_blockers(self, name: str, desired: int) -> tuple[str, ...]: ...


@runtime_checkable
class LogReader(Protocol):
    """Can read a pod's container log (the Kubernetes logs API; the embedded fleet's own). Every line is
    cleaned at this boundary (:func:`aios_tui.domain.text.clean`), cut to a bounded length, and at most
    ``tail`` lines are kept in memory."""

    async def read_log(
        self, namespace: str, pod: str, *, container: str = "", previous: bool = False, tail: int = 500
    ) -> list[str]:
        """The last ``tail`` lines (``previous``: of the container's previous run, after a restart)."""
        ...

    def follow_log(
        self, namespace: str, pod: str, *, container: str = "", tail: int = 100
    ) -> AsyncIterator[str]:
        """The last ``tail`` lines, then each new line as it is written, until the caller stops."""
        ...


@runtime_checkable
class ObjectReader(Protocol):
    """Can show an object as its backend holds it (Kubernetes: the object as YAML, managedFields left out),
    cleaned at this boundary. ``kind`` is ``node``, ``pod``, ``job`` or ``endpoint``; ``key`` its key."""

    async def read_object(self, kind: str, key: str) -> str: ...


@runtime_checkable
class HistoryProvider(Protocol):
    """Can give past readings for a sparkline: ``points`` values ending now, ``step`` seconds apart.

    ``kind`` is ``gpu``, ``node`` or ``endpoint``; ``key`` the object's key; ``metric`` a field name
    (``util``, ``mem_used``, ``temp``, ``power``, ``qps``, ``p99_ms`` …). NaN where there was no reading.
    """

    def history(self, kind: str, key: str, metric: str, points: int, step: float) -> Sequence[float]: ...
