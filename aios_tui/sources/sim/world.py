"""The simulated fleet's mutable state and the bookkeeping primitives that keep it consistent.

:class:`Fleet` holds what changes (which pod holds which GPU, cordons, jobs, endpoints) in plain mutable
records, and caches the frozen domain objects built from them so that a fetch only rebuilds what changed.
:mod:`~aios_tui.sources.sim.layout` lays the fleet out; :mod:`~aios_tui.sources.sim.source` drives it in time.
"""

from __future__ import annotations

import functools
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType

from aios_tui.alloc import scaling
from aios_tui.domain import JobState, Node, NodePool, Pod, PodPhase
from aios_tui.sources.clouds.catalogue import InstanceType
from aios_tui.sources.sim.construct import replace_pod
from aios_tui.sources.sim.signals import GpuSpec, daily, mix, smooth, suffix

REGION = "us-east-1"
ZONES = ("us-east-1a", "us-east-1b", "us-east-1c")
RACK_SIZE = 16
MAX_NODES = 5000
JOB_READY_DELAY = (20.0, 60.0)
NODE_BOOT_DELAY = (30.0, 60.0)
"""Seconds from a pool's scale-up to its new node being Ready. EC2 GPU instances take minutes to boot and
join; the simulation compresses that so that a scale-up shows within a short session."""
REPLICA_READY_DELAY = (10.0, 30.0)
HPA_METRIC = "requests_per_second"
MIB = 1 << 20
GIB = 1 << 30
GPU_POD_SHARE = 0.9
"""Of a node's allocatable CPU and memory, the share its GPUs' pods may ask for (per GPU, the share of one
GPU): the rest is for its DaemonSets and the small services beside them, so that GPU pods never leave a
node short of CPU or memory, as a cluster whose GPU pods are sized to their nodes runs."""
_MAX_PODS = {
    "p5.48xlarge": 100,
    "p5e.48xlarge": 100,
    "p4de.24xlarge": 737,
    "g6.12xlarge": 234,
    "g6.48xlarge": 737,
    "m7i.8xlarge": 234,
}
"""Pods per node as the EKS AMI's ``eni-max-pods.txt`` gives them (from the VPC CNI's ENI and IP limits)."""

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
    cpu_allocatable: int = 0
    memory_allocatable: int = 0
    cpu_requested: int = 0
    """Milli-CPU its pods request (kept by :meth:`Fleet.put_pod` and :meth:`Fleet.remove_pod`)."""
    memory_requested: int = 0
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

    def has_room(self, pod: Pod) -> bool:
        """Whether the pod's CPU and memory requests fit in what the node has not given yet."""
        return (
            self.cpu_requested + pod.cpu <= self.cpu_allocatable
            and self.memory_requested + pod.memory <= self.memory_allocatable
        )


@functools.cache
def allocatable(itype: InstanceType) -> tuple[int, int]:
    """Milli-CPU and bytes of memory the scheduler may give pods on an ``itype`` node, as the EKS AMI's
    bootstrap reserves them (kube-reserved, no system-reserved): CPU 6 % of the first core, 1 % of the
    second, 0.5 % of the next two and 0.25 % of every core above four; memory 255 MiB and 11 MiB per pod
    the node may run (:data:`_MAX_PODS`, 110 for a type it lacks), and the kubelet's 100 MiB eviction
    threshold (``memory.available<100Mi``)."""
    cores = itype.vcpus
    reserved = 60 * min(cores, 1) + 10 * min(max(cores - 1, 0), 1) + 5 * min(max(cores - 2, 0), 2)
    reserved += (5 * max(cores - 4, 0) + 1) // 2
    memory = (255 + 11 * _MAX_PODS.get(itype.name, 110) + 100) * MIB
    return cores * 1000 - reserved, itype.mem_gib * GIB - memory


def per_gpu(itype: InstanceType) -> tuple[int, int]:
    """What a pod asks per GPU on an ``itype`` node: :data:`GPU_POD_SHARE` of the node's allocatable CPU
    (in whole cores) and memory (in whole GiB) over its GPUs."""
    cpu, memory = allocatable(itype)
    return (
        int(cpu * GPU_POD_SHARE / itype.gpus) // 1000 * 1000,
        int(memory * GPU_POD_SHARE / itype.gpus) // GIB * GIB,
    )


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
        self.per_gpu: dict[str, tuple[int, int]] = {}
        """GPU model → milli-CPU and bytes of memory a pod asks per GPU of that model: what fits the
        smallest of the model's nodes (a pod template's requests do not depend on where it lands)."""
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
        """Add a pod, or replace the one with the same key (keeping its place in the order); a pod bound to
        a node adds its requests to the node's (they never change: Kubernetes' are immutable)."""
        key = pod.key
        old = self.pods.get(key)
        if pod.node and (old is None or old.node != pod.node):
            self._charge(pod, 1)
        self.pods[key] = pod
        self.pods_dirty = True

    def _charge(self, pod: Pod, sign: int) -> None:
        """Add (``sign`` 1) or take back (-1) the pod's requests on its node."""
        node = self.node_by_name.get(pod.node)
        if node is not None and (pod.cpu or pod.memory):
            node.cpu_requested += sign * pod.cpu
            node.memory_requested += sign * pod.memory
            node.obj = None

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
        self.put_pod(replace_pod(self.pods[key], node=node.name))

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
        pod = self.pods.pop(key, None)
        if pod is not None:
            self.pods_dirty = True
            if pod.node:
                self._charge(pod, -1)

    def first_fit(self, model: str, gpus: int, zones: Sequence[str] = ()) -> SimNode | None:
        """The first schedulable node of ``model`` (in ``zones`` when given) with ``gpus`` free."""
        for node in self.by_model.get(model, ()):
            if node.free >= gpus and node.schedulable and (not zones or node.zone in zones):
                return node
        return None


