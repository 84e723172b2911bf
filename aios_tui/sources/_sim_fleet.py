"""The simulated fleet's mutable state, its bookkeeping primitives, and the initial layout.

:class:`Fleet` holds what changes (which pod holds which GPU, cordons, jobs, endpoints) in plain mutable
records, and caches the frozen domain objects built from them so that a fetch only rebuilds what changed.
:func:`build_fleet` lays out a believable fleet for a seed and a size; ``sim.py`` drives it in time.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from types import MappingProxyType

from aios_tui.alloc import scaling
from aios_tui.alloc.prices import INSTANCE_TYPES, InstanceType
from aios_tui.domain import JobState, Node, NodePool, Pod, PodPhase
from aios_tui.sources._sim_signals import (
    GPU_SPECS,
    GpuSpec,
    daily,
    mix,
    smooth,
    suffix,
    template_hash,
    unit,
)

REGION = "us-east-1"
ZONES = ("us-east-1a", "us-east-1b", "us-east-1c")
RACK_SIZE = 16
MAX_NODES = 5000

# --- records ----------------------------------------------------------------------------------------------


@dataclass(eq=False, slots=True)
class SimNode:
    """One node's mutable state; ``obj`` caches its :class:`Node` until something about it changes."""

    idx: int
    name: str
    pool: str
    zone: str
    rack: str
    itype: InstanceType
    spec: GpuSpec | None
    provider_id: str
    labels: Mapping[str, str]
    gpu0: int
    """Position of this node's GPU 0 in the fleet's GPU list."""
    owners: list[str]
    """Pod key holding each GPU, "" when free."""
    inlet: float
    """Intake air temperature, °C."""
    used: int = 0
    cordoned: bool = False
    ready: bool = True
    xid_gpu: int = -1
    """Index of a GPU that fell off the bus (XID 79), -1 when none."""
    xid_at: float = 0.0
    """When it fell off (the driver's log line), 0 when none."""
    hot_gpu: int = -1
    """Index of a GPU throttling on temperature, -1 when none."""
    remap_gpu: int = -1
    """Index of a GPU with a row remap pending (its driver asks for a reset), -1 when none."""
    nvlink_gpu: int = -1
    """Index of a GPU whose NVLink counts errors (``nvlink_errors`` of them), -1 when none."""
    nvlink_errors: int = 0
    cordoned_by: str = ""
    """Who cordoned it (``NVSentinel``, ``aios-tui``), "" when unknown or not cordoned."""
    obj: Node | None = None

    @property
    def model(self) -> str:
        return self.itype.gpu_model

    @property
    def allocatable(self) -> int:
        """The device plugin withdraws a GPU that fell off the bus."""
        return len(self.owners) - (1 if self.xid_gpu >= 0 else 0)

    @property
    def free(self) -> int:
        return self.allocatable - self.used

    @property
    def schedulable(self) -> bool:
        return self.ready and not self.cordoned and self.xid_gpu < 0


@dataclass(eq=False, slots=True)
class SimGpu:
    node: SimNode
    index: int
    uuid: str
    salt: int


@dataclass(frozen=True, slots=True)
class ServingKind:
    """A kind of model server: what one replica holds and how much traffic it serves."""

    key: str
    model: str
    server: str
    image: str
    gpu_model: str
    gpus: int
    capacity: float
    """Requests per second one replica serves at full utilisation."""
    p50: float
    p99: float
    """Unloaded latencies, ms."""
    mem_frac: float
    """Share of GPU memory a ready replica holds (vLLM preallocates 90%)."""
    replicas: tuple[int, int]
    weight: int


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
SERVER_CONTAINER = {"vLLM": "vllm", "Triton": "triton", "TorchServe": "torchserve", "TF Serving": "serving"}
"""A model server's container name in its pods (what a log is asked for)."""


@dataclass(eq=False, slots=True)
class SimEndpoint:
    idx: int
    namespace: str
    name: str
    kind: ServingKind
    image: str
    desired: int
    template: str
    peak: float
    """Requests per second at the daily peak."""
    phase_h: float
    salt: int
    hpa: tuple[int, int, float] | None = None
    """(min replicas, max replicas, target requests/s per replica)."""
    revision: int = 0
    pods: dict[str, str] = field(default_factory=dict)
    """Pod key → pod-template hash, in creation order."""
    hpa_recs: list[tuple[float, int]] = field(default_factory=list)
    idle_since: float = 0.0
    """An over-provisioned endpoint (traffic too light to ever lift a GPU to 5 %): since when its first
    replicas have served almost nothing; 0 for the others."""
    idle_pods: frozenset[str] = frozenset()
    """The replicas that ``idle_since`` covers (those made with the fleet; later ones start afresh)."""

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"


