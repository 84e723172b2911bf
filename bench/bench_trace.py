"""Placement policies on a public production GPU trace: how many GPUs each leaves unallocated as tasks arrive.

The method is the one of Weng et al., "Beware of Fragmentation: Scheduling GPU-Sharing Workloads with
Fragmentation Gradient Descent" (USENIX ATC'23, §5), as their simulator runs it
(hkust-adsl/kubernetes-scheduler-simulator, commit 8f3d641: ``Simulator.TunePods``, ``tuneUpPods``,
``tuneDownPods`` in ``pkg/simulator/simulator.go``, ``--shuffle-pod=true``):

1. The workload: the pod list shuffled, then topped up with pods drawn at random (with replacement) while
   the requested GPUs stay within ``--ratio`` × the cluster's GPUs, or thinned at random until they fit.
   Seeded: every policy sees the same arrivals for a seed.
2. Tasks arrive one by one and never leave. A task that fits nowhere fails and is not retried.
3. After every arrival: the GPUs not allocated, and the fragmented ones (``fragmentation.py``'s F(M), the
   target workload M learned from the pod list). Reported at 80, 90, 95 % and at the end (≈100 %) of the
   arrived workload, as shares of the cluster's GPUs; medians over seeds.

Policies (scores from the artifact's ``pkg/simulator/plugin/*_score.go``; GPU choice inside a node, except
for FGD, the artifact's default "best": the fullest GPU with room for a fractional task, the first fully
free GPUs for a whole-GPU one):

- ``random``: a node drawn uniformly among those that fit, a GPU drawn among those with room (the floor).
- ``first-fit``: the first node that fits, in list order (``--artifact``: the seeded order); not in the paper.
- ``best-fit``: least ``Σ ½·(free − request)/max`` over CPU (max 128 cores) and GPU (max 8 GPUs).
- ``dot-product``: least dot product of the node's free (CPU, GPU) and the request, both over the max
  (the artifact's ``DotProd`` with ``-dimext merge -norm max``: it keeps the node with the least
  "alignment", which packs).
- ``gpu-packing``: a shared GPU in use, then free GPUs of a used node, then an empty node
  (``getPackingScore``, its integer buckets).
- ``gpu-clustering``: nodes already running tasks of the same kind (share / 1-GPU / 2-GPU …) first, then
  empty nodes, then mixed ones; fuller first inside each bucket.
- ``fgd``: the node and GPU that increase F(M) least (``fragmentation.fgd_choice``).
- ``engine``: the project's engine (``aios_tui.alloc.placement.Capacity``, :class:`EngineRun`): each row a
  Kubernetes node with its CPU, memory and GPUs shared, each task a one-worker request with its CPU, memory,
  GPUs or share of one and its models as alternatives, placed and committed as the console would. It never
  rounds or shuffles, so ``--artifact`` does not change it.

Two ways to break ties, and they matter (on the default pod list FGD leaves ~7.5 % of the GPUs unallocated
one way, ~5 % the other): by default the exact scores are compared and equal ones go to the first node in
list order. ``--artifact`` does as the authors' simulator: scores are turned into its integers 0–100
(``int64(sigmoid(Δ/1000)·100)`` for FGD, ``(1 − s)·100`` for best-fit …), and equal ones go to the first
node in a seeded random order (it prefixes node names with a random permutation and its patched
kube-scheduler ``selectHost`` takes the smallest name). Integer buckets plus a fixed order pack: nodes
within ~0.04 GPU of fragmentation increase of each other count as equal, and the same ones win every time.

Speed: nodes in the same state (free CPU, memory, GPUs, model) score the same, so each decision of the
baselines scores the distinct states only, and a (state, task) score is reused until that state changes.
"decisions/s" is arrivals per second of the whole run, bookkeeping included, on one core.

Usage: ``python bench/bench_trace.py --nodes openb_node_list_gpu_node.csv --pods openb_pod_list_default.csv
--seeds 3`` (add ``--json`` for the raw numbers).
"""

from __future__ import annotations

