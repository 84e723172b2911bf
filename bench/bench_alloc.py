"""Allocation engine against baselines: quality on job traces, the CP-SAT optimum, and decisions per second.

Policies (all on the same traces, all all-or-nothing, all with the gang in one zone and one GPU model):

- ``engine``: ``aios_tui.alloc.placement.Capacity``.
- ``first-fit``: each rank on the first node (fleet order) with room.
- ``k8s-least``: kube-scheduler NodeResourcesFit LeastAllocated: the node with the highest free fraction.
- ``k8s-most``: NodeResourcesFit MostAllocated: the node with the lowest free fraction that still fits.
- ``best-fit``: MostAllocated rank by rank inside one zone, trying the next zone (best first rank first)
  when the gang does not fit in one: what a gang scheduler with zone retries (Kueue's topology-aware
  scheduling, Volcano) does with best fit.

The first three place a gang the naive way: rank by rank, the first rank's zone pinning the others (a
required zone pod-affinity), undoing the ranks already placed when one does not fit.

Parts: ``speed`` (place() latency at 5,000 nodes, and a bucketed best-fit's speed on the same requests),
``drain`` (drain plans on one snapshot reused, warm; with ``--cold`` also each on a fresh snapshot),
``trace`` (a 5,000-node job trace), ``optimum`` (small instances against OR-Tools CP-SAT; needs
``pip install 'aios-tui[bench]'``).
"""

from __future__ import annotations

import argparse
import dataclasses
import heapq
import random
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from aios_tui.alloc.drain import plan_drain
from aios_tui.alloc.placement import DEFAULT_SIZES, Capacity, GangRequest, Placement
from aios_tui.domain import FleetSnapshot, Node
from aios_tui.sources.sim import SimSource

SIZES = dict(DEFAULT_SIZES)


def frag(free: int, sizes: dict[int, float] = SIZES) -> float:
    """ATC'23 fragmentation of one node: free GPUs a request drawn from ``sizes`` cannot use."""
    return free * sum(p for s, p in sizes.items() if s > free)


# ---- fleets and traces ------------------------------------------------------------------------------------


def sim_nodes(nodes: int, seed: int, *, empty: bool) -> tuple[Node, ...]:
    data = SimSource(seed=seed, nodes=nodes, start=0.0, clock=lambda: 0.0).fetch_now()
    gpu = tuple(n for n in data.nodes if n.gpus_allocatable > 0 and n.gpu_model)
    if empty:
        gpu = tuple(dataclasses.replace(n, gpus_requested=0) for n in gpu)
    return gpu


def sim_snapshot(nodes: int, seed: int) -> FleetSnapshot:
    d = SimSource(seed=seed, nodes=nodes, start=0.0, clock=lambda: 0.0).fetch_now()
    return FleetSnapshot(
        timestamp=0.0,
        nodes=d.nodes,
        gpus=d.gpus,
        pods=d.pods,
        jobs=d.jobs,
        endpoints=d.endpoints,
        pools=d.pools,
        pdbs=d.pdbs,
    )


@dataclass(frozen=True, slots=True)
class TraceJob:
    arrival: float
    duration: float
    request: GangRequest


def random_request(
    rng: random.Random, models: Sequence[str], weights: Sequence[float], i: int
) -> GangRequest:
    model = rng.choices(models, weights)[0]
    if rng.random() < 0.6:
        return GangRequest(1, rng.choices((1, 2, 4), (0.4, 0.3, 0.3))[0], model, name=f"j{i}")
    workers = min(16, 1 + int(rng.expovariate(1 / 3.5)))
    return GangRequest(workers, 8, model, name=f"j{i}")


def make_trace(nodes: Sequence[Node], jobs: int, seed: int, load: float = 1.2) -> list[TraceJob]:
    """Poisson arrivals, exponential durations (mean 1 h), offered load ``load`` × the fleet's GPUs."""
    rng = random.Random(seed)
    share: dict[str, int] = {}
    for n in nodes:
        share[n.gpu_model] = share.get(n.gpu_model, 0) + n.gpus_allocatable
    models, weights = list(share), list(share.values())
    reqs = [random_request(rng, models, weights, i) for i in range(jobs)]
    mean_gpus = statistics.fmean(r.gpus for r in reqs)
    rate = load * sum(share.values()) / (mean_gpus * 3600.0)  # jobs per second
    t = 0.0
    out = []
    for r in reqs:
        t += rng.expovariate(rate)
        out.append(TraceJob(t, rng.expovariate(1 / 3600.0), r))
    return out