@dataclass(eq=False, slots=True)
class SimJob:
    seq: int
    namespace: str
    name: str
    workers: int
    per_worker: int
    gpu_model: str
    submitted_at: float
    duration: float
    """Seconds of running it needs; ``inf`` for a job that never ends (hung)."""
    salt: int
    state: JobState = JobState.QUEUED
    priority: int = 0
    queue: str = ""
    user: str = ""
    image: str = ""
    started_at: float = 0.0
    finished_at: float = 0.0
    zone: str = ""
    reason: str = ""
    placement: list[str] = field(default_factory=list)
    pods: list[str] = field(default_factory=list)
    """Pod key per rank ("" while a rank has no pod)."""
    pinned: tuple[str, ...] = ()
    zones: tuple[str, ...] = ()
    """Zones the job may use (all when empty)."""
    done: float = 0.0
    """Seconds of work saved by checkpoints before the current run (a restarted gang resumes from there)."""
    stuck_since: float = 0.0
    """When a hung job's collective stopped (its GPUs idle since); 0 when it is not hung."""
    stuck: bool = False
    """Hung (a collective that never returns): GPUs held at ~0% and no progress."""
    stuck_progress: float = 0.0
    final_progress: float = 1.0
    util_base: float = 92.0
    intensity: float = 0.95
    mem_frac: float = 0.8

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"


# --- the fleet --------------------------------------------------------------------------------------------


class Fleet:
    """All mutable state of the simulated fleet and the primitives that keep it consistent.

    Invariants kept here: a GPU's owner is a pod bound to that node, ``SimNode.used`` counts owned GPUs,
    and every change marks the cached objects it invalidates (node ``obj``, ``dirty_gpus``, ``pods_dirty``).
    """

    def __init__(self, source: str, seed: int) -> None:
        self.source = source
        self.salt = mix(seed)
        self.nodes: list[SimNode] = []
        self.node_by_name: dict[str, SimNode] = {}
        self.by_model: dict[str, list[SimNode]] = {}
        self.gpus: list[SimGpu] = []
        self.pools: tuple[NodePool, ...] = ()
        self.pods: dict[str, Pod] = {}
        self.pods_dirty = True
        self.bound: dict[str, tuple[SimNode, tuple[int, ...]]] = {}
        """GPU-holding pod → its node and GPU indices there."""
        self.work: dict[str, SimJob | SimEndpoint] = {}
        """Pod key → the job or endpoint that owns it (GPU workloads only)."""
        self.unplaced: dict[str, None] = {}
        """GPU pods waiting for a node, in arrival order."""
        self.rank_of: dict[str, int] = {}
        self.endpoints: dict[str, SimEndpoint] = {}
        self.jobs: dict[str, SimJob] = {}
        self.dirty_gpus: set[int] = set()
        self.uid = 0
        self.job_seq = 0
        self.node_seq = 0
        """The next node's ``idx`` (never reused: GPU UUIDs hash it)."""
        self.pool_next: dict[str, int] = {}
        """Pool → the ordinal its next node's name gets (names are not reused either)."""
        self.launching: dict[str, int] = {}
        """Pool → node launches under way (each a pending event; one finding the pool full does nothing)."""
        self.now = 0.0
        """The simulated time: when a pod made now is created (the layout and the source move it)."""

    def next_uid(self) -> int:
        self.uid += 1
        return self.uid

    # pods

    def put_pod(self, pod: Pod) -> None:
        """Add a pod, or replace the one with the same key (keeping its place in the order)."""
        self.pods[pod.key] = pod
        self.pods_dirty = True

    def bind(self, key: str, node: SimNode, gpus: int) -> None:
        """Give pod ``key`` ``gpus`` free GPUs on ``node`` (the lowest free indices)."""
        idxs: list[int] = []
        for i, owner in enumerate(node.owners):
            if not owner and i != node.xid_gpu:
                idxs.append(i)
                if len(idxs) == gpus:
                    break
        if len(idxs) < gpus:
            raise AssertionError(f"{node.name} has {len(idxs)} free GPUs, {key} needs {gpus}")
        for i in idxs:
            node.owners[i] = key
            self.dirty_gpus.add(node.gpu0 + i)
        node.used += gpus
        node.obj = None
        self.bound[key] = (node, tuple(idxs))
        self.unplaced.pop(key, None)
        self.put_pod(replace(self.pods[key], node=node.name))

    def unbind(self, key: str) -> None:
        held = self.bound.pop(key, None)
        if held is None:
            return
        node, idxs = held
        for i in idxs:
            node.owners[i] = ""
            self.dirty_gpus.add(node.gpu0 + i)
        node.used -= len(idxs)
        node.obj = None

    def remove_pod(self, key: str) -> None:
        self.unbind(key)
        self.unplaced.pop(key, None)
        self.work.pop(key, None)
        self.rank_of.pop(key, None)
        if self.pods.pop(key, None) is not None:
            self.pods_dirty = True

    def first_fit(self, model: str, gpus: int, zones: Sequence[str] = ()) -> SimNode | None:
        """The first schedulable node of ``model`` (in ``zones`` when given) with ``gpus`` free."""
        for node in self.by_model.get(model, ()):
            if node.free >= gpus and node.schedulable and (not zones or node.zone in zones):
                return node
        return None