_GPU_PRODUCT = {
    "H100": "NVIDIA-H100-80GB-HBM3",
    "H200": "NVIDIA-H200",
    "A100": "NVIDIA-A100-SXM4-80GB",
    "L4": "NVIDIA-L4",
}


def add_node(
    fleet: Fleet, pool: str, zone: str, i: int, itype: InstanceType, spec: GpuSpec | None, rng: random.Random
) -> SimNode:
    """Append node number ``i`` (0-based) of ``pool`` to the fleet, with its GPUs; returns it."""
    idx = fleet.node_seq
    fleet.node_seq += 1
    name = f"{pool}-{i + 1:04d}"
    rack = f"{pool}-r{i // RACK_SIZE:02d}"
    cpu, memory = allocatable(itype)
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
        cpu_allocatable=cpu,
        memory_allocatable=memory,
    )
    fleet.nodes.append(node)
    fleet.node_by_name[name] = node
    if itype.gpus:
        fleet.by_model.setdefault(itype.gpu_model, []).append(node)
        (cpu_share, memory_share), known = per_gpu(itype), fleet.per_gpu.get(itype.gpu_model)
        if known is not None:
            cpu_share, memory_share = min(cpu_share, known[0]), min(memory_share, known[1])
        fleet.per_gpu[itype.gpu_model] = cpu_share, memory_share
    for g in range(itype.gpus):
        h = mix(fleet.salt ^ (idx << 8 | g))
        hexes = f"{h:016x}{mix(h):016x}"
        uuid = f"GPU-{hexes[:8]}-{hexes[8:12]}-{hexes[12:16]}-{hexes[16:20]}-{hexes[20:]}"
        fleet.gpus.append(SimGpu(node, g, uuid, h))
    return node


# --- pods and endpoints ----------------------------------------------------------------------------------


def create_job_pod(fleet: Fleet, job: SimJob, rank: int) -> str:
    key_name = f"{job.name}-{rank}-{suffix(fleet.next_uid())}"
    cpu, memory = fleet.per_gpu[job.gpu_model]
    pod = Pod(
        namespace=job.namespace,
        name=key_name,
        gpus=job.per_worker,
        cpu=cpu * job.per_worker,
        memory=memory * job.per_worker,
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
    cpu, memory = fleet.per_gpu[ep.kind.gpu_model]
    pod = Pod(
        namespace=ep.namespace,
        name=name,
        gpus=ep.kind.gpus,
        cpu=cpu * ep.kind.gpus,
        memory=memory * ep.kind.gpus,
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


def mark_running(fleet: Fleet, key: str) -> None:
    fleet.put_pod(replace_pod(fleet.pods[key], phase=PodPhase.RUNNING, ready=True))


def hpa_desired(ep: SimEndpoint, per_pod: float, current: int) -> int:
    """What the endpoint's HPA sets, by the same formula the scale plan quotes."""
    assert ep.hpa is not None
    lo, hi, target = ep.hpa
    return scaling.hpa_desired(current, per_pod, target, min_replicas=lo, max_replicas=hi)


def demand(ep: SimEndpoint, t: float, fleet_salt: int) -> float:
    """Requests per second arriving at ``ep`` at ``t``: the daily curve times ±8% drifting noise."""
    return ep.peak * daily(t, ep.phase_h) * (0.92 + 0.16 * smooth(ep.salt ^ fleet_salt, t, 20.0))


def ready_replicas(fleet: Fleet, ep: SimEndpoint) -> int:
    """How many of the endpoint's replicas are ready."""
    pods = fleet.pods
    return sum(1 for k in ep.pods if pods[k].ready)


def guarded(ep: SimEndpoint) -> bool:
    """Production endpoints carry a PodDisruptionBudget."""
    return "prod" in ep.namespace


def min_available(ep: SimEndpoint) -> int:
    """The budget's minAvailable: all replicas but one, and never fewer than one."""
    return max(1, ep.desired - 1)
