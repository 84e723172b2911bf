"""The simulated fleet's initial layout: pools, system pods, endpoints, training gangs and incidents.

:func:`build_fleet` lays out a believable fleet for a seed and a size (one ``random.Random(seed)`` drawn in
a fixed order, so the same seed and size give the same fleet); :func:`new_job` draws the jobs submitted later.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence

from aios_tui.domain import JobState, NodePool, Pod, PodPhase
from aios_tui.sources.clouds.aws.prices import CATALOGUE
from aios_tui.sources.sim.construct import new_pod, replace_pod
from aios_tui.sources.sim.signals import GPU_SPECS, mix, suffix, template_hash, unit
from aios_tui.sources.sim.world import (
    MIB,
    ZONES,
    Fleet,
    ServingKind,
    SimEndpoint,
    SimJob,
    SimNode,
    add_node,
    create_job_pod,
    create_replica_pod,
    demand,
    mark_running,
)

_VLLM = "vllm/vllm-openai:v0.6.3"
# fmt: off
SERVING_KINDS: tuple[ServingKind, ...] = (
    # key, model, server, image; GPU, GPUs per replica, req/s per replica, p50 and p99 ms unloaded,
    # share of GPU memory held, replicas (range), weight among new endpoints
    ServingKind("llama-3-70b", "meta-llama/Meta-Llama-3-70B-Instruct", "vLLM", _VLLM,
                "H100", 4, 6.0, 850, 2600, 0.90, (2, 6), 3),
    ServingKind("llama-3-8b", "meta-llama/Meta-Llama-3-8B-Instruct", "vLLM", _VLLM,
                "L4", 1, 8.0, 260, 800, 0.90, (2, 8), 3),
    ServingKind("embed-bge", "BAAI/bge-large-en-v1.5", "Triton", "nvcr.io/nvidia/tritonserver:24.08-py3",
                "L4", 1, 450.0, 9, 28, 0.22, (2, 6), 3),
    ServingKind("rerank-bge", "BAAI/bge-reranker-large", "TorchServe", "pytorch/torchserve:0.11.1-gpu",
                "A100", 1, 160.0, 22, 70, 0.12, (2, 6), 2),
    ServingKind("ranking-dlrm", "dlrm-ctr-v7", "TF Serving", "tensorflow/serving:2.16.1-gpu",
                "L4", 1, 900.0, 4, 16, 0.35, (2, 10), 2),
    ServingKind("llama-405b", "meta-llama/Llama-3.1-405B-Instruct-FP8", "vLLM", _VLLM,
                "H200", 8, 2.5, 1900, 5600, 0.92, (1, 3), 1),
    ServingKind("mixtral-8x7b", "mistralai/Mixtral-8x7B-Instruct-v0.1", "vLLM", _VLLM,
                "H100", 2, 9.0, 420, 1300, 0.90, (2, 4), 1),
)
# fmt: on

#: (pool prefix, instance type, share of the fleet), in the order small fleets are filled.
_POOL_KINDS = (
    ("h100", "p5.48xlarge", 0.62),
    ("h200", "p5e.48xlarge", 0.14),
    ("a100", "p4de.24xlarge", 0.12),
    ("l4", "g6.12xlarge", 0.04),
    ("l4x8", "g6.48xlarge", 0.04),
    ("cpu", "m7i.8xlarge", 0.04),
)
_EFA_TYPES = frozenset({"p5.48xlarge", "p5e.48xlarge", "p4de.24xlarge"})

#: DaemonSets: (namespace, name, on GPU nodes only, on EFA nodes only).
_DAEMONSETS = (
    ("kube-system", "kube-proxy", False, False),
    ("kube-system", "aws-node", False, False),
    ("kube-system", "ebs-csi-node", False, False),
    ("monitoring", "node-exporter", False, False),
    ("logging", "fluent-bit", False, False),
    ("gpu-operator", "nvidia-device-plugin", True, False),
    ("gpu-operator", "nvidia-dcgm-exporter", True, False),
    ("gpu-operator", "gpu-feature-discovery", True, False),
    ("kube-system", "aws-efa-k8s-device-plugin", False, True),
)

#: Small CPU services: (namespace, deployment, holds emptyDir data, milli-CPU, MiB of memory it requests).
#: At most 125m and 512 MiB: a CPU node's 200 to 230 of them fit in an m7i.8xlarge with its DaemonSets.
_CPU_APPS = (
    ("web", "checkout-api", False, 100, 256),
    ("web", "frontend", False, 50, 128),
    ("web", "session-cache", True, 100, 512),
    ("data", "kafka-connect", False, 125, 512),
    ("data", "airflow-worker", True, 125, 512),
    ("data", "spark-exec", True, 125, 512),
    ("feature-store", "feast-online", False, 100, 384),
    ("ml-platform", "mlflow", False, 50, 256),
    ("ml-platform", "jupyter-user", True, 125, 512),
    ("ml-platform", "tokenizer-svc", False, 100, 256),
    ("platform", "argo-controller", False, 50, 128),
    ("platform", "ingress-nginx", False, 100, 128),
    ("monitoring", "otel-collector", False, 100, 256),
    ("batch", "etl-nightly", True, 125, 512),
)
_DAEMONSET_REQUESTS = (100, 128 * MIB)
"""Every DaemonSet pod's milli-CPU and bytes of memory (node agents ask little)."""