import argparse
import bisect
import csv
import json
import math
import random
import statistics
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from aios_tui.alloc.fragmentation import (
    MILLI,
    POPULARITY,
    NodeFree,
    TargetWorkload,
    Task,
    allocate,
    fgd_on_node,
    gpu_choices,
    node_fragmentation,
)
from aios_tui.alloc.placement import Capacity, GangRequest, Placement
from aios_tui.domain import FleetSnapshot, Node

MIB = 2**20

#: The artifact's normalisers (``pkg/type/open-gpu-share/utils/const.go``): 128 cores, 8 GPUs.
MAX_CPU = 128_000
MAX_GPU = 8 * MILLI
TIES = {False: "exact scores, ties to list order", True: "integer scores, ties to a seeded random node order"}
CHECKPOINTS = (0.80, 0.90, 0.95)
POLICIES = (
    "random",
    "first-fit",
    "best-fit",
    "dot-product",
    "gpu-packing",
    "gpu-clustering",
    "fgd",
    "engine",
)

#: A (state, task) score cache larger than this is dropped and refilled (bounds memory; ~200 B an entry).
CACHE_LIMIT = 400_000


# ---- input --------------------------------------------------------------------------------------------


def _rows(path: Path, need: Sequence[str]) -> list[dict[str, str]]:
    try:
        with path.open(newline="") as f:
            reader = csv.DictReader(f)
            missing = [c for c in need if c not in (reader.fieldnames or ())]
            if missing:
                raise SystemExit(f"{path}: no column {', '.join(missing)} (has {reader.fieldnames})")
            return list(reader)
    except OSError as e:
        raise SystemExit(f"cannot read {path}: {e.strerror}") from None


def _int(row: dict[str, str], col: str, where: str) -> int:
    try:
        return int(row[col] or 0)
    except ValueError:
        raise SystemExit(f"{where}: {col} must be a whole number, got {row[col]!r}") from None


def load_nodes(path: Path) -> list[NodeFree]:
    """``sn,cpu_milli,memory_mib,gpu,model``: every node empty."""
    nodes = []
    for line, row in enumerate(_rows(path, ("cpu_milli", "memory_mib", "gpu", "model")), start=2):
        where = f"{path}:{line}"
        try:
            nodes.append(
                NodeFree(
                    _int(row, "cpu_milli", where),
                    _int(row, "memory_mib", where),
                    (MILLI,) * _int(row, "gpu", where),
                    row["model"].strip(),
                )
            )
        except ValueError as e:
            raise SystemExit(f"{where}: {e}") from None
    if not nodes:
        raise SystemExit(f"{path}: no nodes")
    return nodes


def load_pods(path: Path) -> list[Task]:
    """``cpu_milli,memory_mib,num_gpu,gpu_milli[,gpu_spec]``; other columns (times, phase) are not used."""
    tasks = []
    for line, row in enumerate(_rows(path, ("cpu_milli", "memory_mib", "num_gpu", "gpu_milli")), start=2):
        where = f"{path}:{line}"
        try:
            tasks.append(
                Task.parse(
                    _int(row, "cpu_milli", where),
                    _int(row, "memory_mib", where),
                    _int(row, "num_gpu", where),
                    _int(row, "gpu_milli", where),
                    row.get("gpu_spec") or "",
                )
            )
        except ValueError as e:
            raise SystemExit(f"{where}: {e}") from None
    if not tasks:
        raise SystemExit(f"{path}: no pods")
    return tasks


def arrivals(pods: Sequence[Task], capacity: int, ratio: float, rng: random.Random) -> list[Task]:
    """The pod list shuffled, then topped up (or thinned) to ``ratio`` × capacity of requested GPUs.

    As the artifact: shuffled first (``SortClusterPods``); ``tuneUpPods`` then appends pods drawn at random,
    stopping at the first that would overshoot; ``tuneDownPods`` drops random pods until the rest fit.
    """
    target = ratio * capacity
    tasks = list(pods)
    rng.shuffle(tasks)
    total = sum(t.gpu_demand for t in tasks)
    if total < target:
        while True:
            t = pods[rng.randrange(len(pods))]
            if total + t.gpu_demand > target:
                break
            tasks.append(t)
            total += t.gpu_demand
    while total > target:
        total -= tasks.pop(rng.randrange(len(tasks))).gpu_demand
    return tasks