def add_node(
    fleet: Fleet, pool: str, zone: str, i: int, itype: InstanceType, spec: GpuSpec | None, rng: random.Random
) -> SimNode:
    """Append node number ``i`` (0-based) of ``pool`` to the fleet, with its GPUs; returns it."""
    idx = fleet.node_seq
    fleet.node_seq += 1
    name = f"{pool}-{i + 1:04d}"
    rack = f"{pool}-r{i // RACK_SIZE:02d}"
    labels = {
        "kubernetes.io/hostname": name,
        "kubernetes.io/arch": "amd64",
        "topology.kubernetes.io/region": REGION,
        "topology.kubernetes.io/zone": zone,
        "node.kubernetes.io/instance-type": itype.name,
        "eks.amazonaws.com/nodegroup": pool,
        "eks.amazonaws.com/capacityType": "ON_DEMAND",
        "topology.k8s.aws/network-node-layer-3": rack,
    }
    if itype.gpus:
        labels["nvidia.com/gpu.product"] = _GPU_PRODUCT[itype.gpu_model]
        labels["nvidia.com/gpu.count"] = str(itype.gpus)
    node = SimNode(
        idx=idx,
        name=name,
        pool=pool,
        zone=zone,
        rack=rack,
        itype=itype,
        spec=spec,
        provider_id=f"aws:///{zone}/i-0{rng.getrandbits(64):016x}",
        labels=MappingProxyType(labels),
        gpu0=len(fleet.gpus),
        owners=[""] * itype.gpus,
        inlet=rng.uniform(26.0, 31.0),
    )
    fleet.nodes.append(node)
    fleet.node_by_name[name] = node
    if itype.gpus:
        fleet.by_model.setdefault(itype.gpu_model, []).append(node)
    for g in range(itype.gpus):
        h = mix(fleet.salt ^ (idx << 8 | g))
        hexes = f"{h:016x}{mix(h):016x}"
        uuid = f"GPU-{hexes[:8]}-{hexes[8:12]}-{hexes[12:16]}-{hexes[16:20]}-{hexes[20:]}"
        fleet.gpus.append(SimGpu(node, g, uuid, h))
    return node


# --- layout -----------------------------------------------------------------------------------------------

#: (pool prefix, instance type, share of the fleet), in the order small fleets are filled.
_POOL_KINDS = (
    ("h100", "p5.48xlarge", 0.62),
    ("h200", "p5e.48xlarge", 0.14),
    ("a100", "p4de.24xlarge", 0.12),
    ("l4", "g6.12xlarge", 0.04),
    ("l4x8", "g6.48xlarge", 0.04),
    ("cpu", "m7i.8xlarge", 0.04),
)
_GPU_PRODUCT = {
    "H100": "NVIDIA-H100-80GB-HBM3",
    "H200": "NVIDIA-H200",
    "A100": "NVIDIA-A100-SXM4-80GB",
    "L4": "NVIDIA-L4",
}
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

#: Small CPU services: (namespace, deployment, holds emptyDir data).
_CPU_APPS = (
    ("web", "checkout-api", False),
    ("web", "frontend", False),
    ("web", "session-cache", True),
    ("data", "kafka-connect", False),
    ("data", "airflow-worker", True),
    ("data", "spark-exec", True),
    ("feature-store", "feast-online", False),
    ("ml-platform", "mlflow", False),
    ("ml-platform", "jupyter-user", True),
    ("ml-platform", "tokenizer-svc", False),
    ("platform", "argo-controller", False),
    ("platform", "ingress-nginx", False),
    ("monitoring", "otel-collector", False),
    ("batch", "etl-nightly", True),
)

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
JOB_READY_DELAY = (20.0, 60.0)
NODE_BOOT_DELAY = (30.0, 60.0)
"""Seconds from a pool's scale-up to its new node being Ready. EC2 GPU instances take minutes to boot and
join; the simulation compresses that so that a scale-up shows within a short session."""
REPLICA_READY_DELAY = (10.0, 30.0)
HPA_METRIC = "requests_per_second"


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