_JOB_FAMILIES = (
    "llama-pretrain",
    "llama-sft",
    "rlhf-ppo",
    "dpo-align",
    "vit-train",
    "dlrm-train",
    "whisper-ft",
    "moe-pretrain",
    "bert-distill",
    "sdxl-train",
    "codegen-sft",
    "embed-ctr",
)
_JOB_NAMESPACES = ("research", "team-nlp", "team-vision", "team-recsys", "team-speech")
_USERS = ("alice", "bob", "chen", "dana", "emeka", "farah", "gus", "hana", "ivan", "jo", "kofi", "lena",
          "mateo", "nia", "omar", "priya", "quinn", "ravi", "sara", "tomas")  # fmt: skip
_TRAIN_IMAGES = (
    "nvcr.io/nvidia/pytorch:24.07-py3",
    "nvcr.io/nvidia/nemo:24.07",
    "ghcr.io/acme/megatron-lm:2024.09",
    "ghcr.io/acme/trainer:1.14.2",
)
_WORKER_SIZES = (1, 2, 3, 4, 6, 8, 12, 16)
_WORKER_WEIGHTS = (24, 22, 6, 18, 5, 12, 5, 8)
_APPS = ("chat", "search", "ads", "support", "assist", "docs", "code", "mail", "feed", "shop", "maps",
         "photos", "music", "news", "travel", "notes", "video", "voice", "wiki", "crm", "tutor", "games",
         "health", "auto", "legal", "fin", "sec", "ops", "qa", "hr")  # fmt: skip
_EP_NAMESPACES = ("ml-prod", "ml-prod", "ml-prod", "ml-prod", "ml-staging", "search-prod", "ads-prod")
_SERVING_SHARE = {"H100": 0.08, "H200": 0.08, "A100": 0.15, "L4": 0.7}


def pool_counts(n: int) -> list[int]:
    """Nodes per pool kind: one of each first (when there is room), the rest by share, largest remainder."""
    kinds = len(_POOL_KINDS)
    if n < kinds:
        return [1 if i < n else 0 for i in range(kinds)]
    rest = n - kinds
    exact = [share * rest for _, _, share in _POOL_KINDS]
    counts = [int(x) for x in exact]
    by_remainder = sorted(range(kinds), key=lambda i: (-(exact[i] - counts[i]), i))
    for i in by_remainder[: rest - sum(counts)]:
        counts[i] += 1
    return [c + 1 for c in counts]


def draw_workers(rng: random.Random) -> int:
    return rng.choices(_WORKER_SIZES, _WORKER_WEIGHTS)[0]


def new_job(
    fleet: Fleet,
    rng: random.Random,
    *,
    model: str,
    workers: int,
    submitted_at: float,
    duration: float,
    priority: int = 0,
) -> SimJob:
    """A training job with believable names and behaviour, registered in ``fleet`` (state QUEUED)."""
    fleet.job_seq += 1
    ns = rng.choice(_JOB_NAMESPACES)
    job = SimJob(
        seq=fleet.job_seq,
        namespace=ns,
        name=f"{rng.choice(_JOB_FAMILIES)}-{fleet.job_seq:04d}",
        workers=workers,
        per_worker=8,
        gpu_model=model,
        submitted_at=submitted_at,
        duration=duration,
        salt=mix(fleet.salt ^ (fleet.job_seq * 0x51ED27)),
        priority=priority,
        queue=f"{ns}-{model.lower()}",
        user=rng.choice(_USERS),
        image=rng.choice(_TRAIN_IMAGES),
        util_base=rng.uniform(89.0, 96.0),
        intensity=rng.uniform(0.86, 1.06),
        mem_frac=rng.uniform(0.6, 0.95),
    )
    fleet.jobs[job.key] = job
    return job