# ---- policies -----------------------------------------------------------------------------------------

Gpus = tuple[int, ...]
#: (node state, the kinds of tasks on it) → the cost of putting the task there (lower is better) and the
#: GPUs it takes, or None when it does not fit.
Score = Callable[[NodeFree, frozenset[str], Task], tuple[float, Gpus] | None]


def _kind(task: Task) -> str:
    """The artifact's GPU affinity tag (``GetGpuAffinityFromPodAnnotation``)."""
    if task.num_gpu == 0:
        return ""
    return "share" if task.shares_gpu else f"{task.num_gpu}-gpu"


def _best_gpu(node: NodeFree, task: Task) -> Gpus | None:
    """The artifact's default GPU choice: the fullest GPU with room, or the first fully free GPUs."""
    if node.cpu_milli < task.cpu_milli or node.memory_mib < task.memory_mib:
        return None
    choices = gpu_choices(node, task)
    if not choices:
        return None
    if task.shares_gpu:
        return min(choices, key=lambda c: (node.gpus[c[0]], c[0]))
    return choices[0]


def score_first_fit(node: NodeFree, kinds: frozenset[str], task: Task) -> tuple[float, Gpus] | None:
    gpus = _best_gpu(node, task)
    return None if gpus is None else (0.0, gpus)


def score_best_fit(node: NodeFree, kinds: frozenset[str], task: Task) -> tuple[float, Gpus] | None:
    """``getBestFitScore``: the least free CPU and GPU left after the task, half weight each."""
    gpus = _best_gpu(node, task)
    if gpus is None:
        return None
    cpu = (node.cpu_milli - task.cpu_milli) / MAX_CPU
    gpu = (node.free_gpu_milli - task.gpu_demand) / MAX_GPU
    return 0.5 * cpu + 0.5 * gpu, gpus


def score_dot_product(node: NodeFree, kinds: frozenset[str], task: Task) -> tuple[float, Gpus] | None:
    """``calculateDotProductScore`` (merge, max): the least dot product of free and request, normalised."""
    gpus = _best_gpu(node, task)
    if gpus is None:
        return None
    dot = (node.cpu_milli / MAX_CPU) * (task.cpu_milli / MAX_CPU) + (node.free_gpu_milli / MAX_GPU) * (
        task.gpu_demand / MAX_GPU
    )
    return dot / 2, gpus