def create_job_pod(fleet: Fleet, job: SimJob, rank: int) -> str:
    key_name = f"{job.name}-{rank}-{suffix(fleet.next_uid())}"
    pod = Pod(
        namespace=job.namespace,
        name=key_name,
        gpus=job.per_worker,
        owner_kind="Job",
        owner=job.key,
        empty_dir=True,
        rank=rank,
        source=fleet.source,
        created_at=job.started_at or fleet.now,
        containers=("trainer",),
    )
    fleet.put_pod(pod)
    fleet.work[pod.key] = job
    fleet.rank_of[pod.key] = rank
    fleet.unplaced[pod.key] = None
    job.pods[rank] = pod.key
    return pod.key


def create_replica_pod(fleet: Fleet, ep: SimEndpoint) -> str:
    name = f"{ep.name}-{ep.template}-{suffix(fleet.next_uid())}"
    pod = Pod(
        namespace=ep.namespace,
        name=name,
        gpus=ep.kind.gpus,
        owner_kind="ReplicaSet",
        owner=ep.key,
        source=fleet.source,
        created_at=fleet.now,
        containers=(SERVER_CONTAINER.get(ep.kind.server, "server"),),
    )
    fleet.put_pod(pod)
    fleet.work[pod.key] = ep
    fleet.unplaced[pod.key] = None
    ep.pods[pod.key] = ep.template
    return pod.key


def _first_allocated(node: SimNode) -> int:
    """Index of the node's first GPU held by a pod (0 when none is)."""
    return next((i for i, owner in enumerate(node.owners) if owner), 0)


def mark_running(fleet: Fleet, key: str) -> None:
    fleet.put_pod(replace(fleet.pods[key], phase=PodPhase.RUNNING, ready=True))


def hpa_desired(ep: SimEndpoint, per_pod: float, current: int) -> int:
    """What the endpoint's HPA sets, by the same formula the scale plan quotes."""
    assert ep.hpa is not None
    lo, hi, target = ep.hpa
    return scaling.hpa_desired(current, per_pod, target, min_replicas=lo, max_replicas=hi)


def demand(ep: SimEndpoint, t: float, fleet_salt: int) -> float:
    """Requests per second arriving at ``ep`` at ``t``: the daily curve times ±8% drifting noise."""
    return ep.peak * daily(t, ep.phase_h) * (0.92 + 0.16 * smooth(ep.salt ^ fleet_salt, t, 20.0))


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
            itype = INSTANCE_TYPES[itype_name]
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
        app_hash = {app: template_hash(mix(fleet.salt ^ i)) for i, (_, app, _) in enumerate(_CPU_APPS)}
        uid = fleet.next_uid
        running = PodPhase.RUNNING
        # Ages (a hash, not the rng: the rest of the fleet stays as it was): weeks for the DaemonSets, days
        # for the services, hours for the debugging pods.
        app_born = {
            app: self.start - 86_400.0 * (1.0 + 20.0 * unit(fleet.salt, 0xA9 ^ i))
            for i, (_, app, _) in enumerate(_CPU_APPS)
        }
        for node in fleet.nodes:
            gpu, efa = bool(node.itype.gpus), node.itype.name in _EFA_TYPES
            node_born = self.start - 86_400.0 * (7.0 + 60.0 * unit(fleet.salt, 0xB0 ^ node.idx))
            for ns, ds, gpu_only, efa_only in _DAEMONSETS:
                if (gpu_only and not gpu) or (efa_only and not efa):
                    continue
                name = f"{ds}-{suffix(uid())}"
                fleet.put_pod(
                    Pod(
                        ns,
                        name,
                        node.name,
                        running,
                        owner_kind="DaemonSet",
                        owner=f"{ns}/{ds}",
                        ready=True,
                        source=src,
                        created_at=node_born,
                        containers=(ds,),
                    )
                )
            count = rng.randint(200, 230) if not gpu else rng.randint(2, 6)
            for _ in range(count):
                ns, app, empty_dir = _CPU_APPS[rng.randrange(len(_CPU_APPS))]
                name = f"{app}-{app_hash[app]}-{suffix(uid())}"
                fleet.put_pod(
                    Pod(
                        ns,
                        name,
                        node.name,
                        running,
                        owner_kind="ReplicaSet",
                        owner=f"{ns}/{app}",
                        empty_dir=empty_dir,
                        ready=True,
                        source=src,
                        created_at=app_born[app],
                        containers=(app,),
                    )
                )
        for i in range(max(1, self.n // 500)):
            node = fleet.nodes[rng.randrange(len(fleet.nodes))]
            user = _USERS[i % len(_USERS)]
            born = self.start - 3600.0 * (0.5 + 8.0 * unit(fleet.salt, 0xDE ^ i))
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
        for key, pod in list(self.fleet.pods.items()):
            if pod.node == not_ready.name:
                self.fleet.pods[key] = replace(pod, ready=False)
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
        for i in range(max(1, fleet.job_seq // 40)):
            model = models[0] if i % 4 else models[i // 4 % len(models)]
            block = max(self.largest_block(model, z) for z in ZONES)
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
