"""Gang placement: where W workers × G GPUs of one model go, all of them or none, and why not when they can't.

The model
---------
``Capacity`` holds the free GPUs of every node that may receive pods (``Node.schedulable`` and not
excluded), built once from a snapshot and then updated by ``commit``/``release``, so a caller can place a
queue of gangs one after the other without re-reading the snapshot. ``place`` decides and never mutates.

The rules, in order
-------------------
1. All workers or none, all on nodes of one GPU model (``Node.gpu_model``), all in ONE zone; a node may host
   several workers when its free GPUs allow. Never more GPUs than a node has free.
2. The tightest topology domain wins: one node, else one rack (``Node.rack``; nodes without a rack label
   are in no rack), else one zone. Locality is weighed, not absolute, in one place: a gang of several
   workers that fits on one node goes instead to partly used nodes of one rack when that leaves at least
   :data:`LOCALITY_GPUS` fewer fragmented GPUs per extra node (two half-free nodes rather than an empty one,
   which a later 8-GPU worker needs).
3. Inside the chosen kind of domain, the placement that leaves the least fragmented free capacity.

Fragmentation follows Weng et al., "Beware of Fragmentation: Scheduling GPU-Sharing Workloads with
Fragmentation Gradient Descent" (USENIX ATC'23): for a distribution ``p`` of request sizes, a node with
``f`` free GPUs holds ``F(f) = f · P(size > f)`` fragmented GPUs (free GPUs that a request of that size
cannot use); the fleet's fragmentation is the sum over nodes. The size distribution is the snapshot's own
demand (one sample per training worker and per serving replica), or ``DEFAULT_SIZES`` when it has none.

How rule 3 is applied (the choices, and why):

- One node: the node minimising the fragmentation increase ``F(f − need) − F(f)`` (the paper's
  fragmentation gradient descent), then the smallest ``f`` (best fit), then the zone with the least free
  GPUs; inside the zone, a node outside any rack first, then the rack with the least free GPUs, so that
  empty racks stay whole for the gangs that need them.
- One rack / one zone: best fit at the level of the domain: the domain whose capacity (in workers of this
  size) the gang uses up most, ties broken by the fragmentation increase. Inside the domain a greedy fill:
  whole nodes holding the most workers first (fewest nodes, so fewest network hops), and the last workers
  on the single node whose fragmentation grows least. In a zone, racks are filled largest first and the
  remainder goes to the best-fitting rack, so a gang spans as few racks as possible.

Exact optimisation (an integer program per request) would cost milliseconds; this runs in tens of
microseconds at 5,000 nodes, because nodes are indexed by (model, zone, rack) and bucketed by free count:
a domain is a handful of buckets, not hundreds of nodes. ``bench/bench_alloc.py`` measures how close to the
CP-SAT optimum it gets.

CPU, memory and shares of a GPU
-------------------------------
A request whose workers also ask for CPU and memory, or for a share of one GPU (``gpu_milli``; only on nodes
whose GPUs are shared by time-slicing or MPS, :data:`SHAREABLE`), or for no GPU, follows rule 1, and then
places its workers one by one in each zone: each on the node (and, for a share, the GPU) where the
fragmentation of the expected workload grows least (``fragmentation.node_fragmentation``: the free GPUs that
each expected task shape could not use, CPU included, weighted by how common the shape is), plus
:data:`LOCALITY_GPUS` for a node the gang does not use yet, plus the model's scarcity cost (``_scarcity``)
when the request accepts several models; ties to the node left fullest (best fit). The zone whose workers
cost least wins. A node's CPU and memory are what its allocatable leaves after its pods' requests (no limit
when its source does not know them); shares already taken are assumed packed on as few GPUs as hold them.
This path visits every node of the matching models (hundreds of microseconds at 1,000 nodes), not buckets:
it is for the requests that need it, whole-GPU requests keep the rules above.

Priority is carried for messages and queue order; placement itself never preempts.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from itertools import islice
from types import MappingProxyType

from aios_tui.alloc.fragmentation import NodeFree, TargetWorkload, Task, node_fragmentation
from aios_tui.domain import MILLI_GPU, FleetSnapshot, Health, Job, Node, is_gpu_model

__all__ = [
    "DEFAULT_SIZES",
    "Capacity",
    "GangRequest",
    "Placement",
    "Refusal",
    "demand_sizes",
    "place_gang",
]

#: GPU sharing modes (``Node.gpu_sharing``) under which a share of a GPU may be placed on a node. MIG slices
#: are fixed profiles, not free shares: a MIG node takes whole GPUs only here.
SHAREABLE = frozenset({"time-slicing", "mps"})

#: Request-size distribution (GPUs per worker → probability) used when a snapshot shows no demand.
DEFAULT_SIZES: Mapping[int, float] = {8: 0.5, 4: 0.2, 2: 0.1, 1: 0.2}


@dataclass(frozen=True, slots=True)
class GangRequest:
    """``workers`` pods of ``gpus_per_worker`` GPUs each, placed all together or not at all.

    A worker may also ask for CPU and memory, and instead of whole GPUs for a share of one
    (``gpu_milli``, with ``gpus_per_worker == 1``); such a request is placed by the multi-resource rules
    (see the module docstring), and a worker of no GPU at all (CPU and memory only) is one too.
    """

    workers: int
    gpus_per_worker: int
    gpu_model: str = ""
    """Short model (``H100``), or alternatives (``A10|T4``); "" = any model, but all workers on one model."""
    zone: str = ""
    """"" = any zone; the whole gang is always in one zone."""
    priority: int = 0
    name: str = ""
    """``namespace/name`` of the job, for messages."""
    cpu: int = 0
    """Milli-CPU per worker."""
    memory: int = 0
    """Bytes of memory per worker."""
    gpu_milli: int = 0
    """A share of one GPU per worker, in milli-GPU (1–999); 0 = whole GPUs."""

    def __post_init__(self) -> None:
        if self.workers < 1 or self.gpus_per_worker < 0 or self.cpu < 0 or self.memory < 0:
            raise ValueError(
                f"a gang needs at least one worker and no negative request, got {self.workers}×"
                f"{self.gpus_per_worker} GPUs, {self.cpu} milli-CPU, {self.memory} bytes"
            )
        if not self.gpus_per_worker and not (self.cpu or self.memory):
            raise ValueError("a worker must ask for GPUs, CPU or memory")
        if self.gpu_milli and not (0 < self.gpu_milli < MILLI_GPU and self.gpus_per_worker == 1):
            raise ValueError(
                f"a share of a GPU is 1–{MILLI_GPU - 1} milli-GPU of one GPU, got {self.gpu_milli} of "
                f"{self.gpus_per_worker}"
            )

    @property
    def gpus(self) -> int:
        """Whole GPUs asked for (a share of a GPU counts as none)."""
        return 0 if self.gpu_milli else self.workers * self.gpus_per_worker

    @property
    def models(self) -> frozenset[str]:
        """The GPU models accepted; empty = any."""
        return frozenset(m for m in self.gpu_model.split("|") if m)

    @property
    def multi(self) -> bool:
        """Whether the multi-resource rules place it (CPU, memory, a share of a GPU, or no GPU)."""
        return bool(self.cpu or self.memory or self.gpu_milli or not self.gpus_per_worker)

    @classmethod
    def for_job(cls, job: Job) -> GangRequest:
        """What a queued :class:`Job` asks the scheduler for (at least 1 worker × 1 GPU)."""
        return cls(
            workers=max(1, job.workers),
            gpus_per_worker=max(1, job.gpus_per_worker),
            gpu_model=job.gpu_model,
            zone=job.zone,
            priority=job.priority,
            name=job.key,
        )

    def describe(self) -> str:
        """``4×8 H100``, ``4×8 GPUs`` when any model will do; ``1×0.25 L4 + 4 CPU, 16 GiB`` with a share of a
        GPU and CPU and memory; ``2 workers of 4 CPU`` without GPUs."""
        what = self.gpu_model or "GPUs"
        extra = [f"{self.cpu / 1000:g} CPU"] if self.cpu else []
        extra += [f"{self.memory / 2**30:.3g} GiB"] if self.memory else []
        if not self.gpus_per_worker:
            return f"{_plural(self.workers, 'worker')} of {', '.join(extra)}"
        each = f"{self.gpu_milli / MILLI_GPU:g}" if self.gpu_milli else str(self.gpus_per_worker)
        return f"{self.workers}×{each} {what}" + (" + " + ", ".join(extra) if extra else "")


@dataclass(frozen=True, slots=True)
class Placement:
    request: GangRequest
    nodes: tuple[str, ...]
    """Node of each rank, in rank order; a node appears once per worker it hosts."""
    domain: str
    """Tightest domain holding the gang: ``node X``, ``rack R`` or ``zone Z``; "" for nodes without a zone
    label (there is no name to print)."""
    fragmented_after: float
    """Fleet fragmentation once committed (see ``Capacity.fragmented_gpus``)."""
    shares: tuple[int, ...] = ()
    """For a share of a GPU: per rank, the free milli-GPU of the GPU it goes on (1000: a whole free GPU);
    empty otherwise."""

    @property
    def where(self) -> str:
        """`` in rack R`` for a sentence, "" when the domain has no name."""
        return f" in {self.domain}" if self.domain else ""

    @property
    def gpus_by_node(self) -> dict[str, int]:
        """GPUs the placement takes on each node."""
        out: dict[str, int] = {}
        g = 0 if self.request.gpu_milli else self.request.gpus_per_worker
        for n in self.nodes:
            out[n] = out.get(n, 0) + g
        return out


@dataclass(frozen=True, slots=True)
class Refusal:
    request: GangRequest
    reason: str
    """One sentence for a person on call: what was needed and the best that is available."""
    best_zone: str = ""
    placeable_workers: int = 0
    """How many workers the best zone could hold now."""


def _demand_counts(snapshot: FleetSnapshot) -> dict[str, dict[int, int]]:
    """GPU model asked for ("" for any) → request size → the training workers and serving replicas asking."""
    counts: dict[str, dict[int, int]] = {}
    asks = [(j.gpu_model, j.gpus_per_worker, j.workers) for j in snapshot.jobs]
    asks += [(e.gpu_model, e.gpus_per_replica, e.replicas_desired) for e in snapshot.endpoints]
    for model, size, n in asks:
        if size > 0 and n > 0:
            c = counts.setdefault(model, {})
            c[size] = c.get(size, 0) + n
    return counts


def _mix(counts: Mapping[int, int]) -> dict[int, float]:
    total = sum(counts.values())
    return {size: n / total for size, n in sorted(counts.items())}


def demand_sizes(snapshot: FleetSnapshot) -> dict[int, float]:
    """The request-size distribution of a snapshot: one sample per training worker and serving replica
    (:data:`DEFAULT_SIZES` when nothing asks for GPUs)."""
    total: dict[int, int] = {}
    for counts in _demand_counts(snapshot).values():
        for size, n in counts.items():
            total[size] = total.get(size, 0) + n
    return _mix(total) if total else dict(DEFAULT_SIZES)


def demand_sizes_by_model(snapshot: FleetSnapshot) -> dict[str, dict[int, float]]:
    """GPU model → the request-size distribution of the workers and replicas that ask for that model."""
    return {model: _mix(counts) for model, counts in _demand_counts(snapshot).items() if model}


def unusable_gpus(free: int, sizes: Mapping[int, float]) -> float:
    """``F(f) = f · P(size > f)``: of a node's ``free`` GPUs, those a request drawn from ``sizes`` (a
    normalised distribution) cannot use."""
    return free * sum(p for s, p in sizes.items() if s > free)


def _normalise(sizes: Mapping[int, float]) -> dict[int, float]:
    clean = {int(s): float(p) for s, p in sizes.items() if s > 0 and p > 0}
    total = sum(clean.values())
    if not total:
        raise ValueError(f"a size distribution needs a positive weight on a positive size, got {sizes!r}")
    return {s: p / total for s, p in clean.items()}


def _frag_table(sizes: Mapping[int, float], upto: int) -> list[float]:
    """:func:`unusable_gpus` for f in 0..upto."""
    return [unusable_gpus(f, sizes) for f in range(upto + 1)]


def _unavailable_reason(node: Node) -> str:
    if not node.ready:
        return "NotReady"
    if node.cordoned:
        return "cordoned"
    if node.health is Health.FAIL:
        return "unhealthy"
    return "tainted"


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


class _Domain:
    """The nodes of one rack (or the rack-less nodes of a zone), bucketed by free GPU count."""

    __slots__ = ("by_free", "caps", "free", "name", "shape")

    def __init__(self, name: str) -> None:
        self.name = name
        self.by_free: dict[int, dict[str, None]] = {}
        """free count → nodes (a dict used as an insertion-ordered set: deterministic choices)."""
        self.free = 0
        self.caps: dict[int, int] = {}
        """Worker size → :meth:`capacity`, as last computed; emptied whenever a node's free count changes.
        A gang's rack search asks every rack of its model and zone: 90 % of its time went to the sums."""
        self.shape: tuple[tuple[int, int], ...] | None = None
        """(free count, nodes) sorted, as last computed (:meth:`counts_shape`); reset with :attr:`caps`."""

    def clone(self) -> _Domain:
        d = _Domain(self.name)
        d.by_free = {f: dict(nodes) for f, nodes in self.by_free.items()}
        d.free = self.free
        d.caps = dict(self.caps)
        return d

    def capacity(self, g: int) -> int:
        """Workers of ``g`` GPUs this domain can hold."""
        cap = self.caps.get(g)
        if cap is None:
            cap = self.caps[g] = sum(len(nodes) * (f // g) for f, nodes in self.by_free.items() if f >= g)
        return cap

    def counts(self) -> dict[int, int]:
        return {f: len(nodes) for f, nodes in self.by_free.items()}

    def counts_shape(self) -> tuple[tuple[int, int], ...]:
        """:meth:`counts` sorted, as a key: two domains of the same shape fill alike."""
        if self.shape is None:
            self.shape = tuple(sorted((f, len(nodes)) for f, nodes in self.by_free.items()))
        return self.shape


class _Group:
    """All schedulable nodes of one GPU model in one zone."""

    __slots__ = ("by_capacity", "counts", "free", "model", "picks", "racks", "size", "zone")

    def __init__(self, model: str, zone: str) -> None:
        self.model = model
        self.zone = zone
        self.racks: dict[str, _Domain] = {}
        """rack → its nodes; key "" holds the nodes without a rack label (a pool, not a domain)."""
        self.counts: dict[int, int] = {}
        """free count → number of nodes, over the whole group."""
        self.free = 0
        self.size = 0
        """The largest allocatable GPU count of a node in the group."""
        self.by_capacity: dict[int, tuple[list[int], list[_Domain]]] = {}
        """Worker size → the racks that hold at least one such worker, by capacity then name (see
        :meth:`racks_by_capacity`); emptied whenever a node's free count changes."""
        self.picks: dict[int, _Domain] = {}
        """Free count → the domain a one-node placement takes such a node from (:meth:`pick`); emptied
        with :attr:`by_capacity`."""

    def clone(self) -> _Group:
        g = _Group(self.model, self.zone)
        g.racks = {r: d.clone() for r, d in self.racks.items()}
        g.counts = dict(self.counts)
        g.free = self.free
        g.size = self.size
        return g

    def capacity(self, g: int) -> int:
        return sum(n * (f // g) for f, n in self.counts.items() if f >= g)

    def pick(self, f: int) -> _Domain:
        """Where a one-node placement takes a node with ``f`` free GPUs: a node outside any rack first, then
        the rack with the least free GPUs (then by name), so that empty racks stay whole for the gangs that
        need them. The group must hold such a node."""
        dom = self.picks.get(f)
        if dom is None:
            key: tuple[bool, int, str] | None = None
            for d in self.racks.values():
                if f in d.by_free:
                    k = (d.name != "", d.free, d.name)
                    if key is None or k < key:
                        dom, key = d, k
            assert dom is not None, f"no node with {f} free GPUs in {self.label(True)}"
            self.picks[f] = dom
        return dom

    def racks_by_capacity(self, g: int) -> tuple[list[int], list[_Domain]]:
        """The racks (not the rack-less nodes) that hold a worker of ``g`` GPUs, sorted by how many such
        workers they hold, then by name: their capacities and the racks. Looking for the rack a gang fills
        best is then a bisection, not a pass over every rack of the zone at every request."""
        found = self.by_capacity.get(g)
        if found is None:
            ranked = sorted(
                (cap, d.name, d) for d in self.racks.values() if d.name and (cap := d.capacity(g))
            )
            found = self.by_capacity[g] = ([c for c, _, _ in ranked], [d for _, _, d in ranked])
        return found

    def label(self, with_model: bool) -> str:
        """``us-east-1a, H100``; an unlabelled zone or model is left out, not printed empty."""
        return ", ".join(x for x in (self.zone, self.model if with_model else "") if x)


#: What keeping a gang on one node is worth, in fragmented GPUs per extra node it would otherwise span
#: (rule 2): workers on one node talk over NVLink, across nodes over the network. One GPU: a 2×4 gang takes
#: two half-free nodes (4 GPUs less fragmented with the default sizes) rather than an empty node.
LOCALITY_GPUS = 1.0

#: A node's room as the multi-resource rules see it: free GPUs, free milli-GPU of each GPU partly taken
#: (largest first), free milli-CPU, free bytes of memory.
_State = tuple[int, tuple[int, ...], int, int]

#: Free CPU or memory of a node whose allocatable is unknown: no limit.
_NO_LIMIT = 1 << 62


#: A fill plan for one domain: (free count, workers per node, number of nodes).
_Fill = list[tuple[int, int, int]]


def _greedy(counts: Mapping[int, int], g: int, workers: int, frag: list[float]) -> tuple[_Fill, float] | None:
    """Fill ``workers`` workers of ``g`` GPUs into nodes bucketed by free count; ``None`` when they don't fit.

    Whole nodes holding the most workers first (ties: least fragmentation left, then the smallest node),
    then the last workers on the one node whose fragmentation grows least.
    """
    avail = {f: c for f, c in counts.items() if c and f >= g}
    plan: _Fill = []
    delta = 0.0
    remaining = workers
    while remaining:
        if not avail:
            return None
        tail: tuple[float, int] | None = None
        for f in avail:
            if f // g >= remaining:
                key = (frag[f - remaining * g] - frag[f], f)
                if tail is None or key < tail:
                    tail = key
        if tail is not None:
            plan.append((tail[1], remaining, 1))
            return plan, delta + tail[0]
        f = min(avail, key=lambda f: (-(f // g), frag[f - (f // g) * g] - frag[f], f))
        m = f // g
        n = min(avail[f], remaining // m)
        plan.append((f, m, n))
        delta += n * (frag[f - m * g] - frag[f])
        remaining -= n * m
        avail[f] -= n
        if not avail[f]:
            del avail[f]
    return plan, delta


def _tight(
    counts: Mapping[int, int], g: int, workers: int, frag: list[float]
) -> tuple[_Fill, float, float] | None:
    """The workers one by one, each where fragmentation grows least, a node not used yet costing
    :data:`LOCALITY_GPUS` more; ``None`` when they don't fit. Returns the fill, its cost (fragmentation
    increase plus the locality cost of every node past the first) and the fragmentation increase alone."""
    avail = {f: c for f, c in counts.items() if c and f >= g}
    used: list[list[int]] = []  # [free count before, workers taken] per node used
    cost = delta = 0.0
    for _ in range(workers):
        best: tuple[float, int] | None = None
        pick: tuple[int, int] | None = None  # (0, index of a used node) or (1, free count of a new one)
        for i, (f, k) in enumerate(used):
            left = f - k * g
            if left >= g and (best is None or (frag[left - g] - frag[left], left) < best):
                best, pick = (frag[left - g] - frag[left], left), (0, i)
        extra = LOCALITY_GPUS if used else 0.0
        for f in avail:
            key = (frag[f - g] - frag[f] + extra, f)
            if best is None or key < best:
                best, pick = key, (1, f)
        if best is None or pick is None:
            return None
        if pick[0]:
            f = pick[1]
            used.append([f, 1])
            avail[f] -= 1
            if not avail[f]:
                del avail[f]
            delta += frag[f - g] - frag[f]
        else:
            f, k = used[pick[1]]
            used[pick[1]][1] += 1
            delta += frag[f - (k + 1) * g] - frag[f - k * g]
        cost += best[0]
    plan: dict[tuple[int, int], int] = {}
    for f, k in used:
        plan[(f, k)] = plan.get((f, k), 0) + 1
    return [(f, k, n) for (f, k), n in plan.items()], cost, delta


def _take_all(counts: Mapping[int, int], g: int, frag: list[float]) -> tuple[_Fill, float, int]:
    """Every worker a domain can hold: the fill, its fragmentation increase, the number of workers."""
    plan: _Fill = []
    delta = 0.0
    workers = 0
    for f, c in counts.items():
        if c and f >= g:
            m = f // g
            plan.append((f, m, c))
            delta += c * (frag[f - m * g] - frag[f])
            workers += c * m
    return plan, delta, workers


def _share_options(state: _State, m: int) -> tuple[int, ...]:
    """Where a share of ``m`` milli-GPU may go on a node: each distinct partly free GPU with room, then a
    whole free GPU (:data:`MILLI_GPU`)."""
    partly = tuple(dict.fromkeys(p for p in state[1] if p >= m))
    return (*partly, MILLI_GPU) if state[0] else partly


def _forget(dom: _Domain, group: _Group) -> None:
    """A node of ``dom`` (in ``group``) changed its free count: what the two remembered goes."""
    dom.caps.clear()
    dom.shape = None
    group.by_capacity.clear()
    group.picks.clear()


class Capacity:
    """Free GPUs per schedulable node, built once from a snapshot, then updated by commits."""

    __slots__ = (
        "_alloc",
        "_blocked",
        "_cpu",
        "_fmemo",
        "_frag",
        "_frag_total",
        "_free",
        "_groups",
        "_mem",
        "_parts",
        "_pressure",
        "_shareable",
        "_sizes",
        "_where",
        "_workload",
    )

    def __init__(
        self, sizes: Mapping[int, float] | None = None, workload: TargetWorkload | None = None
    ) -> None:
        """An empty capacity; use ``from_snapshot`` and ``add_nodes`` to fill it.

        ``workload``: the task shapes the multi-resource rules measure fragmentation against (default: the
        whole-GPU ``sizes``, no CPU)."""
        self._sizes = _normalise(sizes if sizes is not None else DEFAULT_SIZES)
        self._workload = workload or TargetWorkload(
            tuple((Task(0, 0, size, MILLI_GPU), p) for size, p in sorted(self._sizes.items()))
        )
        self._cpu: dict[str, int] = {}
        """node → free milli-CPU; a node whose allocatable CPU is unknown is not in it (no limit)."""
        self._mem: dict[str, int] = {}
        """node → free bytes of memory; likewise."""
        self._parts: dict[str, tuple[int, ...]] = {}
        """node → free milli-GPU of each GPU partly taken by shares (none: not in it), largest first."""
        self._shareable: set[str] = set()
        """Nodes whose GPUs pods may share (time-slicing, MPS): where a share of a GPU may go."""
        self._fmemo: dict[tuple[int, int, tuple[int, ...], str], float] = {}
        """(free milli-CPU, free GPUs, partly free GPUs, model) → the node's fragmentation against
        ``workload`` (:meth:`_fragmentation`); shared with copies, as it depends on nothing else."""
        self._pressure: dict[str, float] | None = None
        """:meth:`_scarcity` once computed (it depends on the nodes and the workload, not on what is free)."""
        self._frag = _frag_table(self._sizes, max(self._sizes))
        self._frag_total = 0.0
        self._free: dict[str, int] = {}
        self._alloc: dict[str, int] = {}
        self._where: dict[str, tuple[str, str, str]] = {}
        """node → (model, zone, rack)."""
        self._groups: dict[tuple[str, str], _Group] = {}
        self._blocked: dict[tuple[str, str], dict[str, int]] = {}
        """(model, zone) → reason → count of nodes that cannot receive pods."""

    # ---- building ---------------------------------------------------------------------------------------

    @classmethod
    def from_snapshot(
        cls,
        snapshot: FleetSnapshot,
        *,
        exclude: Iterable[str] = (),
        sizes: Mapping[int, float] | None = None,
        workload: TargetWorkload | None = None,
    ) -> Capacity:
        """The free GPUs of ``snapshot``'s schedulable nodes, ``exclude``d ones and those with a failed GPU
        (:attr:`FleetSnapshot.failed_nodes`) left out.

        ``sizes`` is the request-size distribution for fragmentation (default: ``demand_sizes``).
        """
        cap = cls(sizes if sizes is not None else demand_sizes(snapshot), workload)
        # A node is unhealthy when it says so or when one of its GPUs fails (XID 79, uncorrectable ECC).
        cap._add(snapshot.nodes, frozenset(exclude), snapshot.failed_nodes)
        return cap

    def add_nodes(self, nodes: Iterable[Node]) -> None:
        """Add nodes (hypothetical ones for a what-if); a name already known raises ``ValueError``."""
        nodes = tuple(nodes)
        for n in nodes:
            if n.name in self._free:
                raise ValueError(f"node {n.name} is already in the capacity")
        self._add(nodes, frozenset(), frozenset())

    def _add(self, nodes: Iterable[Node], exclude: frozenset[str], failed: frozenset[str]) -> None:
        groups = self._groups
        self._pressure = None
        for n in nodes:
            model = n.gpu_model
            alloc = n.gpus_allocatable
            if alloc <= 0 or not is_gpu_model(model):
                continue
            zone = n.zone
            if n.name in exclude or not n.schedulable or n.name in failed:
                why = (
                    "excluded"
                    if n.name in exclude
                    else "unhealthy"
                    if n.schedulable
                    else _unavailable_reason(n)
                )
                blocked = self._blocked.setdefault((model, zone), {})
                blocked[why] = blocked.get(why, 0) + 1
                continue
            free = max(alloc - n.gpus_requested - n.gpus_shared, 0)
            if n.cpu_allocatable:
                self._cpu[n.name] = max(n.cpu_allocatable - n.cpu_requested, 0)
            if n.memory_allocatable:
                self._mem[n.name] = max(n.memory_allocatable - n.memory_requested, 0)
            if n.gpu_sharing in SHAREABLE:
                self._shareable.add(n.name)
            # Shares already taken are assumed packed on as few GPUs as hold them (which is unknown).
            if n.name in self._shareable and (rest := n.gpus_shared * MILLI_GPU - n.gpu_milli_requested):
                self._parts[n.name] = (rest,)
            group = groups.get((model, zone))
            if group is None:
                group = groups[(model, zone)] = _Group(model, zone)
            rack = n.rack
            dom = group.racks.get(rack)
            if dom is None:
                dom = group.racks[rack] = _Domain(rack)
            bucket = dom.by_free.get(free)
            if bucket is None:
                bucket = dom.by_free[free] = {}
            bucket[n.name] = None
            dom.free += free
            _forget(dom, group)
            group.counts[free] = group.counts.get(free, 0) + 1
            group.free += free
            group.size = max(group.size, alloc)
            if alloc >= len(self._frag):
                self._frag = _frag_table(self._sizes, alloc)
            self._free[n.name] = free
            self._alloc[n.name] = alloc
            self._where[n.name] = (model, zone, rack)
            self._frag_total += self._frag[free]

    def copy(self) -> Capacity:
        """An independent copy: commits on it leave this one untouched."""
        c = Capacity.__new__(Capacity)
        c._sizes = self._sizes
        c._frag = self._frag
        c._frag_total = self._frag_total
        c._free = dict(self._free)
        c._alloc = dict(self._alloc)
        c._where = dict(self._where)
        c._groups = {k: g.clone() for k, g in self._groups.items()}
        c._blocked = {k: dict(v) for k, v in self._blocked.items()}
        c._workload = self._workload
        c._fmemo = self._fmemo
        c._pressure = self._pressure
        c._cpu = dict(self._cpu)
        c._mem = dict(self._mem)
        c._parts = dict(self._parts)
        c._shareable = set(self._shareable)
        return c

    # ---- reading ----------------------------------------------------------------------------------------

    def free(self, node: str) -> int:
        """Free GPUs on ``node``; 0 for an unknown, unschedulable or excluded node."""
        return self._free.get(node, 0)

    @property
    def nodes(self) -> Mapping[str, int]:
        """Free GPUs of every node that can receive pods (read-only view)."""
        return MappingProxyType(self._free)

    @property
    def sizes(self) -> Mapping[int, float]:
        """The request-size distribution fragmentation is measured against."""
        return dict(self._sizes)

    def zone_capacity(self, gpu_model: str, zone: str, gpus_per_worker: int) -> int:
        """Workers of ``gpus_per_worker`` GPUs that the free ``gpu_model`` nodes in ``zone`` can hold."""
        group = self._groups.get((gpu_model, zone))
        return group.capacity(gpus_per_worker) if group is not None else 0

    def fragmented_gpus(self, sizes: Mapping[int, float] | None = None) -> float:
        """Expected free GPUs that a request drawn from ``sizes`` (default: this capacity's) cannot use."""
        if sizes is None:
            return max(0.0, self._frag_total)
        dist = _normalise(sizes)
        return float(sum(unusable_gpus(f, dist) for f in self._free.values()))

    # ---- committing -------------------------------------------------------------------------------------

    def _set_free(self, node: str, new: int) -> None:
        old = self._free[node]
        if old == new:
            return
        model, zone, rack = self._where[node]
        group = self._groups[(model, zone)]
        dom = group.racks[rack]
        bucket = dom.by_free[old]
        del bucket[node]
        if not bucket:
            del dom.by_free[old]
        dom.by_free.setdefault(new, {})[node] = None
        dom.free += new - old
        _forget(dom, group)
        group.free += new - old
        group.counts[old] -= 1
        if not group.counts[old]:
            del group.counts[old]
        group.counts[new] = group.counts.get(new, 0) + 1
        self._frag_total += self._frag[new] - self._frag[old]
        self._free[node] = new

    def commit(self, placement: Placement) -> None:
        """Take the placement's GPUs (CPU, memory, shares); ``ValueError`` (and nothing taken) if any of them
        is no longer free."""
        request = placement.request
        if request.multi:
            self._commit_multi(placement)
            return
        need = placement.gpus_by_node
        short = [
            f"{node} has {self._free.get(node, 0)} free GPUs, the placement needs {gpus}"
            for node, gpus in need.items()
            if self._free.get(node, 0) < gpus
        ]
        if short:
            raise ValueError("; ".join(short))
        for node, gpus in need.items():
            self._set_free(node, self._free[node] - gpus)

    def _commit_multi(self, placement: Placement) -> None:
        request = placement.request
        after: dict[str, _State] = {}
        shares = placement.shares or (0,) * len(placement.nodes)
        for node, share in zip(placement.nodes, shares, strict=True):
            if node not in self._free:
                raise ValueError(f"{node} cannot receive pods")
            state = after.get(node) or self._state(node)
            took = self._take(node, state, request, share)
            if took is None:
                raise ValueError(f"{node} no longer has room for a worker of {request.describe()}")
            after[node] = took
        for node, (free, parts, cpu, mem) in after.items():
            self._set_free(node, free)
            if parts:
                self._parts[node] = parts
            else:
                self._parts.pop(node, None)
            if node in self._cpu:
                self._cpu[node] = cpu
            if node in self._mem:
                self._mem[node] = mem

    def release(self, node: str, gpus: int, *, cpu: int = 0, memory: int = 0) -> None:
        """Give back ``gpus`` whole GPUs (and ``cpu`` milli-CPU, ``memory`` bytes) on ``node``; a node that
        cannot receive pods is ignored. Shares of a GPU are not given back here.

        ``ValueError`` when the node would have more free GPUs than it has allocatable ones.
        """
        if gpus < 0 or cpu < 0 or memory < 0:
            raise ValueError(f"cannot release {gpus} GPUs, {cpu} milli-CPU, {memory} bytes")
        if node not in self._free:
            return
        new = self._free[node] + gpus
        if new > self._alloc[node]:
            raise ValueError(f"{node} would have {new} free GPUs, more than its {self._alloc[node]}")
        self._set_free(node, new)
        if node in self._cpu:
            self._cpu[node] += cpu
        if node in self._mem:
            self._mem[node] += memory

    # ---- placing ----------------------------------------------------------------------------------------

    def _candidates(self, request: GangRequest) -> list[_Group]:
        models, zone = request.models, request.zone
        return [
            g
            for (m, z), g in self._groups.items()
            if (not models or m in models) and (not zone or z == zone) and g.size >= request.gpus_per_worker
        ]

    def place(self, request: GangRequest) -> Placement | Refusal:
        """Where the gang would go now (nothing is committed), or why it cannot go anywhere."""
        groups = self._candidates(request)
        if request.multi:
            return self._place_multi(request, groups) or self._refuse(request)
        node = self._place_node(request, groups)
        if node is not None and request.workers > 1:
            return self._place_spread(request, groups, node)
        return (
            node
            or self._place_rack(request, groups)
            or self._place_zone(request, groups)
            or self._refuse(request)
        )

    # ---- placing CPU, memory and shares of a GPU ----------------------------------------------------------

    def _state(self, node: str) -> _State:
        return (
            self._free[node],
            self._parts.get(node, ()),
            self._cpu.get(node, _NO_LIMIT),
            self._mem.get(node, _NO_LIMIT),
        )

    def _take(self, node: str, state: _State, request: GangRequest, share: int) -> _State | None:
        """``state`` once one worker of ``request`` is on ``node``, its share of a GPU on a GPU with
        ``share`` milli-GPU free (:data:`MILLI_GPU`: a whole free one); None when it does not fit."""
        free, parts, cpu, mem = state
        if cpu < request.cpu or mem < request.memory:
            return None
        m = request.gpu_milli
        if m:
            if node not in self._shareable or share < m:
                return None
            if share == MILLI_GPU:
                if not free:
                    return None
                free -= 1
            elif share in parts:
                i = parts.index(share)
                parts = parts[:i] + parts[i + 1 :]
            else:
                return None
            if rest := share - m:
                parts = tuple(sorted((*parts, rest), reverse=True))
        elif free < request.gpus_per_worker:
            return None
        else:
            free -= request.gpus_per_worker
        return free, parts, cpu - request.cpu, mem - request.memory

    def _fragmentation(self, state: _State, model: str) -> float:
        """A node's fragmentation against the target workload (``node_fragmentation``), in GPUs."""
        free, parts, cpu, _ = state
        key = (cpu, free, parts, model)
        got = self._fmemo.get(key)
        if got is None:
            node = NodeFree(cpu, 0, (MILLI_GPU,) * free + parts, model)
            got = self._fmemo[key] = node_fragmentation(node, self._workload) / MILLI_GPU
        return got

    def _scarcity(self) -> dict[str, float]:
        """GPU model → the cost, in fragmented GPUs, of a GPU of that model taken by a request that would
        accept another: the share of the workload's GPU demand that only some models accept and that falls on
        this one (split evenly between the models it accepts), over this model's share of the fleet's GPUs.

        0 for every model when nothing is pinned. Without it, fragmentation alone sends flexible requests to
        the scarce models (their nodes are small, or already fragmented for most of the workload), and the
        requests pinned there find them full (the openb trace's gpuspec33 list: 626 G2 GPUs left free while
        T4-only requests failed).
        """
        got = self._pressure
        if got is None:
            gpus: dict[str, int] = {}
            for node, (model, _, _) in self._where.items():
                gpus[model] = gpus.get(model, 0) + self._alloc[node]
            total = sum(gpus.values())
            demand = sum(p * t.gpu_demand for t, p in self._workload.shapes)
            pinned: dict[str, float] = {}
            for t, p in self._workload.shapes:
                accepted = [mo for mo in t.models if mo in gpus]
                if t.gpu_demand and accepted:
                    for mo in accepted:
                        pinned[mo] = pinned.get(mo, 0.0) + p * t.gpu_demand / len(accepted)
            got = self._pressure = {
                mo: (d / demand) / (gpus[mo] / total) for mo, d in pinned.items() if demand and gpus[mo]
            }
        return got

    def _fill(self, request: GangRequest, group: _Group) -> tuple[float, list[str], list[int]]:
        """The workers of ``request`` one by one in ``group``, each on the node (and GPU) where the
        fragmentation grows least, plus :data:`LOCALITY_GPUS` for a node the gang does not use yet and the
        scarcity cost; ties to the node left with the fewest free GPUs (milli), then the least CPU (best fit).
        Returns the total cost and the node and share of each worker placed (fewer than asked when the rest do
        not fit)."""
        model, m, g = group.model, request.gpu_milli, request.gpus_per_worker
        scarcity = self._scarcity().get(model, 0.0) if len(request.models) != 1 else 0.0
        taken = (m or MILLI_GPU * g) / MILLI_GPU
        after: dict[str, _State] = {}
        nodes: list[str] = []
        shares: list[int] = []
        total = 0.0
        for _ in range(request.workers):
            best: tuple[float, int, int] | None = None
            chosen: tuple[str, int, _State] | None = None
            for dom in group.racks.values():
                for f, bucket in dom.by_free.items():
                    if f < g and not m:
                        continue  # never more free than the bucket says: what a gang took is only less
                    for node in bucket:
                        state = after.get(node) or self._state(node)
                        if m and not state[0] and not state[1]:
                            continue
                        options = _share_options(state, m) if m else (0,)
                        before = self._fragmentation(state, model)
                        for share in options:
                            took = self._take(node, state, request, share)
                            if took is None:
                                continue
                            cost = self._fragmentation(took, model) - before + scarcity * taken
                            if nodes and node not in after:
                                cost += LOCALITY_GPUS
                            key = (cost, took[0] * MILLI_GPU + sum(took[1]), took[2])
                            if best is None or key < best:
                                best, chosen = key, (node, share, took)
            if best is None or chosen is None:
                break
            node, share, took = chosen
            after[node] = took
            nodes.append(node)
            shares.append(share)
            total += best[0]
        return total, nodes, shares

    def _place_multi(self, request: GangRequest, groups: list[_Group]) -> Placement | None:
        """CPU, memory, shares of a GPU: each zone (and model) filled by :meth:`_fill`, the cheapest kept,
        then the one using fewest nodes, then the fullest."""
        best: tuple[float, int, int, str] | None = None
        chosen: tuple[list[str], list[int]] | None = None
        for group in groups:
            cost, nodes, shares = self._fill(request, group)
            if len(nodes) < request.workers:
                continue
            key = (cost, len(set(nodes)), group.free, group.zone)
            if best is None or key < best:
                best, chosen = key, (nodes, shares)
        if chosen is None:
            return None
        nodes, shares = chosen
        racks = {self._where[n][2] for n in nodes}
        zone = self._where[nodes[0]][1]
        if len(set(nodes)) == 1:
            domain = f"node {nodes[0]}"
        elif len(racks) == 1 and "" not in racks:
            domain = f"rack {next(iter(racks))}"
        else:
            domain = f"zone {zone}" if zone else ""
        frag = self._frag_total
        gone: dict[str, int] = {}
        for n, share in zip(nodes, shares, strict=True):
            taken = int(share == MILLI_GPU) if request.gpu_milli else request.gpus_per_worker
            gone[n] = gone.get(n, 0) + taken
        for n, k in gone.items():
            frag += self._frag[self._free[n] - k] - self._frag[self._free[n]]
        return Placement(request, tuple(nodes), domain, frag, tuple(shares) if request.gpu_milli else ())

    def _place_node(self, request: GangRequest, groups: list[_Group]) -> Placement | None:
        need = request.gpus
        frag = self._frag
        best: tuple[float, int, int] | None = None
        best_group: _Group | None = None
        for group in groups:
            for f in group.counts:
                if f >= need:
                    key = (frag[f - need] - frag[f], f, group.free)
                    if best is None or key < best:
                        best, best_group = key, group
        if best is None or best_group is None:
            return None
        f = best[1]
        node = next(iter(best_group.pick(f).by_free[f]))
        return Placement(request, (node,) * request.workers, f"node {node}", self._frag_total + best[0])

    def _place_spread(self, request: GangRequest, groups: list[_Group], node: Placement) -> Placement:
        """``node`` (the gang on one node), or the gang on several nodes of one rack (or of the rack-less
        nodes of a zone) when that leaves more than :data:`LOCALITY_GPUS` fewer fragmented GPUs per extra
        node (:func:`_tight`)."""
        best = node.fragmented_after - self._frag_total
        chosen: tuple[_Domain, _Fill, float] | None = None
        for group in groups:
            for dom in group.racks.values():
                fill = _tight(dom.counts(), request.gpus_per_worker, request.workers, self._frag)
                # One node in the fill is the one-node placement again; and a spread must really be better.
                if fill is not None and sum(n for _, _, n in fill[0]) > 1 and fill[1] < best - 1e-9:
                    best, chosen = fill[1], (dom, fill[0], fill[2])
        if chosen is None:
            return node
        dom, plan, delta = chosen
        where = f"rack {dom.name}" if dom.name else ""
        if not where:
            zone = next(g.zone for g in groups if dom in g.racks.values())
            where = f"zone {zone}" if zone else ""
        nodes = self._materialise([(dom, plan)], request.gpus_per_worker)
        return Placement(request, nodes, where, self._frag_total + delta)

    def _place_rack(self, request: GangRequest, groups: list[_Group]) -> Placement | None:
        g, workers = request.gpus_per_worker, request.workers
        best_spare: int | None = None
        ties: list[tuple[_Group, _Domain]] = []
        for group in groups:
            if group.capacity(g) < workers:
                continue
            caps, doms = group.racks_by_capacity(g)
            i = bisect_left(caps, workers)  # the racks that fit the gang with the least to spare
            if i == len(caps):
                continue
            spare = caps[i] - workers
            if best_spare is not None and spare > best_spare:
                continue
            if best_spare is None or spare < best_spare:
                best_spare, ties = spare, []
            while i < len(caps) and caps[i] == spare + workers:
                ties.append((group, doms[i]))
                i += 1
        best: tuple[float, str] | None = None
        chosen: tuple[_Domain, _Fill] | None = None
        fills: dict[tuple[tuple[int, int], ...], tuple[_Fill, float] | None] = {}
        for _group, dom in ties:
            # Racks alike (an empty fleet's are all alike) fill alike: one greedy fill per set of counts.
            shape = dom.counts_shape()
            if shape in fills:
                fill = fills[shape]
            else:
                fill = fills[shape] = _greedy(dict(shape), g, workers, self._frag)
            if fill is None:  # cannot happen: capacity said it fits
                continue
            key = (fill[1], dom.name)
            if best is None or key < best:
                best, chosen = key, (dom, fill[0])
        if best is None or chosen is None:
            return None
        nodes = self._materialise([(chosen[0], chosen[1])], g)
        return Placement(request, nodes, f"rack {chosen[0].name}", self._frag_total + best[0])

    def _place_zone(self, request: GangRequest, groups: list[_Group]) -> Placement | None:
        g, workers = request.gpus_per_worker, request.workers
        best: tuple[int, float, int, str] | None = None
        chosen: tuple[_Group, list[tuple[_Domain, _Fill]]] | None = None
        for group in groups:
            total = group.capacity(g)
            if total < workers:
                continue
            caps = [(d.capacity(g), d) for d in group.racks.values()]
            caps = sorted(((c, d) for c, d in caps if c), key=lambda cd: (-cd[0], cd[1].name))
            fills: list[tuple[_Domain, _Fill]] = []
            delta = 0.0
            remaining = workers
            for i, (_, dom) in enumerate(caps):
                fitting = [(c2, d2) for c2, d2 in caps[i:] if c2 >= remaining]
                if fitting:
                    _, last = min(fitting, key=lambda cd: (cd[0], cd[1].name))
                    tail = _greedy(last.counts(), g, remaining, self._frag)
                    if tail is not None:
                        fills.append((last, tail[0]))
                        delta += tail[1]
                        remaining = 0
                        break
                plan, d, took = _take_all(dom.counts(), g, self._frag)
                fills.append((dom, plan))
                delta += d
                remaining -= took
            if remaining > 0:  # cannot happen: the group's capacity covers the gang
                continue
            key = (total - workers, delta, group.free, group.zone)
            if best is None or key < best:
                best, chosen = key, (group, fills)
        if best is None or chosen is None:
            return None
        nodes = self._materialise(chosen[1], g)
        domain = f"zone {chosen[0].zone}" if chosen[0].zone else ""
        return Placement(request, nodes, domain, self._frag_total + best[1])

    @staticmethod
    def _materialise(fills: list[tuple[_Domain, _Fill]], g: int) -> tuple[str, ...]:
        """Turn fill plans into the node of each rank."""
        out: list[str] = []
        for dom, plan in fills:
            used: dict[int, int] = {}
            for f, per_node, count in plan:
                start = used.get(f, 0)
                for node in islice(dom.by_free[f], start, start + count):
                    out.extend([node] * per_node)
                used[f] = start + count
        return tuple(out)

    # ---- explaining -------------------------------------------------------------------------------------

    def _blocked_summary(self, models: frozenset[str], zone: str = "") -> tuple[int, str]:
        """How many nodes of ``models`` (in ``zone``) cannot receive pods, and "2 cordoned, 1 NotReady"."""
        reasons: dict[str, int] = {}
        for (m, z), counts in self._blocked.items():
            if (not models or m in models) and (not zone or z == zone) and m:
                for why, n in counts.items():
                    reasons[why] = reasons.get(why, 0) + n
        order = ("cordoned", "NotReady", "unhealthy", "tainted", "excluded")
        text = ", ".join(f"{reasons[w]} {w}" for w in order if w in reasons)
        return sum(reasons.values()), text

    def _refuse(self, request: GangRequest) -> Refusal:
        model, zone, g = request.gpu_model, request.zone, request.gpus_per_worker
        models = request.models
        what = f"{model} GPUs" if model else "GPUs"
        node_word = f"{model} node" if model else "GPU node"
        known = {m for m, _ in self._groups} | {m for m, _ in self._blocked}
        known.discard("")
        if models and not models & known:
            have = f" (the fleet has {', '.join(sorted(known))})" if known else ""
            return Refusal(request, f"no node in the fleet has {what}{have}")
        groups = [(m, z) for (m, z) in self._groups if (not models or m in models)]
        if not groups:
            n, text = self._blocked_summary(models)
            return Refusal(request, f"no schedulable node has {what} ({text or 'none found'})")
        if zone and not any(z == zone for _, z in groups):
            n, text = self._blocked_summary(models, zone)
            if n:
                return Refusal(request, f"no schedulable {node_word} in zone {zone} ({text})")
            elsewhere = sorted({z for _, z in groups})
            return Refusal(
                request, f"no {node_word} in zone {zone} (schedulable ones are in {', '.join(elsewhere)})"
            )
        pool = [self._groups[k] for k in groups if not zone or k[1] == zone]
        largest = max(gr.size for gr in pool)
        where = f" in zone {zone}" if zone else ""
        if largest < g:
            return Refusal(
                request,
                f"a worker needs {g} GPUs but no schedulable {node_word}{where} has more than {largest}",
            )
        scope = f"zone {zone}" if zone else "one zone"
        n_blocked, text = self._blocked_summary(models, zone)
        unavailable = f"; {_plural(n_blocked, node_word)} unavailable ({text})" if n_blocked else ""
        if request.multi:
            return self._refuse_multi(request, pool, scope, unavailable)
        best = min(pool, key=lambda gr: (-gr.capacity(g), -gr.free, gr.zone, gr.model))
        room = best.capacity(g)
        if room == 0:
            most = max(f for gr in pool for f in gr.counts)
            holder = max(pool, key=lambda gr: (most in gr.counts, gr.free))
            node = next(next(iter(d.by_free[most])) for d in holder.racks.values() if most in d.by_free)
            return Refusal(
                request,
                f"needs {request.describe()} in {scope}; no schedulable {node_word}{where} has {g} free "
                f"GPUs (the most is {most} on {node}){unavailable}",
                best_zone=holder.zone,
            )
        nodes_with = sum(c for f, c in best.counts.items() if f >= g)
        label = best.label(with_model=not model)
        best_zone = f"the best zone ({label})" if label else "the best zone"
        return Refusal(
            request,
            f"needs {request.describe()} in {scope}; {best_zone} has room for {room} of the "
            f"{request.workers} workers ({_plural(nodes_with, 'node')} with {g}+ free GPUs){unavailable}",
            best_zone=best.zone,
            placeable_workers=room,
        )

    def _refuse_multi(
        self, request: GangRequest, pool: list[_Group], scope: str, unavailable: str
    ) -> Refusal:
        """Why a request with CPU, memory or a share of a GPU fits nowhere: how far the best zone gets, and
        how many nodes have the GPU room, the CPU and memory room, and both."""
        fills = [(len(self._fill(request, gr)[1]), gr) for gr in pool]
        placed, best = max(fills, key=lambda x: (x[0], x[1].free, x[1].zone))
        gpu_room = cpu_room = both = 0
        g, m = request.gpus_per_worker, request.gpu_milli
        for gr in pool:
            for dom in gr.racks.values():
                for nodes in dom.by_free.values():
                    for node in nodes:
                        state = self._state(node)
                        gpus = (
                            (node in self._shareable and bool(_share_options(state, m)))
                            if m
                            else state[0] >= g
                        )
                        rest = state[2] >= request.cpu and state[3] >= request.memory
                        gpu_room += gpus
                        cpu_room += rest
                        both += gpus and rest
        label = best.label(with_model=not request.gpu_model)
        of = (
            f"; the best zone ({label}) holds {placed} of the {request.workers} workers"
            if request.workers > 1
            else ""
        )
        kind = "CPU and memory" if request.memory else "CPU"
        return Refusal(
            request,
            f"needs {request.describe()} in {scope}{of}; {_plural(gpu_room, 'node')} with the GPU room, "
            f"{cpu_room} with the {kind}, {both} with both{unavailable}",
            best_zone=best.zone,
            placeable_workers=placed,
        )


def place_gang(
    snapshot: FleetSnapshot, request: GangRequest, *, exclude: Iterable[str] = ()
) -> Placement | Refusal:
    """Place one gang over a snapshot (see the module docstring for the rules)."""
    return Capacity.from_snapshot(snapshot, exclude=exclude).place(request)