def score_gpu_packing(node: NodeFree, kinds: frozenset[str], task: Task) -> tuple[float, Gpus] | None:
    """``getPackingScore``: shared GPUs in use (50–100), free GPUs of a used node (33–50), an empty node
    (0–33); its integer arithmetic kept, as the buckets are the policy."""
    gpus = _best_gpu(node, task)
    if gpus is None:
        return None
    if task.num_gpu == 0:
        return 0.0, gpus
    whole = sum(1 for g in node.gpus if g == MILLI)
    if whole == len(node.gpus):
        return -float(max(100 // 3 - whole, whole)), gpus
    taken = gpus
    fresh = sum(1 for i in taken if node.gpus[i] == MILLI)
    if fresh:
        return -float(max(100 // 2 - fresh, 100 // 3)), gpus
    free_pct = sum(node.gpus[i] * 100 // MILLI for i in taken)
    return -float(max(100 - free_pct // 10, 100 // 2)), gpus


def score_gpu_clustering(node: NodeFree, kinds: frozenset[str], task: Task) -> tuple[float, Gpus] | None:
    """``GpuClusteringScorePlugin.Score``: same kind only (75–100), same among others (50–75), empty
    (25–50), other kinds (0–25); fuller first inside a bucket."""
    gpus = _best_gpu(node, task)
    if gpus is None:
        return None
    kind = _kind(task)
    if not kind:
        return 0.0, gpus
    fill = 100 // 4 * (MAX_GPU - node.free_gpu_milli) // MAX_GPU
    base = (75 if len(kinds) == 1 else 50) if kind in kinds else (25 if not kinds else 0)
    return -float(fill + base), gpus


def score_fgd(workload: TargetWorkload) -> Score:
    def score(node: NodeFree, kinds: frozenset[str], task: Task) -> tuple[float, Gpus] | None:
        return fgd_on_node(node, task, workload)

    return score


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


#: ``--artifact``: the exact costs above turned into the artifact's integer scores 0–100 (negated: lower is
#: better here). gpu-packing and gpu-clustering already are.
INTEGER_SCORES: dict[str, Callable[[float], float]] = {
    "best-fit": lambda c: -float(int((1.0 - c) * 100)),
    "dot-product": lambda c: -float(int(100 * (1.0 - c))),
    # calculateGpuShareFragExtendScore: sigmoid((before − after) / 1000) · 100; the cost is after − before
    "fgd": lambda c: -float(int(_sigmoid(-c / MILLI) * 100)),
}


# ---- the simulation -----------------------------------------------------------------------------------


@dataclass
class Run:
    policy: str
    seed: int
    tasks: int = 0
    failed: int = 0
    seconds: float = 0.0
    #: failed tasks by kind (cpu / share / 1-gpu / 2-gpu …) → (tasks, GPUs they asked for)
    failed_kinds: dict[str, list[float]] = field(default_factory=dict)
    #: checkpoint label → (arrived share, unallocated share, fragmented share of capacity, of free)
    points: dict[str, tuple[float, float, float, float]] = field(default_factory=dict)


class EngineRun:
    """The project's engine (``aios_tui.alloc.placement.Capacity``) on the trace's nodes, as the console would
    see them: a Kubernetes node per row with its CPU, memory and GPUs shared (``mps``: any share of a GPU),
    each task a one-worker request with its CPU, memory, GPUs or share of one, and its GPU models.

    Its fragmentation measure is the target workload of ALL the pod list's shapes (``popularity`` 1.0): the
    engine's own rule (every request size counts), not the artifact's 95 % cut.
    """

    def __init__(self, nodes: Sequence[NodeFree], pods: Sequence[Task]) -> None:
        fleet = tuple(
            Node(
                name=f"n{i:05d}",
                source="trace",
                pool=n.model,
                zone="",
                instance_type="",
                gpu_model=n.model,
                gpus_total=len(n.gpus),
                gpus_allocatable=len(n.gpus),
                cpu_allocatable=n.cpu_milli,
                memory_allocatable=n.memory_mib * MIB,
                gpu_sharing="mps",
            )
            for i, n in enumerate(nodes)
        )
        self.capacity = Capacity.from_snapshot(
            FleetSnapshot(timestamp=0.0, nodes=fleet), workload=TargetWorkload.from_tasks(pods, 1.0)
        )
        self.index = {node.name: i for i, node in enumerate(fleet)}

    def place(self, state: Sequence[NodeFree], task: Task) -> tuple[int, Gpus] | None:
        """Place and commit ``task``: the node's index and the GPUs it takes on ``state``, or None."""
        if not (task.num_gpu or task.cpu_milli or task.memory_mib):
            return None
        request = GangRequest(
            1,
            task.num_gpu,
            "|".join(sorted(task.models)),
            cpu=task.cpu_milli,
            memory=task.memory_mib * MIB,
            gpu_milli=task.gpu_milli if task.shares_gpu else 0,
        )
        got = self.capacity.place(request)
        if not isinstance(got, Placement):
            return None
        self.capacity.commit(got)
        i = self.index[got.nodes[0]]
        node = state[i]
        if task.shares_gpu:
            return i, (node.gpus.index(got.shares[0]),)
        return i, gpu_choices(node, task)[0]


def simulate(
    policy: str,
    nodes: Sequence[NodeFree],
    tasks: Sequence[Task],
    workload: TargetWorkload,
    seed: int,
    *,
    artifact: bool = False,
    pods: Sequence[Task] = (),
) -> Run:
    state = list(nodes)
    kinds: list[Counter[str]] = [Counter() for _ in nodes]
    capacity = sum(n.free_gpu_milli for n in nodes)
    use_kinds = policy == "gpu-clustering"
    scores: dict[str, Score] = {
        "first-fit": score_first_fit,
        "best-fit": score_best_fit,
        "dot-product": score_dot_product,
        "gpu-packing": score_gpu_packing,
        "gpu-clustering": score_gpu_clustering,
        "fgd": score_fgd(workload),
    }
    score = scores.get(policy)
    engine = EngineRun(nodes, pods) if policy == "engine" else None
    rng = random.Random(seed * 7919 + 1)
    # Node priority on equal scores: list order, or (--artifact) a seeded random order, as the artifact
    # prefixes node names with a random permutation and its kube-scheduler takes the smallest name.
    rank = list(range(len(nodes)))
    if artifact:
        random.Random(seed).shuffle(rank)

    def key_of(i: int) -> tuple[NodeFree, frozenset[str]]:
        return state[i], frozenset(+kinds[i]) if use_kinds else frozenset()

    # Nodes grouped by state, each group's node indices in order.
    groups: dict[tuple[NodeFree, frozenset[str]], list[int]] = {}
    for i in range(len(state)):
        bisect.insort(groups.setdefault(key_of(i), []), i, key=rank.__getitem__)
    cache: dict[tuple[NodeFree, frozenset[str], Task], tuple[float, Gpus] | None] = {}

    frag = sum(node_fragmentation(n, workload) for n in state)
    free = capacity
    arrived = 0
    run = Run(policy, seed, tasks=len(tasks))
    marks = list(CHECKPOINTS)
    started = time.perf_counter()
    for task in tasks:
        arrived += task.gpu_demand
        pick: tuple[int, Gpus] | None = None
        if engine is not None:
            pick = engine.place(state, task)
        elif score is None:  # random
            feasible = [(k, idx) for k, idx in groups.items() if _best_gpu(k[0], task) is not None]
            if feasible:
                k, idx = rng.choices(feasible, weights=[len(x) for _, x in feasible])[0]
                choices = gpu_choices(k[0], task)
                pick = (rng.choice(idx), rng.choice(choices) if task.shares_gpu else choices[0])
        else:
            if len(cache) > CACHE_LIMIT:
                cache.clear()
            best_pick: tuple[int, Gpus] = (-1, ())
            best_cost, best_rank = float("inf"), len(rank)
            for k, idx in groups.items():
                ck = (k[0], k[1], task)
                if ck in cache:
                    got = cache[ck]
                else:
                    got = cache[ck] = score(k[0], k[1], task)
                if got is None:
                    continue
                cost, gpus = got
                if artifact and policy in INTEGER_SCORES:
                    cost = INTEGER_SCORES[policy](cost)
                if cost < best_cost or (cost == best_cost and rank[idx[0]] < best_rank):
                    best_cost, best_rank, best_pick = cost, rank[idx[0]], (idx[0], gpus)
            if best_pick[0] >= 0:
                pick = best_pick
        if pick is None:
            run.failed += 1
            tally = run.failed_kinds.setdefault(_kind(task) or "cpu", [0, 0.0])
            tally[0] += 1
            tally[1] += task.gpu_demand / MILLI
        else:
            i, gpus = pick
            old_key = key_of(i)
            group = groups[old_key]
            group.remove(i)
            if not group:
                del groups[old_key]
            before = state[i]
            state[i] = allocate(before, task, gpus)
            if task.num_gpu:
                kinds[i][_kind(task)] += 1
            bisect.insort(groups.setdefault(key_of(i), []), i, key=rank.__getitem__)
            frag += node_fragmentation(state[i], workload) - node_fragmentation(before, workload)
            free -= task.gpu_demand
        while marks and arrived >= marks[0] * capacity:
            run.points[f"{marks.pop(0):.0%}"] = _point(arrived, free, frag, capacity)
    run.seconds = time.perf_counter() - started
    run.points["end"] = _point(arrived, free, frag, capacity)
    return run


def _point(arrived: int, free: int, frag: float, capacity: int) -> tuple[float, float, float, float]:
    return arrived / capacity, free / capacity, frag / capacity, frag / free if free else 0.0


# ---- report -------------------------------------------------------------------------------------------


def _median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def table(runs: Sequence[Run], capacity: int) -> list[str]:
    labels = [f"{p:.0%}" for p in CHECKPOINTS] + ["end"]
    head = (
        "| policy | "
        + " | ".join(f"unalloc @{lb}" for lb in labels[:-1])
        + " | unalloc @end | GPUs unalloc @end | frag % of free @end | failed tasks | decisions/s |"
    )
    lines = [head, "|" + "---|" * (len(labels) + 5)]
    for policy in dict.fromkeys(r.policy for r in runs):
        mine = [r for r in runs if r.policy == policy]
        cells = [f"{100 * _median([r.points[lb][1] for r in mine if lb in r.points]):.1f} %" for lb in labels]
        gpus = _median([r.points["end"][1] * capacity / MILLI for r in mine])
        fr = _median([r.points["end"][3] for r in mine])
        failed = _median([r.failed for r in mine])
        rate = _median([r.tasks / r.seconds for r in mine if r.seconds > 0])
        lines.append(
            f"| {policy} | "
            + " | ".join(cells)
            + f" | {gpus:.0f} | {100 * fr:.1f} % | {failed:.0f} | {rate:,.0f} |"
        )
    return lines


def main(argv: Sequence[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--nodes", type=Path, required=True, help="node list CSV (sn,cpu_milli,memory_mib,gpu,model)"
    )
    ap.add_argument("--pods", type=Path, required=True, help="pod list CSV (the openb format)")
    ap.add_argument("--seeds", type=int, default=3, help="workloads drawn (seeds 42, 43, …)")
    ap.add_argument("--ratio", type=float, default=1.0, help="requested GPUs / cluster GPUs at the end")
    ap.add_argument(
        "--popularity",
        type=float,
        default=POPULARITY,
        help="share of the pods the target workload's shapes cover (the artifact's 0.95)",
    )
    ap.add_argument("--policies", nargs="+", choices=POLICIES, default=list(POLICIES))
    ap.add_argument(
        "--artifact",
        action="store_true",
        help="the artifact's integer scores 0-100, ties to the first node in a seeded random order "
        "(default: exact scores, ties to the first node in list order)",
    )
    ap.add_argument("--json", action="store_true", help="print every run as JSON instead of the table")
    args = ap.parse_args(argv)
    if args.seeds < 1 or args.ratio <= 0 or not 0 < args.popularity <= 1:
        raise SystemExit("--seeds must be at least 1, --ratio above 0, --popularity in (0, 1]")

    nodes = load_nodes(args.nodes)
    pods = load_pods(args.pods)
    capacity = sum(n.free_gpu_milli for n in nodes)
    workload = TargetWorkload.from_tasks(pods, args.popularity)
    runs: list[Run] = []
    for seed in range(42, 42 + args.seeds):
        tasks = arrivals(pods, capacity, args.ratio, random.Random(seed))
        for policy in args.policies:
            runs.append(simulate(policy, nodes, tasks, workload, seed, artifact=args.artifact, pods=pods))
            if not args.json:
                r = runs[-1]
                print(
                    f"# seed {seed} {policy}: unallocated {100 * r.points['end'][1]:.1f} % at "
                    f"{100 * r.points['end'][0]:.1f} % arrived, {r.tasks / r.seconds:,.0f} decisions/s",
                    file=sys.stderr,
                    flush=True,
                )
    if args.json:
        print(json.dumps([r.__dict__ for r in runs], indent=1))
        return
    print(
        f"{args.pods.name}: {len(pods)} pods, {len(workload.shapes)} typical shapes; {len(nodes)} nodes, "
        f"{capacity // MILLI} GPUs; {args.seeds} seed(s), workload {args.ratio:.0%} of GPUs; "
        f"{TIES[args.artifact]}; medians\n"
    )
    print("\n".join(table(runs, capacity)))


if __name__ == "__main__":
    main()