def job_duration(rng: random.Random) -> float:
    """Training runs last from two hours to three days (log-uniform)."""
    return math.exp(rng.uniform(math.log(2 * 3600.0), math.log(72 * 3600.0)))


def _first_allocated(node: SimNode) -> int:
    """Index of the node's first GPU held by a pod (0 when none is)."""
    return next((i for i, owner in enumerate(node.owners) if owner), 0)


class _Layout:
    """Builds the initial fleet; one use, then discarded."""

    def __init__(self, fleet: Fleet, seed: int, n: int, start: float) -> None:
        self.fleet = fleet
        self.rng = random.Random(seed)
        self.n = n
        self.start = start

    def build(self) -> None:
        self.nodes()
        self.system_pods()
        self.faulty_nodes()
        self.endpoints()
        running = self.training()
        self.incidents(running)
        self.history_jobs()
        self.fleet.now = self.start

    # nodes and pools

    def nodes(self) -> None:
        fleet, rng = self.fleet, self.rng
        pools: list[NodePool] = []
        for (prefix, itype_name, _), count in zip(_POOL_KINDS, pool_counts(self.n), strict=True):
            itype = CATALOGUE.types[itype_name]
            spec = GPU_SPECS.get(itype.gpu_model)
            for z, zone in enumerate(ZONES):
                in_zone = count // 3 + (1 if z < count % 3 else 0)
                if not in_zone:
                    continue
                pool = f"{prefix}-{zone[-1]}"
                pools.append(
                    NodePool(
                        name=pool,
                        source=fleet.source,
                        instance_type=itype.name,
                        gpu_model=itype.gpu_model,
                        gpus_per_node=itype.gpus,
                        price_per_hour=itype.price_per_hour,
                        nodes=in_zone,
                        min_size=0,
                        max_size=in_zone + max(2, in_zone // 10),
                        zones=(zone,),
                    )
                )
                for i in range(in_zone):
                    add_node(fleet, pool, zone, i, itype, spec, rng)
                fleet.pool_next[pool] = in_zone
        fleet.pools = tuple(pools)

    def system_pods(self) -> None:
        """DaemonSet pods on every node, small CPU services, and a few bare debugging pods."""
        fleet, rng, src = self.fleet, self.rng, self.fleet.source
        app_hash = {app: template_hash(mix(fleet.salt ^ i)) for i, (_, app, *_) in enumerate(_CPU_APPS)}
        uid = fleet.next_uid
        running = PodPhase.RUNNING
        # Ages (a hash, not the rng: the rest of the fleet stays as it was): weeks for the DaemonSets, days
        # for the services, hours for the debugging pods.
        app_born = {
            app: self.start - 86_400.0 * (1.0 + 20.0 * unit(fleet.salt, 0xA9 ^ i))
            for i, (_, app, *_) in enumerate(_CPU_APPS)
        }
        # 106,000 pods at 5,000 nodes: built here with the fewest calls (1.8 µs each, 3.4 through put_pod,
        # Pod() and rng.randrange; collector off), in the same order, with the same names and uids.
        pods, make, seq = fleet.pods, new_pod, fleet.uid
        daemonsets = {
            (gpu, efa): [
                # 0.0: as old as its node
                (ns, f"{ds}-", f"{ns}/{ds}", "DaemonSet", False, (ds,), 0.0, *_DAEMONSET_REQUESTS)
                for ns, ds, gpu_only, efa_only in _DAEMONSETS
                if (gpu or not gpu_only) and (efa or not efa_only)
            ]
            for gpu in (False, True)
            for efa in (False, True)
        }
        apps = [
            (
                ns,
                f"{app}-{app_hash[app]}-",
                f"{ns}/{app}",
                "ReplicaSet",
                empty_dir,
                (app,),
                app_born[app],
                cpu,
                memory * MIB,
            )
            for ns, app, empty_dir, cpu, memory in _CPU_APPS
        ]
        n_apps = len(apps)
        bits, width = rng.getrandbits, n_apps.bit_length()
        for node in fleet.nodes:
            gpu, node_name = bool(node.itype.gpus), node.name
            node_born = self.start - 86_400.0 * (7.0 + 60.0 * unit(fleet.salt, 0xB0 ^ node.idx))
            # The node's DaemonSet pods, then its service pods (the rng picks them).
            picks = list(daemonsets[gpu, node.itype.name in _EFA_TYPES])
            for _ in range(rng.randint(200, 230) if not gpu else rng.randint(2, 6)):
                r = bits(width)  # rng.randrange(n_apps) as random draws it: the same numbers, no calls
                while r >= n_apps:
                    r = bits(width)
                picks.append(apps[r])
            node_cpu = node_memory = 0
            for ns, prefix, owner, owner_kind, empty_dir, containers, born, cpu, memory in picks:
                seq += 1
                node_cpu += cpu
                node_memory += memory
                name = prefix + suffix(seq)
                pods[f"{ns}/{name}"] = make(
                    namespace=ns,
                    name=name,
                    node=node_name,
                    phase=running,
                    owner_kind=owner_kind,
                    owner=owner,
                    empty_dir=empty_dir,
                    ready=True,
                    source=src,
                    created_at=born or node_born,
                    containers=containers,
                    cpu=cpu,
                    memory=memory,
                )
            node.cpu_requested += node_cpu  # what put_pod would have added
            node.memory_requested += node_memory
        fleet.uid = seq
        fleet.pods_dirty = True
        for i in range(max(1, self.n // 500)):
            node = fleet.nodes[rng.randrange(len(fleet.nodes))]
            user = _USERS[i % len(_USERS)]
            born = self.start - 3600.0 * (0.5 + 8.0 * unit(fleet.salt, 0xDE ^ i))
            # No requests: a shell started with ``kubectl run`` is BestEffort.
            fleet.put_pod(
                Pod(
                    "default",
                    f"debug-{user}-{suffix(uid())}",
                    node.name,
                    running,
                    ready=True,
                    source=src,
                    created_at=born,
                    containers=("shell",),
                )
            )

    def faulty_nodes(self) -> None:
        """One node NotReady and one with a GPU off the bus, taken from the tail of the big pools."""
        if self.n < 8:
            return
        h100 = self.fleet.by_model["H100"]
        not_ready = h100[-1]
        not_ready.ready = False
        pods, name = self.fleet.pods, not_ready.name
        for key in [key for key, pod in pods.items() if pod.node == name]:
            pods[key] = replace_pod(pods[key], ready=False)
        spare = self.fleet.by_model.get("H200") or h100[:-1]
        spare[-1].xid_gpu = self.rng.randrange(spare[-1].itype.gpus)
        spare[-1].xid_at = self.start - 720.0  # 12 minutes before the session: nobody has acted yet

    # serving

    def endpoints(self) -> None:
        fleet, rng = self.fleet, self.rng
        total = {m: len(ns) * ns[0].itype.gpus for m, ns in fleet.by_model.items()}
        budget = {m: max(_SERVING_SHARE[m] * g, min(g // 4, 8)) for m, g in total.items()}
        wanted = max(5, round(self.n * 0.085))
        fixed = (
            (SERVING_KINDS[0], "chat", "ml-prod", "hpa"),
            (SERVING_KINDS[1], "canary", "ml-staging", "idle"),
            (SERVING_KINDS[2], "search", "ml-prod", "hpa"),
            (SERVING_KINDS[3], "search", "ml-prod", ""),
            (SERVING_KINDS[4], "feed", "ml-prod", "overload"),
            (SERVING_KINDS[5], "assist", "ml-prod", ""),
            (SERVING_KINDS[6], "code", "ml-prod", ""),
        )
        plans: list[tuple[ServingKind, str, str, str]] = list(fixed)
        weights = [k.weight for k in SERVING_KINDS]
        while len(plans) < wanted + 40 and len(plans) < 4 * wanted:
            kind = rng.choices(SERVING_KINDS, weights)[0]
            roll = rng.random()
            # Some autoscale; a few were over-provisioned and serve almost nothing (allocated-but-idle GPUs).
            style = "hpa" if kind.gpus <= 4 and roll < 0.4 else "idle" if roll > 0.95 else ""
            plans.append((kind, rng.choice(_APPS), rng.choice(_EP_NAMESPACES), style))
        made = 0
        for kind, app, ns, style in plans:
            if made >= wanted:
                break
            if kind.gpu_model not in total:
                continue
            lo, hi = kind.replicas
            replicas = 3 if style == "idle" else rng.randint(lo, hi)
            replicas = min(replicas, int(budget[kind.gpu_model] // kind.gpus))
            if replicas < 1:
                continue
            name = f"{kind.key}-{app}"
            if f"{ns}/{name}" in fleet.endpoints:
                continue
            budget[kind.gpu_model] -= replicas * kind.gpus
            self.endpoint(kind, ns, name, replicas, style)
            made += 1

    def endpoint(self, kind: ServingKind, ns: str, name: str, replicas: int, style: str) -> None:
        fleet, rng = self.fleet, self.rng
        idx = len(fleet.endpoints)
        salt = mix(fleet.salt ^ (0xE0 << 40 | idx))
        peak_rho = {"idle": 0.02, "overload": 1.35}.get(style, rng.uniform(0.5, 0.8))
        ep = SimEndpoint(
            idx=idx,
            namespace=ns,
            name=name,
            kind=kind,
            image=kind.image,
            desired=replicas,
            template=template_hash(salt),
            peak=replicas * kind.capacity * peak_rho,
            phase_h=rng.uniform(-1.5, 1.5),
            salt=salt,
        )
        if style == "hpa":
            target = kind.capacity * 0.7
            ep.peak = replicas * target * rng.uniform(0.85, 1.0)
            ep.hpa = (max(1, math.ceil(replicas * 0.3)), max(replicas * 2, 2), target)
            now = demand(ep, self.start, fleet.salt)
            ep.desired = max(ep.hpa[0], min(ep.hpa[1], math.ceil(now / target)))
        fleet.endpoints[ep.key] = ep
        fleet.now = self.start - 3600.0 * (2.0 + 400.0 * unit(salt, 0xC4EA))  # its replicas' age
        for _ in range(ep.desired):
            key = create_replica_pod(fleet, ep)
            node = fleet.first_fit(kind.gpu_model, kind.gpus)
            if node is not None:
                fleet.bind(key, node, kind.gpus)
                mark_running(fleet, key)
        if style == "idle":
            # Idle for 2 to 24 hours before the session (a hash, not the rng: the rest of the fleet stays).
            ep.idle_since = self.start - 3600.0 * (2.0 + 22.0 * unit(salt, 0x1D1E))
            ep.idle_pods = frozenset(ep.pods)

    # training

    def training(self) -> list[SimJob]:
        """Fill the 8-GPU pools with running gangs, leaving a few whole nodes free per zone."""
        fleet, rng = self.fleet, self.rng
        running: list[SimJob] = []
        for model in ("H100", "H200", "A100"):
            for zone in ZONES:
                in_zone = [n for n in fleet.by_model.get(model, ()) if n.zone == zone]
                whole = [n for n in in_zone if n.schedulable and n.used == 0]
                keep = min(8, len(in_zone) // 40)
                while len(whole) > keep:
                    workers = min(draw_workers(rng), len(whole) - keep)
                    total = job_duration(rng)
                    elapsed = total * rng.uniform(0.02, 0.97)
                    priority = rng.choice((0, 0, 0, 100, 1000))
                    job = new_job(
                        fleet,
                        rng,
                        model=model,
                        workers=workers,
                        submitted_at=0.0,
                        duration=total,
                        priority=priority,
                    )
                    job.started_at = self.start - elapsed
                    job.submitted_at = job.started_at - rng.uniform(30.0, 3600.0)
                    self.start_running(job, whole[:workers])
                    del whole[:workers]
                    running.append(job)
        return running

    def start_running(self, job: SimJob, nodes: Sequence[SimNode]) -> None:
        fleet = self.fleet
        job.state = JobState.RUNNING
        job.zone = nodes[0].zone
        job.placement = [n.name for n in nodes]
        job.pods = [""] * job.workers
        for rank, node in enumerate(nodes):
            key = create_job_pod(self.fleet, job, rank)
            fleet.bind(key, node, job.per_worker)
            mark_running(fleet, key)

    def incidents(self, running: list[SimJob]) -> None:
        """Hung jobs (one in 40, at least one) holding idle GPUs, a job about to finish, a hot GPU and a
        cordoned node, each on a different job."""
        rng, fleet = self.rng, self.fleet
        pool = list(running)
        rng.shuffle(pool)
        if len(pool) >= 3:
            small = [j for j in pool if j.workers <= 2] or pool
            for stuck in small[: max(1, len(pool) // 40)]:
                pool.remove(stuck)
                stuck.stuck = True
                stuck.stuck_progress = min(0.95, (self.start - stuck.started_at) / stuck.duration)
                # Hung 20 to 80 minutes before the session, never before it started (a hash, not the rng).
                hung = self.start - 60.0 * (20.0 + 60.0 * unit(stuck.salt, 0x57C))
                stuck.stuck_since = max(stuck.started_at, hung)
                stuck.duration = math.inf
        if len(pool) >= 2:
            soon = pool.pop()
            soon.duration = self.start - soon.started_at + rng.uniform(240.0, 900.0)
        if self.n >= 8 and pool:
            hot = pool.pop()
            node = fleet.node_by_name[hot.placement[0]]
            node.hot_gpu = rng.randrange(node.itype.gpus)
        if self.n >= 8:
            host = fleet.node_by_name[pool[0].placement[-1]] if pool else None
            if host is None or host.hot_gpu >= 0:
                busy = [n for n in fleet.nodes if n.used and n.schedulable and n.hot_gpu < 0]
                host = busy[0] if busy else next(n for n in fleet.nodes if n.schedulable)
            host.cordoned = True
            self.gpu_health(host)

    def gpu_health(self, quarantined: SimNode) -> None:
        """GPU health a real fleet shows besides its XID: NVSentinel has cordoned ``quarantined`` for a row
        remap its driver wants a reset for (its pods still run: the drain waits for their owners), and
        another busy node counts NVLink errors, not yet enough to move its work. The GPUs are the first ones
        each node has allocated, so that the verdicts hit something; no draw from the rng, so the rest of
        the fleet stays as it was."""
        quarantined.cordoned_by = "NVSentinel"
        quarantined.labels = {
            **quarantined.labels,
            "k8saas.nvidia.com/cordon-by": "NVSentinel",
            "k8saas.nvidia.com/cordon-reason": "GPU-fatal-error-ruleset",
        }
        quarantined.remap_gpu = _first_allocated(quarantined)
        link = next((n for n in self.fleet.nodes if n.used and n.schedulable and n.hot_gpu < 0), None)
        if link is not None:
            link.nvlink_gpu = _first_allocated(link)
            link.nvlink_errors = 37

    def history_jobs(self) -> None:
        """Jobs that finished before the session, and a few queued for capacity that is not there."""
        fleet, rng, start = self.fleet, self.rng, self.start
        if "H100" not in fleet.by_model:
            return
        failed = new_job(
            fleet, rng, model="H100", workers=4, submitted_at=start - 6 * 3600.0, duration=10 * 3600.0
        )
        failed.state = JobState.FAILED
        failed.started_at = start - 5.5 * 3600.0
        failed.finished_at = start - 2400.0
        failed.final_progress = (failed.finished_at - failed.started_at) / failed.duration
        failed.reason = "rank 3 exited 137 (OOMKilled)"
        for hours in (9.0, 3.0):
            workers = draw_workers(rng)
            submitted, duration = start - hours * 3600.0, (hours - 1.0) * 3600.0
            done = new_job(
                fleet, rng, model="H100", workers=workers, submitted_at=submitted, duration=duration
            )
            done.state = JobState.SUCCEEDED
            done.started_at = done.submitted_at + 600.0
            done.finished_at = done.started_at + done.duration
        models = [m for m in ("H100", "H200", "A100") if m in fleet.by_model]
        # Queued jobs hold nothing: each model's largest block stays what it is through this loop.
        blocks = {m: max(self.largest_block(m, z) for z in ZONES) for m in models}
        for i in range(max(1, fleet.job_seq // 40)):
            model = models[0] if i % 4 else models[i // 4 % len(models)]
            block = blocks[model]
            workers = min(16, block + 1 + rng.randrange(4))
            submitted = start - rng.uniform(60.0, 7200.0)
            priority = rng.choice((0, 0, 100))
            job = new_job(
                fleet,
                rng,
                model=model,
                workers=workers,
                submitted_at=submitted,
                duration=job_duration(rng),
                priority=priority,
            )
            job.pods = [""] * workers

    def largest_block(self, model: str, zone: str) -> int:
        return sum(1 for n in self.fleet.by_model[model] if n.zone == zone and n.schedulable and n.free >= 8)


def build_fleet(source: str, seed: int, nodes: int, start: float) -> Fleet:
    """Lay out a fleet of ``nodes`` nodes for ``seed``, as it stands at ``start``."""
    fleet = Fleet(source, seed)
    _Layout(fleet, seed, nodes, start).build()
    return fleet