# ---- the policies -----------------------------------------------------------------------------------------


class Policy:
    """place() returns the node of each rank and takes the GPUs, or None and takes nothing."""

    name = ""

    def place(self, req: GangRequest) -> list[str] | None:
        raise NotImplementedError

    def release(self, node: str, gpus: int) -> None:
        raise NotImplementedError

    def fragmented(self) -> float:
        raise NotImplementedError


class Engine(Policy):
    name = "engine"

    def __init__(self, nodes: Sequence[Node]) -> None:
        self.cap = Capacity.from_snapshot(FleetSnapshot(timestamp=0.0, nodes=tuple(nodes)), sizes=SIZES)

    def place(self, req: GangRequest) -> list[str] | None:
        p = self.cap.place(req)
        if not isinstance(p, Placement):
            return None
        self.cap.commit(p)
        return list(p.nodes)

    def release(self, node: str, gpus: int) -> None:
        self.cap.release(node, gpus)

    def fragmented(self) -> float:
        return self.cap.fragmented_gpus()


class Naive(Policy):
    """Rank-by-rank placement with a node score; best = the lowest score."""

    def __init__(
        self,
        nodes: Sequence[Node],
        name: str,
        score: Callable[[int, int, int], float],
        *,
        retry_zones: bool = False,
    ) -> None:
        self.name = name
        self.score = score  # (free, allocatable, index) -> lower is better
        self.retry_zones = retry_zones
        schedulable = [n for n in nodes if n.schedulable]
        self.names = [n.name for n in schedulable]
        self.index = {n: i for i, n in enumerate(self.names)}
        self.free = [n.gpus_free for n in schedulable]
        self.alloc = [n.gpus_allocatable for n in schedulable]
        self.groups: dict[tuple[str, str], list[int]] = {}
        for i, n in enumerate(schedulable):
            self.groups.setdefault((n.gpu_model, n.zone), []).append(i)
        self.frag_total = sum(frag(f) for f in self.free)

    def _take(self, i: int, gpus: int) -> None:
        self.frag_total += frag(self.free[i] - gpus) - frag(self.free[i])
        self.free[i] -= gpus

    def place(self, req: GangRequest) -> list[str] | None:
        g = req.gpus_per_worker
        keys = [k for k in self.groups if k[0] == req.gpu_model or not req.gpu_model]
        # exact shortcut: when no zone has room for the gang, the rank-by-rank attempt fails as well
        free = self.free
        if not any(sum(free[i] // g for i in self.groups[k]) >= req.workers for k in keys):
            return None
        if not self.retry_zones:
            return self._ranks(req, keys)

        def first_rank(k: tuple[str, str]) -> float:
            return min(
                (self.score(free[i], self.alloc[i], i) for i in self.groups[k] if free[i] >= g), default=1e18
            )

        for k in sorted(keys, key=first_rank):
            got = self._ranks(req, [k])
            if got is not None:
                return got
        return None

    def _ranks(self, req: GangRequest, keys: list[tuple[str, str]]) -> list[str] | None:
        """Rank by rank over the nodes of ``keys``, the first rank's zone pinning the rest."""
        g, free = req.gpus_per_worker, self.free
        taken: list[int] = []
        score = self.score
        alloc = self.alloc
        for _ in range(req.workers):
            best = None
            best_score = 0.0
            for k in keys:
                for i in self.groups[k]:
                    if free[i] >= g:
                        s = score(free[i], alloc[i], i)
                        if best is None or s < best_score:
                            best, best_score = i, s
            if best is None:
                for i in taken:
                    self._take(i, -g)
                return None
            self._take(best, g)
            taken.append(best)
            if len(keys) > 1:
                keys = [k for k in keys if best in self._members(k)]
        return [self.names[i] for i in taken]

    def _members(self, key: tuple[str, str]) -> set[int]:
        cache = self.__dict__.setdefault("_member_sets", {})
        if key not in cache:
            cache[key] = set(self.groups[key])
        members: set[int] = cache[key]
        return members

    def release(self, node: str, gpus: int) -> None:
        self._take(self.index[node], -gpus)

    def fragmented(self) -> float:
        return self.frag_total


class BucketedBestFit:
    """The speed baseline: best fit rank by rank over nodes bucketed by free count per (model, zone), the
    cheapest placement logic that still finds a node in a few dict operations. ``decide`` finds a gang's
    nodes in the first zone that holds it and takes nothing (as ``Capacity.place``)."""

    def __init__(self, nodes: Sequence[Node]) -> None:
        self.groups: dict[tuple[str, str], dict[int, list[str]]] = {}
        for n in nodes:
            if n.schedulable and n.gpus_allocatable:
                buckets = self.groups.setdefault((n.gpu_model, n.zone), {})
                buckets.setdefault(n.gpus_free, []).append(n.name)

    def decide(self, req: GangRequest) -> list[str] | None:
        g = req.gpus_per_worker
        for (model, zone), buckets in self.groups.items():
            if (req.gpu_model and model != req.gpu_model) or (req.zone and zone != req.zone):
                continue
            local: dict[str, int] = {}  # the nodes this gang's ranks took GPUs from: their free count now
            out: list[str] = []
            for _ in range(req.workers):
                best, best_free = "", 0
                for f in sorted(buckets):  # at most a node's GPU count + 1 buckets
                    if f < g or (best and f >= best_free):
                        continue
                    name = next((n for n in buckets[f] if n not in local), "")
                    if name:
                        best, best_free = name, f
                        break
                for name, f in local.items():  # a node already used, if it now fits best
                    if g <= f and (not best or f < best_free):
                        best, best_free = name, f
                if not best:
                    break
                local[best] = best_free - g
                out.append(best)
            if len(out) == req.workers:
                return out
        return None


def policies(nodes: Sequence[Node]) -> list[Policy]:
    return [
        Engine(nodes),
        Naive(nodes, "first-fit", lambda free, alloc, i: i),
        Naive(nodes, "k8s-least", lambda free, alloc, i: -free / alloc),
        Naive(nodes, "k8s-most", lambda free, alloc, i: free / alloc),
        Naive(nodes, "best-fit", lambda free, alloc, i: free / alloc, retry_zones=True),
    ]


# ---- trace simulation -------------------------------------------------------------------------------------


@dataclass
class TraceResult:
    policy: str
    gpus_placed: int = 0
    jobs_placed: int = 0
    frag_avg: float = 0.0
    queue_gpu_hours: float = 0.0
    decisions: int = 0
    decide_s: float = 0.0


def run_trace(policy: Policy, trace: Sequence[TraceJob], backfill: int = 32) -> TraceResult:
    """Event-driven: arrivals try to start at once, completions retry the first ``backfill`` queued jobs."""
    res = TraceResult(policy.name)
    queue: list[TraceJob] = []
    running: list[tuple[float, int, list[str], int]] = []
    warmup = 3600.0
    frag_sum = frag_time = 0.0
    last_t = 0.0

    def attempt(job: TraceJob, now: float) -> bool:
        t0 = time.perf_counter()
        nodes = policy.place(job.request)
        res.decide_s += time.perf_counter() - t0
        res.decisions += 1
        if nodes is None:
            return False
        res.jobs_placed += 1
        res.gpus_placed += job.request.gpus
        res.queue_gpu_hours += job.request.gpus * (now - job.arrival) / 3600.0
        heapq.heappush(running, (now + job.duration, id(nodes), nodes, job.request.gpus_per_worker))
        return True

    def advance(now: float) -> None:
        nonlocal frag_sum, frag_time, last_t
        if now > warmup:
            span = now - max(last_t, warmup)
            frag_sum += policy.fragmented() * span
            frag_time += span
        last_t = now

    for job in trace:
        while running and running[0][0] <= job.arrival:
            end, _, nodes, g = heapq.heappop(running)
            advance(end)
            for n in nodes:
                policy.release(n, g)
            started = [q for q in queue[:backfill] if attempt(q, end)]
            if started:
                queue = [q for q in queue if q not in started]
        advance(job.arrival)
        if not attempt(job, job.arrival):
            queue.append(job)
    horizon = trace[-1].arrival
    res.queue_gpu_hours += sum(q.request.gpus * (horizon - q.arrival) / 3600.0 for q in queue)
    res.frag_avg = frag_sum / frag_time if frag_time else policy.fragmented()
    return res


# ---- the parts --------------------------------------------------------------------------------------------


def part_speed(nodes: int, seed: int, calls: int) -> list[str]:
    snap = sim_snapshot(nodes, seed)
    gpus = sum(n.gpus_allocatable for n in snap.nodes)
    builds, copies = [], []
    for _ in range(7):
        t0 = time.perf_counter()
        cap = Capacity.from_snapshot(snap)
        builds.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        cap.copy()
        copies.append(time.perf_counter() - t0)
    rng = random.Random(seed)
    models = ["H100", "H200", "A100", "L4"]
    reqs = [random_request(rng, models, (6, 1.4, 1.2, 0.8), i) for i in range(calls)]
    lines = [
        f"fleet: {nodes} nodes, {gpus} GPUs; Capacity.from_snapshot median "
        f"{statistics.median(builds) * 1e3:.1f} ms, copy() median {statistics.median(copies) * 1e3:.2f} ms"
    ]
    empty = Capacity.from_snapshot(
        FleetSnapshot(timestamp=0.0, nodes=sim_nodes(nodes, seed, empty=True)), sizes=cap.sizes
    )
    fleets = (
        ("as fetched (mostly allocated)", cap, snap.nodes),
        ("emptied (every GPU free)", empty, sim_nodes(nodes, seed, empty=True)),
    )
    for label, c, fleet_nodes in fleets:
        times = []
        placed = 0
        for r in reqs:
            t0 = time.perf_counter()
            out = c.place(r)
            times.append(time.perf_counter() - t0)
            placed += isinstance(out, Placement)
        med, p90 = statistics.median(times), statistics.quantiles(times, n=10)[-1]
        base = BucketedBestFit(fleet_nodes)
        engine_s, base_s = [], []
        for _ in range(3):  # rates: the best of three whole passes each, without a clock read per call
            t0 = time.perf_counter()
            for r in reqs:
                c.place(r)
            engine_s.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            base_placed = sum(base.decide(r) is not None for r in reqs)
            base_s.append(time.perf_counter() - t0)
        rate, base_rate = calls / min(engine_s), calls / min(base_s)
        lines.append(
            f"place() on the fleet {label}: {calls} requests, {placed} placeable; median {med * 1e6:.0f} µs, "
            f"p90 {p90 * 1e6:.0f} µs, {rate:,.0f} decisions/s; bucketed best-fit ({base_placed} placeable) "
            f"{base_rate:,.0f}/s: the engine at {base_rate / rate:.2f}× its time"
        )
    return lines


def part_drain(nodes: int, seed: int, runs: int = 7, *, cold: bool = False) -> list[str]:
    """Drain plans over the embedded fleet at full size (budgets: one 8-GPU node ≤ 50 ms, 50 nodes ≤ 1 s).

    Warm: one snapshot for every run, its pod indices built beforehand, as the console has them once its
    panes have drawn. With ``cold``, also each plan on a fresh snapshot (built untimed) with nothing cached:
    the first plan after a fetch, before anything else asked the snapshot for an index.
    """
    snap = sim_snapshot(nodes, seed)
    snap.pods_by_node, snap.pods_by_owner  # noqa: B018 - per-snapshot indices, built once as the console does
    busy = [n.name for n in snap.nodes if n.gpus_total == 8 and n.gpus_requested]
    lines = [f"drain plans on {nodes} nodes ({len(snap.pods):,} pods), {runs} runs of other nodes each:"]
    for temperature in ("warm", "cold") if cold else ("warm",):
        for count in (1, 50):
            times = []
            for i in range(runs):
                chosen = busy[i * count : (i + 1) * count]
                if temperature == "cold":
                    snap = sim_snapshot(nodes, seed)
                t0 = time.perf_counter()
                plan = plan_drain(snap, chosen, allow_empty_dir=True)
                times.append(time.perf_counter() - t0)
            med, worst = statistics.median(times), max(times)
            lines.append(
                f"  {temperature} {count:>2} node(s): median {med * 1e3:.1f} ms, worst {worst * 1e3:.1f} ms "
                f"(last plan: {len(plan.evict)} evictions, {len(plan.gangs)} gangs restart)"
            )
    return lines


def part_trace(nodes: int, seed: int, jobs: int) -> list[str]:
    fleet = sim_nodes(nodes, seed, empty=True)
    trace = make_trace(fleet, jobs, seed)
    gpus = sum(n.gpus_allocatable for n in fleet if n.schedulable)
    lines = [
        f"trace: {len(trace)} jobs over {trace[-1].arrival / 3600:.1f} h on {len(fleet)} GPU nodes ({gpus} "
        f"schedulable GPUs), offered load 1.2; fragmentation time-averaged after the first hour",
        "",
        "| policy | GPUs placed | jobs placed | fragmented free GPUs (avg) | queueing delay (GPU-h) "
        "| decisions/s |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    results = [run_trace(p, trace) for p in policies(fleet)]
    for r in results:
        lines.append(
            f"| {r.policy} | {r.gpus_placed:,} | {r.jobs_placed:,} | {r.frag_avg:,.1f} | "
            f"{r.queue_gpu_hours:,.0f} | {r.decisions / r.decide_s:,.0f} |"
        )
    eng = results[0]
    worst = min(results[1:], key=lambda r: r.frag_avg)
    lines.append("")
    lines.append(
        f"engine fragmented GPUs / best baseline ({worst.policy}): {eng.frag_avg / worst.frag_avg:.2f}; "
        f"queueing delay / best baseline: "
        f"{eng.queue_gpu_hours / min(r.queue_gpu_hours for r in results[1:]):.2f}"
    )
    return lines


#: GPUs per job → share of jobs, in the spirit of the published production traces (Microsoft Philly, Jeon et
#: al. ATC'19; SenseTime Helios, Hu et al. SC'21; Alibaba PAI, Weng et al. NSDI'22): over half of the jobs
#: take one GPU, a few take many. A job of more than 8 GPUs is a gang of 8-GPU workers; a job of 2–8 GPUs is
#: one worker, or (:data:`SPLIT` of them: data-parallel jobs launched as two pods) two workers of half.
HELIOS_MIX = {1: 0.56, 2: 0.10, 4: 0.12, 8: 0.14, 16: 0.05, 32: 0.03}
SPLIT = 0.3


def helios_request(
    rng: random.Random, models: Sequence[str], weights: Sequence[float], i: int
) -> GangRequest:
    gpus = rng.choices(list(HELIOS_MIX), list(HELIOS_MIX.values()))[0]
    model = rng.choices(models, weights)[0]
    if 1 < gpus <= 8 and rng.random() < SPLIT:
        return GangRequest(2, gpus // 2, model, name=f"j{i}")
    return GangRequest(max(1, gpus // 8), min(gpus, 8), model, name=f"j{i}")


def small_instance(rng: random.Random, mix: str = "bench") -> tuple[tuple[Node, ...], list[GangRequest]]:
    n = rng.randint(20, 50)
    nodes = []
    for i in range(n):
        zone = rng.choice(("z1", "z2"))
        model = rng.choices(("H100", "A100"), (3, 1))[0]
        used = rng.choices((0, 2, 4, 6, 7, 8), (5, 1, 1, 1, 1, 1))[0]
        nodes.append(
            Node(
                name=f"n{i:02d}",
                source="bench",
                pool=model,
                zone=zone,
                instance_type="x",
                gpu_model=model,
                gpus_total=8,
                gpus_allocatable=8,
                gpus_requested=used,
                rack=f"{zone}-r{i % 3}",
            )
        )
    free = sum(8 - nd.gpus_requested for nd in nodes)
    reqs: list[GangRequest] = []
    draw = helios_request if mix == "helios" else random_request
    while sum(r.gpus for r in reqs) < 1.3 * free:
        reqs.append(draw(rng, ("H100", "A100"), (3, 1), len(reqs)))
        if reqs[-1].workers > 6:
            reqs[-1] = dataclasses.replace(reqs[-1], workers=6)
    return tuple(nodes), reqs


def optimum(nodes: Sequence[Node], reqs: Sequence[GangRequest], limit_s: float) -> tuple[int, bool]:
    """The most GPUs any all-or-nothing, one-zone placement of a subset of ``reqs`` can hold (CP-SAT)."""
    from ortools.sat.python import cp_model

    m = cp_model.CpModel()
    usable = [nd for nd in nodes if nd.schedulable]
    zones = sorted({nd.zone for nd in usable})
    x = [m.NewBoolVar(f"x{j}") for j in range(len(reqs))]
    load: dict[str, list[cp_model.LinearExpr]] = {nd.name: [] for nd in usable}
    for j, r in enumerate(reqs):
        y = {z: m.NewBoolVar(f"y{j}{z}") for z in zones}
        m.Add(sum(y.values()) == x[j])
        ranks = []
        for nd in usable:
            if nd.gpu_model != r.gpu_model or nd.gpus_free < r.gpus_per_worker:
                continue
            k = m.NewIntVar(0, min(r.workers, nd.gpus_free // r.gpus_per_worker), f"k{j}{nd.name}")
            m.Add(k == 0).OnlyEnforceIf(y[nd.zone].Not())
            ranks.append(k)
            load[nd.name].append(k * r.gpus_per_worker)
        m.Add(sum(ranks) == r.workers * x[j]) if ranks else m.Add(x[j] == 0)
    for nd in usable:
        if load[nd.name]:
            m.Add(sum(load[nd.name]) <= nd.gpus_free)
    m.Maximize(sum(x[j] * r.gpus for j, r in enumerate(reqs)))
    solver = cp_model.CpSolver()
    solver.parameters.max_time_in_seconds = limit_s
    solver.parameters.num_workers = 2
    status = solver.Solve(m)
    return int(solver.ObjectiveValue()), status == cp_model.OPTIMAL


def part_optimum(seed: int, instances: int, limit_s: float, mix: str = "bench") -> list[str]:
    import ortools

    rng = random.Random(seed)
    totals: dict[str, list[float]] = {}
    lines = [
        f"{instances} instances of 20–50 nodes (2 zones, 3 racks each, partly allocated), a batch of jobs "
        f"({mix} mix) asking 1.3× the free GPUs, placed in arrival order, skipping what does not fit; "
        f"OR-Tools {ortools.__version__} CP-SAT, {limit_s:.0f} s limit",
        "",
        "| policy | GPUs placed / optimum: mean | min | jobs placed (total) | fragmented free GPUs (total) |",
        "|---|---:|---:|---:|---:|",
    ]
    proven = 0
    jobs: dict[str, int] = {}
    frags: dict[str, float] = {}
    for _ in range(instances):
        nodes, reqs = small_instance(rng, mix)
        best, exact = optimum(nodes, reqs, limit_s)
        proven += exact
        runs = [(p, reqs) for p in policies(nodes)]
        largest_first = Engine(nodes)
        largest_first.name = "engine, batch largest first"
        runs.append((largest_first, sorted(reqs, key=lambda r: -r.gpus)))
        for p, order in runs:
            placed = 0
            for r in order:
                if p.place(r) is not None:
                    placed += r.gpus
                    jobs[p.name] = jobs.get(p.name, 0) + 1
            totals.setdefault(p.name, []).append(placed / best if best else 1.0)
            frags[p.name] = frags.get(p.name, 0.0) + p.fragmented()
    for name, ratios in totals.items():
        lines.append(
            f"| {name} | {statistics.fmean(ratios):.1%} | {min(ratios):.1%} | {jobs.get(name, 0)} "
            f"| {frags[name]:.1f} |"
        )
    lines.append("")
    lines.append(
        f"optimum proven for {proven} of {instances} instances (others: the best found in the limit)"
    )
    engine = totals["engine"]
    for name in ("best-fit", "k8s-most"):
        worse = [(i, e, b) for i, (e, b) in enumerate(zip(engine, totals[name], strict=True)) if e < b - 1e-9]
        said = ", ".join(f"#{i + 1} ({e:.1%} vs {b:.1%})" for i, e, b in worse[:5])
        lines.append(
            f"engine below {name} on {len(worse)} of {instances} instances{': ' + said if said else ''}"
        )
    return lines


def main(argv: Sequence[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--nodes", type=int, default=5000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--calls", type=int, default=5000, help="place() calls timed in the speed part")
    ap.add_argument("--jobs", type=int, default=8000, help="jobs in the trace")
    ap.add_argument("--instances", type=int, default=12, help="small instances solved with CP-SAT")
    ap.add_argument("--limit", type=float, default=10.0, help="CP-SAT time limit per instance, s")
    ap.add_argument(
        "--mix",
        choices=("bench", "helios"),
        default="bench",
        help="optimum part: job sizes as the trace part (bench) or as production traces (helios)",
    )
    ap.add_argument(
        "--only",
        nargs="*",
        choices=("speed", "drain", "trace", "optimum"),
        default=["speed", "drain", "trace", "optimum"],
    )
    ap.add_argument("--cold", action="store_true", help="drain part: also time plans on fresh snapshots")
    args = ap.parse_args(argv)
    if "speed" in args.only:
        print("\n".join(part_speed(args.nodes, args.seed, args.calls)), "\n", flush=True)
    if "drain" in args.only:
        print("\n".join(part_drain(args.nodes, args.seed, cold=args.cold)), "\n", flush=True)
    if "trace" in args.only:
        print("\n".join(part_trace(args.nodes, args.seed, args.jobs)), "\n", flush=True)
    if "optimum" in args.only:
        print("\n".join(part_optimum(args.seed, args.instances, args.limit, args.mix)), flush=True)


if __name__ == "__main__":
    main()
