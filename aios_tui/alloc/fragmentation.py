"""GPU fragmentation of shared-GPU nodes, and the placement that adds the least of it (FGD).

Why this exists
---------------
Whole-GPU gang placement (``placement.py``) only sees GPU counts. Production clusters also run tasks that
take a *fraction* of one GPU (the Alibaba trace's ``gpu_milli``), ask for CPU and memory, and accept only
some GPU models. There a GPU can be "free" and still useless: 300 milli-GPU left on a card are no use to
the 500-milli task that usually arrives, 4 free GPUs are no use to an 8-GPU task, and GPUs on a node whose
CPUs are all taken are no use to anyone. This module measures that, and places a task where it hurts least.

Definitions (Weng et al., "Beware of Fragmentation: Scheduling GPU-Sharing Workloads with Fragmentation
Gradient Descent", USENIX ATC'23, §3–4), written from the authors' simulator
(hkust-adsl/kubernetes-scheduler-simulator, commit 8f3d641) so that the numbers can be compared:

- **F_n(m)**, the fragmentation of node ``n`` for one task ``m`` (milli-GPU), ``task_fragmentation``
  (``pkg/utils/frag.go``: ``GetNodePodFrag`` and ``NodeGpuShareFragAmount``): if ``m`` cannot run on ``n``
  (no GPU asked, a GPU model it does not accept, too little CPU, or fewer than ``num_gpu`` GPUs with
  ``gpu_milli`` free) every free milli-GPU of ``n`` is a fragment; if it can, the fragments are the free
  milli-GPU of the GPUs that have less than ``gpu_milli`` free. Memory is NOT part of the measure (it is
  not in the authors' code either); it is part of ``fits``.
- **F_n(M)** for a target workload ``M`` (task shapes and their popularity), ``node_fragmentation``:
  ``Σ_m p_m · F_n(m)`` (``NodeGpuShareFragAmountScore``). The cluster's is the sum over nodes.
- **The target workload** (``TargetWorkload.from_tasks``, ``GetTypicalPods`` with the artifact's settings:
  CPU-only tasks included, popularity threshold 95 %, step 1): the task shapes (CPU, GPU count, milli-GPU,
  models; memory dropped) counted, the most popular ones kept until they cover 95 % of the tasks, their
  shares renormalised.
- **FGD** (``fgd_choice``; ``pkg/simulator/plugin/fgd_score.go``: ``calculateGpuShareFragExtendScore``):
  among the nodes the task fits, and for a fractional task each GPU with room, the choice that increases
  ``F_n(M)`` least. A whole-GPU task takes the node's first fully free GPUs (``AllocateExclusiveGpuId``):
  which ones does not change the measure.

Where we differ from the artifact, on purpose: it turns the increase into an integer score 0–100 through a
sigmoid and lets kube-scheduler pick at random among equal scores; we compare the exact increase and break
ties by node order, then GPU order, so that a run is reproducible from its seed alone.

All amounts are integers in milli-units (1 GPU = 1000, 1 CPU = 1000); the measure is a float only because
the popularity weights are.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

#: One whole GPU, in milli-GPU.
MILLI = 1000

#: Share of all tasks the target workload's popular shapes must cover (the artifact's
#: ``podPopularityThreshold: 95``).
POPULARITY = 0.95


@dataclass(frozen=True, slots=True)
class NodeFree:
    """What one node has left: CPU (milli), memory (MiB), free milli-GPU per GPU (by device index), model."""

    cpu_milli: int
    memory_mib: int
    gpus: tuple[int, ...] = ()
    model: str = ""

    def __post_init__(self) -> None:
        if self.cpu_milli < 0 or self.memory_mib < 0:
            raise ValueError(f"a node cannot have negative CPU or memory left: {self}")
        for g in self.gpus:
            if not 0 <= g <= MILLI:
                raise ValueError(f"free milli-GPU must be between 0 and {MILLI}, got {g} in {self.gpus}")

    @property
    def free_gpu_milli(self) -> int:
        return sum(self.gpus)


@dataclass(frozen=True, slots=True)
class Task:
    """A task's request: CPU (milli), memory (MiB), ``num_gpu`` GPUs with ``gpu_milli`` of each.

    ``gpu_milli`` below 1000 means a share of ONE GPU (``num_gpu == 1``): the trace has no fractional
    multi-GPU tasks, and a GPU-sharing device plugin cannot give one. ``models`` are the GPU models it
    accepts (the trace's ``A10|T4``); empty accepts any.
    """

    cpu_milli: int
    memory_mib: int = 0
    num_gpu: int = 0
    gpu_milli: int = 0
    models: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        if self.cpu_milli < 0 or self.memory_mib < 0 or self.num_gpu < 0:
            raise ValueError(f"a task cannot ask for negative CPU, memory or GPUs: {self}")
        if self.num_gpu == 0 and self.gpu_milli != 0:
            raise ValueError(f"a task with no GPU cannot ask for {self.gpu_milli} milli-GPU")
        if self.num_gpu > 0 and not 0 < self.gpu_milli <= MILLI:
            raise ValueError(f"milli-GPU per GPU must be 1..{MILLI}, got {self.gpu_milli}")
        if self.num_gpu > 1 and self.gpu_milli != MILLI:
            raise ValueError(
                f"a {self.num_gpu}-GPU task must take whole GPUs, got {self.gpu_milli} milli-GPU each"
            )

    @classmethod
    def parse(cls, cpu_milli: int, memory_mib: int, num_gpu: int, gpu_milli: int, spec: str = "") -> Task:
        """A task from the trace's columns; ``spec`` is ``gpu_spec`` (``V100M16|V100M32``, "" = any)."""
        models = frozenset(m.strip() for m in spec.split("|") if m.strip())
        return cls(cpu_milli, memory_mib, num_gpu, gpu_milli if num_gpu else 0, models)

    @property
    def shares_gpu(self) -> bool:
        return self.num_gpu == 1 and self.gpu_milli < MILLI

    @property
    def gpu_demand(self) -> int:
        """Milli-GPU asked in all."""
        return self.num_gpu * self.gpu_milli

    def accepts(self, model: str) -> bool:
        return not self.models or model in self.models

    def shape(self) -> Task:
        """What the fragmentation measure looks at: the task without its memory."""
        return Task(self.cpu_milli, 0, self.num_gpu, self.gpu_milli, self.models)


def gpu_choices(node: NodeFree, task: Task) -> tuple[tuple[int, ...], ...]:
    """The GPU sets (device indices) the task could take on ``node``, by GPUs and model alone.

    A task without GPU: one choice, no GPU. A fractional task: each GPU with ``gpu_milli`` free, a used GPU
    included. A whole-GPU task: the first ``num_gpu`` fully free GPUs (one choice), or none.
    """
    if task.num_gpu == 0:
        return ((),)
    if not task.accepts(node.model):
        return ()
    if task.shares_gpu:
        return tuple((i,) for i, free in enumerate(node.gpus) if free >= task.gpu_milli)
    whole = tuple(i for i, free in enumerate(node.gpus) if free == MILLI)
    return (whole[: task.num_gpu],) if len(whole) >= task.num_gpu else ()


def fits(node: NodeFree, task: Task) -> bool:
    """Whether ``task`` can run on ``node``: model, CPU, memory and GPUs."""
    return (
        node.cpu_milli >= task.cpu_milli
        and node.memory_mib >= task.memory_mib
        and bool(gpu_choices(node, task))
    )


def allocate(node: NodeFree, task: Task, gpus: Sequence[int]) -> NodeFree:
    """``node`` after ``task`` took ``gpus``; ValueError, naming what is short, when it does not fit."""
    if len(gpus) != task.num_gpu or len(set(gpus)) != len(gpus):
        raise ValueError(f"a {task.num_gpu}-GPU task needs {task.num_gpu} distinct GPUs, got {list(gpus)}")
    if task.num_gpu and not task.accepts(node.model):
        raise ValueError(f"the task accepts {'|'.join(sorted(task.models))}, not {node.model or 'no GPU'}")
    if node.cpu_milli < task.cpu_milli or node.memory_mib < task.memory_mib:
        raise ValueError(
            f"the task needs {task.cpu_milli} milli-CPU and {task.memory_mib} MiB, the node has "
            f"{node.cpu_milli} and {node.memory_mib} left"
        )
    left = list(node.gpus)
    for i in gpus:
        if not 0 <= i < len(left) or left[i] < task.gpu_milli:
            raise ValueError(f"GPU {i} does not have {task.gpu_milli} milli-GPU free on {node.gpus}")
        left[i] -= task.gpu_milli
    return NodeFree(
        node.cpu_milli - task.cpu_milli, node.memory_mib - task.memory_mib, tuple(left), node.model
    )


def task_fragmentation(node: NodeFree, task: Task) -> int:
    """F_n(m): the free milli-GPU of ``node`` that ``task`` could not use (``GetNodePodFrag``).

    All of them when the task cannot run there by model, CPU or GPUs (memory is not looked at) or asks
    for no GPU; else those on GPUs with less than ``gpu_milli`` free.
    """
    free = node.free_gpu_milli
    if task.num_gpu == 0 or not task.accepts(node.model) or node.cpu_milli < task.cpu_milli:
        return free
    if sum(1 for g in node.gpus if g >= task.gpu_milli) < task.num_gpu:
        return free
    return sum(g for g in node.gpus if g < task.gpu_milli)


@dataclass(frozen=True)
class TargetWorkload:
    """The task shapes a cluster expects and their popularity (weights summing to 1), M in the paper.

    Keeps a memo of ``node_fragmentation`` by node state: a fleet has few distinct states (nodes of one
    kind start identical), so a placement pass reads most values from it.
    """

    shapes: tuple[tuple[Task, float], ...]
    _memo: dict[tuple[int, tuple[int, ...], str], float] = field(
        default_factory=dict, compare=False, hash=False, repr=False
    )

    def __post_init__(self) -> None:
        if not self.shapes:
            raise ValueError("a target workload needs at least one task shape")
        if any(p < 0 for _, p in self.shapes):
            raise ValueError("task shape popularity cannot be negative")

    @classmethod
    def from_tasks(cls, tasks: Iterable[Task], popularity: float = POPULARITY) -> TargetWorkload:
        """The most popular shapes covering ``popularity`` of ``tasks``, renormalised (``GetTypicalPods``).

        Ties in popularity go to the smaller shape, so the result does not depend on the tasks' order.
        """
        counts = Counter(t.shape() for t in tasks)
        if not counts:
            raise ValueError("no tasks to learn a target workload from")
        total = sum(counts.values())
        ranked = sorted(
            counts.items(),
            key=lambda kv: (-kv[1], kv[0].num_gpu, kv[0].gpu_milli, kv[0].cpu_milli, sorted(kv[0].models)),
        )
        kept: list[tuple[Task, int]] = []
        covered = 0
        for shape, n in ranked:
            if covered >= popularity * total:
                break
            kept.append((shape, n))
            covered += n
        return cls(tuple((shape, n / covered) for shape, n in kept))


def node_fragmentation(node: NodeFree, workload: TargetWorkload) -> float:
    """F_n(M) = Σ_m p_m · F_n(m), in milli-GPU (``NodeGpuShareFragAmountScore``); memoised."""
    key = (node.cpu_milli, tuple(sorted(node.gpus)), node.model)
    got = workload._memo.get(key)
    if got is None:
        got = sum(p * task_fragmentation(node, m) for m, p in workload.shapes)
        workload._memo[key] = got
    return got


def cluster_fragmentation(nodes: Iterable[NodeFree], workload: TargetWorkload) -> float:
    """The cluster's F(M): the sum over its nodes, in milli-GPU."""
    return sum(node_fragmentation(n, workload) for n in nodes)


@dataclass(frozen=True, slots=True)
class Choice:
    """Where a task goes: node index, GPU indices on it, and the fragmentation increase (milli-GPU)."""

    node: int
    gpus: tuple[int, ...]
    increase: float


def fgd_on_node(node: NodeFree, task: Task, workload: TargetWorkload) -> tuple[float, tuple[int, ...]] | None:
    """The least fragmentation increase ``task`` can cause on ``node``, and the GPUs; None if it won't fit."""
    if node.cpu_milli < task.cpu_milli or node.memory_mib < task.memory_mib:
        return None
    before = node_fragmentation(node, workload)
    best: tuple[float, tuple[int, ...]] | None = None
    for gpus in gpu_choices(node, task):
        delta = node_fragmentation(allocate(node, task, gpus), workload) - before
        if best is None or delta < best[0]:
            best = (delta, gpus)
    return best


def fgd_choice(nodes: Sequence[NodeFree], task: Task, workload: TargetWorkload) -> Choice | None:
    """Fragmentation gradient descent: the node and GPUs where ``task`` increases F(M) least, or None.

    Ties go to the first node, then the first GPU.
    """
    best: Choice | None = None
    for i, node in enumerate(nodes):
        got = fgd_on_node(node, task, workload)
        if got is not None and (best is None or got[0] < best.increase):
            best = Choice(i, got[1], got[0])
    return best
